# %% [markdown]
# # Mach memory objects: the kernel as cache manager (R87 Table 7-1, M87 §9)
#
# > "Compilation of a small program cached in memory on a SUN 3/160 running Mach is twice as
# > fast as under SunOS 3.2 (Mach uses the bulk of physical memory as a cache of memory
# > objects; the UNIX buffer cache is normally 10% of physical memory)."
# > "In a large system compilation the total number of I/O operations can be reduced by a
# > factor of 10."  — Young et al. 1987, §9 (the lecture: "compiling a small program cached
# > in memory ... twice as fast", "I/O operations reduced by factor of 10")
#
# Rashid et al. 1987 (Table 7-1) compare Mach with 4.3BSD-derived UNIX on four machines:
# zero-fill of 1 KB, fork of a 256 KB process, and reading a 2.5 MB and a 50 KB file twice.
# Here both systems run on one simulated machine: **Mach** (`lab.mach`) reads files through
# memory objects whose pager is a file server over a simulated disk, and caches their pages
# in all of memory; **UNIX** (`lab.mono`, native) reads through a buffer cache of 10% of
# memory and — like 4.3BSD, which had no copy-on-write — copies a forking process's memory
# eagerly.  The paper's machines are not ours, so each row compares the *ratio* Mach/UNIX.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"  # choices: pentium-133, x86-64-modern, vax-8200; the machine of the predictions
memory_mb = 0  # range: 16..768 or 0; machine memory in MB; 0: the workload profile's; at most 768: the UNIX side (native Linux) maps all memory at 0xD0000000 of the 32-bit space of pentium-133 and vax-8200
compile_units = 0  # range: 1..1000 or 0; source files of the compile job; 0: the workload profile's (quick: at most 12)
memory_sweep_mb = [16, 24, 32, 64]  # range: 16..768; memory sizes (MB) tried for the 2.5 MB second read, any order (quick: the smallest and the largest); at most 768 as memory_mb
era_profile = "vax-8200"  # choices: vax-8200, pentium-133, x86-64-modern; a machine of the paper's speed class
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %%
import re

import numpy as np
from lab.results import Result, published, step
from lab.workloads import mach_objects as mo

t71 = published()["mach_r87_table7_1"]
place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
claims = published()["mach_m87_claims"]
units = compile_units or mo.characteristic("compile_units")
units = min(units, 12) if quick else units
sweep = sorted(set(memory_sweep_mb))
sweep = sorted({sweep[0], sweep[-1]}) if quick else sweep
mem = memory_mb or None
res = Result("mach-memory-objects",
             "Mach memory objects: the kernel as cache manager vs the 1987 UNIX buffer cache",
             f"{t71['source']}; M87 §9",
             parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile,
                         "memory_mb": memory_mb, "compile_units": compile_units,
                         "memory_sweep_mb": memory_sweep_mb, "era_profile": era_profile,
                         "placement_seed": placement_seed})
for c in claims["claims"]:
    print("claim:", c)

# %% [markdown]
# ## The configuration
#
# Both systems boot on the same machine.  The Mach kernel may keep pages of memory objects in
# every frame but its page-table reserve; the UNIX buffer cache is 10% of memory.  The disk
# model is the same for both: every page-sized request waits the CPU profile's
# `disk_ms_per_request`, with no seek distance, read-ahead, clustering, or overlap of I/O
# with computation.

# %%
step("Table 7-1 on Mach")
mach = mo.table("mach", cpu_profile, seed, mem, quick, placement_seed=place)
step("Table 7-1 on UNIX")
unix = mo.table("unix", cpu_profile, seed, mem, quick, placement_seed=place)
mhz = mach["clock_mhz"]
page = mach["page"]
disk_ms = mach["disk_ms"]
print(f"machine: {cpu_profile}, {mhz} MHz, {mach['memory_bytes'] >> 20} MB, {page}-byte pages, "
      f"disk {disk_ms} ms per request")
