"""The calibration of DESIGN.md §4: which knobs are fitted, on which calibration rows.

Only rows whose role in published.json is `calibration` appear here: the machine facts, the
getpid breakdown of S97 Figure 5, Table 2 (getpid) and the native-Linux column of Table 3.
Each row names the one knob it determines (a kernel path length or a workload characteristic)
or none (a check: simulated and reported, fitting nothing).  Everything else the lab reports
is a prediction made with these values.

    python -m lab.calibration            # fit, print the table (profiles unchanged)
    python -m lab.calibration --write    # fit and write the values, "calibrated on …"
"""
import json

from lab import kprofile
from lab.cli import Parser, natural, run_tool
from lab.calibrate import Knob, Target, fit, write_profiles, evaluate
from lab.results import published

_cache = {}


def _memo(key, fn):
    """One simulation serves every row that reads it, per set of knob values in force."""
    k = (key, json.dumps(kprofile._overrides, sort_keys=True, default=str))
    if k not in _cache:
        if len(_cache) > 512:
            _cache.clear()
        _cache[k] = fn()
    return _cache[k]


# ------------------------------------------------------------------ measurements
# H97 reports the *direct* cost of an IPC: "The direct costs range from 45 cycles (Alpha) to
# 121 cycles (Pentium).  Since only 2.3% of the L1 cache are required, the average indirect
# costs are not to be expected much higher" -- the TLB refills and cache misses an IPC causes
# are the indirect costs, left out of the 121.  (S97 Figure 5's IPC steps include them.)
INDIRECT = ("tlb_walk", "cache_miss")


def l4_one_way_ipc(cpu_profile="pentium-133", seed=1, direct=True, placement_seed=None):
    """Cycles of one short cross-address-space IPC: a warm RPC between two large spaces / 2;
    `direct` leaves out the indirect costs (TLB walks and cache misses), as H97 does.  The
    calibration measures it at lowest-first placement (`placement_seed` None)."""
    from engine import Machine
    from lab.l4 import L4Kernel, Message, ipc_call, ipc_reply_and_wait, ipc_wait

    def server(t):
        msg = yield ipc_wait()
        while True:
            msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1))

    def run():
        m = Machine(cpu_profile, seed=seed, placement_seed=placement_seed)
        k = L4Kernel(m)
        srv, cli = k.task_new("server", program=server), k.task_new("client")
        for i in range(3):
            k.ipc(cli.thread, ipc_call(srv.thread, Message(i)))
        with m.measure() as r:
            k.ipc(cli.thread, ipc_call(srv.thread, Message(7)))
        indirect = sum(r.by_category[c] for c in INDIRECT) if direct else 0
        return (r.cycles - indirect) / 2
    return _memo(("l4ipc", cpu_profile, seed, direct, placement_seed), run)


FIG5_STEPS = ("enter_emulation", "send", "server_work", "receive", "leave_emulation", "done")


def getpid(system, cpu_profile="pentium-133", seed=1, placement_seed=None):
    """(total cycles, {Figure 5 step: cycles}) of one warm getpid on `system` (frames lowest
    first, or in `placement_seed`'s scattered order)."""
    from lab.linux import boot
    from lab.linux.breakdown import WARMUP

    def run():
        lx = boot(system, cpu_profile, seed=seed, placement_seed=placement_seed)
        out = {}

        def prog(p):
            for _ in range(WARMUP):
                p.getpid()
            n0 = len(lx.m.events)
            with p.measure() as r:
                p.getpid()
            out["cycles"], out["events"] = r.cycles, list(lx.m.events)[n0:]
            return 0
        lx.spawn(prog)
        lx.run()
        st = {e.args["step"]: e.cycle for e in out["events"]
              if e.kernel == "l4linux" and e.operation == "syscall"}
        steps = {a: st[b] - st[a] for a, b in zip(FIG5_STEPS, FIG5_STEPS[1:])
                 if a in st and b in st}
        return out["cycles"], steps
    return _memo(("getpid", system, cpu_profile, seed, placement_seed), run)


def lmbench(key, system="linux", cpu_profile="pentium-133", seed=1, quick=False):
    from lab.workloads.lmbench import measure
    return _memo(("lmbench", key, system, cpu_profile, seed, quick),
                 lambda: measure(key, system, cpu_profile, seed, quick))


