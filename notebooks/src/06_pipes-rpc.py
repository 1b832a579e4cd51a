# %% [markdown]
# # Pipes and RPC: Linux pipes against pipes and RPC on L4 IPC (S97 Table 4)
#
# > "Pipes can be made faster using L4 primitives."  — the lecture, on Härtig et al. 1997
#
# S97's Table 4 puts a 1-byte ping-pong latency and a bandwidth (about 50 MB in 64 KB blocks)
# side by side for eight ways of moving bytes between two address spaces: the Linux pipe on
# the five systems (native, L4Linux with its library or its trampoline, MkLinux with the
# server in the kernel or as a task), and three ways that use L4 directly:
#
# * **L4 pipe** — a pipe as a user-level server on L4 IPC: the writer's data travel as a
#   string into the server's 4 KB buffer, the reader's come back as a string out of it (two
#   copies per byte, like Linux); the server runs Linux 2.0's pipe code path lengths.
# * **synchronous L4 RPC** — the client calls, the server replies, the data copied once by
#   long IPC.
# * **synchronous mapping RPC** — the data pages are *mapped* to the receiver instead of
#   copied, and unmapped by it afterwards.
#
# The Linux rows run lmbench's `lat_pipe` (1-byte token) and `bw_pipe` (64 KB blocks)
# unchanged on each system (`lab/workloads/lmbench.py`); the L4 rows are
# `lab/workloads/l4ipc.py`.  Every row is a **prediction** (DESIGN §4): nothing here is
# fitted to Table 4.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"
round_trips = 20  # range: 1..1000; timed ping-pong round trips (quick: 3)
total_kb = 4096  # range: 64..65536; KB per bandwidth run after a warm-up block (quick: 256)
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %%
from lab.results import Result, published, step
from lab.workloads import l4ipc
from lab.workloads.l4ipc import L4_VARIANTS, LINUX_PIPES, Placement

table = published()["table4_pipes_rpc"]
place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
PAPER = {r["system"]: r for r in table["rows"]}
n = 3 if quick else round_trips
total = (256 if quick else total_kb) * 1024
total = max(l4ipc.BLOCK, total // l4ipc.BLOCK * l4ipc.BLOCK)
res = Result("pipes-rpc", "pipes and RPC: Linux pipes against pipes and RPC on L4 IPC",
             table["source"],
             parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile,
                         "round_trips": round_trips, "total_kb": total_kb,
                         "placement_seed": placement_seed})
print(f"{n} round trips per latency, {total // 1024} KB per bandwidth run")

# %% [markdown]
# The five Linux pipes: lmbench on each system.

# %%
sim = {}
for name, system in LINUX_PIPES.items():
    step(name)
    for what in l4ipc.WHATS:
        sim[name, what] = l4ipc.linux_pipe(system, what, cpu_profile, seed, n=n, total=total,
                                           placement_seed=place)
    print(f"{name:28} {sim[name, 'latency'].value:8.2f} µs "
          f"{sim[name, 'bandwidth'].value:8.2f} MB/s")

# %% [markdown]
# The three L4-native programs.  The pager places each communicating buffer in the
# physically indexed, direct-mapped L2: in different colours (*disjoint*) or in the same
# ones (*conflicting*, so that copying one evicts the other).  Latencies use the disjoint
# placement; bandwidths are measured under both.

# %%
for name in L4_VARIANTS:
    step(name)
    sim[name, "latency"] = l4ipc.measure(name, "latency", cpu_profile, seed, n=n, total=total,
                                         placement_seed=place)
    for p in Placement:
        sim[name, "bandwidth", p] = l4ipc.measure(name, "bandwidth", cpu_profile, seed,
                                                  placement=p, n=n, total=total,
                                                  placement_seed=place)
    bw = [sim[name, "bandwidth", p].value for p in Placement]
    sim[name, "bandwidth"] = min(bw), max(bw)
    print(f"{name[:28]:28} {sim[name, 'latency'].value:8.2f} µs "
          f"{min(bw):8.2f} .. {max(bw):.2f} MB/s")

# %% [markdown]
# ## Paper and simulation side by side
# A bandwidth the paper gives as a range is compared at both ends: the low end of the
# simulated range (the worse placement) with the paper's low end, the high end with its high
# end.  That pairing is this model's reading of the range (physical placement in the L2);
# the paper does not say where its range comes from.

# %%
def add(bench, system, unit, simulated, paper, note=None):
    res.add_row(bench, system, unit, round(simulated, 4), paper, "prediction", note)
    ratio = f"{simulated / paper:6.2f}" if paper else "     -"
    print(f"{system[:40]:40} {bench:24} {simulated:9.2f} {paper if paper is not None else '-':>9} "
          f"{ratio} {unit}")


