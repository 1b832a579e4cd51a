"""MkLinux (S97 §4-5): Linux as a server on Mach -- co-located in Mach's kernel space
(mklinux_in_kernel) or as a Mach user task (mklinux_user).  First the platform alone (the
arch methods, with a minimal stand-in for Linux), then the real Linux on it."""
import pytest

from engine import Machine
from lab.errors import KernelError
from lab.kprofile import load_kernel_profile
from lab.linux.arch import LinuxArch
from lab.linux.mklinux import MkLinuxArch

VARIANTS = [True, False]


class EFAKE(KernelError):
    code = "EFAKE"


class StubLinux:
    """What MkLinuxArch needs of Linux: its image and its page-fault handler (which maps
    a fresh frame read-only on a read, writable on a write)."""

    def __init__(self):
        self.image_profile = load_kernel_profile("linux")
        self.faults = []
        self.frames = {}
        self.arch = None

    def page_fault(self, ctx, va, kind):
        self.faults.append((ctx.pid, va, kind))
        key = (ctx.pid, va)
        if key not in self.frames:
            self.frames[key] = self.arch.m.alloc_page()
        perms = "rw" if kind == "w" else "r"
        if kind == "w" and len([f for f in self.faults if f[:2] == (ctx.pid, va)]) > 1:
            self.arch.protect_user(ctx, va, perms)          # a write to a read-only page
        else:
            self.arch.map_user(ctx, va, self.frames[key], perms)
        return True


def platform(in_kernel):
    m = Machine("pentium-133", memory_bytes=16 << 20)
    arch = MkLinuxArch(m, in_kernel=in_kernel)
    linux = StubLinux()
    linux.arch = arch
    arch.attach(linux)
    return m, arch, linux


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_arch_contract_and_names(in_kernel):
    """MkLinuxArch implements the LinuxArch contract under the published system names."""
    m, arch, _ = platform(in_kernel)
    assert isinstance(arch, LinuxArch)
    assert arch.name == ("mklinux_in_kernel" if in_kernel else "mklinux_user")
    assert arch.server.kernel_task is in_kernel


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_syscall_is_a_mach_message_to_the_server(in_kernel):
    """A Linux system call is a trap that Mach turns into a message to the server; the
    server runs Linux's work and replies.  As a user task the server costs two CR3 loads and
    Mach calls for the thread's registers.  Co-located, OSF MK short-circuits the RPC
    (Condict et al. 1994): no address-space switch, no message queued, no thread switched --
    the process's thread runs the server's stub and Linux's code."""
    m, arch, _ = platform(in_kernel)
    ctx = arch.create_process(1)
    arch.syscall(ctx, "getpid", lambda: 1)               # warm-up
    m.events.clear()
    with m.measure() as r:
        got = arch.syscall(ctx, "getpid", lambda: (arch.run_path("sys_getpid"), 42)[1])
    assert got == 42
    ops = [e.operation for e in m.events if e.kernel == "mach"]
    if in_kernel:
        assert ops == ["rpc_short_circuit"] and arch.mach.running is ctx.thread
    else:
        assert ops[:2] == ["msg_queued", "msg_receive"] and "msg_send" in ops
    assert r.by_category["ipc"] > 0 and r.by_category["server"] > 0
    assert r.stats["cr3.loads"] == (0 if in_kernel else 2)
    assert r.by_category["entry_exit"] == m.profile["kernel_entry_exit_cycles"] * (1 if in_kernel else 4)


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_syscall_error_comes_back_after_the_reply(in_kernel):
    """A Linux error in the call reaches the process after the way back (the reply)."""
    m, arch, _ = platform(in_kernel)
    ctx = arch.create_process(1)

    def bad():
        raise EFAKE("no")
    with pytest.raises(EFAKE):
        arch.syscall(ctx, "bad", bad)
    last = [(e.kernel, e.operation) for e in m.events][-2:]
    way_back = "rpc_short_circuit" if in_kernel else "msg_queued"       # the reply taken
    assert last == [("mach", way_back), ("mklinux", "syscall_return")]
    assert m.events.find("syscall_return", ok=False)


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_user_page_fault_goes_to_mach_then_the_server_as_pager(in_kernel):
    """A user page fault goes to Mach, which asks the server (the pager of its processes'
    memory) with pager_data_request; Linux's fault handler supplies the frame (map_user),
    which the process then reaches; a write to a page supplied read-only comes back to the
    server as pager_data_unlock and Linux grants it (protect_user)."""
    m, arch, linux = platform(in_kernel)
    ctx = arch.create_process(1)
    va = 0x08048000
    arch.run_user(ctx, arch.mach._check_user([va]) << 8)          # one read access
    assert linux.faults == [(1, va, "r")]
    pa = linux.frames[(1, va)]
    assert m.translate(ctx.space, va)[0] == pa
    assert m.events.find("pager_data_request") and m.events.find("pager_data_provided_physical")
    from engine import ops as O
    arch.run_user(ctx, O.access("w", [va + 8]))
    assert linux.faults[-1] == (1, va, "w")
    assert m.events.find("pager_data_unlock")
    assert m.translate(ctx.space, va)[1] & 2                       # writable now
    arch.unmap_user(ctx, va)
    assert m.translate(ctx.space, va) is None


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_process_switch_takes_several_mach_operations(in_kernel):
    """A Linux process switch in MkLinux is a hand-off between server threads: a Mach
    thread switch, the server's lock, and (user server) a trap for the cthreads call."""
    m, arch, _ = platform(in_kernel)
    a, b = arch.create_process(1), arch.create_process(2)
    with m.measure() as r:
        arch.switch_process(a, b)
    assert arch.mach.running is b.server_thread
    assert r.by_category["kernel"] > 0 and r.by_category["server"] > 0
    # the user server's cthreads condition signal/wait is a trap; co-located, a call
    assert r.by_category["entry_exit"] == \
        (0 if in_kernel else m.profile["kernel_entry_exit_cycles"])
    assert m.events.find("switch_process", prev=1, next=2)


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_process_creation_and_destruction_leave_no_frames(in_kernel):
    """create_process builds a Mach task, a server thread and the memory object of the
    process; destroy_process tears them down: every frame comes back."""
    m, arch, linux = platform(in_kernel)
    from engine import ops as O
    warm = arch.create_process(9)
    arch.syscall(warm, "getpid", lambda: 0)
    free0 = m.memory.free_frames
    ctx = arch.create_process(1)
    arch.run_user(ctx, O.access("r", [0x08048000]))
    arch.syscall(ctx, "getpid", lambda: 0)
    arch.copy_user(ctx, 0x08048000, 100, False)
    arch.destroy_process(ctx)
    m.free_page(linux.frames.pop((1, 0x08048000)))                # Linux frees its frame
    assert not ctx.task.alive and m.memory.free_frames == free0


