"""The engine's core loop against its speed limit (../shared/bench): same work, same answers.

    .venv/bin/python benchmarks/engine.py [--n 4000000] [--reps 5]

Builds the page tables and the trace of ../shared/bench/workload.py (two address spaces, x86-32
tables in a 32 MiB memory image, a switch every K_SWITCH references), loads the image into a
Machine with the "bench" CPU profile (64-entry 4-way LRU TLB, 1/100/1000-cycle
lookup/memory/fault, no caches), runs the whole trace in one `Machine.run` call, and checks
hits, misses, walk_refs, faults, cycles and paddr_sum against ../shared/bench/reference.py
(C, gcc -O2), run as a subprocess with the same --n, tagged and --untagged.  Prints references
per second (medians of --reps runs) and, last, `ratio_to_c tagged=R1 untagged=R2`
(engine speed / C speed: the machines are noisy, so ratios measured in the same run).

Also prints the first-call time of the engine in a fresh process with a warm Numba cache
(interpreter start, `import engine`, a Machine, one access) and the cost of one `Machine.step`.
The shared folder is found beside the repository (../shared) or through $MICROLAB_SHARED.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# this file is named engine.py: its folder must not shadow the `engine` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def shared_bench():
    """The folder holding workload.py and reference.py."""
    env = os.environ.get("MICROLAB_SHARED")
    cands = [Path(env), Path(env) / "bench"] if env else []
    cands.append(REPO.parent / "shared" / "bench")
    for c in cands:
        if (c / "workload.py").is_file():
            return c
    sys.exit(f"engine bench: workload.py not found in {', '.join(map(str, cands))} "
             "(set MICROLAB_SHARED to the shared folder)")


BENCH = shared_bench()
sys.path.insert(0, str(BENCH))
import workload as W  # noqa: E402

sys.path.insert(0, str(REPO))
import engine  # noqa: E402
from engine import core  # noqa: E402
from lab.cli import Parser, natural  # noqa: E402

CHECKED = ("hits", "misses", "walk_refs", "faults", "cycles", "paddr_sum")


def encode(trace, sids):
    """The trace as op words, with a switch before reference 0 and before every positive
    multiple of K_SWITCH (round-robin over the spaces), vectorised."""
    n, k = len(trace), W.K_SWITCH
    nsw = (n - 1) // k + 1 if n else 0
    ops = np.empty(n + nsw, np.int64)
    i = np.arange(n, dtype=np.int64)
    ops[i + 1 + i // k] = (trace.astype(np.int64) << core.OP_SHIFT) | core.OP_R
    j = np.arange(nsw, dtype=np.int64)
    ops[j * (k + 1)] = (np.asarray(sids, np.int64)[j % W.NPROC] << core.OP_SHIFT) | core.OP_SWITCH
    return ops


def machine(mem, cr3s, tagged):
    m = engine.Machine("bench", tagged=tagged)
    m.memory.words[:] = mem
    return m, [m.attach_space(int(r)) for r in cr3s]


def run_engine(mem, cr3s, trace, tagged, reps):
    times, out = [], None
    _, sids = machine(mem, cr3s, tagged)
    ops = encode(trace, sids)
    for _ in range(reps):
        m, _ = machine(mem, cr3s, tagged)
        t = time.perf_counter()
        r = m.run(ops, check=False)
        times.append(time.perf_counter() - t)
        res = dict(hits=r.hits, misses=r.misses, walk_refs=r.walk_refs, faults=r.faults,
                   cycles=r.cycles, paddr_sum=int(m.st[core.S_PSUM]))
        if out is not None and res != out:
            sys.exit(f"engine bench: the engine is not deterministic: {res} != {out}")
        out = res
    return float(np.median(times)), out


def run_c(n, reps, tagged):
    cmd = [sys.executable, str(BENCH / "reference.py"), "--n", str(n), "--reps", str(reps)]
    if not tagged:
        cmd.append("--untagged")
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


FIRST_CALL = ("import time; t = time.perf_counter(); import engine; "
              "m = engine.Machine('pentium-133'); s = m.new_space(); "
              "m.map(s, 0x1000, m.alloc_page(), 'rw'); m.switch(s); m.step('r', 0x1004); "
              "print(time.perf_counter() - t)")


def first_call():
    """(wall seconds of the whole process, seconds from import to the first access's result)
    in a fresh interpreter; run twice so that the second finds Numba's cache warm."""
    for _ in range(2):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True,
                           check=True, cwd=REPO)
        wall = time.perf_counter() - t
    return wall, float(p.stdout.strip().splitlines()[-1])


def step_cost(k=2000):
    """Microseconds per Machine.step (a TLB hit after the first) and per one-op Machine.run."""
    m = engine.Machine("pentium-133")
    s = m.new_space()
    m.map(s, 0x1000, m.alloc_page(), "rw")
    m.switch(s)
    m.step("r", 0x1004)
    one = engine.ops.access("r", [0x1004])
    out = []
    for f in (lambda: m.step("r", 0x1004), lambda: m.run(one)):
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(k):
                f()
            ts.append((time.perf_counter() - t) / k * 1e6)
        out.append(float(np.median(ts)))
    return out


def main():
    ap = Parser(prog="benchmarks/engine.py", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=natural(1), default=4_000_000,
                    help="references (default 4M)")
    ap.add_argument("--reps", type=natural(1), default=5, help="repetitions; medians are reported")
    a = ap.parse_args()
    print(f"workload: {BENCH / 'workload.py'}  n={a.n}  reps={a.reps}")
    mem, cr3s, hot = W.build_memory()
    trace = W.gen_trace(a.n, hot)
    m0, s0 = machine(mem, cr3s, True)
    m0.run(encode(trace[:1000], s0), check=False)       # load the compiled loop before timing
    ratios, ok = {}, True
    for mode, tagged in (("tagged", True), ("untagged", False)):
        t_eng, got = run_engine(mem, cr3s, trace, tagged, a.reps)
        c = run_c(a.n, a.reps, tagged)
        bad = [k for k in CHECKED if got[k] != c[k]]
        ok &= not bad
        e_rate, c_rate = a.n / t_eng, c["refs_per_s"]
        ratios[mode] = e_rate / c_rate
        print(f"{mode:8s} engine {e_rate / 1e6:7.1f} M refs/s   C {c_rate / 1e6:7.1f} M refs/s   "
              f"ratio {ratios[mode]:.2f}   outputs {'identical' if not bad else 'DIFFER: ' + ', '.join(bad)}")
        print(f"         engine {json.dumps(got)}")
        if bad:
            print(f"         C      {json.dumps({k: c[k] for k in CHECKED})}")
    wall, inner = first_call()
    print(f"first call (fresh process, warm cache): {wall:.2f} s wall, {inner:.2f} s from import "
          "to the first access")
    st, one = step_cost()
    print(f"single step: Machine.step {st:.1f} us, one-op Machine.run {one:.1f} us")
    print(f"ratio_to_c tagged={ratios['tagged']:.2f} untagged={ratios['untagged']:.2f}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