# ------------------------------------------------------------------ the rows and their knobs
def knob(profile, key, lo=0, hi=1e8, integer=True):
    return Knob(profile, key, lo, hi, integer)


# Native Linux, Table 3: "benchmark@table" -> the knob it determines (None: a check).  Where
# lmbench and hbench:OS report one operation differently, the kernel path is fitted on one row
# and the other benchmark's own harness work (a workload characteristic) on the other.
W = "workloads"
NATIVE = {
    "write /dev/null@lmbench": knob("linux", "sys_write.instructions"),
    "write /dev/null@hbench": knob(W, "hbench_write_harness_instructions"),
    "null process@lmbench": knob("linux", "sys_fork.instructions"),
    "null process@hbench": knob("linux", "sys_fork.instructions"),
    "simple process@lmbench": knob("linux", "libc_startup_instructions"),
    "simple process@hbench": knob("linux", "libc_startup_instructions"),
    "/bin/sh process@lmbench": knob(W, "lmbench_sh_harness_instructions"),
    "/bin/sh process@hbench": knob("linux", "sh_startup_instructions"),
    "mmap@lmbench": knob(W, "mmap_touch_stride_kb", lo=4, hi=8192),
    "mmap 4KB@hbench": knob("linux", "sys_mmap.instructions"),
    "mmap 8MB@hbench": knob(W, "mmap_touch_stride_kb", lo=4, hi=8192),
    "2-proc ctxsw@lmbench": knob("linux", "switch_to.instructions"),
    "ctx 0K 2@hbench": knob(W, "hbench_ctx_harness_instructions"),
    "ctx2 0K 2@hbench": knob(W, "hbench_ctx2_harness_instructions"),
    "8-proc ctxsw@lmbench": knob("linux", "kernel_stack_bytes", lo=64, hi=2048),
    "pipe@lmbench": knob("linux", "pipe_read.instructions"),
    "pipe@hbench": knob(W, "hbench_pipe_harness_instructions"),
    "UDP@lmbench": knob("linux", "udp_rcv.instructions"),
    "UDP@hbench": knob("linux", "udp_rcv.instructions"),
    "RPC/UDP@lmbench": knob(W, "sunrpc_instructions"),
    "RPC/UDP@hbench": knob(W, "sunrpc_instructions"),
    "TCP@lmbench": knob("linux", "tcp_rcv.instructions"),
    "TCP@hbench": knob("linux", "tcp_rcv.instructions"),
    "RPC/TCP@lmbench": knob(W, "sunrpc_tcp_instructions"),
    "RPC/TCP@hbench": knob(W, "sunrpc_tcp_instructions"),
    "getpid@hbench": knob("linux", "sys_getpid.instructions"),
    "pipe@lmbench_bw": None,            # copies at the profile's copy rate: hardware, not fitted
    "pipe 64KB@hbench_bw": None,
    "TCP@lmbench_bw": knob("linux", "csum_partial_kb.instructions"),
    "TCP 64KB@hbench_bw": knob("linux", "csum_partial_kb.instructions"),
    "file reread@lmbench_bw": knob("linux", "file_read_page.instructions"),
    "file read 64/64@hbench_bw": knob(W, "hbench_file_read_harness_instructions"),
    "mmap reread@lmbench_bw": knob(W, "sum_instructions_per_word", lo=0.25, hi=64,
                                   integer=False),
    "mmap reread 64KB@hbench_bw": knob(W, "sum_instructions_per_word", lo=0.25, hi=64,
                                       integer=False),
}


