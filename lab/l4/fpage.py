"""Flexpages: the unit of L4's mapping (S95 §3.2): a naturally aligned region of 2**k bytes of
an address space, k >= the page shift, with access rights.  `map`, `grant` and `flush` take
flexpages; a receive window is one too.

    Fpage(0x40000, 12, "rw")      one 4 KB page at 0x40000
    Fpage(0x400000, 22, "r")      a 4 MB region, read-only
    Fpage.whole()                 the whole address space (a receive window accepting anything)
"""
from dataclasses import dataclass

from itertools import permutations

from .args import VA_BITS, is_int
from .errors import InvalidArgument

PAGE_SHIFT = 12
RIGHTS = ("r", "rw", "rx", "rwx")
# what a flush may take away: any non-empty combination of r, w, x (in any order)
FLUSH_RIGHTS = frozenset("".join(p) for n in (1, 2, 3) for p in permutations("rwx", n))


def check_rights(rights, what="rights"):
    if type(rights) is not str or rights not in RIGHTS:
        raise InvalidArgument(f"{what} {rights!r}; allowed: {', '.join(RIGHTS)}")
    return rights


def check_flush_rights(rights, what):
    if type(rights) is not str or rights not in FLUSH_RIGHTS:
        raise InvalidArgument(f"{what} {rights!r}; allowed: a non-empty combination of "
                              "'r', 'w', 'x' (taking 'r' removes the mapping)")
    return rights


def intersect(a, b):
    """Rights common to `a` and `b` ("r" is always kept: a mapping is at least readable)."""
    return "r" + "".join(c for c in "wx" if c in a and c in b)


def subtract(a, removed):
    """`a` without the rights in `removed`; None when "r" is removed (nothing is left)."""
    if "r" in removed:
        return None
    return "r" + "".join(c for c in "wx" if c in a and c not in removed)


@dataclass(frozen=True)
class Fpage:
    base: int
    log2size: int = PAGE_SHIFT
    rights: str = "rw"

    def __post_init__(self):
        base, log2size = self.base, self.log2size
        if not is_int(log2size) or not PAGE_SHIFT <= log2size <= VA_BITS:
            raise InvalidArgument(f"fpage: log2size {log2size!r} must be an integer in "
                                  f"{PAGE_SHIFT}..{VA_BITS}")
        if not is_int(base):
            raise InvalidArgument(f"fpage: base {base!r} is not an address (an integer)")
        if type(base) is not int or type(log2size) is not int:   # numpy integers: plain ints
            object.__setattr__(self, "base", int(base))
            object.__setattr__(self, "log2size", int(log2size))
            base, log2size = self.base, self.log2size
        size = 1 << log2size
        if base < 0 or base % size or base + size > 1 << VA_BITS:
            raise InvalidArgument(f"fpage: base {base:#x} must be aligned to its size "
                                  f"{size:#x} and inside the {VA_BITS}-bit space")
        check_rights(self.rights, "fpage rights")

    @classmethod
    def whole(cls, rights="rwx"):
        return cls(0, VA_BITS, rights)

    @property
    def size(self):
        return 1 << self.log2size

    @property
    def end(self):
        return self.base + self.size

    def contains(self, va):
        return self.base <= va < self.end

    def pages(self):
        """The page addresses of the flexpage, ascending."""
        return range(self.base, self.end, 1 << PAGE_SHIFT)

    def __repr__(self):
        return f"Fpage(0x{self.base:x}, {self.log2size}, {self.rights!r})"


def destination(fpage, send_base, window):
    """Where a map item lands in the receiver (L4 v2 rule): the smaller of sender fpage and
    receive window is placed in the larger one at the offset selected by `send_base`.
    Returns (source fpage actually sent, destination base)."""
    if fpage.log2size <= window.log2size:
        off = (send_base % window.size) & ~(fpage.size - 1)
        return fpage, window.base + off
    # the window is smaller: only the window-sized part of the fpage chosen by send_base goes
    part = fpage.base + ((send_base - fpage.base) % fpage.size & ~(window.size - 1))
    return Fpage(part, window.log2size, fpage.rights), window.base
