"""Appel & Li's user-level VM benchmarks (S97 Table 5) as this lab runs them: on L4 the handler
is a pager in another address space (protect = flush of the write right, unprotect = a map
with write rights); on native Linux a SIGSEGV handler with mprotect, which
lab/workloads/linux_vm.py adds to lab/mono following Linux 2.0."""
import pytest
from hypothesis import given, settings, strategies as st

from engine.pte import PERM_W
from lab.l4 import Fpage
from lab.linux import boot
from lab.mono.abi import PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, SIGSEGV, WTERMSIG
from lab.mono.errors import EFAULT, EINVAL
from lab.workloads import appel
from lab.workloads.appel import (Action, L4Appel, LinuxVM, aligned_fpages, L4_REGION, PAGE,
                                 measure)

RW = PROT_READ | PROT_WRITE


# ---------------------------------------------------------------------- L4
@pytest.fixture
def w():
    w = L4Appel(npages=8)
    w.touch_all()
    return w


def _rights(w, i):
    return w.k.mappings(w.task)[w.va(i)][1]


def test_a_protection_fault_reaches_the_pager_as_ipc_and_unprot_is_a_map_with_write_rights(w):
    """S97 Table 5 on L4: the write to a write-protected page becomes a page-fault IPC to the
    handler (the mutator's pager, another address space); its reply maps the page again with
    write rights, and the write is retried."""
    w.handler.action = Action.UNPROT
    w.k.fpage_unmap(w.task, Fpage(w.va(3), 12), rights="w", own=True)
    assert _rights(w, 3) == "r"
    w.m.events.clear()
    w.write(3)
    ops = [(e.operation, e.args.get("thread") or e.args.get("sender") or e.args.get("src"))
           for e in w.m.events if e.operation in ("pagefault", "ipc", "map", "retry")]
    assert ops == [("pagefault", "mutator"), ("ipc", "mutator"), ("map", "appel-handler"),
                   ("ipc", "appel-handler"), ("retry", "mutator")]
    assert w.m.events.find("map")[0].args["rights"] == "rw"
    assert _rights(w, 3) == "rw" and w.m.translate(w.task.sid, w.va(3))[1] & PERM_W


def test_protect_is_a_flush_of_the_write_right_over_aligned_flexpages(w):
    """protN on L4: the mutator flushes the write right of its region, one aligned flexpage at
    a time; every page stays mapped, read-only."""
    w.m.events.clear()
    w.region_flush("w")
    flushes = w.m.events.find("flush", kernel="l4")
    assert [(e.args["log2size"], e.args["rights"], e.args["affected"]) for e in flushes] == \
        [(15, "w", 8)]
    assert all(_rights(w, i) == "r" for i in range(8))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(1, 200))
