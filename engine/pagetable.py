"""Page tables stored in physical memory: map, unmap, protect, lookup, and a step-by-step walk.

This is the *software* side (what a kernel's pmap layer does); the hardware walk that charges
cycles is `core.walk`.  Tables are frames from the allocator; entries are built by the format
(`pte.Format`), never by hand here.  Contract of every mutator: `va`/`pa` aligned to the page
size being mapped, `va` inside the format's virtual range, and the state unchanged on error.
"""
from dataclasses import dataclass

from .errors import MappingError, AddressError
from .pte import PERM_R


@dataclass(frozen=True)
class WalkStep:
    """One level of a walk, as a student would write it down (OSTEP's `-c`)."""
    level: int
    table: int          # physical address of the table
    index: int          # index taken from the virtual address
    pte_addr: int       # physical address of the entry
    entry: int          # raw entry
    present: bool
    leaf: bool


class PageTables:
    """All page tables of one machine, over one PhysicalMemory and one Format."""

    def __init__(self, memory, fmt):
        if memory.frame_size != fmt.page_size:
            raise MappingError(f"PageTables: frame size {memory.frame_size} differs from the "
                               f"{fmt.name} page size {fmt.page_size}")
        self.mem = memory
        self.fmt = fmt
        self.tables = {}            # root paddr -> set of table frames of that tree (root included)
        # per level: (shift of its index, index mask, size of a page mapped there), for lookup
        self._levels = [(fmt.level_shift(lv), (1 << fmt.bits[lv]) - 1, 1 << fmt.level_shift(lv))
                        for lv in range(fmt.levels)]

    # -- raw entries --
    def _read(self, addr):
        w = self.mem.words
        i = addr >> 2
        if self.fmt.pte_bytes == 4:
            return int(w[i])
        return int(w[i]) | (int(w[i + 1]) << 32)

    def _write(self, addr, e):
        w = self.mem.words
        i = addr >> 2
        if self.fmt.pte_bytes == 4:
            w[i] = e & 0xFFFFFFFF
        else:
            w[i] = e & 0xFFFFFFFF
            w[i + 1] = (e >> 32) & 0xFFFFFFFF

    def _new_table(self, root=None):
        f = self.mem.alloc()
        paddr = f * self.fmt.page_size
        self.tables.setdefault(paddr if root is None else root, set()).add(f)
        return paddr

    # -- trees --
    def create_root(self):
        """A new, empty top-level table; returns its physical address (the 'CR3' value)."""
        return self._new_table()

    def destroy(self, root):
        """Free every table frame of the tree at `root` (not the mapped data frames)."""
        for f in sorted(self.tables.pop(root, ())):
            self.mem.free(f)

    def _check_va(self, what, va, size):
        fmt = self.fmt
        if va < 0 or va >> fmt.va_bits:
            raise AddressError(f"{what}: va 0x{va:x} outside the {fmt.va_bits}-bit {fmt.name} address space")
        if va % size:
            raise MappingError(f"{what}: va 0x{va:x} is not aligned to the page size 0x{size:x}")

    def _leaf_level(self, large):
        return self.fmt.levels - 2 if large else self.fmt.levels - 1

    def _page_size_at(self, level):
        return 1 << self.fmt.level_shift(level)

    def walk_steps(self, root, va):
        """The walk for `va`, one WalkStep per level read (stops at a non-present or leaf entry)."""
        fmt = self.fmt
        steps, table = [], root
        for lv in range(fmt.levels):
            idx = fmt.index(va, lv)
            addr = table + idx * fmt.pte_bytes
            e = self._read(addr)
            present = bool(e & fmt.p_mask)
            leaf = present and fmt.is_leaf(e, lv)
            steps.append(WalkStep(lv, table, idx, addr, e, present, leaf))
            if not present or leaf:
                break
            table = fmt.entry_paddr(e)
        return steps

    def lookup(self, root, va):
        """(paddr, perms, page_size, entry) translating `va`, or None.  Charges nothing."""
        self._check_va("lookup", va, 1)
        # the walk of walk_steps without its records: kernels call this on every copy
        fmt, last, table = self.fmt, len(self._levels) - 1, root
        for lv, (shift, mask, size) in enumerate(self._levels):
            e = self._read(table + ((va >> shift) & mask) * fmt.pte_bytes)
            if not e & fmt.p_mask:
                return None
            if lv == last or (fmt.leaf_mask and e & fmt.leaf_mask):
                base = fmt.entry_paddr(e) & ~(size - 1)
                return base + (va & (size - 1)), fmt.entry_perms(e), size, e
            table = fmt.entry_paddr(e)
        return None

    def _slot(self, root, va, level, create, what):
        """Physical address of the entry for `va` at `level`, creating tables on the way."""
        fmt, table = self.fmt, root
        for lv in range(level):
            addr = table + fmt.index(va, lv) * fmt.pte_bytes
            e = self._read(addr)
            if not e & fmt.p_mask:
                if not create:
                    return None
                nt = self._new_table(root)
                self._write(addr, fmt.make_table_entry(nt))
                table = nt
            elif fmt.is_leaf(e, lv):
                raise MappingError(f"{what}: va 0x{va:x} lies inside a large page mapped at level {lv}")
            else:
                table = fmt.entry_paddr(e)
        return table + fmt.index(va, level) * fmt.pte_bytes

    def map(self, root, va, pa, perms=PERM_R, global_=False, large=False, space="?"):
        """Map one page (a large page: one level up).  Mapping a mapped page is an error."""
        fmt = self.fmt
        level = self._leaf_level(large)
        if large and (fmt.levels < 2 or not fmt.leaf_mask):
            raise MappingError(f"map: format {fmt.name} has no large pages")
        size = self._page_size_at(level)
        self._check_va("map", va, size)
        if pa % size:
            raise MappingError(f"map: pa 0x{pa:x} is not aligned to the page size 0x{size:x}")
        if pa < 0 or pa + size > self.mem.size:
            raise MappingError(f"map: pa {pa:#x} (+0x{size:x}) outside physical memory "
                               f"(0..0x{self.mem.size:x})")
        if pa >> (fmt.ppn_bits + fmt.page_shift):
            raise MappingError(f"map: pa 0x{pa:x} does not fit the {fmt.name} frame field")
        if self.lookup(root, va) is not None:
            raise MappingError(f"map: va 0x{va:x} already mapped in space {space}")
        addr = self._slot(root, va, level, True, "map")
        if self._read(addr) & fmt.p_mask:      # a table hangs here: the range has small pages
            raise MappingError(f"map: large page at va 0x{va:x} overlaps pages mapped in space {space}")
        self._write(addr, fmt.make_leaf(pa, perms, global_, large))

    def _leaf_addr(self, root, va, what, space):
        self._check_va(what, va, 1)
        s = self.walk_steps(root, va)[-1]
        if not s.leaf:
            raise MappingError(f"{what}: va 0x{va:x} not mapped in space {space}")
        size = self._page_size_at(s.level)
        if va % size:
            raise MappingError(f"{what}: va 0x{va:x} is not aligned to its page size 0x{size:x}")
        return s.pte_addr, s.entry

    def unmap(self, root, va, space="?"):
        """Remove the mapping of the page at `va`; returns the old entry."""
        addr, e = self._leaf_addr(root, va, "unmap", space)
        self._write(addr, 0)
        return e

    def protect(self, root, va, perms, space="?"):
        """Change a mapped page's permissions, keeping frame, global and size bits."""
        fmt = self.fmt
        addr, e = self._leaf_addr(root, va, "protect", space)
        large = bool(fmt.leaf_mask and e & fmt.leaf_mask) and fmt.name.startswith("x86")
        g = bool(fmt.g_mask and e & fmt.g_mask)
        self._write(addr, fmt.make_leaf(fmt.entry_paddr(e), perms, g, large))
        return e
