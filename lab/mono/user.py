"""The user side: what a program sees of its process (the C library's system-call stubs) and
the user-level work it does in its own address space.

A program is a Python function `program(p, *args)` where `p` is a `Libc`.  Its system calls
are methods (`p.getpid()`, `p.read(fd, buf, n)`, `p.fork(child)`...), raising the errno
classes of `lab.mono.errors` on failure; its own work runs through the platform's `run_user`:
instruction fetches and data references in its space, so TLB and cache misses and page faults
(demand zero, copy-on-write, file pages) emerge from what it touches.  Buffers are user
virtual addresses (`p.malloc`); strings given to system calls are first stored into the
argument page at the top of the stack, as a C program's strings live in its memory.

fork runs a *function* in the child: `pid = p.fork(child, *args)` is C's
`if ((pid = fork()) == 0) { child(...); exit(0); }` (Python cannot copy a running frame).
execve does not return: the new image's `main(p, argv)` runs in its place.  Returning from a
program is exit(status) with status = the returned int (0 for anything else; the value is kept
in `Process.result` for experiments).
"""
import numpy as np

from engine import ops as O

from .abi import O_RDONLY, PROT_READ, MAP_PRIVATE, SEEK_SET, AF_INET, SOCK_STREAM
from .errors import ENOMEM, EINVAL, SegmentationFault
from .process import ExecImage

LINE = 32


