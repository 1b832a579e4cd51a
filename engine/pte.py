"""Page-table formats: every bit mask and field position lives here (cf. xv6 riscv.h).

A format is described to the jitted walker as a flat int64 array (`Format.desc`),
because Numba freezes globals at compile time and cannot cache jitclasses.

Fields of `desc` (index constants below):
  LEVELS       number of levels walked (root first)
  PAGE_SHIFT   log2 of the base page size
  PTE_BYTES    4 or 8
  BITS0..3     index bits per level, root first (unused levels 0)
  P_MASK       valid/present bit
  W_MASK       writable bit
  U_MASK       user-accessible bit (0 if the format has none)
  X_MASK       executable bit (RISC-V), 0 if absent
  NX_MASK      no-execute bit (x86-64), 0 if absent
  R_MASK       readable bit (RISC-V), 0 if absent (readable = present)
  G_MASK       global bit
  LEAF_MASK    bits whose presence makes a non-last-level entry a leaf
               (x86 PS bit; RISC-V R|W|X); 0 = only last level is a leaf
  PPN_SHIFT    bit position of the physical page number in an entry
  PPN_BITS     width of the physical page number
  VA_BITS      width of a virtual address (sum of index bits + page shift)
"""
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError

LEVELS, PAGE_SHIFT, PTE_BYTES, BITS0, BITS1, BITS2, BITS3 = range(7)
P_MASK, W_MASK, U_MASK, X_MASK, NX_MASK, R_MASK, G_MASK, LEAF_MASK = range(7, 15)
PPN_SHIFT, PPN_BITS, VA_BITS = 15, 16, 17
DESC_LEN = 18
MAX_LEVELS = 4

# Access kinds, shared with the walker and the TLB.
READ, WRITE, EXEC = 0, 1, 2
ACCESS_NAMES = ("r", "w", "x")

# Permission bits as the TLB stores them (format independent).
PERM_R, PERM_W, PERM_X, PERM_U = 1, 2, 4, 8


def parse_perms(text):
    """'r', 'rw', 'rx', 'rwx' (optionally with 'u' for user) -> PERM_* bits."""
    allowed = {"r", "rw", "rx", "rwx", "ru", "rwu", "rxu", "rwxu"}
    if text not in allowed:
        raise ConfigError(f"permissions {text!r} not allowed; use one of r, rw, rx, rwx")
    bits = PERM_R
    bits |= PERM_W if "w" in text else 0
    bits |= PERM_X if "x" in text else 0
    bits |= PERM_U if "u" in text else 0
    return bits


def perms_text(bits):
    return "r" + ("w" if bits & PERM_W else "-") + ("x" if bits & PERM_X else "-")