def targets(cpu_profile="pentium-133", seed=1, quick=False):
    """Every calibration row of published.json as a Target."""
    pub = published()
    out = []
    m = pub["machine"]
    out.append(Target("machine: L4 short IPC, direct cost (H97)", m["l4_ipc_cycles"],
                      knob("l4", "ipc_short.instructions", lo=1),
                      lambda: l4_one_way_ipc(cpu_profile, seed), system="l4"))
    steps = dict(zip(FIG5_STEPS, pub["getpid_breakdown_l4linux"]["rows"]))
    fig5_knobs = {"enter_emulation": knob("l4linux", "emulib_enter.instructions"),
                  "send": None,
                  "server_work": knob("l4linux", "server_syscall.instructions"),
                  "receive": None,
                  "leave_emulation": knob("l4linux", "emulib_leave.instructions")}
    for step, (label, cyc) in steps.items():
        out.append(Target(f"Fig. 5 l4linux getpid: {label}", cyc, fig5_knobs[step],
                          lambda s=step: getpid("l4linux", cpu_profile, seed)[1].get(s, 0.0),
                          system="l4linux"))
    t2 = pub["table2_getpid"]["rows"][0]
    t2_knobs = {"linux": knob("linux", "sys_getpid.instructions"),
                "l4linux": None,
                "l4linux_trampoline": knob("l4linux", "trampoline_enter.instructions"),
                "mklinux_in_kernel": knob("mach", "rpc_short_circuit.instructions"),
                "mklinux_user": knob("mach", "thread_set_state.instructions")}
    for system, k in t2_knobs.items():
        out.append(Target(f"Table 2 getpid: {system}", t2[system], k,
                          lambda s=system: getpid(s, cpu_profile, seed)[0], system=system))
    for table, suffix in (("table3_lmbench_latency", "lmbench"), ("table3_lmbench_bandwidth", "lmbench_bw"),
                          ("table3_hbench_latency", "hbench"), ("table3_hbench_bandwidth", "hbench_bw")):
        for row in pub[table]["rows"]:
            name = row["benchmark"]
            key = f"{name}@{suffix}"
            k = NATIVE[key]         # every row of the table has an entry: a new row fails here
            out.append(Target(f"{pub[table]['source']} {suffix.replace('_bw', ' bw')}: {name} (linux)",
                              row["linux"], k,
                              lambda key=key: lmbench(key, "linux", cpu_profile, seed, quick),
                              unit=row["unit"], system="linux"))
    return out


def run(write=False, quick=False, cpu_profile="pentium-133", seed=1, iterations=10, log=print):
    ts = targets(cpu_profile, seed, quick)
    result = fit(ts, iterations=iterations, log=log)
    if write:
        for f in write_profiles(result):
            log(f"wrote {f}")
    return result


def check(cpu_profile="pentium-133", seed=1, quick=False):
    """Simulate every calibration row with the values in the profile files (no fitting)."""
    ts = targets(cpu_profile, seed, quick)
    sims = evaluate(ts, {})
    return [{"target": t.name, "knob": t.knob.label if t.knob else None, "paper": t.paper,
             "system": t.system, "simulated": sims[t.name], "unit": t.unit,
             "error": sims[t.name] / t.paper - 1 if t.paper else float("nan")} for t in ts]


def format_rows(rows):
    lines = [f"{'calibration row':64} {'paper':>10} {'simulated':>10} {'error':>8}  knob"]
    for r in rows:
        lines.append(f"{r['target'][:64]:64} {r['paper']:10.2f} {r['simulated']:10.2f} "
                     f"{r['error'] * 100:7.1f}%  {r['knob'] or '(check)'}")
    return "\n".join(lines)


def main(argv=None):
    ap = Parser(prog="python -m lab.calibration", description=__doc__.split("\n")[0])
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--write", action="store_true", help="write the fitted values into lab/profiles")
    what.add_argument("--check", action="store_true", help="only simulate the rows, fit nothing")
    ap.add_argument("--quick", action="store_true",
                    help="simulate at the notebooks' quick sizes: fast, but not the reference "
                         "numbers, so not allowed with --write")
    ap.add_argument("--iterations", type=natural(1), metavar="N",
                    help="sweeps of the fit at most (default 10)")
    a = ap.parse_args(argv)
    if a.write and a.quick:     # quick sizes would write values fitted to the wrong numbers
        ap.error("argument --quick: not allowed with argument --write (quick sizes are not "
                 "the reference numbers the profiles are fitted on)")
    if a.check:
        if a.iterations is not None:
            ap.error("argument --iterations: not allowed with argument --check (it fits nothing)")
        print(format_rows(check(quick=a.quick)))
        return 0
    res = run(write=a.write, quick=a.quick, iterations=a.iterations or 10)
    print(format_rows(res.rows))
    for k, v in res.values.items():
        print(f"{k.label:50} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
