# %% [markdown]
# # lmbench and hbench:OS on five systems (S97 Table 3, Figure 6)
#
# > "Figure 6: lmbench results, normalized to native Linux.  These are presented as
# > slowdowns: a shorter bar is a better result."  — Härtig et al. 1997
#
# Every row runs the same program (`lab/workloads/lmbench.py`) unchanged on native Linux,
# L4Linux (library and trampoline) and MkLinux (in-kernel and user).  The native-Linux column
# is a calibration column (DESIGN §4: path lengths and workload characteristics were fitted on
# it, see the calibration notebook); **every microkernel column is a prediction**.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"
tables = "both"  # choices: lmbench, hbench, both
placements = 8  # range: 0..64; scattered frame placements for the placement section (quick: 2)
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %%
from lab.linux import SYSTEMS
from lab.workloads.lmbench import BENCHMARKS, measure
from lab.results import Result, published, step

place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
pub = published()
PAPER = {"lmbench": "table3_lmbench_latency", "lmbench_bw": "table3_lmbench_bandwidth",
         "hbench": "table3_hbench_latency", "hbench_bw": "table3_hbench_bandwidth"}
wanted = ["lmbench", "hbench"] if tables == "both" else [tables]
suffixes = [s for s in PAPER if s.split("_")[0] in wanted]
res = Result("lmbench", "lmbench and hbench:OS micro-benchmarks, microkernel overheads",
             "S97 Table 3, Fig. 6",
             parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile, "tables": tables,
                         "placements": placements,
                         "placement_seed": placement_seed})

# %%
sim = {}
for system in SYSTEMS:
    step(system)
    for suffix in suffixes:
        for row in pub[PAPER[suffix]]["rows"]:
            key = f"{row['benchmark']}@{suffix}"
            sim[key, system] = measure(key, system, cpu_profile, seed, quick,
                                       placement_seed=place)

# %% [markdown]
# Paper and simulation side by side (µs for latencies, MB/s for bandwidths):

# %%
print("each cell: simulated/paper")
for suffix in suffixes:
    print(f"\n{pub[PAPER[suffix]]['source']} — {suffix}")
    print(f"{'benchmark':18}" + "".join(f"{s[:13]:>15}" for s in SYSTEMS))
    for row in pub[PAPER[suffix]]["rows"]:
        key = f"{row['benchmark']}@{suffix}"
        cells = "".join(f"{sim[key, s]:8.1f}/{row[s]:<6g}" for s in SYSTEMS)
        print(f"{row['benchmark'][:18]:18}{cells}")
        for s in SYSTEMS:
            res.add_row(f"{row['benchmark']} ({suffix.replace('_bw', ' bw')})", s, row["unit"],
                        round(sim[key, s], 4), row[s],
                        "calibration" if s == "linux" else "prediction")

# %% [markdown]
# ## Figure 6
# Slowdowns relative to native Linux, latencies as x/linux and bandwidths as linux/x (bw⁻¹),
# the 16 lmbench items in the paper's order.

# %%
import matplotlib.pyplot as plt
import numpy as np
items = []
for suffix in ("lmbench", "lmbench_bw"):
    if suffix in suffixes:
        for row in pub[PAPER[suffix]]["rows"]:
            items.append((suffix, row))
shown = ("l4linux", "mklinux_in_kernel", "mklinux_user")
fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
for ax, which in zip(axes, ("paper", "simulated")):
    y = np.arange(len(items))
    for i, s in enumerate(shown):
        vals = []
        for suffix, row in items:
            key = f"{row['benchmark']}@{suffix}"
            a, b = (row[s], row["linux"]) if which == "paper" else (sim[key, s], sim[key, "linux"])
            vals.append(a / b if suffix == "lmbench" else b / a)
        ax.barh(y + (i - 1) * 0.27, vals, 0.27, label=s)
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.5)
    ax.set_yticks(y, [("[bw⁻¹] " if sfx.endswith("bw") else "[lat] ") + r["benchmark"]
                      for sfx, r in items], fontsize=7)
    ax.invert_yaxis()
    ax.set_title(f"{which}: slowdown vs native Linux")
    ax.set_xlabel("x native (log)")
axes[0].legend(fontsize=7)
fig.tight_layout()
res.add_figure(fig, "figure6.png")