print(f"Mach cache of memory objects: up to {mach['cache_pages']} pages "
      f"({mach['cache_pages'] * page / mach['memory_bytes']:.0%} of memory)")
print(f"UNIX buffer cache:            {unix['cache_pages']} pages "
      f"({unix['cache_pages'] * page / unix['memory_bytes']:.0%} of memory)")
print(f"pages copied per fork: Mach {mach['cow_copies_per_fork']:.0f}, "
      f"UNIX {unix['cow_copies_per_fork']:.0f} (4.3BSD's eager copy)")

# %% [markdown]
# ## Table 7-1: paper and simulation side by side
#
# Each published row gives Mach and UNIX times on one machine; the paper's ratio is
# mach/unix.  The simulation has one machine, so the same simulated ratio stands beside the
# ratio of every machine the paper measured.

# %%
KEY = {"zero fill 1K": "zero_fill", "fork 256K": "fork",
       "read 2.5M file, first time": "read_big_1", "read 2.5M file, second time": "read_big_2",
       "read 50K file, first time": "read_small_1", "read 50K file, second time": "read_small_2"}


def key_of(operation):
    return next(v for k, v in KEY.items() if operation.startswith(k))


labels, paper_ratio, sim_ratio = [], [], []
print(f"{'operation':52} {'Mach ms':>10} {'UNIX ms':>10} {'sim':>7} {'paper':>7}   I/Os M/U")
for row in t71["rows"]:
    k = key_of(row["operation"])
    sm, su = mach["samples"][k], unix["samples"][k]
    ratio, pap = sm.cycles / su.cycles, row["mach"] / row["unix"]
    labels.append(row["operation"])
    paper_ratio.append(pap)
    sim_ratio.append(ratio)
    res.add_row(row["operation"], "mach/unix", "ratio", ratio, pap, "prediction")
    print(f"{row['operation']:52} {sm.ms(mhz):10.3f} {su.ms(mhz):10.3f} {ratio:7.3f} {pap:7.3f}"
          f"   {sm.io:.0f}/{su.io:.0f}")
for label, k in KEY.items():
    for name, t in (("mach", mach), ("unix", unix)):
        res.add_row(label, name, "ms", t["samples"][k].ms(mhz), None, "prediction",
                    note=f"absolute time on {cpu_profile}; the paper's machines differ")
        res.stats[f"{name}.{k}.disk_requests"] = t["samples"][k].io
res.stats["memory_bytes"] = mach["memory_bytes"]

# %% [markdown]
# Where the cycles of the two in-memory operations go (one measurement each, by category):

# %%
cats = sorted({c for t in (mach, unix) for k in ("zero_fill", "fork")
               for c, v in t["samples"][k].by_category.items() if v})
print(f"{'':18}" + "".join(f"{c:>13}" for c in cats))
for k in ("zero_fill", "fork"):
    for name, t in (("mach", mach), ("unix", unix)):
        bc = t["samples"][k].by_category
        print(f"{k + ' ' + name:18}" + "".join(f"{bc.get(c, 0):13.0f}" for c in cats))
line = mach["line"]
zf_m, zf_u = mach["samples"]["zero_fill"], unix["samples"]["zero_fill"]
print(f"\nboth clear the zero-fill frame through the caches ({page // line} lines stored): "
      f"'cache_miss' Mach {zf_m.by_category.get('cache_miss', 0):.0f}, "
      f"UNIX {zf_u.by_category.get('cache_miss', 0):.0f} cycles per page")

# %% [markdown]
# ## The compile-like job
#
# A large compilation (the workload characteristics are in `lab/profiles/mach_objects.json`):
# each unit reads the preprocessor, its source, the headers it includes and the compiler and
# assembler executables, then computes in proportion to the text it preprocessed.  The job
# runs twice on a fresh system; the second pass is the "compilation cached in memory".

