"""fcntl (Linux 2.0 fs/fcntl.c): F_DUPFD, close-on-exec, and the file status flags -- the way
a program makes a pipe or a socket non-blocking, on every platform the same."""
import pytest

from lab.linux import boot
from lab.mono.abi import (AF_INET, SOCK_DGRAM, SOCK_STREAM, O_WRONLY, O_APPEND,
                          O_NONBLOCK, O_CREAT, O_RDWR, PIPE_BUF, F_DUPFD, F_GETFD, F_SETFD,
                          F_GETFL, F_SETFL, FD_CLOEXEC, WIFEXITED, WEXITSTATUS)
from lab.mono.errors import EAGAIN, EBADF, EINVAL, EMFILE
from lab.mono.process import NR_OPEN
from lab.mono.programs import ProgramImage, image_contents
from mono_helpers import run_program, events

PLATFORMS = ["linux", "l4linux", "l4linux_trampoline", "mklinux_in_kernel", "mklinux_user"]


def _errno(fn, *args):
    try:
        return fn(*args)
    except (EAGAIN, EBADF, EINVAL, EMFILE) as e:
        return e.code


@pytest.mark.parametrize("system", PLATFORMS)
def test_a_non_blocking_pipe_answers_eagain_instead_of_sleeping(system):
    """F_SETFL O_NONBLOCK: a read of an empty pipe and a write to a full one return EAGAIN
    at once (pipe_read / pipe_write) where a blocking descriptor would sleep -- with a
    writer still there, so it is not end of file; a write that finds some room writes
    what fits.  The process never sleeps."""
    def prog(p):
        rfd, wfd = p.pipe()
        for fd in (rfd, wfd):
            p.fcntl(fd, F_SETFL, p.fcntl(fd, F_GETFL) | O_NONBLOCK)
        buf = p.malloc(2 * PIPE_BUF)
        out = [_errno(p.read, rfd, buf, 16)]
        out.append(p.write(wfd, buf, PIPE_BUF - 100))
        out.append(p.write(wfd, buf, 2 * PIPE_BUF))     # > PIPE_BUF: not atomic, 100 fit
        out.append(_errno(p.write, wfd, buf, 1))
        out.append(p.read(rfd, buf, 2 * PIPE_BUF))
        return out
    linux, proc = run_program(prog, system=system)
    assert proc.result == ["EAGAIN", PIPE_BUF - 100, 100, "EAGAIN", PIPE_BUF]
    assert not events(linux, "sleep", pid=proc.pid)


def test_f_getfl_shows_the_open_flags_and_f_setfl_changes_only_append_and_nonblock():
    """F_GETFL is the file's f_flags (access mode included); F_SETFL replaces only the bits
    of SETFL_MASK (O_APPEND, O_NONBLOCK): the access mode and O_CREAT stay as opened.  The
    flags belong to the open file, so a dup'ed descriptor sees the change."""
    def prog(p):
        fd = p.open("/tmp/f", O_CREAT | O_RDWR, 0o644)
        first = p.fcntl(fd, F_GETFL)
        p.fcntl(fd, F_SETFL, O_WRONLY | O_APPEND | O_NONBLOCK)
        other = p.dup(fd)
        return first, p.fcntl(fd, F_GETFL), p.fcntl(other, F_GETFL)
    _linux, proc = run_program(prog)
    first, after, via_dup = proc.result
    assert first == O_CREAT | O_RDWR
    assert after == via_dup == O_CREAT | O_RDWR | O_APPEND | O_NONBLOCK


def test_o_append_set_by_fcntl_makes_every_write_go_to_the_end():
    """O_APPEND set with F_SETFL takes effect at the next write: it lands at the end of the
    file whatever the offset (do_write's O_APPEND), as if the file had been opened so."""
    def prog(p):
        fd = p.open("/tmp/log", O_CREAT | O_RDWR, 0o644)
        buf = p.malloc(8)
        p.store(buf, b"abcd")
        p.write(fd, buf, 4)
        p.lseek(fd, 0, 0)
        p.fcntl(fd, F_SETFL, O_APPEND)
        p.store(buf, b"XY")
        p.write(fd, buf, 2)
        p.lseek(fd, 0, 0)
        n = p.read(fd, buf, 8)
        return p.peek(buf, n)
    _linux, proc = run_program(prog)
    assert proc.result == b"abcdXY"


