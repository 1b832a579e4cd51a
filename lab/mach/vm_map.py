"""A task's address map: an ordered list of entries, each a range of pages backed by a
memory object at an offset, with protection, maximum protection and inheritance
(Rashid et al. 1987, "Machine-Independent Virtual Memory Management...", §3).

Pure data structure: the vm_* calls (lab/mach/vm.py) check and change it, the pmap layer
(lab/mach/pmap.py) mirrors it lazily into the engine's page tables as faults occur.
`needs_copy` marks an entry that shares its object copy-on-write: the first write gives the
entry a shadow object of its own.
"""
import bisect
from dataclasses import dataclass
from enum import Enum, IntFlag

from .errors import KernInvalidAddress, KernInvalidArgument, KernNoSpace

VM_MIN_ADDRESS = 0x00010000
VM_MAX_ADDRESS = 0xC0000000     # the Mach kernel lives above, in every task


class VMProt(IntFlag):
    NONE = 0
    READ = 1
    WRITE = 2
    EXECUTE = 4
    DEFAULT = 3
    ALL = 7

    def text(self):
        return ("r" if self & VMProt.READ else "") + ("w" if self & VMProt.WRITE else "") + \
            ("x" if self & VMProt.EXECUTE else "")


def check_prot(value, what):
    """`value` as a VMProt (READ | WRITE | EXECUTE bits, 0..7), else KERN_INVALID_ARGUMENT
    naming it: for vm_protect's protection and a pager's lock value alike."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= VMProt.ALL:
        raise KernInvalidArgument(f"{what} {value!r}; allowed: a VMProt, READ | WRITE | "
                                  "EXECUTE (0..7)")
    return VMProt(value)


class VMInherit(Enum):
    SHARE = "share"
    COPY = "copy"
    NONE = "none"


class VMMapEntry:
    __slots__ = ("start", "end", "object", "offset", "protection", "max_protection",
                 "inheritance", "needs_copy")

    def __init__(self, start, end, obj, offset, protection=VMProt.DEFAULT,
                 max_protection=VMProt.ALL, inheritance=VMInherit.COPY, needs_copy=False):
        self.start, self.end = start, end
        self.object, self.offset = obj, offset
        self.protection, self.max_protection = protection, max_protection
        self.inheritance, self.needs_copy = inheritance, needs_copy

    def clone(self, start, end):
        return VMMapEntry(start, end, self.object, self.offset + (start - self.start),
                          self.protection, self.max_protection, self.inheritance,
                          self.needs_copy)

    def __repr__(self):
        return (f"<entry 0x{self.start:x}-0x{self.end:x} obj={self.object.id} "
                f"off=0x{self.offset:x} {VMProt(self.protection).text()}/"
                f"{VMProt(self.max_protection).text()} {self.inheritance.value}"
                f"{' needs_copy' if self.needs_copy else ''}>")


@dataclass(frozen=True)
class VMRegion:
    """What vm_regions reports about one entry."""
    address: int
    size: int
    protection: VMProt
    max_protection: VMProt
    inheritance: VMInherit
    shared: bool
    object_name: str
    offset: int


class VMMap:
    def __init__(self, page_size, low=VM_MIN_ADDRESS, high=VM_MAX_ADDRESS):
        self.page = page_size
        self.low, self.high = low, high
        self.entries = []          # sorted by start, non-overlapping

    def _starts(self):
        return [e.start for e in self.entries]

    def lookup(self, va):
        """The entry containing `va`, or None."""
        i = bisect.bisect_right(self._starts(), va) - 1
        if i >= 0 and self.entries[i].start <= va < self.entries[i].end:
            return self.entries[i]
        return None

    def overlapping(self, start, end):
        return [e for e in self.entries if e.start < end and e.end > start]

    def check_allocated(self, start, end, what):
        """Raise KERN_INVALID_ADDRESS unless [start, end) is entirely allocated."""
        if start < self.low or end > self.high or start >= end:
            raise KernInvalidAddress(f"{what}: range 0x{start:x}-0x{end:x} outside the task's "
                                     f"space 0x{self.low:x}-0x{self.high:x}")
        pos = start
        for e in self.overlapping(start, end):
            if e.start > pos:
                break
            pos = e.end
        if pos < end:
            raise KernInvalidAddress(f"{what}: 0x{pos:x} in 0x{start:x}-0x{end:x} is not "
                                     "allocated")

    def is_free(self, start, end):
        return self.low <= start and end <= self.high and not self.overlapping(start, end)

    def find_space(self, size, hint=None):
        """The lowest free range of `size` bytes at or above `hint` (first fit)."""
        pos = max(self.low, hint or self.low)
        for e in self.entries:
            if e.end <= pos:
                continue
            if e.start >= pos + size:
                break
            pos = max(pos, e.end)
        if pos + size > self.high:
            raise KernNoSpace(f"find_space: no free range of 0x{size:x} bytes")
        return pos

    def insert(self, entry):
        if not self.is_free(entry.start, entry.end):
            raise KernNoSpace(f"insert: 0x{entry.start:x}-0x{entry.end:x} overlaps an entry "
                              "or leaves the task's space")
        i = bisect.bisect_left(self._starts(), entry.start)
        self.entries.insert(i, entry)

    def clip(self, start, end, ref):
        """Split entries so that `start` and `end` fall on entry boundaries; returns the
        entries inside [start, end).  `ref(object)` takes the extra object reference that
        the second half of a split entry holds."""
        for cut in (start, end):
            e = self.lookup(cut)
            if e is not None and e.start < cut:
                i = self.entries.index(e)
                left, right = e.clone(e.start, cut), e.clone(cut, e.end)
                ref(e.object)
                self.entries[i:i + 1] = [left, right]
        return [e for e in self.entries if start <= e.start and e.end <= end]

    def remove(self, entry):
        self.entries.remove(entry)
