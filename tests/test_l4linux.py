"""L4Linux (S97 §4, the lecture's "L4Linux" slides): the Linux server is one L4 thread in one
L4 task, the pager of its processes; system calls are IPC from the emulation library (or via
the trampoline for unmodified binaries); page faults are IPC to the server, which maps from
its logical page table."""
import pytest

from engine import Machine, ops as O
from lab.errors import KernelError
from lab.kprofile import KernelProfile
from lab.l4 import Message, NotExistent, ipc_call, ipc_wait, ipc_reply_and_wait
from lab.linux.l4linux import L4LinuxArch, SERVER_TEXT

PAGE = 4096


def _e(v):
    return {"value": v, "unit": "-", "description": "test stand-in", "source": "test stand-in"}


FAKE = KernelProfile({"kernel": "fake-linux", "paths": {
    "sys_getpid": {"instructions": _e(100), "code_bytes": _e(256), "data_bytes": _e(64)},
    "do_page_fault": {"instructions": _e(200), "code_bytes": _e(512), "data_bytes": _e(128)},
}, "values": {}}, "fake-linux")


class FakeLinux:
    """The architecture-independent side, reduced to what these tests need: a logical page
    table of its own (frames per (pid, page)) and a getpid path."""
    image_profile = FAKE
    copy_kernel_pa = None

    def __init__(self, arch):
        self.arch, self.m = arch, arch.m
        self.frames, self.faults = {}, []
        arch.attach(self)

    def page_fault(self, ctx, va, kind):
        self.faults.append((ctx.pid, va, kind))
        self.arch.run_path("do_page_fault")
        page = va - va % PAGE
        pa = self.frames.setdefault((ctx.pid, page), self.m.alloc_page())
        self.arch.map_user(ctx, page, pa, "rw")
        return True

    def getpid(self, ctx):
        seen = {}

        def body():
            seen["space"] = self.m.current_space
            self.arch.run_path("sys_getpid")
            return ctx.pid
        return self.arch.syscall(ctx, "getpid", body), seen


def _system(trampoline=False, small=False, kernel=None, machine=None):
    m = machine or Machine("pentium-133")
    arch = L4LinuxArch(m, trampoline=trampoline, small_spaces=small, kernel=kernel)
    linux = FakeLinux(arch)
    ctx = arch.create_process(1)
    arch.run_user(ctx, O.access("w", [0x1000]))
    linux.getpid(ctx)                                   # warm
    return m, arch, linux, ctx


def test_the_server_is_one_thread_in_one_task_with_4kb_pages():
    """S97 §4: Linux runs as one L4 thread in one L4 address space; its image is mapped with
    4 KB pages, not global (native Linux uses global 4 MB pages: DESIGN §4)."""
    m, arch, linux, ctx = _system()
    assert arch.server_task.threads == [arch.server]
    steps = m.walk_steps(arch.server_task.sid, SERVER_TEXT)
    leaf = steps[-1]
    assert leaf.leaf and leaf.level == m.fmt.levels - 1         # a 4 KB PTE, not a 4 MB PDE
    assert not leaf.entry & m.fmt.g_mask
    assert ctx.thread.pager is arch.server                     # the server pages its processes


def test_getpid_runs_the_five_steps_of_figure_5():
    """S97 Fig. 5: enter the emulation library, send the system-call message, Linux server
    work, receive the reply, leave the library -- Linux's work runs in the server's space."""
    m, arch, linux, ctx = _system()
    m.events.clear()
    with m.measure() as r:
        pid, seen = linux.getpid(ctx)
    assert pid == 1 and seen["space"] == arch.server_task.sid
    steps = [e.args["step"] for e in m.events.find("syscall", kernel="l4linux")]
    assert steps == ["enter_emulation", "send", "server_work", "receive", "leave_emulation",
                     "done"]
    ipcs = [(e.args["sender"], e.args["receiver"]) for e in m.events.find("ipc")]
    assert ipcs == [("linux-1", "linux-server"), ("linux-server", "linux-1")]
    c = r.by_category
    assert all(c[k] > 0 for k in ("emulation", "ipc", "entry_exit", "server", "space_switch"))
    assert c["entry_exit"] == 2 * m.profile["kernel_entry_exit_cycles"]   # call + reply


