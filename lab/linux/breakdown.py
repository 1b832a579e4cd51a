"""Where a getpid's cycles go on each of the five systems, beside S97 Table 2.

    python -m lab.linux.breakdown [--profile pentium-133] [--seed 1]

For each system: boot it, run one getpid through its real path after WARMUP calls, and
print the cycles by category (entry/exit, IPC, address-space switch, TLB walk, cache miss,
emulation library, server/kernel work, other) and the total, with the paper's number.
The paper's numbers come from `lab.results.published()` (the shared reference, or the copy
in the package).  A system that cannot be imported or fails gets one line saying so.
"""
import sys

from lab.cli import Parser, cpu_profile, natural, run_tool
from lab.results import REFERENCE_PROFILE, published

from . import SYSTEMS, boot

COLUMNS = (("entry/exit", ("entry_exit",)), ("IPC", ("ipc",)), ("switch", ("space_switch",)),
           ("TLB walk", ("tlb_walk",)), ("cache miss", ("cache_miss",)),
           ("emulation", ("emulation",)), ("work", ("kernel", "server")),
           ("other", ("user", "copy", "fault", "disk", "idle")))


def paper_getpid():
    """Table 2's getpid cycles per system."""
    rows = published()["table2_getpid"]["rows"]
    return {k: v for k, v in rows[0].items() if k in SYSTEMS}


# calls before the measured one, here and in the calibration: caches and TLB then hold the
# path (one is not enough for MkLinux's footprint to settle)
WARMUP = 3


def _getpid_program(p):
    for _ in range(WARMUP):
        p.getpid()
    with p.measure() as r:
        p.getpid()
    return r.by_category


def measure(system, cpu_profile="pentium-133", seed=1, placement_seed=None):
    """Cycles by category of one warm getpid on `system` (frames lowest first, or in
    `placement_seed`'s scattered order)."""
    linux = boot(system, cpu_profile, seed=seed, placement_seed=placement_seed)
    p = linux.spawn(_getpid_program)
    linux.run()
    return p.result


def breakdown(cpu_profile="pentium-133", seed=1, placement_seed=None):
    """{system: ("ok", {column: cycles, "total": cycles}) or ("failed", reason)}: a system
    that cannot be imported or fails is a failed row (and the tool's exit status 1)."""
    out = {}
    for system in SYSTEMS:
        try:
            cats = measure(system, cpu_profile, seed, placement_seed)
        except Exception as e:          # report, do not crash the table
            out[system] = ("failed", f"{type(e).__name__}: {e}")
            continue
        row = {name: sum(cats[c] for c in cs) for name, cs in COLUMNS}
        row["total"] = sum(cats.values())
        out[system] = ("ok", row)
    return out


def format_table(results, paper):
    head = ["system"] + [n for n, _ in COLUMNS] + ["simulated", "paper", "ratio"]
    widths = [18] + [max(10, len(h)) for h in head[1:]]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w)
                       for i, (h, w) in enumerate(zip(head, widths)))]
    for system, (status, data) in results.items():
        if status != "ok":
            lines.append(f"{system}: failed: {data}")
            continue
        pp = paper.get(system)
        cells = [system] + [str(data[n]) for n, _ in COLUMNS] + [
            str(data["total"]), "-" if pp is None else str(pp),
            "-" if not pp else f"{data['total'] / pp:.2f}"]
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


def main(argv=None):
    # profile and seed are checked here, once, before any system boots (not five times over)
    ap = Parser(prog="python -m lab.linux.breakdown", description=__doc__.split("\n")[0])
    ap.add_argument("--profile", type=cpu_profile, default="pentium-133",
                    help="CPU profile (default pentium-133)")
    ap.add_argument("--seed", type=natural(0), default=1, help="machine seed (default 1)")
    args = ap.parse_args(argv)
    results = breakdown(args.profile, args.seed)
    # the paper's cycles are the Pentium's: beside another machine they would mislead
    on_paper_machine = args.profile == REFERENCE_PROFILE
    print(f"getpid, cycles by category (CPU profile {args.profile}; " +
          ("paper: S97 Table 2, 133 MHz Pentium)" if on_paper_machine else
           f"no paper column: S97 measured a {REFERENCE_PROFILE}, not this machine)"))
    print(format_table(results, paper_getpid() if on_paper_machine else {}))
    return 1 if any(s == "failed" for s, _ in results.values()) else 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
