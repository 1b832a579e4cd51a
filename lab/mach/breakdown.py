"""Cycle breakdowns of single Mach operations, with the kernel profile as it stands.

    python -m lab.mach.breakdown [--profile pentium-133] [--seed 1]

Prints a null Mach RPC (msg_rpc to a server task and its reply) and MkLinux's getpid in
both variants, each measured once warm, by cycle category.  The path lengths are those of
lab/profiles/mach.json: the ones the calibration fitted (msg_receive, rpc_short_circuit,
thread_set_state: "calibrated on" S97 Table 2's MkLinux getpid rows, DESIGN.md §4) and
estimates for the rest.  So the two getpid rows are calibration rows (on pentium-133 they
match Table 2 by construction); the null RPC, and any other CPU profile, is a prediction.
"""
import sys

from engine import Machine
from engine.profile import load_profile

from lab.cli import Parser, cpu_profile, natural, run_tool

from .kernel import MachKernel
from .message import Message


def null_rpc(cpu_profile="pentium-133", warm=3, seed=1, placement_seed=None):
    """Measurement of one warm null RPC between two tasks (frames lowest first, or in
    `placement_seed`'s scattered order)."""
    m = Machine(cpu_profile, seed=seed, placement_seed=placement_seed)
    k = MachKernel(m)
    c = k.task_create(name="client")
    s = k.task_create(name="server", category="server")
    p = k.port_allocate(s)
    k.port_enable(s, p)
    k.thread_create(s, handler=lambda msg: Message(remote_port=msg.remote_port))
    to_s = k.port_insert_send(s, p, c)
    for _ in range(warm):
        k.rpc(c, to_s)
    with m.measure() as r:
        k.rpc(c, to_s)
    return r


def mklinux_getpid(system, cpu_profile="pentium-133", warm=5, seed=1):
    """Measurement of one warm getpid on MkLinux (`system`: mklinux_in_kernel/_user)."""
    from lab.linux import boot
    linux = boot(system, cpu_profile=cpu_profile, seed=seed)
    out = {}

    def prog(p):
        for _ in range(warm):
            p.getpid()
        with linux.m.measure() as r:
            p.getpid()
        out["r"] = r
    linux.spawn(prog)
    linux.run()
    return out["r"]


def _row(name, r, caches):
    """Two lines: cycles by category; TLB misses, CR3 loads and the misses of each of the
    profile's `caches` (names: l1i, l1d, l2 on the Pentium; whatever the profile has)."""
    cats = ", ".join(f"{k} {v}" for k, v in r.by_category.items() if v)
    st = r.stats
    misses = "".join(f", {c} misses {st[f'{c}.misses']}" for c in caches)
    return (f"{name:22s} {r.cycles:6d} cycles ({r.us:.2f} us): {cats}\n{'':22s} tlb misses "
            f"{st['tlb.misses']}, cr3 loads {st['cr3.loads']}{misses}")


def main(argv=None):
    ap = Parser(prog="python -m lab.mach.breakdown", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", type=cpu_profile, default="pentium-133",
                    help="CPU profile (default pentium-133)")
    ap.add_argument("--seed", type=natural(0), default=1, help="machine seed (default 1)")
    args = ap.parse_args(argv)
    caches = [c["name"] for c in load_profile(args.profile).caches]
    print(_row("null Mach RPC", null_rpc(args.profile, seed=args.seed), caches))
    for system in ("mklinux_in_kernel", "mklinux_user"):
        print(_row(f"{system} getpid", mklinux_getpid(system, args.profile, seed=args.seed),
                   caches))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
