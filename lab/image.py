"""A kernel's image in memory: text and data regions whose lines its paths touch.

Executing a path (`KernelImage.run`) charges its instructions and runs its code fetches and
data references through the engine in the *current* address space, so a path's cost includes
the TLB misses and cache misses that its footprint causes there: a Linux kernel mapped with
4 MB global pages refills almost nothing after a switch; a Linux server in a user task
mapped with 4 KB pages refills its working set (DESIGN.md §4).

Layout: paths are laid out in the profile file's order (`KernelProfile.layout`), so a path
appended to the file leaves the others in place; path P's text is [text + off(P), +code_bytes),
its data [data + doff(P), +data_bytes).  Shared code is not modelled separately: each path's
footprint is its own lines.
"""
import numpy as np

from engine import ops as O
from engine.core import S_MODE

LINE = 32


class KernelImage:
    """Text and data of one kernel, mapped into one or more address spaces.

    `text_va`/`data_va`: where it lives (`data_va` None: the data follows the text in the
    same frames, page-aligned, as in a kernel loaded in one piece -- with the text and the
    data in separately aligned large pages, both would start at the same colour of a
    direct-mapped cache and evict each other); `large`: map with large pages (4 MB on
    x86-32) when the format allows; `global_`: global pages (survive CR3 loads)."""

    def __init__(self, machine, profile, text_va, data_va, extra_data=0, large=False,
                 global_=False, line=None):
        self.m = machine
        self.profile = profile
        self.text_va, self.data_va = text_va, data_va
        self.large, self.global_ = large, global_
        self.line = line or min((c["line"] for c in machine.cache_config), default=LINE)
        self.code_off, self.data_off = {}, {}
        t = d = 0
        for name in profile.layout:
            ins, cb, db = profile.path(name)
            self.code_off[name], self.data_off[name] = t, d
            t += self._round(cb)
            d += self._round(db)
        self.text_bytes, self.data_bytes = max(t, 1), max(d, 1) + extra_data
        self.contiguous = data_va is None
        if self.contiguous:
            ps = machine.fmt.page_size
            self.data_va = text_va + -(-self.text_bytes // ps) * ps
        self._frames = []
        self._ops = {}
        self._batches = {}          # (name, category) or steps -> engine Batch

    def _round(self, n):
        return -(-int(n) // self.line) * self.line

    def _pages(self, nbytes):
        ps = (1 << self.m.fmt.level_shift(self.m.fmt.levels - 2)) if self.large else self.m.fmt.page_size
        return ps, -(-nbytes // ps)

    def place(self):
        """Allocate frames for text and data (once); returns [(va, pa, perms, size)]."""
        if self._frames:
            return self._frames
        regions = ((self.text_va, self.text_bytes, "rx"), (self.data_va, self.data_bytes, "rw"))
        if self.contiguous:         # one piece (x86-32 has no NX: the text is executable anyway)
            regions = ((self.text_va, self.data_va - self.text_va + self.data_bytes, "rwx"),)
        for va, nbytes, perms in regions:
            ps, n = self._pages(nbytes)
            for i in range(n):
                if ps == self.m.fmt.page_size:
                    pa = self.m.alloc_page()
                else:   # a large page needs contiguous, aligned frames
                    pa = self._alloc_large(ps, min(ps, nbytes - i * ps))
                self._frames.append((va + i * ps, pa, perms, ps))
        return self._frames

    def _alloc_large(self, ps, used):
        """An aligned large page whose first `used` bytes hold the image: only those frames
        are reserved; the rest stay free for others (as Linux's 4 MB direct map covers frames
        the kernel gives out)."""
        fs = self.m.fmt.page_size
        k = ps // fs
        mem = self.m.memory
        free = mem._free
        need = -(-used // fs)
        for start in range(k, mem.nframes - k + 1, k):
            if free[start:start + need].all():
                for f in range(start, start + need):
                    mem.alloc_frame_at(f)
                return start * fs
        raise MemoryError(f"no {ps >> 20} MB of contiguous aligned frames for a large page")

    def map_into(self, sid):
        """Map text and data into space `sid`."""
        for va, pa, perms, ps in self.place():
            self.m.map(sid, va, pa, perms, global_=self.global_, large=ps != self.m.fmt.page_size)

    def path_ops(self, name, category):
        """The op batch of one execution of path `name` (cached per path and category)."""
        key = (name, category)
        if key not in self._ops:
            ins, cb, db = self.profile.path(name)
            code = O.access("x", O.lines(self.text_va + self.code_off[name], cb, self.line)) \
                if cb else np.zeros(0, np.int64)
            data = O.access("r", O.lines(self.data_va + self.data_off[name], db, self.line)) \
                if db else np.zeros(0, np.int64)
            # interleave code and data so both caches see the path's order
            self._ops[key] = O.concat(O.mode(category), O.charge(category, ins * self.m.cpi),
                                      code, data)
        return self._ops[key]

    def run_many(self, steps):
        """Execute the paths `steps` ((name, category), ...) one after the other in one engine
        call: each path's batch begins with its own mode, so the concatenation charges
        exactly what running them one by one does (kernel calls run several paths in a row)."""
        b = self._batches.get(steps)
        if b is None:
            b = self._batches[steps] = self.m.batch(
                O.concat(*(self.path_ops(n, c) for n, c in steps)))
        self.m.defer(b)

    def run(self, name, category="kernel", on_fault=None):
        """Execute path `name` once in the current space.  A fault is a bug (the image is not
        mapped where the path runs) and raises engine.PageFault, unless `on_fault` resolves
        it (then the engine's RunResult is returned; otherwise None).  Without `on_fault` the
        machine may hold the batch back and run it with the next ones (`Machine.defer`: the
        same cycles, one engine call)."""
        if on_fault is None:
            b = self._batches.get((name, category))
            if b is None:
                b = self._batches[(name, category)] = self.m.batch(self.path_ops(name, category))
            self.m.defer(b)
            return None
        m = self.m
        st = m._st
        old = st[S_MODE]            # the batch sets the path's mode itself (its first op)
        try:
            return m.run(self.path_ops(name, category), on_fault=on_fault, check=False)
        finally:
            st[S_MODE] = old