@dataclass(frozen=True)
class Format:
    """A page-table format.  `bits` lists index bits per level, root first."""
    name: str
    bits: tuple
    page_shift: int
    pte_bytes: int
    p_mask: int
    w_mask: int
    u_mask: int = 0
    x_mask: int = 0
    nx_mask: int = 0
    r_mask: int = 0
    g_mask: int = 0
    leaf_mask: int = 0
    ppn_shift: int = 12
    ppn_bits: int = 20
    desc: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not 1 <= len(self.bits) <= MAX_LEVELS:
            raise ConfigError(f"format {self.name}: {len(self.bits)} levels; allowed 1..{MAX_LEVELS}")
        if any((not isinstance(b, int)) or b < 1 or b > 20 for b in self.bits):
            raise ConfigError(f"format {self.name}: index bits {self.bits}; each must be 1..20")
        if not 8 <= self.page_shift <= 30:
            raise ConfigError(f"format {self.name}: page shift {self.page_shift}; allowed 8..30 "
                              "(page sizes 256 B .. 1 GiB)")
        if self.pte_bytes not in (4, 8):
            raise ConfigError(f"format {self.name}: pte_bytes {self.pte_bytes}; allowed 4 or 8")
        if max(self.bits) + (self.pte_bytes.bit_length() - 1) > self.page_shift:
            raise ConfigError(f"format {self.name}: a table of 2^{max(self.bits)} entries of "
                              f"{self.pte_bytes} bytes does not fit in one {1 << self.page_shift}-byte page")
        d = np.zeros(DESC_LEN, np.int64)
        d[LEVELS] = len(self.bits)
        d[PAGE_SHIFT] = self.page_shift
        d[PTE_BYTES] = self.pte_bytes
        for i, b in enumerate(self.bits):
            d[BITS0 + i] = b
        d[P_MASK], d[W_MASK], d[U_MASK] = self.p_mask, self.w_mask, self.u_mask
        # bit 63 does not fit a signed int64: store its two's-complement value (the walker only ANDs)
        nx = self.nx_mask - (1 << 64) if self.nx_mask >= 1 << 63 else self.nx_mask
        d[X_MASK], d[NX_MASK], d[R_MASK] = self.x_mask, nx, self.r_mask
        d[G_MASK], d[LEAF_MASK] = self.g_mask, self.leaf_mask
        d[PPN_SHIFT], d[PPN_BITS] = self.ppn_shift, self.ppn_bits
        d[VA_BITS] = self.va_bits
        d.flags.writeable = False
        object.__setattr__(self, "desc", d)

    @property
    def levels(self):
        return len(self.bits)

    @property
    def page_size(self):
        return 1 << self.page_shift

    @property
    def va_bits(self):
        return sum(self.bits) + self.page_shift

    def level_shift(self, level):
        """Bit position of the lowest index bit of `level` (0 = root)."""
        return self.page_shift + sum(self.bits[level + 1:])

    def index(self, vaddr, level):
        return (vaddr >> self.level_shift(level)) & ((1 << self.bits[level]) - 1)

    # -- building entries (used by PageTables, never by the hot path) --
    def make_table_entry(self, paddr):
        """A non-leaf entry pointing at the next-level table at `paddr`.
        x86 sets R/W and U/S on directory entries (the leaf decides); RISC-V must not."""
        e = ((paddr >> self.page_shift) << self.ppn_shift) | self.p_mask
        if self.name.startswith("x86"):
            e |= self.w_mask | self.u_mask
        return e

    def make_leaf(self, paddr, perms, global_=False, large=False):
        e = ((paddr >> self.page_shift) << self.ppn_shift) | self.p_mask
        if perms & PERM_W:
            e |= self.w_mask
        if perms & PERM_U and self.u_mask:
            e |= self.u_mask
        if self.r_mask:
            e |= self.r_mask
        if self.x_mask and perms & PERM_X:
            e |= self.x_mask
        if self.nx_mask and not perms & PERM_X:
            e |= self.nx_mask
        if global_ and self.g_mask:
            e |= self.g_mask
        if large and self.name.startswith("x86"):
            e |= self.leaf_mask
        return e

    def entry_perms(self, e):
        """PERM_* bits granted by a leaf entry."""
        p = PERM_R
        if e & self.w_mask:
            p |= PERM_W
        if self.x_mask:
            p |= PERM_X if e & self.x_mask else 0
        elif self.nx_mask:
            p |= 0 if e & self.nx_mask else PERM_X
        else:
            p |= PERM_X  # x86-32 without NX: every readable page is executable
        if self.u_mask and e & self.u_mask:
            p |= PERM_U
        return p

    def entry_paddr(self, e):
        return ((e >> self.ppn_shift) & ((1 << self.ppn_bits) - 1)) << self.page_shift

    def is_leaf(self, e, level):
        return level == self.levels - 1 or bool(self.leaf_mask and e & self.leaf_mask)


# x86-32, non-PAE: 10/10/12, P=bit0, R/W=bit1, U/S=bit2, PS=bit7 (4 MiB pages with PSE), G=bit8.
X86_32 = Format("x86-32", (10, 10), 12, 4, p_mask=1, w_mask=2, u_mask=4, g_mask=1 << 8,
                leaf_mask=1 << 7, ppn_shift=12, ppn_bits=20)
# x86-64, 4-level: 9/9/9/9/12, 8-byte entries, NX=bit63, PS=bit7, 40-bit physical frame numbers.
X86_64 = Format("x86-64", (9, 9, 9, 9), 12, 8, p_mask=1, w_mask=2, u_mask=4, nx_mask=1 << 63,
                g_mask=1 << 8, leaf_mask=1 << 7, ppn_shift=12, ppn_bits=40)
# RISC-V Sv39: 9/9/9/12, V=0 R=1 W=2 X=3 U=4 G=5 A=6 D=7, PPN at bit 10; leaf iff R|W|X.
SV39 = Format("sv39", (9, 9, 9), 12, 8, p_mask=1, r_mask=2, w_mask=4, x_mask=8, u_mask=16,
              g_mask=32, leaf_mask=2 | 4 | 8, ppn_shift=10, ppn_bits=44)

FORMATS = {f.name: f for f in (X86_32, X86_64, SV39)}


def small_format(page_shift=8, bits=(4, 4), name="small"):
    """A hand-workable format (OSTEP style): 4-byte entries, P=bit0, W=bit1, U=bit2, X=bit3,
    frame number from bit 4 (so entry 0x53 reads "frame 5, writable, present").
    Default: 256-byte pages, two levels of 16 entries (16-bit virtual addresses)."""
    bits = tuple(int(b) for b in bits)
    return Format(name, bits, int(page_shift), 4, p_mask=1, w_mask=2, u_mask=4, x_mask=8,
                  ppn_shift=4, ppn_bits=24)


def get_format(name):
    if isinstance(name, Format):
        return name
    if name == "small":
        return small_format()
    if name not in FORMATS:
        raise ConfigError(f"page-table format {name!r} unknown; allowed: {', '.join(FORMATS)}, small")
    return FORMATS[name]
