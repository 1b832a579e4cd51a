"""The physical map layer: what the kernel has entered into the engine's page tables.

Mach keeps the machine-independent map (`VMMap`) apart from the machine-dependent `pmap`
(Rashid et al. 1987 §4): the pmap holds only what faults have entered and may lose any
mapping at any time.  Here each change goes to the engine (`Machine.map/unmap/protect`, which
also drop the TLB entry for the page), and a reverse map (the pv list: frame -> mappings)
lets the kernel take a page away from every task at once (pageout, flush, lock).

Page tables are the pmap's own memory: pmap_create zeroes a page directory, pmap_expand a page
table the first time a mapping needs one (the kernel's page-clear, `zero_page`); the kernel's
own tables are shared by every space (lab/ptclear.py).
"""
from lab.ptclear import TableFrames

from .vm_map import VMProt


def _perm_text(prot):
    prot = VMProt(prot)
    if not prot & VMProt.READ and prot:
        prot |= VMProt.READ          # x86 cannot map write- or execute-only
    t = "r" + ("w" if prot & VMProt.WRITE else "") + ("x" if prot & VMProt.EXECUTE else "")
    return t


class Pmaps:
    def __init__(self, machine, zero_page=None):
        self.m = machine
        self.maps = {}          # space id -> {va: (pa, prot)}
        self.pv = {}            # pa -> {(space, va): True}   (insertion ordered)
        self.zero_page = zero_page      # zero_page(pa): the kernel clears a frame (None: free)
        self.tables = TableFrames(machine)

    def create(self, sid):
        """pmap_create for a space whose kernel part is mapped: zero its page directory."""
        self.maps[sid] = {}
        self.tables.adopt(sid)
        if self.zero_page is not None:
            self.zero_page(self.m.root(sid))

    def destroy(self, sid):
        for va in list(self.maps.get(sid, {})):
            self.remove(sid, va)
        self.maps.pop(sid, None)
        self.tables.forget(sid)

    def lookup(self, sid, va):
        return self.maps[sid].get(va)

    def enter(self, sid, va, pa, prot):
        """Map page `va` of space `sid` to frame `pa` with `prot` (replacing what was there)."""
        cur = self.maps[sid].get(va)
        if cur is not None:
            if cur == (pa, int(prot)):
                return
            self.remove(sid, va)
        if prot == VMProt.NONE:
            return
        self.m.map(sid, va, pa, _perm_text(prot))
        if self.zero_page is not None:
            for t in self.tables.new(sid):       # pmap_expand: a new page table
                self.zero_page(t)
        self.maps[sid][va] = (pa, int(prot))
        self.pv.setdefault(pa, {})[(sid, va)] = True

    def remove(self, sid, va):
        cur = self.maps[sid].pop(va, None)
        if cur is None:
            return False
        self.m.unmap(sid, va)
        pv = self.pv.get(cur[0])
        if pv is not None:
            pv.pop((sid, va), None)
            if not pv:
                del self.pv[cur[0]]
        return True

    def protect(self, sid, va, prot):
        """Reduce (or set) the protection of one mapped page."""
        cur = self.maps[sid].get(va)
        if cur is None:
            return
        if prot == VMProt.NONE:
            self.remove(sid, va)
            return
        if cur[1] != int(prot):
            self.m.protect(sid, va, _perm_text(prot))
            self.maps[sid][va] = (cur[0], int(prot))

    def mappings(self, pa):
        return list(self.pv.get(pa, {}))

    def page_protect(self, pa, prot):
        """Restrict every mapping of frame `pa` to `prot` (NONE removes them): pmap_page_protect."""
        for sid, va in self.mappings(pa):
            cur = self.maps[sid][va]
            newp = VMProt(cur[1]) & VMProt(prot)
            if newp == VMProt.NONE:
                self.remove(sid, va)
            else:
                self.protect(sid, va, newp)

    def range(self, sid, start, end):
        return [va for va in self.maps[sid] if start <= va < end]
