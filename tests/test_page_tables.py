"""Page tables cost what their kernels pay for them (lab/ptclear.py): a kernel that hangs a new
table into an address space clears the frame first -- Linux 2.0's pgd_alloc and pte_alloc,
Mach's pmap_create and pmap_expand, L4's task_new and the page table a map needs.  The engine
builds tables for free (they are what the MMU walks); the clearing is charged where the kernel
does it, its stores written through the caches."""
import pytest
from hypothesis import given, settings, strategies as st

from engine import Machine
from lab.l4 import L4Kernel
from lab.linux import boot
from l4_helpers import Relay

PAGE = 4096
REGION = 4 << 20            # what one x86-32 page table maps


def _regions(p):
    return {va // REGION for va, _pte in p.proc.mm.present(0, p.kernel.task_size)}


def _fork(system):
    """One fork + exit + wait; returns (the events of it, the 4 MB regions the child had
    pages in when it exited, the stats' differences)."""
    linux = boot(system)
    out = {}

    def child(c):
        out["regions"] = _regions(c)
        return 0

    def prog(p):
        heap = p.malloc(PAGE)
        p.touch(heap, PAGE, write=True)
        p.touch(p.kernel.task_size - PAGE, 4, write=True)      # wait4's status word goes here
        m = p.kernel.m
        n0 = len(m.events)
        with m.measure() as r:
            p.wait4(p.fork(child))
        out["events"], out["stats"] = list(m.events)[n0:], r.stats
        return 0
    linux.spawn(prog)
    linux.run()
    return out["events"], out["regions"], out["stats"]


def _tables(events, kernel):
    return [e for e in events if e.kernel == kernel and e.operation == "page_table"]


def test_native_fork_clears_a_directory_and_a_table_per_region_of_the_child():
    """Native Linux 2.0 fork: pgd_alloc takes a cleared page directory, pte_alloc a cleared
    page table for each 4 MB region the child has pages in (copied or faulted); every line is
    stored through the caches (on the Pentium's write-no-allocate L1, each store misses)."""
    events, regions, stats = _fork("linux")
    tables = _tables(events, "linux")
    assert [e.args["table"] for e in tables] == ["pgd"] + ["pte"] * len(regions)
    assert len({e.args["pa"] for e in tables}) == len(tables)       # distinct frames
    assert not _tables(events, "l4") and not _tables(events, "mach")
    assert stats["l1d.misses"] >= len(tables) * PAGE // 32


@pytest.mark.parametrize("system, micro", [("l4linux", "l4"), ("mklinux_in_kernel", "mach"),
                                           ("mklinux_user", "mach")])
def test_a_microkernel_fork_pays_for_two_sets_of_page_tables(system, micro):
    """On a microkernel, Linux's page tables are the server's book-keeping (S97 §4: a page
    table in the Linux server and one in the microkernel): fork clears Linux's directory and a
    table per region the child has pages in, and the microkernel clears the new task's page
    directory as well."""
    events, regions, _stats = _fork(system)
    linux = [e.args["table"] for e in _tables(events, "linux")]
    assert linux == ["pgd"] + ["pte"] * len(regions)
    # the microkernel: the child's task is created once, its directory cleared as it is made
    # (L4's task_new, Mach's pmap_create: the page_table event right before the creation)
    micro_ops = [(e.operation, e.args) for e in events if e.kernel == micro
                 and e.operation in ("page_table", "task_new", "task_create")]
    created = [i for i, (op, _a) in enumerate(micro_ops) if op != "page_table"]
    assert len(created) == 1, micro_ops
    (i,) = created
    assert i >= 1 and micro_ops[i - 1][0] == "page_table", micro_ops
    assert micro_ops[i - 1][1].get("task", micro_ops[i][1]["task"]) == micro_ops[i][1]["task"]
    linux_frames = {e.args["pa"] for e in _tables(events, "linux")}
    assert micro_ops[i - 1][1]["pa"] not in linux_frames      # two sets: distinct frames


def test_l4_clears_a_page_table_when_a_map_needs_one():
    """L4: task_new clears the new task's page directory; a map into a 4 MB region the task
    has no page table for clears one; a second page in the same region needs none."""
    k = L4Kernel(Machine("pentium-133"))
    pager = Relay(k, "pager", 0x400000)          # its pager: sigma0
    n0 = len(k.m.events)
    c = k.task_new("client", pager=pager)
    mine = lambda: [e for e in list(k.m.events)[n0:]
                    if e.operation == "page_table" and e.args["task"] == "client"]
    assert [e.args["pa"] for e in mine()] == [k.m.root(c.sid)]
    k.store(c.thread, 0x3000, b"a")
    assert len(mine()) == 2
    k.store(c.thread, 0x5000, b"b")
    assert len(mine()) == 2
    k.store(c.thread, REGION + 0x1000, b"c")
    assert len(mine()) == 3
    assert len({e.args["pa"] for e in mine()}) == 3


def test_the_engine_tells_which_frames_hold_a_spaces_tables():
    """Machine.table_frames: the root, then each table a mapping needed (one per 4 MB region
    on x86-32); TableFrames reports each new one once, and adopted ones never."""
    from lab.ptclear import TableFrames
    m = Machine("pentium-133")
    sid = m.new_space()
    frames = TableFrames(m)
    assert m.table_frames(sid) == (m.root(sid),) and m.table_count(sid) == 1
    frames.adopt(sid)
    assert frames.new(sid) == ()
    m.map(sid, 0x1000, m.alloc_page())
    (t,) = frames.new(sid)
    assert set(m.table_frames(sid)) == {m.root(sid), t} and frames.new(sid) == ()
    m.map(sid, 0x2000, m.alloc_page())               # same region: no new table
    assert frames.new(sid) == ()
    m.map(sid, REGION, m.alloc_page())
    assert len(frames.new(sid)) == 1 and m.table_count(sid) == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=(3 << 30) // PAGE - 1), min_size=1,
                max_size=40, unique=True))
def test_each_table_a_mapping_needs_is_reported_once(pages):
    """Whatever pages a space maps, TableFrames reports every table frame the engine hung in
    exactly once: one per 4 MB region touched, none for a region that already has one."""
    from lab.ptclear import TableFrames
    m = Machine("pentium-133")
    sid = m.new_space()
    frames = TableFrames(m)
    frames.adopt(sid)
    seen = []
    for vpn in pages:
        m.map(sid, vpn * PAGE, m.alloc_page())
        seen += frames.new(sid)
    assert len(seen) == len(set(seen)) == len({vpn * PAGE // REGION for vpn in pages})
    assert set(seen) | {m.root(sid)} == set(m.table_frames(sid))