def test_the_request_and_the_reply_cost_the_same():
    """L4 has one IPC system call (S95 §4): the client's call and the server's reply-and-wait
    run the same path -- trap, short IPC, address-space switch, the refills of the kernel's
    TLB entries that the switch flushed -- so Fig. 5's "send" and "receive" steps cost the
    same here.  (The paper's differ: 168 against 188 cycles; the getpid notebook says why the
    model does not follow.)"""
    m, arch, linux, ctx = _system()
    m.events.clear()
    linux.getpid(ctx)
    at = {e.args["step"]: e.cycle for e in m.events.find("syscall", kernel="l4linux")}
    send = at["server_work"] - at["send"]
    receive = at["leave_emulation"] - at["receive"]
    assert send == receive
    ipc = m.profile["kernel_entry_exit_cycles"] + m.profile["page_table_switch_cycles"]
    assert send > ipc                   # the short-IPC path and the refills come on top


def test_the_trampoline_costs_more_and_reaches_the_same_server_work():
    """Unmodified binaries: int 0x80 enters L4, which bounces it to the trampoline in the
    process, which calls the library -- an extra kernel entry/exit and the redirection; the
    server does the same work either way."""
    results = {}
    for tramp in (False, True):
        m, arch, linux, ctx = _system(trampoline=tramp)
        m.events.clear()
        with m.measure() as r:
            pid, _seen = linux.getpid(ctx)
        results[tramp] = (pid, r, [e.operation for e in m.events if e.kernel == "l4"])
    (p0, lib, ev0), (p1, tra, ev1) = results[False], results[True]
    assert p0 == p1 == 1
    assert tra.by_category["server"] == lib.by_category["server"]
    assert tra.by_category["ipc"] == lib.by_category["ipc"]
    assert tra.by_category["entry_exit"] >= lib.by_category["entry_exit"] + 82
    assert tra.by_category["emulation"] > lib.by_category["emulation"]
    assert tra.cycles > lib.cycles
    assert "exception_reflect" in ev1 and "exception_reflect" not in ev0


def test_a_process_page_fault_is_ipc_to_the_server_which_maps():
    """A Linux process's fault arrives at the server as L4 page-fault IPC; Linux resolves it
    and the server's reply maps the page (a map item from its own space); the access retries.
    A frame the server never had comes first from sigma0 into its window (va = pa)."""
    m, arch, linux, ctx = _system()

    def trace():
        return [(e.operation, e.args.get("thread") or e.args.get("sender") or e.args.get("src"))
                for e in m.events if e.operation in ("pagefault", "ipc", "map", "retry")]
    m.events.clear()
    arch.run_user(ctx, O.access("w", [0x5000]))
    first = trace()
    assert first[:2] == [("pagefault", "linux-1"), ("ipc", "linux-1")]
    assert first.index(("map", "sigma0")) < first.index(("map", "linux-server"))
    arch.unmap_user(ctx, 0x5000)                 # Linux forgets; the frame stays the server's
    m.events.clear()
    arch.run_user(ctx, O.access("w", [0x5000]))
    assert trace() == [("pagefault", "linux-1"), ("ipc", "linux-1"), ("map", "linux-server"),
                       ("ipc", "linux-server"), ("retry", "linux-1")]
    pa = linux.frames[(1, 0x5000)]
    assert m.translate(ctx.space, 0x5000)[0] == pa
    node = arch.k.db.lookup(ctx.task, 0x5000)
    assert node.parent.task is arch.server_task and node.parent.va == pa   # from its window


def test_unmap_flushes_every_sharer_which_faults_back_from_the_logical_table():
    """L4's flush acts on the server's page and everything derived from it: unmapping a frame
    shared by two processes takes it from both; the other one's next access faults and the
    server maps it again from its logical page table, without Linux's fault code."""
    m, arch, linux, ctx = _system()
    ctx2 = arch.create_process(2)
    pa = linux.frames[(1, 0x1000)]
    arch.map_user(ctx2, 0x7000, pa, "r")                 # a shared frame
    arch.run_user(ctx2, O.access("r", [0x7000]))
    arch.unmap_user(ctx, 0x1000)
    assert m.translate(ctx.space, 0x1000) is None and m.translate(ctx2.space, 0x7000) is None
    n = len(linux.faults)
    arch.run_user(ctx2, O.access("r", [0x7000]))
    assert m.translate(ctx2.space, 0x7000)[0] == pa
    assert len(linux.faults) == n                        # the logical table sufficed


def test_protect_takes_the_write_right_and_gives_it_back():
    """protect_user to read-only flushes the write right; back to read-write maps again."""
    m, arch, linux, ctx = _system()
    arch.protect_user(ctx, 0x1000, "r")
    arch.k.dispatch(ctx.thread)
    assert m.step("w", 0x1000).fault == "protection"
    arch.protect_user(ctx, 0x1000, "rw")
    arch.k.dispatch(ctx.thread)
    assert m.step("w", 0x1000).fault is None


