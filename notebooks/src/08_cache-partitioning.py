# %% [markdown]
# # Cache partitioning by page colours (S97 §6.3)
#
# > "A 64x64 matrix multiplication (64 KB data working set) is interrupted every 100 µs by a
# > load that maximizes cache conflicts … partitioned: the pager gives the task 3 of 64 L2
# > colours exclusively."  — Härtig et al. 1997, §6.3
#
# The Pentium's L2 is physically indexed and direct-mapped: the frame a page lands in decides
# which L2 lines it can use.  A user-level pager that controls frame placement can therefore
# shield a real-time task from a cache-hostile load.  Here the task and the load run on the
# simulated machine; the task's time includes every refill after an interruption.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"  # choices: pentium-133, x86-64-modern; a machine with a physically indexed L2 to colour
interval_us = 100.0  # range: 50..; the timer interrupts between slices of 4 loop blocks of the task (up to ~35 us on pentium-133): a shorter interval is refused (cachepart.run), not merged into fewer interruptions
task_colours = 3  # range: 1..63; L2 colours given to the task when partitioned
phases = 4  # range: 1..16; interrupt phases tried (the paper reports the worst case) (quick: 1)
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %%
import numpy as np
from engine import Machine
from engine.profile import load_profile
from lab.results import Result, published, step
from lab.workloads import cachepart

paper = published()["cache_partitioning"]
place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
n = 32 if quick else 64
phases = 1 if quick else phases
res = Result("cache-partitioning", "cache partitioning by page colours from a user-level pager",
             paper["source"], parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile,
                                          "interval_us": interval_us, "task_colours": task_colours,
                                          "phases": phases,
                                          "placement_seed": placement_seed})

# %% [markdown]
# Four runs: alone, interrupted, partitioned alone, partitioned and interrupted; the
# interrupted ones at several phases of the timer, keeping the worst.

# %%
def run(partitioned, interrupted, phase=0.0):
    m = Machine(cpu_profile, seed=seed, placement_seed=place)
    return cachepart.run(m, partitioned=partitioned, interrupted=interrupted, n=n,
                         interval_us=interval_us, task_colours=tuple(range(task_colours)),
                         phase=phase)

step("uninterrupted")
alone = run(False, False)
step("interrupted")
hit = max((run(False, True, p / phases) for p in range(phases)), key=lambda r: r["task_cycles"])
step("partitioned")
part_alone = run(True, False)
part = max((run(True, True, p / phases) for p in range(phases)), key=lambda r: r["task_cycles"])
for name, r in (("uninterrupted", alone), ("interrupted (worst)", hit),
                ("partitioned, alone", part_alone), ("partitioned, interrupted (worst)", part)):
    print(f"{name:34} {r['task_ms']:8.2f} ms  {r['interruptions']:4} interruptions  "
          f"{r['task_l2_misses']:7} L2 misses of the task")

# %% [markdown]
# Paper and simulation side by side.  With `quick=True` the matrix is 32x32 (an eighth of the
# work), so the absolute times are not comparable then; the slowdowns still are.

# %%
scale = 1.0 if n == 64 else None
# another interval or partition than the paper's is another experiment: shown, not scored
paper_setup = (interval_us == cachepart.PAPER_INTERVAL_US
               and task_colours == cachepart.PAPER_TASK_COLOURS)
role = "prediction" if paper_setup else "illustration"
note = None if paper_setup else (
    f"every {interval_us:g} us, {task_colours} task colours; the paper's: every "
    f"{cachepart.PAPER_INTERVAL_US:g} us, {cachepart.PAPER_TASK_COLOURS} colours: shown, not scored")
rows = [("uninterrupted", "ms", alone["task_ms"], paper["uninterrupted_ms"]),
        ("interrupted, worst", "ms", hit["task_ms"], paper["interrupted_worst_ms"]),
        ("partitioned, worst", "ms", part["task_ms"], paper["partitioned_worst_ms"]),
        ("slowdown interrupted", "x", hit["task_ms"] / alone["task_ms"], paper["slowdown_interrupted"]),
        ("slowdown partitioned", "x", part["task_ms"] / alone["task_ms"], paper["slowdown_partitioned"])]