# %% [markdown]
# How close are the predictions?  Median and worst |ln(simulated/paper)| per system:

# %%
import math
for s in SYSTEMS[1:]:
    errs = sorted((abs(math.log(sim[f"{r['benchmark']}@{sfx}", s] / r[s])), r["benchmark"], sfx)
                  for sfx in suffixes for r in pub[PAPER[sfx]]["rows"]
                  if sim[f"{r['benchmark']}@{sfx}", s] > 0)
    med = errs[len(errs) // 2][0]
    print(f"{s:20} median {med:.2f} (x{math.exp(med):.2f})   worst {errs[-1][0]:.2f} "
          f"(x{math.exp(errs[-1][0]):.2f}, {errs[-1][1]} {errs[-1][2]})")
    res.stats[f"ln_error.median.{s}"] = round(med, 4)
res.write()

# %% [markdown]
# **Reading the result.**  The latency rows dominated by system-call overhead (write to
# /dev/null, getpid) follow from the getpid mechanism.  Rows dominated by process creation
# (null/simple/sh process) depend on what the microkernel does for fork, exec and exit —
# address-space creation (on L4Linux and MkLinux two sets of page tables are cleared: Linux's
# book-keeping in the server and the microkernel's), mapping traffic and page faults through
# the pager.  A native Linux context switch is mostly the cache misses and TLB refills that
# follow the switch, plus the scheduler's own instructions.  The next section shows why the
# microkernels' switches come out low.  Bandwidth rows are dominated by copies: on L4Linux
# they change little, as in the paper; on MkLinux the pipe and TCP bandwidths fall with the
# cost of each call (the in-kernel server's pipe falls less than the paper's).  The mmap
# reread is the same on all five systems: once the file is mapped, the timed passes touch
# only user memory and no kernel runs, and the 8 MB file streams from memory whatever the
# frames' L2 colours (the paper's 6-20 % differences come from physical page placement in
# its direct-mapped L2, S97 §6.1, which the lowest-first allocator of these runs does not
# reproduce -- `placement_seed` varies placement, and the last section does so for four
# latency rows; the hbench 64 KB reread fits the L2 without conflicts on every system here).  Where the simulated slowdown differs from the
# paper's, the summary of `microlab reproduce` names the rows; the kernels' notes (`lab/l4`,
# `lab/mach`, `lab/linux/*.py`) list what each model leaves out.

# %% [markdown]
# ## Why the microkernel context switches come out low
#
# The simulated 2-process context switches of L4Linux and MkLinux are less than half the
# paper's (L4Linux's 8-process switch a little more than half).
# `lat_ctx` does not report a whole pass of the token to the next process.  It subtracts
# lmbench 1.x's `pipe_cost`: the same pipe write and read, done by one process to its own pipe.
# Whatever every system call costs cancels out.  On L4Linux every system call already enters
# the server's address space and comes back.  So the CR3 loads, and the refills of the
# server's and the kernel's pages, are inside the subtracted part too.  What is left is
# Linux's `schedule()` in the server, and the cache misses and TLB refills for the other
# process's pages.  The two measurements, taken apart:

# %%
from lab.workloads.lmbench import ctx_parts
ctx_paper = {r["benchmark"]: r for r in pub["table3_lmbench_latency"]["rows"]}["2-proc ctxsw"]
print(f"{'system':20} {'hop':>8} {'overhead':>9} {'ctx':>7} {'paper ctx':>10}   (µs)   "
      "ctx's cycles by category")
for s in SYSTEMS:
    c = ctx_parts(s, cpu_profile, seed, quick, placement_seed=place)
    cats = ", ".join(f"{k} {v:.0f}" for k, v in sorted(c["by_category"].items(),
                                                        key=lambda kv: -abs(kv[1])))
    print(f"{s:20} {c['hop']:8.2f} {c['overhead']:9.2f} {c['ctx']:7.2f} {ctx_paper[s]:10.2f}"
          f"   {cats}")

# %% [markdown]
# For L4Linux a simulated hop costs 8 µs more than a native one, but the overhead it
# subtracts grows by almost as much.  The paper measured 16.2 µs against native's 7.0.  So in
# the real L4Linux a change of the running process must cost work that a system call does
# not.  The model does not know what that work is, and it does not invent it.  MkLinux's
# switches are short by a similar factor.

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import ComparisonView
lat = [r for sfx, r in items if sfx == "lmbench"]
ComparisonView([r["benchmark"] for r in lat],
               [r["l4linux"] / r["linux"] for r in lat],
               [sim[f"{r['benchmark']}@lmbench", "l4linux"] / sim[f"{r['benchmark']}@lmbench", "linux"]
                for r in lat], title="L4Linux slowdown: paper vs simulated", unit="x native")

# %% [markdown]
# ## How much of a difference is placement?
#
# The machine hands out physical frames lowest first, as right after boot, so every run sees
# one and the same placement; with the Pentium's direct-mapped L2, placement decides which of
# a kernel's and a process's lines evict each other (S97 §6.1).  With `placement_seed` the
# engine hands frames out in a seeded scattered order instead, as from the free list of a
# machine that has been running for a while.  Below, a few latency rows are measured again
# over `placements` such seeds: the range and the median beside the value of the table above
# (lowest-first, unless the parameter `placement_seed` chose another placement for it) and
# the paper's.  The native column was fitted at the lowest-first placement only.

# %%
import statistics
PLACED = ["2-proc ctxsw@lmbench", "pipe@lmbench", "UDP@lmbench", "null process@lmbench"]
n_placed = min(placements, 2) if quick else placements
paper_lat = {r["benchmark"]: r for r in pub["table3_lmbench_latency"]["rows"]}
placed = {}
table_at = "lowest-first" if place is None else f"placement_seed {placement_seed}"  # the table's
if n_placed and "lmbench" in suffixes:
    print(f"µs over placement_seed 1..{n_placed}: min .. max (median); {table_at}; paper")
    for key in PLACED:
        bench = key.split("@")[0]
        print(f"\n{bench}")
        for s in SYSTEMS:
            vals = [measure(key, s, cpu_profile, seed, quick, placement_seed=k)
                    for k in range(1, n_placed + 1)]
            placed[bench, s] = vals
            med = statistics.median(vals)
            print(f"  {s:20} {min(vals):8.2f} .. {max(vals):8.2f} ({med:8.2f});"
                  f" {sim[key, s]:8.2f}; {paper_lat[bench][s]:g}")
            res.add_row(f"{bench} (lmbench), median of {n_placed} scattered placements", s, "us",
                        round(med, 4), None, "illustration",
                        note=f"placement_seed 1..{n_placed}: {min(vals):.4g} .. {max(vals):.4g}")
    # paired: at how many placements (and at the table's) two systems keep the paper's order
    print(f"\npairs out of the paper's order: at how many of the {n_placed} placements "
          f"({table_at}: yes/no)")
    for key in PLACED:
        bench = key.split("@")[0]
        for i, a in enumerate(SYSTEMS):
            for b in SYSTEMS[i + 1:]:
                pa, pb = paper_lat[bench][a], paper_lat[bench][b]
                flipped = sum((x < y) != (pa < pb) for x, y in zip(placed[bench, a],
                                                                   placed[bench, b]))
                first = (sim[key, a] < sim[key, b]) != (pa < pb)
                if flipped or first:
                    print(f"  {bench:14} {a} / {b}: {flipped} of {n_placed}"
                          f" ({table_at}: {'yes' if first else 'no'})")
    res.write()

# %% [markdown]
# **Reading the placements** (as run with the default parameters: 8 placements, the table
# above at lowest-first).  Lowest-first placement favours the microkernels, and not by
# chance: their lowest-first values sit below the whole range of the scattered placements in
# most of these rows.  Frames handed out in a row fill consecutive colours of the
# direct-mapped L2, which is page colouring by construction, so a server's or a kernel's
# pages and a process's pages conflict less than they do in scattered frames.  Over scattered
# placements the microkernel columns come out higher, nearer the paper (and still below it).
# The native column moves too, both ways; it was fitted at lowest-first only, and refitting
# at a median placement would move the predictions with it.  The pair counts show which
# orderings are mechanism and which are placement.  The model puts L4Linux's trampoline
# below L4Linux in the context switch at lowest-first and at 7 of the 8 scattered placements:
# that inversion of the paper's order is the model's, not placement.  The trampoline below
# native Linux (3 of 8) and the two MkLinux variants' order in the context switch (2 of 8,
# and lowest-first) do change with placement.