@pytest.mark.parametrize("small", [False, True])
def test_small_spaces_make_a_system_call_without_cr3_loads(small):
    """With processes in small spaces (S97 §3), the switches server <-> process reload
    segments and keep the TLB; with large spaces each switch loads CR3 and flushes."""
    m, arch, linux, ctx = _system(small=small)
    assert ctx.task.small is small
    with m.measure() as r:
        linux.getpid(ctx)
        arch.run_user(ctx, O.access("r", [0x1000]))
    if small:
        assert r.stats["cr3.loads"] == 0 and r.stats["dtlb.misses"] == 0
    else:
        assert r.stats["cr3.loads"] == 2 and r.stats["dtlb.misses"] >= 1


def test_destroying_a_process_returns_its_frames():
    """destroy_process deletes the L4 task: its page tables go back to the free list."""
    m, arch, linux, ctx = _system()
    free0 = m.memory.free_frames
    c2 = arch.create_process(2)
    arch.run_user(c2, O.access("w", [0x1000, 0x400000]))
    arch.destroy_process(c2)
    linux_frames = sum(1 for (pid, _v) in linux.frames if pid == 2)
    assert m.memory.free_frames == free0 - linux_frames    # Linux's frames stay Linux's


def echo(t):
    msg = yield ipc_wait()
    while True:
        msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1))


def test_a_crashed_linux_server_fails_its_processes_and_others_run_on():
    """Fault containment: when the Linux server dies, its processes' system calls and faults
    fail with L4 IPC errors (no hang), an unrelated L4 client/server pair goes on, and a
    restarted server on the same L4 kernel serves a new process."""
    m, arch, linux, ctx = _system()
    k = arch.k
    srv = k.task_new("other-server", program=echo)
    cli = k.task_new("other-client")
    arch.crash("test")
    with pytest.raises(NotExistent):
        linux.getpid(ctx)
    with pytest.raises(NotExistent):
        arch.run_user(ctx, O.access("w", [0x9000]))
    assert m.translate(ctx.space, 0x1000) is None          # flushed with the server's task
    assert k.ipc(cli.thread, ipc_call(srv.thread, Message(1))).words == (2,)
    arch2 = L4LinuxArch(m, kernel=k)
    linux2 = FakeLinux(arch2)
    c2 = arch2.create_process(7)
    assert linux2.getpid(c2)[0] == 7
    arch2.run_user(c2, O.access("w", [0x2000]))
    assert m.translate(c2.space, 0x2000)[0] == linux2.frames[(7, 0x2000)]   # paged by it


def test_a_panic_inside_the_server_kills_only_the_server():
    """Linux panicking inside its server takes down the server task, not L4: the caller gets
    an IPC error instead of the whole machine stopping."""
    m, arch, linux, ctx = _system()

    def bad():
        from lab.errors import Panic
        raise Panic("Oops in fs")
    with pytest.raises(NotExistent):
        arch.syscall(ctx, "open", bad)
    assert not arch.server_task.alive and m.events.find("server_crash")


def test_a_linux_error_is_returned_through_the_reply():
    """Linux's errno errors are part of the reply: the process sees them after the full
    return path (the library's leave step ran)."""
    m, arch, linux, ctx = _system()

    class ENOENT(KernelError):
        code = "ENOENT"

    def body():
        raise ENOENT("no such file")
    m.events.clear()
    with pytest.raises(ENOENT):
        arch.syscall(ctx, "open", body)
    assert [e.args["step"] for e in m.events.find("syscall")][-1] == "done"
    assert arch.server.state.value == "receiving"         # back in its loop


# -- through the architecture-independent Linux ----------------------------------------------

def _program(out):
    def prog(p):
        out["pid"] = p.getpid()
        with p.measure() as r:
            p.getpid()
        out["getpid"] = r.cycles
        buf = p.malloc(64)
        p.store(buf, b"x")
        fd = p.open("/dev/null", 1)
        out["write"] = p.write(fd, buf, 1)

        def child(c):
            return 3
        pid = p.fork(child)
        out["wait"] = p.wait4(pid)
        return 0
    return prog


