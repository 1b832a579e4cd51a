"""lmbench-like programs written on the user layer: each is a few lines of ordinary code.

Run one:  p = linux.spawn(lat_syscall, 1000); linux.run(); p.result  (cycles per operation)
Each measures with the simulated cycle counter (`p.clock()`, free like rdtsc) after a warm-up
round, as lmbench times a loop after warming caches.
"""
from .abi import O_WRONLY


def lat_syscall(p, n=1000, which="write"):
    """lmbench lat_syscall: `write` one byte to /dev/null (or `getpid`); cycles per call."""
    fd = p.open("/dev/null", O_WRONLY)
    buf = p.malloc(1)
    p.store(buf, b"x")
    call = (lambda: p.write(fd, buf, 1)) if which == "write" else p.getpid
    call()                                          # warm-up
    t0 = p.clock()
    for _ in range(n):
        call()
    return (p.clock() - t0) / n


def _pipe_echo(c, rfd, wfd, n, size):
    buf = c.malloc(size)
    for _ in range(n):
        c.read(rfd, buf, size)
        c.write(wfd, buf, size)


def lat_pipe(p, n=100, size=4):
    """lmbench lat_pipe: a token of `size` bytes ping-pongs between two processes through two
    pipes; cycles per round trip.  The echo process serves one more, untimed round, so that
    its exit never falls into a timed one."""
    to_child, to_parent = p.pipe(), p.pipe()
    pid = p.fork(_pipe_echo, to_child[0], to_parent[1], n + 3, size)
    buf = p.malloc(size)
    p.store(buf, bytes(range(size)))

    def round_trip():
        p.write(to_child[1], buf, size)
        p.read(to_parent[0], buf, size)
    for _ in range(2):          # warm-up: the echo process's first round follows its fork
        round_trip()
    t0 = p.clock()
    for _ in range(n):
        round_trip()
    t = (p.clock() - t0) / n
    round_trip()                                    # untimed: the echo process exits after it
    p.wait4(pid)
    return t
