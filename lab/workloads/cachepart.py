"""Cache partitioning (S97 §6.3): a real-time task and a cache-hostile load.

"64x64 matrix multiplication (64 KB data working set) interrupted every 100 us by a load that
maximizes cache conflicts; partitioned: the pager gives the task 3 of 64 L2 colours
exclusively."  The L2 is physically indexed and direct-mapped, so a frame's colour (its
frame number modulo L2 size / page size) decides which L2 lines it can occupy.  A user-level
pager that hands the task frames of its own colours only, and everybody else frames of the
other colours, shields the task from the load — at the price of a smaller cache for the task.

The task's time is the cycles spent while it runs, including the refills after each
interruption; the load's own cycles are not the task's.
"""
from dataclasses import dataclass

import numpy as np

from engine import ops as O
from .matmul import layout, reference_stream

TASK_BASE = 0x01000000
LOAD_BASE = 0x02000000
PAPER_INTERVAL_US = 100.0   # S97 §6.3: "interrupted every 100 us"
PAPER_TASK_COLOURS = 3      # S97 §6.3: "the pager gives the task 3 of 64 L2 colours"


@dataclass
class ColourPager:
    """Hands out frames: the task gets `task_colours` only, everybody else the rest."""
    machine: object
    colours: int
    task_colours: tuple = ()

    def frame(self, for_task, i):
        if not self.task_colours:
            return self.machine.alloc_page()
        own = list(self.task_colours)
        pool = own if for_task else [c for c in range(self.colours) if c not in own]
        return self.machine.alloc_page(colour=pool[i % len(pool)], colours=self.colours)


def l2_colours(machine):
    l2 = [c for c in machine.cache_config if c.get("level") == 2]
    if not l2:
        raise ValueError(f"profile {machine.profile.name} has no L2: nothing to partition")
    c = l2[0]
    return (c["size"] // c["ways"]) // machine.fmt.page_size, c


def run(machine, partitioned=False, interrupted=True, n=64, interval_us=PAPER_INTERVAL_US,
        instructions_per_iteration=7, task_colours=tuple(range(PAPER_TASK_COLOURS)),
        blocks_per_slice=4, order="ikj", phase=0.0):
    """Multiply once; returns a dict with the task's cycles, ms, interruptions and misses.

    `instructions_per_iteration`: a workload characteristic (estimate: fld, fmul, fadd,
    fstp and three of loop control for the i-k-j inner loop).  `phase` in [0, 1): where in
    the first interval the first interruption falls (the paper reports the worst case).
    The timer interrupts between slices of `blocks_per_slice` blocks of the loop: an
    `interval_us` shorter than a slice is a ValueError naming it, not fewer interruptions."""
    if not 0 <= phase < 1:
        raise ValueError(f"phase {phase} must be in [0, 1)")
    m = machine
    colours, l2 = l2_colours(m)
    pager = ColourPager(m, colours, tuple(task_colours) if partitioned else ())
    page = m.fmt.page_size
    task, load = m.new_space(), m.new_space()
    a, b, c, nbytes = layout(n, TASK_BASE, page)
    for i in range(nbytes // page):
        m.map(task, TASK_BASE + i * page, pager.frame(True, i), "rw")
    # the load sweeps as many pages as the L2 holds, each line once: every L2 set is hit
    load_pages = l2["size"] // page
    for i in range(load_pages):
        m.map(load, LOAD_BASE + i * page, pager.frame(False, i), "rw")
    line = l2["line"]
    load_ops = O.access("w", LOAD_BASE + np.arange(0, load_pages * page, line))
    # the task's stream in blocks of one (i, j): 2n reads, a write, and the block's instructions
    stream = reference_stream(n, a, b, c, order)
    charge = O.charge("user", n * instructions_per_iteration * m.cpi)
    blocks = np.concatenate([np.repeat(charge[None, :], n * n, axis=0), stream], axis=1)
    interval = interval_us * m.profile["clock_mhz"]
    m.switch(task)
    task_cycles, next_irq, irqs = 0, interval * (1 - phase), 0
    l2_index = [i for i, cc in enumerate(m.cache_config) if cc.get("level") == 2][0]
    l2_miss0 = int(m.cstat[l2_index, 1])
    load_l2_misses = 0
    for s in range(0, n * n, blocks_per_slice):
        r = m.run(blocks[s:s + blocks_per_slice].ravel(), check=False)
        task_cycles += r.cycles
        if interrupted and task_cycles >= next_irq:
            next_irq += interval
            irqs += 1
            if task_cycles >= next_irq:
                # the timer can only interrupt between slices: a second interval inside this
                # slice would have its interruption merged or late -- a count that is wrong
                raise ValueError(
                    f"interval_us {interval_us:g}: {interval:.0f} cycles are shorter than a slice "
                    f"of the task ({r.cycles} cycles, {blocks_per_slice} blocks of the loop); "
                    f"the interruptions of this interval cannot be placed")
            before = int(m.cstat[l2_index, 1])
            m.switch(load)
            with m.mode("user"):
                m.run(load_ops, check=False)
            m.switch(task)
            load_l2_misses += int(m.cstat[l2_index, 1]) - before
    mhz = m.profile["clock_mhz"]
    return {"task_cycles": task_cycles, "task_ms": task_cycles / mhz / 1000.0,
            "interruptions": irqs,
            "task_l2_misses": int(m.cstat[l2_index, 1]) - l2_miss0 - load_l2_misses}