@pytest.mark.parametrize("system", ["l4linux", "l4linux_trampoline"])
def test_linux_runs_getpid_write_and_fork_on_l4linux(system):
    """The unchanged Linux (lab.mono) runs on L4Linux: getpid, write to /dev/null and
    fork + exit + wait give the same results as on native Linux, at a higher cost."""
    from lab.linux import boot
    from lab.mono.abi import WEXITSTATUS
    res = {}
    for s in ("linux", system):
        out = {}
        lx = boot(s)
        p = lx.spawn(_program(out))
        lx.run()
        assert p.exit_status == 0
        res[s] = out
    a, b = res["linux"], res[system]
    assert (a["pid"], a["write"], WEXITSTATUS(a["wait"][1])) == \
        (b["pid"], b["write"], WEXITSTATUS(b["wait"][1])) == (a["pid"], 1, 3)
    assert b["getpid"] > a["getpid"]


def test_trampoline_getpid_costs_more_than_library_getpid_through_linux():
    """S97 Table 2 ordering: native < L4Linux (library) < L4Linux (trampoline)."""
    from lab.linux import boot
    cyc = {}
    for s in ("linux", "l4linux", "l4linux_trampoline"):
        out = {}
        lx = boot(s)
        lx.spawn(_program(out))
        lx.run()
        cyc[s] = out["getpid"]
    assert cyc["linux"] < cyc["l4linux"] < cyc["l4linux_trampoline"]


def test_a_linux_oops_kills_the_l4linux_server_but_not_the_machine():
    """The same injected bug that brings native Linux down (one protection domain) kills only
    the L4Linux server task: the program's call fails with an L4 IPC error, L4 and its other
    tasks go on, and a fresh Linux server booted on the same L4 kernel serves a new process."""
    from lab.errors import Panic
    from lab.mono import LinuxKernel
    m = Machine("pentium-133")
    arch = L4LinuxArch(m)
    lx = LinuxKernel(arch)
    k = arch.k
    srv = k.task_new("other-server", program=echo)
    cli = k.task_new("other-client")
    seen = {}

    def victim(p):
        lx.inject_fault("fs")
        try:
            p.open("/dev/null")
        except NotExistent as e:
            seen["error"] = e.code
        return 0
    lx.spawn(victim)
    with pytest.raises(Panic):                  # Linux (the server) is down ...
        lx.run()
    assert seen["error"] == "L4_IPC_ENOT_EXISTENT"
    assert not arch.server_task.alive
    assert k.ipc(cli.thread, ipc_call(srv.thread, Message(41))).words == (42,)   # ... L4 is not
    lx2 = LinuxKernel(L4LinuxArch(m, kernel=k))
    out = {}
    p = lx2.spawn(_program(out))
    lx2.run()
    assert p.exit_status == 0 and out["write"] == 1


def test_a_linux_process_switch_is_the_server_replying_to_another_thread():
    """S97 §4: the server multiplexes its single thread; when Linux's scheduler switches to
    another process, the server's next reply goes to that process's L4 thread (and the
    address-space switch happens when that thread runs)."""
    from lab.linux import boot
    from lab.mono.examples import lat_pipe
    lx = boot("l4linux")
    p = lx.spawn(lat_pipe, 3)
    lx.run()
    assert p.result > 0
    ev = [e for e in lx.m.events if (e.kernel, e.operation) in
          (("l4linux", "switch_process"), ("l4", "ipc"))]
    checked = 0
    for i, e in enumerate(ev):
        if e.operation == "switch_process" and e.args["next"] is not None:
            replies = [x for x in ev[i + 1:] if x.operation == "ipc"       # not sigma0
                       and x.args["sender"] == "linux-server"
                       and x.args["receiver"].startswith("linux-")]
            if replies:
                assert replies[0].args["receiver"] == f"linux-{e.args['next']}"
                checked += 1
    assert checked >= 4


def test_leaving_the_emulation_library_runs_its_code_in_the_process():
    """S97 Fig. 5 step 5: after the reply the emulation library runs again in the process's
    space to leave the call.  Its code is fetched there after the switch back from the
    server (a CR3 load on the untagged Pentium, which flushes the ITLB): the step between
    'leave_emulation' and 'done' costs at least one TLB miss."""
    m, arch, linux, ctx = _system()
    m.events.clear()
    linux.getpid(ctx)
    ev = {e.args["step"]: e.cycle for e in m.events.find("syscall", kernel="l4linux")}
    assert ev["done"] - ev["leave_emulation"] >= m.profile["tlb_miss_base_cycles"]