# %%
step("compile job on Mach")
cm = mo.compile_job("mach", cpu_profile, seed, mem, units=units, placement_seed=place)
step("compile job on UNIX")
cu = mo.compile_job("unix", cpu_profile, seed, mem, units=units, placement_seed=place)
job = cm["job"]
print(f"{units} units, {len(job.files)} files, {job.total_bytes / 2**20:.2f} MB distinct "
      f"({job.total_bytes / cm['memory_bytes']:.0%} of memory); "
      f"{job.reads_per_pass / 2**20:.1f} MB read per pass")
fits = job.total_bytes <= cu["cache_pages"] * page
print("the job " + ("fits in" if fits else "is larger than") + " the UNIX buffer cache and "
      + ("fits in" if job.total_bytes <= cm["cache_pages"] * page else "is larger than")
      + " Mach's cache of memory objects")
for name, c in (("Mach", cm), ("UNIX", cu)):
    for i, p in enumerate(c["passes"], 1):
        print(f"{name} pass {i}: {p.ms(mhz) / 1000:8.2f} s  {p.io:6.0f} disk I/Os  "
              f"(of which disk wait {p.by_category.get('disk', 0) / mhz / 1e6:6.2f} s)")
io_m = sum(p.io for p in cm["passes"])
io_u = sum(p.io for p in cu["passes"])
io_factor = io_u / io_m
speedup = cu["passes"][1].cycles / cm["passes"][1].cycles
paper_io = int(re.search(r"factor of (\d+)", claims["claims"][1]).group(1))
paper_speedup = {"twice": 2}[re.search(r"(twice) as fast", claims["claims"][0]).group(1)]
res.add_row("compile job: disk I/O operations, both passes (UNIX/Mach)", "unix/mach", "x",
            io_factor, paper_io, "prediction")
res.add_row("compile job cached in memory: speed-up (UNIX time/Mach time, second pass)",
            "unix/mach", "x", speedup, paper_speedup, "prediction")
print(f"\nI/O reduction factor: simulated {io_factor:.2f}   paper {paper_io}")
print(f"speed-up when cached:  simulated {speedup:.2f}   paper {paper_speedup}")
res.stats.update({"compile.units": units, "compile.distinct_bytes": job.total_bytes,
                  "compile.mach.io": [p.io for p in cm["passes"]],
                  "compile.unix.io": [p.io for p in cu["passes"]],
                  "unix.buffer_cache_pages": unix["cache_pages"],
                  "mach.max_resident_pages": mach["cache_pages"],
                  "mach.fork.pages_copied": mach["cow_copies_per_fork"],
                  "unix.fork.pages_copied": unix["cow_copies_per_fork"]})

# %% [markdown]
# Which pages UNIX reads again in the second pass: the files its LRU buffer cache could not
# keep.  The executables and the common headers are read by every unit and stay; each source
# is read once per pass and is gone by the time the next pass reaches it.

