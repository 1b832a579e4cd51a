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


def lat_pipe(p, n=100, size=4, timed=None):
    """lmbench lat_pipe: a token of `size` bytes ping-pongs between two processes through two
    pipes; cycles per round trip.  The echo process serves one more, untimed round, so that
    its exit never falls into a timed one.  `timed(round_trip, n)`, if given, times the n
    rounds instead (and its result is returned): to count more than cycles."""
    to_child, to_parent = p.pipe(), p.pipe()
    pid = p.fork(_pipe_echo, to_child[0], to_parent[1], n + 3, size)
    buf = p.malloc(size)
    p.store(buf, bytes(range(size)))

    def round_trip():
        p.write(to_child[1], buf, size)
        p.read(to_parent[0], buf, size)
    for _ in range(2):          # warm-up: the echo process's first round follows its fork
        round_trip()
    if timed is not None:
        t = timed(round_trip, n)
    else:
        t0 = p.clock()
        for _ in range(n):
            round_trip()
        t = (p.clock() - t0) / n
    round_trip()                                    # untimed: the echo process exits after it
    p.wait4(pid)
    return t


def main(argv=None):
    """Both programs, unchanged, on each of the five platforms (`lab.linux.boot`)."""
    from lab.cli import Parser, cpu_profile, natural
    from lab.linux import SYSTEMS, boot
    ap = Parser(prog="python -m lab.mono.examples",
                description="lmbench's write-to-/dev/null and pipe latency, the same program "
                            "on each Linux platform")
    ap.add_argument("--system", choices=SYSTEMS, action="append",
                    help="a platform (repeatable; default: all five)")
    ap.add_argument("--profile", type=cpu_profile, default="pentium-133",
                    help="CPU profile (default pentium-133)")
    ap.add_argument("--seed", type=natural(0), default=1, help="machine seed (default 1)")
    args = ap.parse_args(argv)
    print(f"CPU profile {args.profile}, seed {args.seed}")
    print(f"{'system':20} {'write /dev/null':>22} {'pipe round trip':>24}")
    for system in args.system or SYSTEMS:
        cells = []
        for program, n in ((lat_syscall, 100), (lat_pipe, 20)):
            k = boot(system, args.profile, seed=args.seed, log_syscalls=False)
            p = k.spawn(program, n)
            k.run()
            mhz = k.m.profile["clock_mhz"]
            cells.append(f"{p.result:9.0f} cycles {p.result / mhz:7.2f} µs")
        print(f"{system:20} {cells[0]:>22} {cells[1]:>24}")


if __name__ == "__main__":
    from lab.cli import run_tool
    raise SystemExit(run_tool(main))