class Libc:
    def __init__(self, kernel, proc):
        self.k = kernel
        self.proc = proc
        self.m = kernel.m
        self.page = kernel.m.fmt.page_size

    # ------------------------------------------------------------------ system calls
    def _sys(self, name, *args):
        if self.proc.segv:
            raise SegmentationFault(f"pid {self.proc.pid} was killed by SIGSEGV")
        return self.k.syscall(self.proc, name, *args)

    @property
    def pid(self):
        """The pid as the program knows it (no system call; use getpid() for the call)."""
        return self.proc.pid

    def getpid(self):
        return self._sys("getpid")

    def getppid(self):
        return self._sys("getppid")

    def open(self, path, flags=O_RDONLY, mode=0o644):
        return self._sys("open", self.string(path), flags, mode)

    def close(self, fd):
        return self._sys("close", fd)

    def read(self, fd, buf, n):
        return self._sys("read", fd, buf, n)

    def write(self, fd, buf, n):
        return self._sys("write", fd, buf, n)

    def lseek(self, fd, offset, whence=SEEK_SET):
        return self._sys("lseek", fd, offset, whence)

    def stat(self, path):
        return self._sys("stat", self.string(path), self._scratch(64))

    def fstat(self, fd):
        return self._sys("fstat", fd, self._scratch(64))

    def dup(self, fd):
        return self._sys("dup", fd)

    def pipe(self):
        """(read fd, write fd)"""
        return self._sys("pipe", self._scratch(8))

    def fork(self, child, *args):
        """Create a child running `child(p, *args)`; returns its pid."""
        return self._sys("fork", child, args)

    def execve(self, path, argv=()):
        argv = [str(a) for a in (argv or (path,))]
        self._reset_args()
        pva = self.string(path, keep=True)
        avas = [self.string(a, keep=True) for a in argv]
        r = self._sys("execve", pva, avas)
        raise r if isinstance(r, ExecImage) else AssertionError(f"execve returned {r!r}")

    def exit(self, status=0):
        self._sys("exit", status)

    def wait4(self, pid=-1, options=0):
        """(pid, status word); see abi.WEXITSTATUS/WTERMSIG."""
        return self._sys("wait4", pid, self._scratch(4), options)

    def mmap(self, addr, length, prot=PROT_READ, flags=MAP_PRIVATE, fd=-1, offset=0):
        return self._sys("mmap", addr, length, prot, flags, fd, offset)

    def munmap(self, addr, length):
        return self._sys("munmap", addr, length)

    def brk(self, addr):
        return self._sys("brk", addr)

    def sched_yield(self):
        return self._sys("sched_yield")

    def socket(self, domain=AF_INET, stype=SOCK_STREAM):
        return self._sys("socket", domain, stype)

    def bind(self, fd, port):
        return self._sys("bind", fd, port)

    def listen(self, fd, backlog=5):
        return self._sys("listen", fd, backlog)

    def accept(self, fd):
        return self._sys("accept", fd)

    def connect(self, fd, port):
        return self._sys("connect", fd, port)

    def sendto(self, fd, buf, n, port):
        return self._sys("sendto", fd, buf, n, port)

    def send(self, fd, buf, n):
        return self._sys("sendto", fd, buf, n, None)

    def recvfrom(self, fd, buf, n):
        """(bytes received, source port)"""
        return self._sys("recvfrom", fd, buf, n)

    def recv(self, fd, buf, n):
        return self._sys("recvfrom", fd, buf, n)[0]

    # ------------------------------------------------------------------ the C library's memory
    def malloc(self, n, align=16):
        """Heap memory from brk (pages arrive on first touch, zero-filled)."""
        if n <= 0:
            raise EINVAL(f"malloc: size {n} must be > 0")
        u, mm = self.proc.user, self.proc.mm
        top = u.get("heap", mm.brk)
        va = -(-top // align) * align
        end = va + n
        if end > mm.brk:
            want = -(-end // self.page) * self.page
            if self.brk(want) < end:
                raise ENOMEM(f"malloc: brk cannot grow to 0x{want:x}")
        u["heap"] = end
        return va

    def _argpage(self):
        return self.k.task_size - self.page

    def _reset_args(self):
        self.proc.user["args"] = 0

    def _scratch(self, n):
        """n bytes in the argument page for results the kernel copies out (status words)."""
        return self._argpage() + self.page - 64 * 2 - ((n + 15) // 16) * 16

    def string(self, s, keep=False):
        """Store a NUL-terminated string in the argument page; returns its address."""
        data = s.encode() + b"\0" if isinstance(s, str) else bytes(s) + b"\0"
        u = self.proc.user
        off = u.get("args", 0) if keep else 0
        if off + len(data) > self.page - 256:
            raise EINVAL(f"string: {len(data)} bytes do not fit in the argument page")
        va = self._argpage() + off
        u["args"] = off + len(data) if keep else 0
        self.store(va, data)
        return va

    # ------------------------------------------------------------------ user work
    def run(self, ops):
        """Run an engine op batch in this process (its work, its faults)."""
        self.k.arch.run_user(self.proc.ctx, ops)

    def compute(self, instructions, code_bytes=0, code_va=None):
        """`instructions` of user code, fetching `code_bytes` of text (from the text start)."""
        parts = [O.charge("user", instructions * self.m.cpi)] if instructions else []
        if code_bytes:
            va = self.k.layout(self.proc)["text"][0] if code_va is None else code_va
            parts.append(O.access("x", O.lines(va, code_bytes, LINE)))
        if parts:
            self.run(O.concat(*parts))

    def touch(self, va, nbytes, write=False, stride=LINE):
        """One reference per `stride` bytes of [va, va+nbytes)."""
        if nbytes > 0:
            self.run(O.access("w" if write else "r",
                              np.arange(va - va % stride, va + nbytes, stride, dtype=np.int64)))

    def store(self, va, data):
        """Write bytes into the process's memory (the stores run through the MMU)."""
        data = bytes(data)
        if data:
            self.touch(va, len(data), write=True)
            self.k.mm.write_user(self.proc, va, data)

    def load(self, va, n):
        """Read n bytes of the process's memory (the loads run through the MMU)."""
        if n <= 0:
            return b""
        self.touch(va, n)
        return self.k.mm.read_user(self.proc, va, n)

    def peek(self, va, n):
        """The experimenter's view of user memory: free, not a program action."""
        return self.k.mm.read_user(self.proc, va, n)

    # ------------------------------------------------------------------ measuring
    def clock(self):
        """The simulated cycle counter (rdtsc): free."""
        return self.m.cycles

    def measure(self):
        """`with p.measure() as r:` -> r.cycles, r.by_category, r.us (differences)."""
        return self.m.measure()

    @property
    def kernel(self):
        return self.k

