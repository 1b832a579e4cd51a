"""Fault containment, monolithic side (lecture: "with a macro-kernel we lose structural
protection benefits and fault-containment")."""
import pytest

from lab.errors import Panic
from lab.linux import boot
from lab.mono.errors import Deadlock
from mono_helpers import events


def _reader_of_pipe(p):
    r, w = p.pipe()
    buf = p.malloc(8)
    p.read(r, buf, 8)                           # sleeps forever: nobody writes


def _uses_the_fs(p):
    p.getpid()
    p.open("/bin/sh")                           # runs the buggy file-system code
    return "survived"


def test_a_bug_in_the_file_system_takes_the_whole_system_down():
    """A fault in one component of a monolithic kernel runs in supervisor mode with access to
    everything: the kernel panics, every process is gone (not only the one that called the
    file system), and every later system call fails with Panic."""
    linux = boot("linux")
    bystander = linux.spawn(_reader_of_pipe)
    victim = linux.spawn(_uses_the_fs)
    linux.inject_fault("fs")
    with pytest.raises(Panic):
        linux.run()
    assert victim.result is None and not bystander.thread.is_alive()
    ops = linux.m.events.ops("linux")
    assert ops[ops.index("fault_injected"):][-2:] == ["oops", "panic"]
    assert events(linux, "oops")[0].args["pid"] == victim.pid
    for call in (("getpid",), ("write", 1, 0, 1), ("fork", lambda c: 0, ())):
        with pytest.raises(Panic):
            linux.syscall(bystander, *call)
    with pytest.raises(Panic):
        linux.spawn(_uses_the_fs)
    with pytest.raises(Panic):
        linux.run()


def test_without_the_bug_the_same_processes_run_and_the_blocked_one_is_a_deadlock():
    """The control experiment: the file-system user finishes; the pipe reader that nobody
    will ever write to is reported as a deadlock instead of hanging the simulation."""
    linux = boot("linux")
    bystander = linux.spawn(_reader_of_pipe)
    victim = linux.spawn(_uses_the_fs)
    with pytest.raises(Deadlock, match="pipe_read"):
        linux.run()
    assert victim.result == "survived" and linux.panicked is None
    assert not bystander.thread.is_alive()
