"""Pipes (fs/pipe.c of Linux 2.0): one page of kernel buffer, one wait queue for both ends.

A writer of at most PIPE_BUF bytes waits until that much is free (the write is atomic); a
larger write fills what is free, wakes the readers and sleeps again until done.  A reader
waits while the pipe is empty and a writer exists, then takes what is there (up to its count)
and wakes the writers.  Writing with no reader left sends SIGPIPE, which kills the writer (its
EPIPE is never seen; what it wrote before stays in the pipe).  Bytes really move: user page
-> pipe frame -> user page.
"""
from .abi import O_NONBLOCK, PIPE_BUF, O_RDONLY, O_WRONLY
from .errors import EAGAIN, EBADF, BrokenPipe
from .fs import File, FileOps, InodeType
from .sched import WaitQueue


class Pipe:
    def __init__(self, kernel):
        self.k = kernel
        self.pa = kernel.m.alloc_page()         # PIPE_BASE: one page
        self.size = min(PIPE_BUF, kernel.m.fmt.page_size)
        self.start = 0                          # PIPE_START
        self.len = 0                            # PIPE_LEN
        self.readers = self.writers = 0
        self.wait = WaitQueue("pipe")

    @property
    def free(self):
        return self.size - self.len

    def read(self, proc, va, n, nonblock):
        k = self.k
        k.arch.run_path("pipe_read")
        while self.len == 0:
            if self.writers == 0:
                return 0                        # end of file
            if nonblock:
                raise EAGAIN("pipe empty")
            k.sched.sleep_on(self.wait, "pipe_read")
        done = 0
        while n > 0 and self.len:
            c = min(n, self.len, self.size - self.start)      # PIPE_MAX_RCHUNK
            kpa = self.pa + self.start
            k.copy_to_user(proc, va, k.m.memory.read(kpa, c), kpa=kpa)
            self.start = (self.start + c) % self.size
            self.len -= c
            va, n, done = va + c, n - c, done + c
        k.sched.wake_up(self.wait)
        return done

    def write(self, proc, va, n, nonblock):
        k = self.k
        k.arch.run_path("pipe_write")
        need = n if n <= self.size else 1       # atomic up to PIPE_BUF
        done = 0
        while n > 0:
            while self.free < need:
                if self.readers == 0:
                    k.send_sig(proc, BrokenPipe, "write on a pipe with no reader")
                if nonblock:
                    if done:
                        return done
                    raise EAGAIN("pipe full")
                k.sched.sleep_on(self.wait, "pipe_write")
            if self.readers == 0:
                k.send_sig(proc, BrokenPipe, "write on a pipe with no reader")
            while n > 0 and self.free:
                end = (self.start + self.len) % self.size
                c = min(n, self.free, self.size - end)      # PIPE_MAX_WCHUNK
                data = k.copy_from_user(proc, va, c, kpa=self.pa + end)
                k.m.memory.write(self.pa + end, data)
                self.len += c
                va, n, done = va + c, n - c, done + c
            k.sched.wake_up(self.wait)
            need = 1
        return done

    def release(self, reader):
        if reader:
            self.readers -= 1
        else:
            self.writers -= 1
        self.k.arch.run_path("pipe_release")
        self.k.sched.wake_up(self.wait)
        if self.readers == 0 and self.writers == 0:
            self.k.m.free_page(self.pa)
            self.pa = None


class PipeEnd(FileOps):
    kind = InodeType.FIFO.value

    def __init__(self, reader):
        self.reader = reader

    def read(self, k, proc, f, va, n):
        if not self.reader:
            raise EBADF("read from the write end of a pipe")
        return f.obj.read(proc, va, n, bool(f.flags & O_NONBLOCK))

    def write(self, k, proc, f, va, n):
        if self.reader:
            raise EBADF("write to the read end of a pipe")
        return f.obj.write(proc, va, n, bool(f.flags & O_NONBLOCK))

    def release(self, k, f):
        f.obj.release(self.reader)


READ_END, WRITE_END = PipeEnd(True), PipeEnd(False)


def make_pipe(kernel):
    """do_pipe: a pipe and its two open files (read end, write end)."""
    p = Pipe(kernel)
    p.readers = p.writers = 1
    return File(READ_END, None, O_RDONLY, p), File(WRITE_END, None, O_WRONLY, p)
