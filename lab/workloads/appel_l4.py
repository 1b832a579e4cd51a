"""Appel & Li's benchmarks on L4 (S97 Table 5): the handler is the pager of the application's
thread, a thread in its own address space (the benchmark's handlers rewritten for L4, as S97
did): the fault arrives as an IPC; *protect* is `fpage_unmap` of the write right (a flush with
reduced rights), *unprotect* a reply carrying a map item with write rights (L4's map only adds
rights to the mapping the page already has).  protN is the mutator's own flush of its region,
as aligned flexpages (64 + 32 + 4 pages).

    w = L4Appel(); l4_trap(w, 10).result()     # a driver's samples -> Measured
"""
import random
from enum import Enum

from engine import Machine, ops as O
from lab.l4 import L4Kernel, Pager, Fpage
from lab.workloads.appel_common import characteristic, footprint, _Samples

PAGE = 4096
PAGE_SHIFT = 12
L4_REGION = 0x10000000            # the mutator's region on L4 (512 KB aligned: protN's fpages)
MUTATOR_TEXT = 0x08048000         # the mutator's loop code and stack on L4 (as an ELF program)
MUTATOR_STACK = 0xBFFFE000


def aligned_fpages(base, npages, rights="rw"):
    """The fewest naturally aligned flexpages covering npages pages from `base` (L4 flushes
    and maps flexpages, not arbitrary ranges): 100 pages at an aligned base are 64 + 32 + 4."""
    out, va, end = [], base, base + npages * PAGE
    while va < end:
        k = PAGE_SHIFT
        while va % (1 << (k + 1)) == 0 and va + (1 << (k + 1)) <= end:
            k += 1
        out.append(Fpage(va, k, rights))
        va += 1 << k
    return out


class Action(Enum):
    """What the handler does with a fault (the benchmark decides)."""
    MAP = "map"                 # Fault: map the existing page
    UNPROT = "unprot"           # Trap, Appel2: map it again with write rights
    PROT1_UNPROT = "prot1+unprot"   # Appel1: flush "w" of the last unprotected page, then unprot


class AppelPager(Pager):
    """The benchmark's fault handler on L4: the pager of the mutator's thread, in its own
    address space.  Its frames come from sigma0 (idempotent: its page at va X is frame X); it
    also backs the mutator's code and stack pages.  `invoked` records the cycle counter (by
    category) when each fault message reached it: the end of the Trap benchmark's interval."""

    fault_instructions = 0          # the handler charges its own work after the time stamp

    def __init__(self, kernel, region, npages):
        super().__init__(kernel, "appel-handler")
        m = kernel.m
        self.region, self.npages = region, npages
        self.frames = [m.alloc_page() for _ in range(npages)]
        self.own = {name: m.alloc_page() for name in ("text", "stack")}       # its own pages
        self.lent = {MUTATOR_TEXT: m.alloc_page(), MUTATOR_STACK: m.alloc_page()}
        # touch them: each faults to sigma0, which maps the frame at its own address
        kernel.execute(self.thread, O.access("w", self.frames + sorted(self.own.values())
                                             + sorted(self.lent.values())), category="server")
        self.work_ops = footprint(m, "server", "handler", self.own["text"], self.own["stack"])
        self.action = Action.MAP
        self.invoked = []
        self.unprotected = None     # Appel1: the page to protect at the next fault

    def index(self, va):
        i = (va - self.region) // PAGE
        if not 0 <= i < self.npages:
            raise ValueError(f"appel-handler: fault at 0x{va:x} outside the region "
                             f"0x{self.region:x}+{self.npages} pages")
        return i

    def page_fault(self, thread, va, write):
        self.invoked.append(self.k.m.by_category())
        page = va & ~(PAGE - 1)
        self.k.execute(self.thread, self.work_ops, category="server")
        if page in self.lent:                    # the mutator's code or stack
            return self.map_item(self.lent[page], "rwx", send_base=page)
        i = self.index(va)
        if self.action is Action.PROT1_UNPROT:
            if self.unprotected is not None and self.unprotected != i:
                self.prot(self.unprotected)
            self.unprotected = i
        return self.map_item(self.frames[i], "rw", send_base=page)

    def prot(self, i):
        """Take the write right from every mapping derived from page i (the mutator's)."""
        self.k.fpage_unmap(self.task, Fpage(self.frames[i], PAGE_SHIFT), rights="w")


