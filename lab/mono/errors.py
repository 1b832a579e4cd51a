"""Linux's error returns, named by their errno (include/asm-i386/errno.h of Linux 2.0).

A system call that fails raises one of these in the caller (the C library would return -1 and
set `errno`).  Each is a `lab.errors.KernelError`, so views and the CLI catch one type.
`SegmentationFault` and `OutOfMemoryKill` are not errnos but the signals that kill a process
(`FatalSignal`): SIGSEGV for a bad user access, SIGKILL when a page fault finds no memory;
`Deadlock` is raised by the scheduler when processes wait and nobody can run.
"""
from lab.errors import KernelError, Panic  # noqa: F401  (Panic re-exported: the monolithic crash)


class LinuxError(KernelError):
    """Base of the errno errors; `errno` is the number Linux 2.0/i386 returns negated."""
    code = "LINUX_ERROR"
    errno = 0


def _errno(name, number, doc):
    cls = type(name, (LinuxError,), {"code": name, "errno": number, "__doc__": doc})
    return cls


EPERM = _errno("EPERM", 1, "Operation not permitted.")
ENOENT = _errno("ENOENT", 2, "No such file or directory.")
ESRCH = _errno("ESRCH", 3, "No such process.")
EINTR = _errno("EINTR", 4, "Interrupted system call.")
EIO = _errno("EIO", 5, "I/O error.")
E2BIG = _errno("E2BIG", 7, "Argument list too long.")
ENOEXEC = _errno("ENOEXEC", 8, "Exec format error.")
EBADF = _errno("EBADF", 9, "Bad file descriptor.")
ECHILD = _errno("ECHILD", 10, "No child processes.")
EAGAIN = _errno("EAGAIN", 11, "Try again (the operation would block).")
ENOMEM = _errno("ENOMEM", 12, "Out of memory.")
EACCES = _errno("EACCES", 13, "Permission denied.")
EFAULT = _errno("EFAULT", 14, "Bad address.")
EEXIST = _errno("EEXIST", 17, "File exists.")
ENODEV = _errno("ENODEV", 19, "No such device.")
ENOTDIR = _errno("ENOTDIR", 20, "Not a directory.")
EISDIR = _errno("EISDIR", 21, "Is a directory.")
EINVAL = _errno("EINVAL", 22, "Invalid argument.")
EMFILE = _errno("EMFILE", 24, "Too many open files.")
ENOSPC = _errno("ENOSPC", 28, "No space left on device.")
ESPIPE = _errno("ESPIPE", 29, "Illegal seek.")
EPIPE = _errno("EPIPE", 32, "Broken pipe.")
EDEADLK = _errno("EDEADLK", 35, "Resource deadlock would occur.")
ENAMETOOLONG = _errno("ENAMETOOLONG", 36, "File name too long.")
ENOSYS = _errno("ENOSYS", 38, "Function not implemented.")
ENOTSOCK = _errno("ENOTSOCK", 88, "Socket operation on non-socket.")
EDESTADDRREQ = _errno("EDESTADDRREQ", 89, "Destination address required.")
EMSGSIZE = _errno("EMSGSIZE", 90, "Message too long.")
EPROTONOSUPPORT = _errno("EPROTONOSUPPORT", 93, "Protocol not supported.")
EOPNOTSUPP = _errno("EOPNOTSUPP", 95, "Operation not supported on transport endpoint.")
EAFNOSUPPORT = _errno("EAFNOSUPPORT", 97, "Address family not supported by protocol.")
EADDRINUSE = _errno("EADDRINUSE", 98, "Address already in use.")
EISCONN = _errno("EISCONN", 106, "Transport endpoint is already connected.")
ENOTCONN = _errno("ENOTCONN", 107, "Transport endpoint is not connected.")
ECONNREFUSED = _errno("ECONNREFUSED", 111, "Connection refused.")


class Deadlock(EDEADLK):
    """Every live process sleeps and none can wake another: the simulation would hang."""


class FatalSignal(KernelError):
    """A signal the kernel sends that kills the process (this lab's programs install no
    handlers): the parent's wait4 sees termination by `signal`."""
    code = "FATAL_SIGNAL"
    signal = 0


class SegmentationFault(FatalSignal):
    """SIGSEGV: a user access outside the process's mappings (or against their protection).
    Linux kills the process with the signal; the parent's wait4 sees termination by signal 11."""
    code = "SIGSEGV"
    signal = 11


class OutOfMemoryKill(FatalSignal):
    """SIGKILL from the page-fault path: the fault needs a frame or a cache buffer and none
    can be had.  Linux 2.0 (mm/memory.c, oom()) prints "Out of memory" and kills the
    faulting process; a memory access has no error return to give."""
    code = "SIGKILL"
    signal = 9


class BusError(FatalSignal):
    """SIGBUS: an access to a page of a MAP_SHARED file mapping that lies wholly beyond the
    end of the file (Linux 2.0 filemap_nopage finds no page; do_no_page sends SIGBUS):
    wait4 sees termination by 7."""
    code = "SIGBUS"
    signal = 7


class BrokenPipe(FatalSignal):
    """SIGPIPE: a write to a pipe no process reads.  Linux 2.0's pipe_write sends it (and
    returns EPIPE); its default action kills the process before it sees the EPIPE: wait4
    sees termination by 13.  (A TCP send after the peer closed is EPIPE without the signal:
    2.0's do_tcp_sendmsg sends SIGPIPE only under SO_KEEPALIVE.)"""
    code = "SIGPIPE"
    signal = 13


ERRNO = {c.code: c for c in LinuxError.__subclasses__()}
FATAL_SIGNALS = {c.signal: c for c in FatalSignal.__subclasses__()}     # signal -> class
