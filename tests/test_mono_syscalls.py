"""System calls of the monolithic kernel on native Linux: the trap, dispatch, errors."""
import pytest

from lab.mono.abi import O_RDONLY, O_WRONLY, TASK_UNMAPPED_BASE
from lab.mono.errors import EBADF, EFAULT, ENOSYS, ENOENT
from mono_helpers import run_program, events


def test_warm_native_getpid_is_trap_plus_dispatch_plus_work():
    """S97 §5: native getpid = 82 cycles of kernel entry/exit + Linux's work (the trap frame,
    dispatch and sys_getpid).  With the kernel in global 4 MB pages nothing else is paid once warm: no TLB
    refill, no cache miss."""
    def prog(p):
        p.getpid()                              # warm-up
        with p.measure() as r:
            pid = p.getpid()
        return pid, r.cycles, r.by_category
    linux, proc = run_program(prog)
    pid, cycles, cats = proc.result
    prof = linux.image_profile
    work = sum(prof.path(n)[0] for n in ("syscall_entry", "syscall_dispatch", "sys_getpid")) \
        * linux.m.cpi
    assert pid == proc.pid
    assert cats["entry_exit"] == linux.m.profile["kernel_entry_exit_cycles"]
    assert cats["kernel"] == work
    assert cycles == cats["entry_exit"] + work
    assert cats["tlb_walk"] == cats["cache_miss"] == 0
    calls = [e.args["name"] for e in events(linux, "syscall", pid=proc.pid)]
    assert calls == ["getpid", "getpid", "exit"]


@pytest.mark.parametrize("system,expected", [
    ("linux", ["syscall_entry", "syscall_dispatch", "sys_getpid"]),
    ("l4linux", ["sys_getpid"]),
    ("mklinux_user", ["sys_getpid"]),
])
def test_entry_s_dispatch_runs_only_on_native_linux(system, expected):
    """entry.S (the trap frame, the sys_call_table dispatch, ret_from_sys_call) is i386 code:
    the L4Linux and MkLinux servers decode the message and reply with their own paths, so of
    Linux's paths a getpid there runs only sys_getpid."""
    ran = []

    def prog(p):
        arch = p.kernel.arch
        real = arch.run_path
        arch.run_path = lambda path: (ran.append(path), real(path))[1]
        try:
            p.getpid()
        finally:
            del arch.run_path
        return 0
    run_program(prog, system=system)
    assert ran == expected


def test_write_to_dev_null_returns_the_count_and_costs_more_than_getpid():
    """lmbench's write /dev/null: sys_write checks the buffer (verify_area) and calls
    write_null, which drops the bytes: more work than getpid, no copy."""
    def prog(p):
        fd = p.open("/dev/null", O_WRONLY)
        buf = p.malloc(64)
        p.store(buf, b"x" * 64)
        p.write(fd, buf, 64), p.getpid()
        with p.measure() as w:
            n = p.write(fd, buf, 64)
        with p.measure() as g:
            p.getpid()
        return n, w.cycles, g.cycles, w.by_category["copy"]
    _linux, proc = run_program(prog)
    n, write_cycles, getpid_cycles, copied = proc.result
    assert n == 64 and write_cycles > getpid_cycles and copied == 0


def test_bad_file_descriptors_give_ebadf():
    """A descriptor that is not open, or not open for that access, is EBADF."""
    def prog(p):
        buf = p.malloc(16)
        out = []
        for call in (lambda: p.read(99, buf, 1), lambda: p.write(-1, buf, 1),
                     lambda: p.close(42), lambda: p.write(p.open("/bin/sh", O_RDONLY), buf, 1)):
            try:
                call()
                out.append(None)
            except EBADF as e:
                out.append(e.code)
        return out
    _linux, proc = run_program(prog)
    assert proc.result == ["EBADF"] * 4


def test_a_buffer_outside_the_mappings_gives_efault():
    """verify_area: a buffer that no VMA covers is EFAULT, and the process lives on."""
    def prog(p):
        fd = p.open("/bin/sh")
        try:
            p.read(fd, TASK_UNMAPPED_BASE + 0x100000, 16)
        except EFAULT:
            return "EFAULT"
    _linux, proc = run_program(prog)
    assert proc.result == "EFAULT" and proc.exit_status == 0


def test_unknown_system_call_is_enosys_and_missing_file_enoent():
    """A call the table lacks is ENOSYS (after the trap); a missing path is ENOENT."""
    def prog(p):
        out = []
        for call in (lambda: p._sys("reboot"), lambda: p.open("/no/such/file")):
            try:
                call()
            except (ENOSYS, ENOENT) as e:
                out.append(e.code)
        return out
    _linux, proc = run_program(prog)
    assert proc.result == ["ENOSYS", "ENOENT"]


def test_native_linux_runs_on_the_modern_profile_too():
    """The same kernel on x86-64 (2 MB global pages): getpid is still trap + paths."""
    def prog(p):
        p.getpid()
        with p.measure() as r:
            p.getpid()
        return r.by_category
    linux, proc = run_program(prog, cpu_profile="x86-64-modern")
    assert proc.result["entry_exit"] == linux.m.profile["kernel_entry_exit_cycles"]
    assert proc.result["tlb_walk"] == 0