def test_f_dupfd_takes_the_lowest_free_descriptor_at_or_above_its_argument():
    """F_DUPFD (dupfd): the new descriptor is the lowest free one >= arg, shares the open
    file (and its offset) and is not close-on-exec; arg outside 0 .. NR_OPEN - 1 is
    EINVAL, and no free descriptor at or above arg is EMFILE."""
    def prog(p):
        fd = p.open("/tmp/f", O_CREAT | O_RDWR, 0o644)
        p.fcntl(fd, F_SETFD, FD_CLOEXEC)
        a = p.fcntl(fd, F_DUPFD, 10)
        b = p.fcntl(fd, F_DUPFD, 10)
        low = p.fcntl(fd, F_DUPFD, 0)
        buf = p.malloc(4)
        p.store(buf, b"wxyz")
        p.write(a, buf, 4)
        shared = p.lseek(b, 0, 1)
        return (a, b, low - fd, shared, p.fcntl(a, F_GETFD),
                _errno(p.fcntl, fd, F_DUPFD, NR_OPEN), _errno(p.fcntl, fd, F_DUPFD, -1),
                _errno(p.fcntl, fd, F_DUPFD, NR_OPEN - 1),
                _errno(p.fcntl, fd, F_DUPFD, NR_OPEN - 1))
    _linux, proc = run_program(prog)
    # low: the first free descriptor, the one after `fd` (0-2 are stdin, stdout, stderr)
    assert proc.result == (10, 11, 1, 4, 0, "EINVAL", "EINVAL", NR_OPEN - 1, "EMFILE")


def test_unknown_commands_and_closed_descriptors_are_refused():
    """fcntl of a descriptor that is not open is EBADF; a command this kernel lacks (locks,
    F_SETOWN) is EINVAL, naming the commands it has."""
    def prog(p):
        fd = p.open("/tmp/f", O_CREAT | O_RDWR, 0o644)
        return _errno(p.fcntl, 7, F_GETFL), _errno(p.fcntl, fd, 8)
    _linux, proc = run_program(prog)
    assert proc.result == ("EBADF", "EINVAL")


CHECK_BIN = "/bin/fdcheck"


def _fdcheck_main(p, argv):
    """The exec'd program: exit 1 for every fd of argv[1:] that is open, 0 otherwise."""
    return int(any(_errno(p.fcntl, int(fd), F_GETFD) != "EBADF" for fd in argv[1:]))


@pytest.mark.parametrize("system", ["linux", "l4linux", "mklinux_user"])
def test_close_on_exec_descriptors_are_closed_by_execve_and_inherited_by_fork(system):
    """FD_CLOEXEC: fork copies the close-on-exec set; execve closes exactly those
    descriptors (flush_old_files) -- the new image finds them closed, the others open; F_SETFD
    0 clears the flag again."""
    k = boot(system)
    simple = k.images["/bin/simple"]
    img = ProgramImage(CHECK_BIN, simple.text_bytes, simple.data_bytes, simple.bss_bytes,
                       simple.text_touched, simple.data_touched, simple.startup_instructions,
                       _fdcheck_main)
    k.fs.create(CHECK_BIN, image_contents(img, k.m.fmt.page_size), image=img)

    def child(c, gone, kept):
        assert c.fcntl(gone, F_GETFD) == FD_CLOEXEC and c.fcntl(kept, F_GETFD) == 0
        c.execve(CHECK_BIN, [CHECK_BIN, str(gone)])

    def child_kept(c, kept):
        c.execve(CHECK_BIN, [CHECK_BIN, str(kept)])

    def prog(p):
        gone = p.open("/tmp/a", O_CREAT | O_RDWR, 0o644)
        kept = p.open("/tmp/b", O_CREAT | O_RDWR, 0o644)
        p.fcntl(gone, F_SETFD, FD_CLOEXEC)
        p.fcntl(kept, F_SETFD, FD_CLOEXEC)
        p.fcntl(kept, F_SETFD, 0)
        _pid, s1 = p.wait4(p.fork(child, gone, kept))
        _pid, s2 = p.wait4(p.fork(child_kept, kept))
        return WIFEXITED(s1) and WEXITSTATUS(s1), WIFEXITED(s2) and WEXITSTATUS(s2)
    proc = k.spawn(prog)
    k.run()
    assert proc.result == (0, 1)        # gone: closed (exit 0); kept: open (exit 1)


def test_non_blocking_sockets_answer_eagain():
    """O_NONBLOCK on sockets: accept with no pending connection, recvfrom on an empty UDP
    socket and recv on a connected TCP socket with nothing queued return EAGAIN at once."""
    def prog(p):
        u = p.socket(AF_INET, SOCK_DGRAM)
        p.bind(u, 7100)
        s = p.socket(AF_INET, SOCK_STREAM)
        p.bind(s, 7101)
        p.listen(s, 1)
        for fd in (u, s):
            p.fcntl(fd, F_SETFL, O_NONBLOCK)
        buf = p.malloc(16)
        out = [_errno(p.recvfrom, u, buf, 16), _errno(p.accept, s)]
        c = p.socket(AF_INET, SOCK_STREAM)
        p.connect(c, 7101)
        a = p.accept(s)
        p.fcntl(a, F_SETFL, O_NONBLOCK)
        out.append(_errno(p.recv, a, buf, 16))
        return out
    linux, proc = run_program(prog)
    assert proc.result == ["EAGAIN", "EAGAIN", "EAGAIN"]
    assert not events(linux, "sleep", pid=proc.pid)
