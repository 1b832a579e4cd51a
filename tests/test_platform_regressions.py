"""Rules the five Linux platforms must all keep (found by the experiments)."""
import pytest

from lab.linux import SYSTEMS, boot
from lab.mono.abi import WEXITSTATUS, WIFEXITED


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_heap_shrunk_and_grown_again_is_usable(system):
    """brk growth tells the platform, as mmap does: a heap regrown after a shrink is backed."""
    k = boot(system)

    def prog(p):
        b = p.brk(0)
        p.brk(b + 4 * 4096)
        p.touch(b, 4 * 4096, write=True)
        p.brk(b)
        p.brk(b + 2 * 4096)
        p.touch(b, 2 * 4096, write=True)
        return 7
    proc = k.spawn(prog)
    k.run()
    assert proc.result == 7


@pytest.mark.parametrize("system", ["mklinux_in_kernel", "mklinux_user"])
def test_exec_runs_text_on_a_format_with_an_execute_bit(system):
    """On x86-64 (NX) the Linux server maps process memory with VM_PROT_ALL and enforces
    Linux's own protections itself, so exec'd text can be fetched."""
    k = boot(system, cpu_profile="x86-64-modern")

    def parent(p):
        _pid, status = p.wait4(p.fork(lambda c: c.execve("/bin/hello", ["/bin/hello"])))
        return status
    proc = k.spawn(parent)
    k.run()
    # the raw status: a child killed by SIGSEGV (status 11) has WEXITSTATUS 0 too
    assert WIFEXITED(proc.result) and WEXITSTATUS(proc.result) == 0, proc.result
    assert not k.m.events.find("segfault", kernel="linux")