# %%
size = dict(job.files)
pages = lambda names: sum(-(-size[f] // page) for f in names)
src_pages = pages([n for n, _ in job.files if n.endswith(".c")])
print(f"distinct pages {pages(size)}; of them source pages {src_pages}; "
      f"UNIX cache {cu['cache_pages']} pages")
print(f"UNIX second-pass I/Os {cu['passes'][1].io:.0f}; Mach second-pass I/Os {cm['passes'][1].io:.0f}")

# %% [markdown]
# ## The 2.5 MB file against the size of memory
#
# The UNIX second read is as slow as the first only while the file is larger than its buffer
# cache.  The crossover moves with memory; Mach's does not, as long as the file fits in the
# cache of memory objects.

# %%
step("memory sweep")
big = mo.characteristic("big_file_bytes")
sweep_ratio = []
for mb in sweep:
    m2 = mo.read_twice("mach", big, cpu_profile, seed, mb, placement_seed=place)[1]
    u2 = mo.read_twice("unix", big, cpu_profile, seed, mb, placement_seed=place)[1]
    sweep_ratio.append(m2.cycles / u2.cycles)
    print(f"{mb:4} MB: UNIX buffer cache {mo.buffer_cache_pages(mb << 20, page) * page / 2**20:5.1f} MB"
          f"   second read Mach {m2.ms(mhz):9.2f} ms  UNIX {u2.ms(mhz):9.2f} ms  ratio {sweep_ratio[-1]:.4f}")
res.stats["sweep.memory_mb"] = sweep
res.stats["sweep.read_big_2.ratio"] = sweep_ratio

# %%
import matplotlib.pyplot as plt
fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
x = np.arange(len(labels))
a1.bar(x - 0.2, paper_ratio, 0.4, label="paper", color="#999999")
a1.bar(x + 0.2, sim_ratio, 0.4, label=f"simulated ({cpu_profile})", color="#1f77b4")
a1.axhline(1, color="k", lw=0.6)
a1.set_yscale("log")
a1.set_xticks(x, [l.replace(", elapsed", "").replace(" file", "") for l in labels],
              rotation=60, ha="right", fontsize=7)
a1.set_ylabel("Mach / UNIX (log)")
a1.set_title("R87 Table 7-1: Mach/UNIX")
a1.legend(fontsize=8)
w = 0.35
for i, (name, c, col) in enumerate((("Mach", cm, "#1f77b4"), ("UNIX", cu, "#d62728"))):
    a2.bar(np.arange(2) + (i - 0.5) * w, [p.io for p in c["passes"]], w, label=name, color=col)
a2.set_xticks([0, 1], ["pass 1", "pass 2 (cached)"])
a2.set_ylabel("disk I/O operations")
a2.set_title(f"compile job: I/O x{io_factor:.2f} (paper x{paper_io}),\n"
              f"cached speed-up x{speedup:.2f} (paper x{paper_speedup})", fontsize=10)
a2.legend(fontsize=8)
a3.plot(sweep, sweep_ratio, "o-", color="#1f77b4", label="simulated")
a3.axhline(paper_ratio[labels.index(next(l for l in labels if key_of(l) == "read_big_2"))],
           color="#999999", ls="--", label="paper (VAX 8200)")
crossover = big / mo.characteristic("unix_buffer_cache_fraction") / 2**20
a3.axvline(crossover, color="#d62728", lw=0.8, ls=":", label="buffer cache = file size")
a3.set_yscale("log")
a3.set_xlabel("physical memory (MB)")
a3.set_ylabel("Mach / UNIX, 2.5 MB second read")
a3.set_title("second read vs memory size")
a3.legend(fontsize=8)
fig.tight_layout()
res.add_figure(fig, "mach-memory-objects.png")
res.write()

# %% [markdown]
# ## Why the model differs
#
# The paper's relative costs of CPU work and disk are those of 1987 machines.  From the
# paper's own numbers and the simulation's:

# %%
rows = {key_of(r["operation"]): r for r in t71["rows"] if "VAX 8200" in r["operation"]}
pb1, pb2 = rows["read_big_1"], rows["read_big_2"]
npages = big // page
print(f"paper (VAX 8200): Mach's cached 2.5 MB re-read costs {pb2['mach'] / pb1['mach']:.3f} of a "
      f"read from disk ({pb2['mach'] * 1000 / npages:.2f} ms per {page // 1024} KB, disk "
      f"{pb1['unix'] * 1000 / npages:.1f} ms per {page // 1024} KB)")
sb1, sb2 = mach["samples"]["read_big_1"], mach["samples"]["read_big_2"]
print(f"simulated:        Mach's cached 2.5 MB re-read costs {sb2.cycles / sb1.cycles:.4f} of a "
      f"read from disk ({sb2.ms(mhz) / npages:.3f} ms per {page // 1024} KB, disk {disk_ms} ms)")
print(f"-> handling a cached page is {(pb2['mach'] / pb1['mach']) / (sb2.cycles / sb1.cycles):.0f}x "
      f"cheaper relative to the disk on {cpu_profile} than on the VAX 8200")
print(f"zero fill: Mach {zf_m.cycles:.0f} cycles, UNIX {zf_u.cycles:.0f}: ratio "
      f"{zf_m.cycles / zf_u.cycles:.2f}")
fk_m, fk_u = mach["samples"]["fork"], unix["samples"]["fork"]
print(f"fork 256K: Mach {fk_m.cycles:.0f} cycles (write-protects {mo.characteristic('fork_bytes') // page} "
      f"pages), UNIX {fk_u.cycles:.0f} (copies them, one fault each: "
      f"{fk_u.by_category.get('fault', 0):.0f} cycles of exceptions)")

# %% [markdown]
# ## The same table on a machine of 1987's speed class
#
# The explanation above can be tested.  Run Table 7-1 again, with the same kernels and the same
# programs, on `vax-8200`: a VAX-11/780-class CPU profile (5 MHz, about 10 cycles per
# instruction, an 8 KB cache, a TB with the 11/780's 64 KB reach, an RA81-class disk).  The
# VAX 8200 was built to run at the 11/780's speed.  Every value in
# `engine/profiles/vax-8200.json` comes from the machine's documentation or is a marked
# estimate; none is fitted to this table.  The engine keeps its x86 page tables, so this is a
# machine of the paper's *speed class*, not a VAX.  These rows are illustrations: the
# predictions above stay those of `cpu_profile`.

# %%
step(f"Table 7-1 on {era_profile}")
era = {name: mo.table(name, era_profile, seed, mem, quick, placement_seed=place)
       for name in ("mach", "unix")}
era_mhz = era["mach"]["clock_mhz"]
print(f"{era_profile}: {era_mhz} MHz, disk {era['mach']['disk_ms']} ms per request")
print(f"{'operation':52} {cpu_profile:>12} {era_profile:>12} {'paper':>7}")
for row in t71["rows"]:
    k = key_of(row["operation"])
    now = mach["samples"][k].cycles / unix["samples"][k].cycles
    then = era["mach"]["samples"][k].cycles / era["unix"]["samples"][k].cycles
    pap = row["mach"] / row["unix"]
    print(f"{row['operation']:52} {now:12.4f} {then:12.4f} {pap:7.3f}")
    res.add_row(row["operation"], f"mach/unix ({era_profile})", "ratio", then, pap,
                "illustration", note=f"the same programs on CPU profile {era_profile}")
print(f"\nabsolute times, VAX 8200 rows (s): simulated on {era_profile} / paper")
for row in t71["rows"]:
    if "VAX 8200" in row["operation"]:
        k = key_of(row["operation"])
        sm, su = (era[n]["samples"][k].ms(era_mhz) / 1000 for n in ("mach", "unix"))
        print(f"  {row['operation'].replace(', elapsed (VAX 8200)', ''):28} Mach {sm:8.2f} / "
              f"{row['mach']:<5g} "
              f"UNIX {su:8.2f} / {row['unix']:<5g}")
        res.add_row(row["operation"], f"mach ({era_profile})", "s", sm, row["mach"],
                    "illustration", note=f"absolute time on CPU profile {era_profile}")
        res.add_row(row["operation"], f"unix ({era_profile})", "s", su, row["unix"],
                    "illustration", note=f"absolute time on CPU profile {era_profile}")
res.write()

# %% [markdown]
# On the slower CPU a cached page costs about what it cost on the paper's VAX 8200: Mach's
# second read of the 2.5 MB file takes about as long as the paper's 1.4 s.  That ratio moves
# from a factor of about 40 below the paper's to about 3.  The rest is the disk.  Every request
# here pays an average seek, but a file that is read in order mostly seeks only to the next
# track, so the simulated UNIX reads take nearly three times the paper's 11 s.  The fork ratio
# and the 50 KB second read move toward the paper's too.  The first reads move away from it:
# they go through Mach 3.0's external pager, whose messages and copies cost more on a slow
# CPU, while the Mach of 1987 read files through a pager inside its kernel.  Zero fill moves
# away a little: Mach 3.0's longer fault path (see below) weighs more when instructions are
# slow.

# %% [markdown]
# **Reading the result.**
#
# * **Reads from disk** (first time, both files): both systems make one disk request per
#   page and the disk dominates, so the simulated ratio is close to 1.  The paper agrees for
#   the 2.5 MB file; its faster Mach read of the 50 KB file cannot come out of this model, in
#   which both systems issue the same requests at the same fixed cost — read-ahead,
#   clustering, seek distances and file-system layout are not modelled.
# * **Second read of 2.5 MB**: this is the paper's point, and the model reproduces its
#   mechanism — the file is larger than the 10% buffer cache, so UNIX reads every page from
#   the disk again, while Mach finds the pages of the memory object still cached.  The
#   simulated ratio is much smaller than the paper's because handling a cached page became far
#   cheaper from the VAX 8200 to the simulated CPU, while the disk got only a little faster
#   (the cell above computes both per-page costs and the factor between them; on the
#   1987-class profile the factor shrinks from about 40 to about 4).  The sweep shows
#   the condition: once the buffer cache holds the whole file, UNIX catches up.  The memory
#   size (`memory_mb`) is a documented estimate of a 1987 machine, not fitted.
# * **Second read of 50 KB**: both systems have it cached; Mach maps the pages of the object,
#   UNIX copies them out of the buffer cache.
# * **fork 256K**: copy-on-write against 4.3BSD's eager copy.  Mach only write-protects the
#   parent's pages; UNIX copies each one.  The UNIX side pays, beyond 4.3BSD's copy, one page
#   fault per page (lab.mono's fork is copy-on-write and the workload forces the copy; the
#   cell above prints the exception cycles), so it is somewhat slower than a true eager copy.
#   The simulated Mach advantage is far larger than the paper's: on the Pentium a page copy is
#   memory-bound -- every source line comes from L2 or DRAM and every stored line drains
#   through the write buffers, since the L1 does not allocate on writes -- while the kernel
#   work of creating a task and copying its map is cheap; on the 1987 machines a copy cost
#   little next to that fixed work.
# * **zero fill 1K**: both kernels clear the frame through the caches (its stores miss the
#   write-no-allocate L1 line by line), so the clearing costs the same.  In the table of
#   categories above it sits in different columns: Mach's `bzero` is charged as `copy` (1024
#   cycles at the profile's copy rate), Linux's `clear_page` (1030 instructions) inside
#   `kernel`.  What is left is Mach 3.0's longer fault path (`vm_fault`: map lookup, object
#   chain, pmap_enter) against Linux 2.0's short anonymous-page fault (`do_page_fault` and
#   `do_anonymous_page`).  The paper's Mach advantage came from 4.3BSD's heavier zero-fill
#   path, which the lab's UNIX (Linux 2.0 on lab.mono) does not have.
# * **The compile job**: Mach needs fewer disk operations and is faster once the job is
#   cached, but by less than the paper claims.  With two passes the reduction factor cannot
#   exceed 2: the executables and common headers are read by every unit and stay in UNIX's LRU
#   cache, and only the sources — read once per pass — are read again.  The job's computation
#   (`compile_instructions_per_byte`, an estimate) dominates its time, so the disk time saved
#   is a modest fraction of it.  Effects the model leaves out widen the gap in the paper:
#   temporary files between the compiler's passes, executables paged outside the buffer cache,
#   writes, and many more passes over the same headers in a real system build.  With
#   `quick=True` the job is smaller than the UNIX buffer cache (printed above), so UNIX caches
#   all of it too and the claims rows are not comparable.
#
# Kernel path lengths are estimates, apart from the few the calibration notebook fits
# (marked "calibrated on …" in lab/profiles, DESIGN §4); every number above is computed, so a
# rebuild after a refit updates it.

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import ComparisonView
ComparisonView([l.split(",")[0][:22] + " " + l[l.rfind("("):] for l in labels], paper_ratio,
               sim_ratio, title="Table 7-1, Mach/UNIX: paper vs simulated", unit="ratio")