print(f"{'system':40} {'benchmark':24} {'simulated':>9} {'paper':>9}  ratio")
for row in table["rows"]:
    name = row["system"]
    add("latency", name, "us", sim[name, "latency"].value, row["latency_us"])
    pb = row["bandwidth_mb_s"]
    if isinstance(pb, list):
        lo, hi = sim[name, "bandwidth"]
        which = {p: sim[name, "bandwidth", p].value for p in Placement}
        for end, s, pv in (("low", lo, pb[0]), ("high", hi, pb[1])):
            place = [p.value for p, v in which.items() if v == s][0]
            add(f"bandwidth, {end} end", name, "MB/s", s, pv,
                note=f"paper range {pb[0]}..{pb[1]} MB/s; simulated {lo:.1f}..{hi:.1f} MB/s "
                     f"over L2 placements, this end: {place} buffers")
    else:
        add("bandwidth", name, "MB/s", sim[name, "bandwidth"].value, pb)

# %% [markdown]
# ## Figure

# %%
import matplotlib.pyplot as plt
import numpy as np

names = [r["system"] for r in table["rows"]]
short = [s.replace(" (maps pages instead of copying; includes unmap)", "")
          .replace(" (user-level, on L4 IPC)", "") for s in names]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6))
y = np.arange(len(names))
a1.barh(y - 0.2, [PAPER[s]["latency_us"] for s in names], 0.4, color="#999999", label="paper")
a1.barh(y + 0.2, [sim[s, "latency"].value for s in names], 0.4, color="#1f77b4",
        label="simulated")
a1.set_xscale("log")
a1.set_xlabel("1-byte ping-pong latency (µs, log)")
a1.set_yticks(y, short, fontsize=8)
a1.invert_yaxis()
a1.legend(fontsize=8)
for i, s in enumerate(names):
    pb = PAPER[s]["bandwidth_mb_s"]
    plo, phi = (pb[0], pb[1]) if isinstance(pb, list) else (pb, pb)
    sb = sim[s, "bandwidth"]
    slo, shi = (sb if isinstance(sb, tuple) else (sb.value, sb.value))
    for (lo, hi), dy, colour, label in (((plo, phi), -0.15, "#777777", "paper"),
                                         ((slo, shi), 0.15, "#1f77b4",
                                          "simulated (range: L2 placement)")):
        a2.hlines(i + dy, lo, hi, color=colour, lw=5)
        a2.plot([lo, hi], [i + dy] * 2, "o", color=colour, ms=5,
                label=label if i == 0 else None)
a2.set_xscale("log")
a2.set_xlim(5, 10000)
a2.set_xlabel("bandwidth, 64 KB blocks (MB/s, log)")
a2.set_yticks(y, [""] * len(y))
a2.set_ylim(len(y) - 0.5, -0.5)
a2.grid(axis="x", lw=0.3)
a2.legend(fontsize=8, loc="lower left")
fig.suptitle(f"S97 Table 4: pipes and RPC ({cpu_profile})")
fig.tight_layout()
res.add_figure(fig, "pipes-rpc.png")

# %% [markdown]
# ## Where the cycles go
# Per round trip (latency) and per 64 KB block (bandwidth, disjoint placement) for the L4
# programs, with what the kernel did: IPCs, bytes copied as strings, pages mapped, flushes.

# %%
from lab.views import cycle_breakdown

STAT_KEY = dict(zip(L4_VARIANTS, ("l4_pipe", "rpc", "map_rpc")))

for name in L4_VARIANTS:
    for what, o in (("latency", sim[name, "latency"]),
                    ("bandwidth", sim[name, "bandwidth", Placement.DISJOINT])):
        cats, vals = cycle_breakdown({k: round(v) for k, v in o.by_category.items()})
        per = "round trip" if what == "latency" else "64 KB block"
        ev = ", ".join(f"{k} {v:g}" for k, v in o.events.items() if v)
        print(f"{name[:28]:28} {what:9} {o.cycles:9.0f} cycles per {per}: {ev}")
        print("    " + "  ".join(f"{c} {v}" for c, v in zip(cats, vals)))
        key = f"{STAT_KEY[name]}.{what}"
        res.stats[f"{key}.cycles"] = round(o.cycles, 1)
        res.stats[f"{key}.ipcs"] = round(o.events["ipc"], 3)

# %% [markdown]
# How the simulated values compare with the paper's, as ratios (simulated / paper; for a
# range, simulated range end / paper range end):

# %%
import math

ratios = {}
for row in res.rows:
    if row["paper"]:
        ratios[row["system"], row["benchmark"]] = row["simulated"] / row["paper"]
for (s, b), r in ratios.items():
    print(f"{s[:40]:40} {b:20} x{r:5.2f}")
