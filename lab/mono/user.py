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

Bad arguments get the errno a C program would see (EBADF, EFAULT, EINVAL, ...), naming the
value: the system-call stubs through `syscalls.check_args`, the library's own helpers (malloc,
string, store, load, touch, compute, run) by their own checks, before anything is touched.
"""
from numbers import Integral, Real

import numpy as np

from engine import ops as O

from .abi import O_RDONLY, PROT_READ, MAP_PRIVATE, SEEK_SET, AF_INET, SOCK_STREAM
from .errors import EFAULT, ENOMEM, EINVAL, FATAL_SIGNALS, SegmentationFault
from .process import ExecImage
from .syscalls import check_args

LINE = 32
TOUCH_BATCH = 1 << 20          # references per engine call in touch (8 MB of op words)


def _int(x, what, err=EINVAL, lo=None):
    """`x` as an int (>= lo), else `err` naming it."""
    if type(x) is int or (isinstance(x, Integral) and not isinstance(x, bool)):
        if lo is None or x >= lo:
            return int(x)
        raise err(f"{what} {x!r} must be >= {lo}")
    raise err(f"{what} {x!r} is not an int")


def _bytes(data, what):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise EINVAL(f"{what}: data {data!r} is not bytes (bytes, bytearray or memoryview)")


class Libc:
    def __init__(self, kernel, proc):
        self.k = kernel
        self.proc = proc
        self.m = kernel.m
        self.page = kernel.m.fmt.page_size

    # ------------------------------------------------------------------ system calls
    def _sys(self, name, *args):
        sig = self.proc.fatal_signal
        if sig:
            raise FATAL_SIGNALS[sig](f"pid {self.proc.pid} was killed by signal {sig}")
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
        if type(flags) is not int or type(mode) is not int:     # before the path is stored
            check_args("open", (0, flags, mode))
        return self._sys("open", self.string(path, what="open: path"), flags, mode)

    def close(self, fd):
        return self._sys("close", fd)

    def read(self, fd, buf, n):
        return self._sys("read", fd, buf, n)

    def write(self, fd, buf, n):
        return self._sys("write", fd, buf, n)

    def lseek(self, fd, offset, whence=SEEK_SET):
        return self._sys("lseek", fd, offset, whence)

    def stat(self, path):
        return self._sys("stat", self.string(path, what="stat: path"), self._scratch(64))

    def fstat(self, fd):
        return self._sys("fstat", fd, self._scratch(64))

    def dup(self, fd):
        return self._sys("dup", fd)

    def fcntl(self, fd, cmd, arg=0):
        return self._sys("fcntl", fd, cmd, arg)

    def sync(self):
        return self._sys("sync")

    def fsync(self, fd):
        return self._sys("fsync", fd)

    def pipe(self):
        """(read fd, write fd)"""
        return self._sys("pipe", self._scratch(8))

    def fork(self, child, *args):
        """Create a child running `child(p, *args)`; returns its pid."""
        return self._sys("fork", child, args)

    def execve(self, path, argv=None):
        """argv None: [path], as a shell would pass; an empty argv is argc 0, as in C."""
        if not isinstance(path, (str, bytes, bytearray, memoryview)):
            raise EFAULT(f"execve: path {path!r} is not a string (str or bytes)")
        if argv is not None and not isinstance(argv, (list, tuple)):
            raise EFAULT(f"execve: argv {argv!r} is not a list of arguments")
        argv = [str(a) for a in ((path,) if argv is None else argv)]
        self._reset_args()
        pva = self.string(path, keep=True, what="execve: path")
        avas = [self.string(a, keep=True, what="execve: argv") for a in argv]
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
        n = _int(n, "malloc: size", lo=1)
        align = _int(align, "malloc: align", lo=1)
        if align & (align - 1):
            raise EINVAL(f"malloc: align {align} must be a power of two")
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

    def string(self, s, keep=False, what="string: argument"):
        """Store a NUL-terminated string in the argument page; returns its address."""
        if isinstance(s, str):
            data = s.encode() + b"\0"
        elif isinstance(s, (bytes, bytearray, memoryview)):
            data = bytes(s) + b"\0"
        else:                                   # open(NULL, ...): a pointer to no string
            raise EFAULT(f"{what} {s!r} is not a string (str or bytes)")
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
        if not (type(ops) is np.ndarray and ops.ndim == 1 and ops.dtype.kind in "iu"):
            if not (isinstance(ops, (list, tuple)) and all(
                    isinstance(w, Integral) and not isinstance(w, bool) for w in ops)):
                raise EINVAL(f"run: ops {ops!r} is not an op batch (a 1-d integer array from "
                             "engine.ops: ops.access, ops.concat, ...)")
            ops = np.asarray(ops, dtype=np.int64)
        self.k.arch.run_user(self.proc.ctx, ops)

    def compute(self, instructions, code_bytes=0, code_va=None):
        """`instructions` of user code, fetching `code_bytes` of text (from the text start)."""
        t = type(instructions)
        if (t is not int and t is not float) or not instructions >= 0:
            if not isinstance(instructions, Real) or t is bool or not instructions >= 0:
                raise EINVAL(f"compute: instructions {instructions!r} must be a number >= 0")
        if type(code_bytes) is not int or code_bytes < 0:
            code_bytes = _int(code_bytes, "compute: code_bytes", lo=0)
        parts = [O.charge("user", instructions * self.m.cpi)] if instructions else []
        if code_bytes:
            va = self.k.layout(self.proc)["text"][0] if code_va is None else code_va
            va, _n = self._range(va, code_bytes, "compute", "x")
            parts.append(O.access("x", O.lines(va, code_bytes, LINE)))
        if parts:
            self.run(O.concat(*parts))

    def touch(self, va, nbytes, write=False, stride=LINE):
        """One reference per `stride` bytes of [va, va+nbytes)."""
        if type(stride) is not int or stride < 1:
            stride = _int(stride, "touch: stride", lo=1)
        va, nbytes = self._range(va, nbytes, "touch", "w" if write else "r")
        kind, end = "w" if write else "r", va + nbytes
        # at most TOUCH_BATCH references per engine call: a 3 GB range must not build a
        # 800 MB op array (the engine runs consecutive batches exactly as one)
        step = TOUCH_BATCH * stride
        for lo in range(va - va % stride, end if nbytes > 0 else va - va % stride, step):
            self.run(O.access(kind, np.arange(lo, min(lo + step, end), stride, dtype=np.int64)))

    def store(self, va, data):
        """Write bytes into the process's memory (the stores run through the MMU)."""
        data = _bytes(data, "store")
        va, _n = self._range(va, len(data), "store", "w")
        if data:
            self.touch(va, len(data), write=True)
            self.k.mm.write_user(self.proc, va, data)

    def load(self, va, n):
        """Read n bytes of the process's memory (the loads run through the MMU)."""
        va, n = self._range(va, n, "load", "r")
        if n == 0:
            return b""
        self.touch(va, n)
        return self.k.mm.read_user(self.proc, va, n)

    def peek(self, va, n):
        """The experimenter's view of user memory: free, not a program action."""
        va, n = self._range(va, n, "peek", None)
        return self.k.mm.read_user(self.proc, va, n)

    def _range(self, va, n, what, kind):
        """[va, va+n) of user memory: ints (EFAULT / EINVAL naming them), n >= 0, and inside
        user space -- an access (`kind` "r"/"w") beyond it is the SIGSEGV the hardware would
        raise, before anything is touched; for peek (kind None, no access) it is EFAULT."""
        if type(va) is int and type(n) is int and va >= 0 and n >= 0 \
                and va + n <= self.k.task_size:
            return va, n
        va = _int(va, f"{what}: address", EFAULT)
        n = _int(n, f"{what}: size", lo=0)
        if kind is None:
            raise EFAULT(f"{what}: [{va:#x}, +{n}) is outside user space "
                         f"0..{self.k.task_size:#x}")
        p = self.proc
        p.fatal_signal = SegmentationFault.signal
        self.k.log("segfault", pid=p.pid, va=va, kind=kind, reason="outside user space")
        raise SegmentationFault(f"pid {p.pid}: {what} of {n} bytes at {va:#x}: outside user "
                                f"space 0..{self.k.task_size:#x}")

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