# -------------------------------------------------------------- the real Linux on MkLinux
def _program(p, out):
    out["pid"] = p.getpid()
    fd = p.open("/dev/null", 1)
    buf = p.malloc(16)
    p.store(buf, b"hello")
    out["written"] = p.write(fd, buf, 5)
    child = p.fork(_child, 7)
    out["status"] = p.wait4(child)
    return 0


def _child(c, code):
    c.getpid()
    c.exit(code)


@pytest.mark.parametrize("system", ["mklinux_in_kernel", "mklinux_user"])
def test_linux_runs_on_mklinux(system):
    """The unchanged Linux runs on MkLinux: getpid, a write to /dev/null, and fork + exit
    (the child's task created and destroyed through Mach) all work; the user-task server
    costs more per call than the co-located one."""
    from lab.linux import boot
    linux = boot(system, memory_bytes=32 << 20)
    out = {}
    p = linux.spawn(_program, out)
    linux.run()
    assert out["pid"] == p.pid and out["written"] == 5
    from lab.mono.abi import WEXITSTATUS
    wpid, status = out["status"]
    assert wpid != p.pid and WEXITSTATUS(status) == 7
    assert p.exit_status == 0
    kinds = [e.operation for e in linux.m.events if e.kernel == "mklinux"]
    assert kinds.count("create_process") >= 2 and kinds.count("destroy_process") >= 1


def _mapper(p, out):
    from lab.mono.abi import PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS
    a = p.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.store(a + 4096, b"mapped")
    out["read"] = p.load(a + 4096, 6)
    p.munmap(a, 2 * 4096)
    out["after"] = "survived"
    p.load(a + 4096, 1)                       # SIGSEGV
    out["after"] = "read an unmapped page"


@pytest.mark.parametrize("system", ["mklinux_in_kernel", "mklinux_user"])
def test_mmap_and_munmap_are_mach_vm_calls(system):
    """On MkLinux mmap and munmap become Mach VM calls (vm_map of the process's memory
    object, vm_deallocate); the data comes through the server as pager; an access after
    munmap finds no Mach entry, goes to the server and ends in SIGSEGV."""
    from lab.linux import boot
    from lab.mono.abi import WTERMSIG, SIGSEGV
    linux = boot(system, memory_bytes=32 << 20)
    out = {}
    p = linux.spawn(_mapper, out)
    linux.run()
    ev = linux.m.events
    assert out == {"read": b"mapped", "after": "survived"}
    assert WTERMSIG(p.exit_status) == SIGSEGV
    tasks = [e for e in ev.find("vm_allocate_with_pager") if e.args["size"] == 2 * 4096]
    assert tasks and ev.find("vm_deallocate", size=2 * 4096)


def test_exec_text_runs_on_mklinux_because_i386_fetches_fault_as_reads():
    """i386 has no execute bit: Mach grants VM_PROT_EXECUTE with VM_PROT_READ, so a process
    exec'd by the Linux server on Mach can run its text (fork + execve + wait)."""
    from lab.linux import boot
    from lab.mono.abi import WEXITSTATUS, WIFEXITED

    for system in ("mklinux_in_kernel", "mklinux_user"):
        k = boot(system)

        def parent(p):
            pid = p.fork(lambda c: c.execve("/bin/simple", ["/bin/simple"]))
            _pid, status = p.wait4(pid)
            return status
        proc = k.spawn(parent)
        k.run()
        # the raw status: a child killed by SIGSEGV (status 11) has WEXITSTATUS 0 too
        assert WIFEXITED(proc.result) and WEXITSTATUS(proc.result) == 0, (system, proc.result)
        assert not k.m.events.find("segfault", kernel="linux"), system
        assert [e.args.get("path") for e in k.m.events.find("exec", kernel="linux")] == ["/bin/simple"]


@pytest.mark.parametrize("in_kernel", VARIANTS)
def test_process_destruction_destroys_every_port_of_the_process(in_kernel):
    """destroy_process destroys the ports create_process made for the process -- its memory
    object, its system-call port and the reply port its thread receives replies on (and
    the task's own): no port of a dead process stays alive in Mach."""
    m, arch, linux = platform(in_kernel)
    k = arch.mach
    warm = arch.create_process(9)
    arch.syscall(warm, "getpid", lambda: 0)
    alive0 = {p.id for p in k.ports.values() if p.alive}
    ctx = arch.create_process(1)
    arch.syscall(ctx, "getpid", lambda: 0)
    arch.destroy_process(ctx)
    assert not ctx.reply_port.alive
    assert {p.id for p in k.ports.values() if p.alive} == alive0