errs = [abs(math.log(r)) for r in ratios.values()]
res.stats["ln_error.median"] = round(sorted(errs)[len(errs) // 2], 4)
lin = sim["Linux pipe", "latency"].value
print()
for name in L4_VARIANTS:
    print(f"{name[:40]:40} latency / Linux pipe latency: simulated "
          f"x{sim[name, 'latency'].value / lin:.2f}, paper "
          f"x{PAPER[name]['latency_us'] / PAPER['Linux pipe']['latency_us']:.2f}")
for name in L4_VARIANTS:
    plo, phi = PAPER[name]["bandwidth_mb_s"]
    slo, shi = sim[name, "bandwidth"]
    where = ("inside" if slo <= plo and phi <= shi else "overlapping" if slo <= phi and plo <= shi
             else "below" if phi < slo else "above")
    print(f"{name[:40]:40} paper range {plo}..{phi} MB/s is {where} the simulated "
          f"placement range {slo:.1f}..{shi:.1f} MB/s")
for p in Placement:
    c = sim[L4_VARIANTS[1], "bandwidth", p].by_category
    print(f"copy RPC, one 64 KB block, {p.value:11} buffers: {c.get('copy', 0):7.0f} cycles "
          f"copying at the profile's rate, {c.get('cache_miss', 0):7.0f} in cache misses")
mp = sim[L4_VARIANTS[2], "bandwidth", Placement.DISJOINT]
print(f"mapping RPC, one 64 KB block: {mp.cycles:.0f} cycles = {mp.cycles / 16:.0f} per page "
      f"mapped and unmapped, {mp.by_category.get('cache_miss', 0):.0f} in cache misses")
res.write()

# %% [markdown]
# **Reading the result.**  The ordering of Table 4 comes out of the mechanism: the Linux
# pipe on L4Linux adds an IPC round trip to the Linux server per system call to native
# Linux's work; MkLinux pays Mach messages, Mach's longer paths and, with the server as a
# user task, its address-space switches.  A pipe on L4 IPC needs no Linux server: per round
# trip it takes the IPCs counted above and two small string copies per direction, with the
# pipe server's own bookkeeping (Linux's pipe_read/pipe_write path lengths) in between.
# Synchronous RPC needs exactly two IPCs per round trip, and its bandwidth is that of one
# copy; mapping RPC copies nothing, so its bandwidth is set by the per-page cost of map and
# unmap alone.
#
# **Where the model differs, and why** (the numbers are in the cells above).
# * *Bandwidths of the copying programs* are set by the copy loop and the caches, not by
#   the IPC path: the copy runs at the CPU profile's `copy_bytes_per_cycle`, and every line
#   that misses the 8 KB L1 is fetched from the L2 — or from memory, when the sender's and
#   the receiver's buffers share L2 colours.  These are hardware values of the profile, not
#   fitted.  The spread between the two placements is large for the copying RPC and small
#   for the L4 pipe (the rows above).  The paper gives ranges for these rows without saying
#   where they come from; the model reads them as placement effects, and the comparison
#   above says whether the published range falls inside the simulated one.
# * *Linux pipe rows* run through the Linux path lengths that the calibration notebook fits
#   on the native column of Table 3 (`pipe_read` on lmbench's pipe latency, DESIGN §4); a
#   rebuild after a refit updates these rows.  The model charges each copy of the native pipe at
#   the profile's copy rate through 4 MB kernel pages, and the native and L4Linux pipe
#   bandwidths land on the paper's.  The worst row of the table is MkLinux's in-kernel pipe:
#   its latency is half the paper's and its bandwidth twice -- the same gap as MkLinux's
#   context switches in the lmbench experiment: a Linux process switch in the co-located
#   server is here a server-thread hand-off and a Mach thread switch, and whatever more
#   MkLinux did at each wake-up and switch is not in the model (README, Known limits).
# * *Mapping RPC* costs per page what L4's `map_page` and `flush_page` paths are estimated to
#   cost (lab/profiles/l4.json), with no cache misses in the steady state: the mapping
#   database's nodes and the receiver's page-table entries stay cached.  A real mapping
#   database allocates and frees nodes and walks the receiver's page table, which these
#   estimates leave out.
# * *The L4 pipe's protocol* is this lab's (the paper does not describe its implementation):
#   one pipe thread per pipe with a 4 KB buffer; a write that finds no reader waiting leaves
#   the data in the buffer, and answering the writer then takes a send and a separate closed
#   receive (two system calls).  The IPC count per round trip printed above is what the
#   latency is made of; a protocol that hands the byte straight to a waiting reader more
#   often, or batches the acknowledgement, would be faster.
# * The L4 programs do no user-level work besides their IPCs (like lmbench's loops on
#   Linux, which the model also runs without user code): the real programs' stub code and
#   stack references after each address-space switch are not in these numbers.

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import ComparisonView
ComparisonView(short, [PAPER[s]["latency_us"] for s in names],
               [round(sim[s, "latency"].value, 2) for s in names],
               title="1-byte ping-pong latency: paper vs simulated", unit="µs")
