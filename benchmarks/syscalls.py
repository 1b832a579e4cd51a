"""How fast the simulator runs system calls: N getpid and N write(/dev/null) on each system.

    python benchmarks/syscalls.py [--calls 10000] [--profile pentium-133] [--systems linux ...]
                                  [--no-events] [--profile-python]

Prints, per system and call: wall time for the N calls, wall microseconds per call, and the
simulated cycles per call (the same number the experiments report).  Target: well under one
second of wall time per 10 000 calls.  `--profile-python` runs the first system's loops under
cProfile and prints the top functions (where the Python overhead goes).
"""
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.cli import Parser, cpu_profile, natural  # noqa: E402
from lab.linux import SYSTEMS, boot, platform_class  # noqa: E402
from lab.mono.abi import O_WRONLY  # noqa: E402


def _loop(p, n):
    fd = p.open("/dev/null", O_WRONLY)
    buf = p.malloc(16)
    p.store(buf, b"x")
    out = {}
    for name, call in (("getpid", p.getpid), ("write /dev/null", lambda: p.write(fd, buf, 1))):
        call()                                      # warm-up
        gc.collect()        # the previous row's garbage is not this row's time
        c0, t0 = p.clock(), time.perf_counter()
        for _ in range(n):
            call()
        out[name] = (time.perf_counter() - t0, (p.clock() - c0) / n)
    return out


def bench(system, n, cpu_profile, events=True):
    linux = boot(system, cpu_profile, log_syscalls=events)
    linux.m.events.enabled = events
    p = linux.spawn(_loop, n)
    linux.run()
    return p.result


def main(argv=None):
    ap = Parser(prog="benchmarks/syscalls.py", description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=natural(1), default=10000)
    ap.add_argument("--profile", type=cpu_profile, default="pentium-133")
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), metavar="SYSTEM",
                    help=f"any of: {', '.join(SYSTEMS)}")
    ap.add_argument("--no-events", action="store_true", help="switch the event log off")
    ap.add_argument("--profile-python", action="store_true")
    a = ap.parse_args(argv)
    if a.profile_python:                    # the loops run in the process's thread
        import cProfile
        import pstats
        prof = cProfile.Profile()

        def profiled(p, n):
            prof.enable()
            try:
                return _loop(p, n)
            finally:
                prof.disable()
        linux = boot(a.systems[0], a.profile, log_syscalls=not a.no_events)
        linux.m.events.enabled = not a.no_events
        linux.spawn(profiled, a.calls)
        linux.run()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return 0
    print(f"{a.calls} calls per row, CPU profile {a.profile}, event log "
          f"{'off' if a.no_events else 'on'}")
    print(f"{'system':20s} {'call':16s} {'wall s':>8s} {'wall us/call':>13s} "
          f"{'sim cycles/call':>16s}")
    for system in a.systems:
        try:
            platform_class(system)
        except ImportError as e:
            print(f"{system}: not available: {e}")
            continue
        try:
            res = bench(system, a.calls, a.profile, not a.no_events)
        except Exception as e:
            print(f"{system}: failed: {type(e).__name__}: {e}")
            continue
        for call, (wall, cyc) in res.items():
            print(f"{system:20s} {call:16s} {wall:8.3f} {wall / a.calls * 1e6:13.1f} {cyc:16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