class L4Appel:
    """An L4 kernel with the handler (pager) and the mutator task, its region mapped;
    `placement_seed` is the Machine's frame order (None: lowest first)."""

    def __init__(self, cpu_profile="pentium-133", seed=1, npages=None, placement_seed=None):
        self.npages = int(npages or characteristic("pages"))
        self.k = L4Kernel(Machine(cpu_profile, seed=seed, placement_seed=placement_seed))
        self.m = self.k.m
        self.handler = AppelPager(self.k, L4_REGION, self.npages)
        self.task = self.k.task_new("mutator", pager=self.handler)
        self.t = self.task.thread
        self.loop = footprint(self.m, "user", "mutator", MUTATOR_TEXT, MUTATOR_STACK)
        self.rng = random.Random(seed)

    def va(self, i):
        return L4_REGION + i * PAGE

    def write(self, i):
        """One iteration of the benchmark loop: its own work, then the store to page i."""
        self.k.execute(self.t, O.concat(self.loop, O.access("w", [self.va(i)])))

    def region_flush(self, rights):
        """The mutator flushes `rights` from its own region (protN with "w"; "rwx" unmaps)."""
        for fp in aligned_fpages(L4_REGION, self.npages):
            self.k.fpage_unmap(self.task, fp, rights=rights, own=True)

    def touch_all(self):
        self.k.execute(self.t, O.concat(self.loop, O.access(
            "w", [self.va(i) for i in range(self.npages)])))


def l4_fault(w, n):
    """Fault: each write to a page the mutator does not have yet goes to the pager, which maps
    its existing page.  Rounds over the region, unmapping it between rounds (not timed)."""
    w.handler.action = Action.MAP
    s, done = _Samples(w.m), 0
    w.touch_all()                                 # warm-up round
    while done < n:
        w.region_flush("rwx")
        for i in range(min(w.npages, n - done)):
            t0 = s.mark()
            w.write(i)
            s.add(t0)
            done += 1
    return s


def l4_trap(w, n):
    """Trap: the time from the write to a write-protected page until the handler runs."""
    w.handler.action = Action.UNPROT
    w.touch_all()
    s = _Samples(w.m)
    for j in range(n + 1):
        i = j % w.npages
        w.k.fpage_unmap(w.task, Fpage(w.va(i), PAGE_SHIFT), rights="w", own=True)
        t0 = s.mark()
        before = len(w.handler.invoked)
        w.write(i)
        if len(w.handler.invoked) != before + 1:
            raise AssertionError(f"l4_trap: write {j} did not reach the handler once")
        if j:                                     # the first one warms the path
            s.add(t0, w.handler.invoked[before])
    return s


def l4_appel1(w, n):
    """Appel1: write a random protected page; the handler protects the last unprotected page
    and unprotects this one.  Per access."""
    w.handler.action = Action.PROT1_UNPROT
    w.touch_all()
    w.region_flush("w")                           # every page protected
    w.handler.unprotected = None
    s = _Samples(w.m)
    for j in range(n + 1):
        choices = [i for i in range(w.npages) if i != w.handler.unprotected]
        i = choices[w.rng.randrange(len(choices))]
        t0 = s.mark()
        w.write(i)
        if j:
            s.add(t0)
    return s


def l4_appel2(w, rounds):
    """Appel2: protect the whole region (protN), then write every page in random order; the
    handler unprotects each.  Per page, protN included."""
    w.handler.action = Action.UNPROT
    w.touch_all()
    s = _Samples(w.m)
    for r in range(rounds + 1):
        order = list(range(w.npages))
        w.rng.shuffle(order)
        t0 = s.mark()
        w.region_flush("w")
        for i in order:
            w.write(i)
        if r:
            s.add(t0, weight=w.npages)
    return s
