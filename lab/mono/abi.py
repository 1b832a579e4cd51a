"""Linux's user ABI as the programs of this lab see it: flags, signals, the address-space layout.

Values follow Linux 2.0 on i386 where a value is visible to programs (O_*, PROT_*, MAP_*, AF_*,
SOCK_*, SEEK_*, signal numbers, the wait status encoding); the layout is that of an ELF
process of the time: text at 0x08048000, mmap area from TASK_UNMAPPED_BASE (TASK_SIZE / 3),
stack below TASK_SIZE (3 GB, where the kernel begins).
"""

# -- open(2) --
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_ACCMODE = 3
O_CREAT, O_TRUNC, O_APPEND, O_NONBLOCK = 0o100, 0o1000, 0o2000, 0o4000
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2

# -- fcntl(2) --
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL = 0, 1, 2, 3, 4
FD_CLOEXEC = 1

# -- mmap(2) --
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20

# -- sockets --
AF_INET = 2
SOCK_STREAM, SOCK_DGRAM = 1, 2

# -- signals (the ones this kernel delivers) --
SIGKILL, SIGSEGV, SIGPIPE, SIGCHLD = 9, 11, 13, 17

# -- wait4 status words (as <sys/wait.h> decodes them) --
def exit_status(code):
    """The status word of a process that called exit(code)."""
    return (code & 0xFF) << 8


def signal_status(sig):
    """The status word of a process killed by signal `sig`."""
    return sig & 0x7F


def WIFEXITED(status):
    return status & 0x7F == 0


def WEXITSTATUS(status):
    return (status >> 8) & 0xFF


def WTERMSIG(status):
    return status & 0x7F


# -- address-space layout (i386 ELF, Linux 2.0) --
PAGE_SIZE = 4096            # the i386 page; the kernel asks the machine for its own page size
TEXT_BASE = 0x08048000      # ELF text start
TASK_UNMAPPED_BASE = 0x40000000   # first address mmap hands out (TASK_SIZE / 3)
TASK_SIZE = 0xC0000000      # user space ends where the kernel begins
STACK_SIZE = 8 << 20        # stack rlimit; the stack area is reserved, pages come on demand
ARG_PAGES = 1               # top of the stack: argument strings and the C library's scratch

PIPE_BUF = 4096             # one page per pipe (Linux 2.0 include/linux/limits.h)