def test_a_write_fault_on_a_page_linux_holds_read_only_goes_to_linux():
    """The server maps from its logical page table only what that table allows; a write
    fault on a page Linux holds read-only (copy-on-write) is Linux's to handle
    (do_page_fault), after which the page is writable."""
    m, arch, linux, ctx = _system()
    pa = m.alloc_page()
    linux.frames[(ctx.pid, 0x8000)] = pa
    arch.map_user(ctx, 0x8000, pa, "r")
    linux.faults.clear()
    arch.run_user(ctx, O.access("w", [0x8000]))
    assert linux.faults == [(ctx.pid, 0x8000, "w")]
    assert arch.k.mappings(ctx.task)[0x8000] == (pa, "rw")


def test_mapping_a_page_again_with_fewer_rights_takes_the_lost_rights_away():
    """L4 cannot downgrade a mapping by mapping it again (a second map only adds rights):
    when Linux maps a page with fewer rights, the server flushes the lost ones first, so
    the process's L4 mapping and TLB follow Linux's page table."""
    m, arch, linux, ctx = _system()
    pa = m.alloc_page()
    arch.map_user(ctx, 0x9000, pa, "rw")
    arch.run_user(ctx, O.access("w", [0x9000]))
    arch.map_user(ctx, 0x9000, pa, "r")
    assert arch.k.mappings(ctx.task)[0x9000] == (pa, "r")
    arch.k.dispatch(ctx.thread)
    assert m.step("w", 0x9000).fault == "protection"


def test_the_emulation_library_is_mapped_code_rx_and_data_read_only():
    """The emulation library's frames are the server's, mapped into every process shared and
    read-only: its code pages 'rx', its data pages 'r' (never writable, data not executable)."""
    m, arch, linux, ctx = _system()
    lib, ps = arch.library, m.fmt.page_size
    got = arch.k.mappings(ctx.task)
    rights = [got[ctx.emu_va + i * ps] for i in range(lib.npages)]
    assert rights == [(pa, "rx" if i < lib.text_pages else "r") for i, pa in enumerate(lib.frames)]


def test_the_server_stays_busy_while_linux_works_for_a_system_call():
    """S97 §4: the server thread is busy while a Linux context runs kernel code; the calling
    process is 'in the kernel' during its call's work, so Linux's scheduler switching back to
    it does not send the server into its receive loop."""
    m, arch, linux, ctx = _system()
    seen = {}

    def body():
        seen["in_kernel"] = ctx.in_kernel
        arch.switch_process(None, ctx)
        seen["server"] = arch.server.state.value
        return 0
    arch.syscall(ctx, "getpid", body)
    assert seen == {"in_kernel": True, "server": "ready"}
    assert not ctx.in_kernel and arch.server.state.value == "receiving"


def test_copying_to_a_page_linux_holds_read_only_faults_it_writable_first():
    """copy_user to user memory goes through Linux's page table: a destination page Linux
    holds read-only (copy-on-write) is first made writable by Linux's fault handler, as a
    store by the process itself would."""
    m, arch, linux, ctx = _system()
    pa = m.alloc_page()
    linux.frames[(ctx.pid, 0xA000)] = pa
    arch.map_user(ctx, 0xA000, pa, "r")
    linux.faults.clear()
    arch.copy_user(ctx, 0xA000, 16, True)
    assert linux.faults == [(ctx.pid, 0xA000, "w")]
    assert ctx.logical[0xA000] == (pa, "rw")


def test_the_page_after_the_emulation_library_is_the_processs_own():
    """The emulation library occupies [emu_va, emu_va + size) of a process; a fault on the
    page right after it is an ordinary fault that Linux handles (not a library page)."""
    m, arch, linux, ctx = _system()
    after = ctx.emu_va + arch.library.size
    linux.faults.clear()
    arch.run_user(ctx, O.access("w", [after]))
    assert linux.faults == [(ctx.pid, after, "w")]
    assert arch.k.mappings(ctx.task)[after][0] == linux.frames[(ctx.pid, after)]


def test_max_threads_sizes_the_new_l4_kernel():
    """Every L4Linux process is an L4 task of one thread, so the number of processes alive at
    once is bounded by the L4's TCBs: `max_threads` gives the new L4 that many (a heavy
    load's workload asks for more than the default); with a given kernel it is refused, not
    ignored."""
    m = Machine("pentium-133")
    arch = L4LinuxArch(m, max_threads=300)
    FakeLinux(arch)
    assert arch.k.max_threads == 300
    ctxs = [arch.create_process(pid) for pid in range(1, 281)]      # > the default 256
    assert len({c.task.number for c in ctxs}) == 280
    with pytest.raises(ValueError, match="max_threads"):
        L4LinuxArch(Machine("pentium-133"), kernel=arch.k, max_threads=300)