def test_aligned_fpages_cover_the_range_exactly_with_naturally_aligned_pieces(first, n):
    """L4 flushes flexpages, naturally aligned powers of two: the pieces for a range cover it
    exactly, in order, without overlap (100 pages at an aligned base: 64 + 32 + 4)."""
    base = L4_REGION + first * PAGE
    fps = aligned_fpages(base, n)
    va = base
    for fp in fps:
        assert fp.base == va and fp.base % fp.size == 0
        va += fp.size
    assert va == base + n * PAGE
    assert [fp.size // PAGE for fp in aligned_fpages(L4_REGION, 100)] == [64, 32, 4]


def test_appel1_handler_protects_the_page_it_unprotected_last(w):
    """Appel1 (trap + prot1 + unprot): each fault unprotects its page and write-protects the
    one unprotected before, so exactly one page of the region is writable."""
    w.handler.action = Action.PROT1_UNPROT
    w.region_flush("w")
    w.write(2)
    w.write(5)
    assert _rights(w, 5) == "rw" and _rights(w, 2) == "r"
    assert [i for i in range(8) if _rights(w, i) == "rw"] == [5]
    flush = w.m.events.find("flush", task="appel-handler")[-1]
    assert flush.args["rights"] == "w" and flush.args["affected"] == 1


def test_fault_maps_an_existing_page_of_the_pager():
    """Fault: the pager already holds the page; its reply maps that very frame into the
    mutator (no page is allocated while the fault is served)."""
    w = L4Appel(npages=4)
    w.write(1)
    pa = w.handler.frames[1]
    assert w.m.translate(w.task.sid, w.va(1))[0] == pa
    tree = w.k.db.tree(pa)                 # sigma0 -> the handler -> the mutator
    assert tree["children"][0]["task"] == "appel-handler"
    assert [(c["task"], c["va"], c["rights"]) for c in tree["children"][0]["children"]] == \
        [("mutator", w.va(1), "rw")]


# ---------------------------------------------------------------------- Linux
def _run(program):
    k = boot("linux", log_syscalls=False)
    p = k.spawn(program)
    k.run()
    return k, p


def _region(p, npages):
    base = p.mmap(0, npages * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.touch(base, npages * PAGE, write=True)
    return base


def test_mprotect_splits_the_vma_and_merge_segments_joins_it_again():
    """Linux 2.0 mprotect_fixup: protecting one page inside an anonymous mapping cuts it into
    three VMAs; unprotecting it makes them equal again and merge_segments joins them."""
    seen = {}

    def prog(p):
        vm = LinuxVM(p)
        base = _region(p, 4)
        vm.mprotect(base + PAGE, PAGE, PROT_READ)
        seen["split"] = [(v.start - base, v.end - base, v.prot) for v in p.proc.mm.vmas
                         if base <= v.start < base + 4 * PAGE]
        vm.mprotect(base + PAGE, PAGE, RW)
        seen["merged"] = [(v.start - base, v.end - base, v.prot) for v in p.proc.mm.vmas
                          if base <= v.start < base + 4 * PAGE]
    k, _ = _run(prog)
    assert seen["split"] == [(0, PAGE, RW), (PAGE, 2 * PAGE, PROT_READ), (2 * PAGE, 4 * PAGE, RW)]
    assert seen["merged"] == [(0, 4 * PAGE, RW)]
    ev = k.m.events.find("mprotect", kernel="linux")
    assert [(e.args["splits"], e.args["merges"], e.args["pages"]) for e in ev] == \
        [(2, 0, 1), (0, 2, 1)]


def test_a_protected_write_runs_the_sigsegv_handler_then_completes():
    """Trap on Linux: the write to a write-protected page goes do_page_fault -> SIGSEGV to the
    handler, which finds the fault address in its sigcontext and unprotects the page; after
    sigreturn the write is retried and completes (the page is writable)."""
    got = {}

    def prog(p):
        vm = LinuxVM(p)
        base = _region(p, 2)

        def handler(vm, addr):
            got["addr"] = addr
            vm.mprotect(addr & ~(PAGE - 1), PAGE, RW)
        vm.sigaction(SIGSEGV, handler)
        vm.mprotect(base, 2 * PAGE, PROT_READ)
        p.m.events.clear()
        vm.access(base + PAGE + 0x123, "w")
        got["base"] = base
        got["perm"] = p.m.translate(p.proc.ctx.space, base + PAGE)[1]
        return 0
    k, proc = _run(prog)
    assert got["addr"] == got["base"] + PAGE + 0x123
    assert got["perm"] & PERM_W
    page = got["base"] + PAGE               # (the loop's own code and stack fault in too)
    ops = [e.operation for e in k.m.events if e.kernel == "linux"
           and (e.operation in ("signal", "mprotect", "sigreturn")
                or e.operation == "page_fault" and e.args["va"] == page)]
    assert ops == ["signal", "mprotect", "sigreturn", "page_fault"]
    assert proc.exit_status == 0


def test_after_unprotect_a_private_page_is_writable_only_through_do_wp_page():
    """Linux 2.0 gives a private writable mapping PAGE_COPY protection on mprotect: the first
    write after the unprotect takes a second fault, which do_wp_page resolves without a copy
    (the process holds the only reference)."""
    def prog(p):
        vm = LinuxVM(p)
        base = _region(p, 1)
        vm.sigaction(SIGSEGV, lambda vm, a: vm.mprotect(a & ~(PAGE - 1), PAGE, RW))
        vm.mprotect(base, PAGE, PROT_READ)
        vm.access(base, "w")
    k, _ = _run(prog)
    last = k.m.events.find("page_fault", kernel="linux")[-1]
    assert last.args["type"] == "cow-reuse" and last.args["kind"] == "w"


def test_without_a_handler_the_protection_fault_kills_the_process():
    """No SIGSEGV handler: Linux's own path runs and the process dies of signal 11."""
    status = {}

    def child(c):
        vm = LinuxVM(c)
        base = _region(c, 1)
        vm.mprotect(base, PAGE, PROT_READ)
        vm.access(base, "w")
        return 0

    def parent(p):
        pid = p.fork(child)
        status["w"] = p.wait4(pid)[1]
    _run(parent)
    assert WTERMSIG(status["w"]) == SIGSEGV


def test_mprotect_rejects_bad_arguments_with_linux_errnos():
    """EINVAL for an unaligned start or unknown protection bits (and for PROT_NONE, which this
    model does not represent), EFAULT for a range with a hole."""
    errs = []

    def prog(p):
        vm = LinuxVM(p)
        base = _region(p, 1)
        for args in ((base + 1, PAGE, PROT_READ), (base, PAGE, 0x80), (base, PAGE, 0),
                     (base, 4 * PAGE, PROT_READ)):
            try:
                vm.mprotect(*args)
            except (EINVAL, EFAULT) as e:
                errs.append(e.code)
    _run(prog)
    assert errs == ["EINVAL", "EINVAL", "EINVAL", "EFAULT"]


def test_linux_vm_is_native_only():
    """The mprotect/signal extension runs inside native Linux's kernel image only."""
    k = boot("l4linux", log_syscalls=False)
    err = {}

    def prog(p):
        try:
            LinuxVM(p)
        except ValueError as e:
            err["e"] = str(e)
    k.spawn(prog)
    k.run()
    assert "only native" in err["e"]


# ---------------------------------------------------------------------- the table
def test_measure_is_deterministic_and_counts_the_mechanism():
    """Same seed, same numbers.  Per page, Appel2 on Linux delivers one signal, makes one
    mprotect (the unprot) plus its share of protN, and Linux itself resolves one fault (the
    do_wp_page after the unprotect); on L4 each page is one page-fault IPC answered by a map."""
    a = measure("Appel2", "linux", quick=True)
    b = measure("Appel2", "linux", quick=True)
    assert a.cycles == b.cycles and a.by_category == b.by_category
    pages = int(appel.characteristic("pages"))
    assert a.events["linux.signal"] == a.events["linux.sigreturn"] == 1
    assert a.events["linux.mprotect"] == pytest.approx(1 + 1 / pages)
    assert a.events["linux.page_fault"] == 1
    l4 = measure("Appel2", "l4", quick=True)
    assert l4.events["l4.pagefault"] == 1 and l4.events["l4.map"] == 1
    assert l4.events["l4.flush"] == pytest.approx(3 / pages)      # protN: 64 + 32 + 4 pages


def test_trap_ends_when_the_handler_is_entered():
    """Trap measures up to the handler's invocation: on Linux the signal has been delivered
    but no mprotect and no sigreturn has run yet; on L4 the fault IPC has arrived but the
    reply (the map) has not."""
    lx = measure("Trap", "linux", quick=True)
    assert lx.events == {"linux.signal": 1}
    l4 = measure("Trap", "l4", quick=True)
    assert l4.events == {"l4.ipc": 1, "l4.pagefault": 1}


def test_fault_has_no_linux_version_and_names_are_checked():
    """Linux has no user-level pagers: Fault is L4 only; unknown names are errors that list
    the allowed ones."""
    with pytest.raises(ValueError, match="user-level pager"):
        measure("Fault", "linux", quick=True)
    with pytest.raises(ValueError, match="Appel1"):
        measure("Appel3", "l4", quick=True)
    with pytest.raises(ValueError, match="l4, linux"):
        measure("Trap", "mach", quick=True)