for bench, unit, sim, pap in rows:
    res.add_row(bench, "partitioned" if "partitioned" in bench else "unpartitioned",
                unit, round(sim, 4), pap if (unit == "x" or scale) else None, role, note=note)
    print(f"{bench:24} {unit:3} simulated {sim:8.2f}   paper {pap:8.2f}")
res.stats["task.l2_misses.alone"] = alone["task_l2_misses"]
res.stats["task.l2_misses.interrupted"] = hit["task_l2_misses"]
res.stats["task.l2_misses.partitioned"] = part["task_l2_misses"]

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6.4, 3.4))
labels = ["alone", "interrupted", "partitioned"]
sim = [alone["task_ms"], hit["task_ms"], part["task_ms"]]
pap = [paper["uninterrupted_ms"], paper["interrupted_worst_ms"], paper["partitioned_worst_ms"]]
x = np.arange(3)
ax.bar(x - 0.2, pap, 0.4, label="paper", color="#999999")
ax.bar(x + 0.2, sim, 0.4, label="simulated", color="#1f77b4")
ax.set_xticks(x, labels)
ax.set_ylabel("task time (ms)")
ax.set_title(f"64x64 matmul interrupted every {interval_us:g} µs ({cpu_profile})")
ax.legend()
fig.tight_layout()
res.add_figure(fig, "cache-partitioning.png")
res.write()

# %% [markdown]
# What one interruption costs the task, simulated and as implied by the paper's numbers (the
# task is interrupted once per interval of its own running time):

# %%
profile = load_profile(cpu_profile)  # constants only: no machine to place
mhz = profile["clock_mhz"]
sim_penalty = (hit["task_cycles"] - alone["task_cycles"]) / max(hit["interruptions"], 1)
paper_irqs = paper["interrupted_worst_ms"] * 1000 / cachepart.PAPER_INTERVAL_US  # its interval, not ours
paper_penalty = (paper["interrupted_worst_ms"] - paper["uninterrupted_ms"]) * 1000 * mhz / paper_irqs
line = [c for c in profile.caches if c.get("level") == 2][0]["line"]
dram = profile["memory_latency_cycles"]
print(f"simulated: {sim_penalty:8.0f} cycles per interruption (~{sim_penalty / dram:.0f} line fills from DRAM)")
print(f"paper:     {paper_penalty:8.0f} cycles per interruption (~{paper_penalty / dram:.0f} line fills from DRAM)")

# %% [markdown]
# **Reading the result.**  Half of the paper's claim holds in the model, half does not.
# *Holds:* with three colours the load can no longer evict the task's lines, so the
# partitioned task's time hardly changes when the load interrupts it (compare "partitioned,
# alone" with "partitioned, interrupted" above).  *Does not hold:* partitioning buys nothing
# over the unpartitioned interrupted run -- the two worst cases above are about equal, where
# the paper has 24.9 against 96.1 ms.  Two reasons, reported here, not fitted away:
#
# * Three colours are 12 KB of L2 for a 64 KB working set, so the partitioned task misses in
#   L2 even alone (its L2 misses above).  The paper pays for the small partition too, and
#   more than the model does (its partitioned slowdown is 2.29; the model's is the
#   "slowdown partitioned" row above).
# * The simulated *unpartitioned* penalty is far smaller than the paper's: between two
#   interruptions the task touches only the part of its working set that the i-k-j loop reaches
#   in 100 µs, and only that is refilled.  The paper's numbers imply roughly twice as many
#   refills per interruption as the model produces (the cell above): the real load also evicted
#   the task's lines from the 8 KB L1 and its TLB entries (the model does this too), and the
#   real task's inner loop may have reached more of its working set per interval.
#
# The uninterrupted time is longer than the paper's because the model charges every instruction
# one cycle (CPI 1.0 in the profile) where the Pentium pairs the loop's integer instructions.

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import ComparisonView
ComparisonView(labels, pap, sim, title="task time: paper vs simulated", unit="ms")
