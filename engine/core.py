"""The machine's hot loop: TLBs, page-table walk, caches and the cycle counter, over flat arrays.

Everything here is `@njit(cache=True)` over NumPy arrays and scalars (no jitclass: it cannot be
cached).  One call runs a whole batch of *ops*, each an int64 word `(payload << 8) | code`:

    OP_R/OP_W/OP_X   payload = virtual address     one access in the current space
    OP_SWITCH        payload = space id            make the space current
    OP_FLUSH_ALL                                   drop every TLB entry (global ones too)
    OP_FLUSH_SPACE   payload = space id            drop the space's non-global entries
    OP_DEMAP         payload = sid << 40 | va >> 8 drop the entries for one page (invlpg)
    OP_MODE          payload = category            accesses from now on are charged there
    OP_CHARGE        payload = cycles << 8 | cat   add cycles to a category
    OP_PR/OP_PW/OP_PX payload = physical address   an untranslated reference (caches only)
    OP_MARK          payload = row of marks        marks[row] = the counters so far (M_* columns:
                                                   cycle total, accesses, hits, misses, walk
                                                   refs, faults).  Internal: the machine's lazy
                                                   event stamps and run results; check_ops
                                                   refuses it in users' batches

In the manner of seL4's fast path, the loop checks first and mutates after: it returns a status
(`RUN_DONE`, `RUN_FAULT`, `RUN_BUS`, `RUN_BAD_SPACE`, `RUN_BAD_OP`, `RUN_NO_SPACE`) and the index
of the op it stopped at, so that Python (a kernel's page-fault handler) can act and resume.
A faulting access never fills the TLB.  Each miss is counted once, whatever number of TLBs were
probed.

Ordering rules a reference model must share (tests/reference_mmu.py):
  * TLB stamps are the access counter `S_TICK` (one stamp per access: a hit stamps the entry
    under LRU, a fill stamps the new entry); victims are the first invalid way, else the
    smallest stamp (LRU, FIFO) or way `xorshift64() % ways` (random).
  * Cache stamps come from their own counter `S_CTICK`, one per cache reference, so that the
    walk's PTE reads and the data reference of one access are ordered (true LRU).
  * A leaf's G bit makes its entry global only on a machine that honours global pages
    (`C_PGE`; the P54C Pentium does not).  Global entries match in every space and survive
    CR3 loads and flush-space; flush all and demap drop them.
  * Small spaces (untagged TLB with segments) are keyed by their linear address
    `SMALL_KEY | (base + va)`: distinct from every large space's keys, so neither a large
    space's mapping in the small-space region nor another small space can alias.  A small space
    has no translations at or beyond its size: such an access misses and faults not-present
    without probing the TLB or walking (the segment limit stops it before paging).

Not modelled, deliberately: privilege levels -- a leaf's U bit is decoded (`PERM_U`) but no
access checks it, since the machine runs no user/supervisor modes (the kernels charge the trap
instead, and map everything they run themselves); and Sv39's rule that a superpage whose frame
is not aligned to its size faults -- here, as x86 reads its low bits (PAT, reserved), the
frame is aligned down.  Only hand-built tables (`Machine.attach_space`) can hold one.
"""
import numpy as np
from numba import njit

from .pte import (LEVELS, PAGE_SHIFT, PTE_BYTES, BITS0, P_MASK, W_MASK, U_MASK, X_MASK, NX_MASK,
                  G_MASK, LEAF_MASK, PPN_SHIFT, PPN_BITS, PERM_R, PERM_W, PERM_X, PERM_U)
from .cycles import TLB_WALK, CACHE_MISS, FAULT, SPACE_SWITCH, NCAT

# -- op codes --
OP_R, OP_W, OP_X, OP_SWITCH, OP_FLUSH_ALL, OP_FLUSH_SPACE, OP_DEMAP, OP_MODE, OP_CHARGE, \
    OP_PR, OP_PW, OP_PX, OP_MARK = range(13)
OP_SHIFT = 8
DEMAP_SID_SHIFT = 40

# -- machine state slots (st) --
(S_TICK, S_SPACE, S_CR3, S_MODE, S_RNG, S_ACCESSES, S_HITS, S_MISSES, S_WALK, S_FAULTS,
 S_SWITCHES, S_FLUSHES, S_CR3_LOADS, S_PSUM, S_TAGGED, S_LAST_FAULT, S_CTICK) = range(17)
NSTATE = 17

# -- cost slots (costs): cycles, or cache indices (-1: none) --
(C_HIT, C_WALK_BASE, C_MEM, C_FAULT, C_CR3, C_ASID, C_SEG, C_WALK_L1, C_SMALL,
 C_L1D, C_L1I, C_L2, C_PGE) = range(13)
NCOSTS = 13                 # C_PGE: 1 if the TLB honours global entries (P6 and later)

# -- TLB descriptors (td rows) and entries (te rows) --
TD_BASE, TD_SETS, TD_WAYS, TD_SHIFT, TD_POLICY, TD_KIND = range(6)
TD_LEN = 6
TE_VALID, TE_VPN, TE_OWNER, TE_PFN, TE_PERM, TE_GLOBAL, TE_STAMP = range(7)
TE_LEN = 7
LRU, FIFO, RANDOM = 0, 1, 2
KIND_DATA, KIND_INSTR = 1, 2            # TD_KIND bit mask; 3 = unified
# TLB statistics (tstat columns)
TS_HITS, TS_MISSES, TS_FILLS, TS_EVICTIONS = range(4)
TS_LEN = 4

# -- caches: descriptors (cd rows) and lines (ce rows) --
CD_BASE, CD_SETS, CD_WAYS, CD_LSHIFT, CD_LAT, CD_WMISS = range(6)
CD_LEN = 6                  # CD_WMISS: cycles of a write miss that allocates nothing (-1: allocate)
CE_VALID, CE_TAG, CE_STAMP = range(3)
CE_LEN = 3
CS_HITS, CS_MISSES = range(2)
CS_LEN = 2

# -- address spaces (sp rows) --
SP_ROOT, SP_SMALL, SP_SIZE = range(3)   # root table paddr (-1: no such space); small base or -1;
SP_LEN = 3                              # small size (bytes) or -1
SMALL_KEY = np.int64(1) << 56           # TLB key bit of small-space entries (above any va)

# -- mark columns (marks rows, written by OP_MARK) --
M_CYCLES, M_ACCESSES, M_HITS, M_MISSES, M_WALK, M_FAULTS = range(6)
M_LEN = 6

# -- per-op record columns (rec) --
R_PADDR, R_TLB, R_FAULT, R_WALK, R_CYCLES = range(5)
R_LEN = 5

# -- fault kinds and run statuses --
F_NONE, F_NOT_PRESENT, F_PROTECTION, F_BUS = range(4)
FAULT_NAMES = (None, "not-present", "protection", "bus-error")
RUN_DONE, RUN_FAULT, RUN_BUS, RUN_BAD_SPACE, RUN_BAD_OP, RUN_NO_SPACE = range(6)

INT64_MAX = np.iinfo(np.int64).max

# Nothing here allocates, so nothing needs Numba's reference counting.  `_nrt=False` (an option
# Numba uses for its own non-allocating helpers) drops the atomic incref/decref of every array
# handed to a helper, which otherwise took ~40 % of the loop; `hot` helpers are inlined into
# `run` so that the arrays stay in registers.
jit = njit(cache=True, _nrt=False)
hot = njit(cache=True, _nrt=False, inline="always")


@hot
def _rand(st):
    """xorshift64 on st[S_RNG]; deterministic for a given seed."""
    x = st[S_RNG]
    x ^= (x << 13)
    x ^= (x >> 7) & 0x01FFFFFFFFFFFFFF
    x ^= (x << 17)
    st[S_RNG] = x
    return x & 0x7FFFFFFFFFFFFFFF


@hot
def cache_access(cd, ce, cstat, c, paddr, stamp):
    """Reference one line of cache `c` (LRU, allocate on miss).  True on a hit.
    Victim: the first invalid way, else the smallest stamp (stamps are unique)."""
    line = paddr >> cd[c, CD_LSHIFT]
    ways = cd[c, CD_WAYS]
    base = cd[c, CD_BASE] + (line & (cd[c, CD_SETS] - 1)) * ways
    victim = -1
    oldest = INT64_MAX
    for w in range(ways):
        e = base + w
        if ce[e, CE_VALID] != 0:
            if ce[e, CE_TAG] == line:
                ce[e, CE_STAMP] = stamp
                cstat[c, CS_HITS] += 1
                return True
            if victim < 0 or ce[victim, CE_VALID] != 0:
                if ce[e, CE_STAMP] < oldest:
                    oldest = ce[e, CE_STAMP]
                    victim = e
        elif victim < 0 or ce[victim, CE_VALID] != 0:
            victim = e
    ce[victim, CE_VALID] = 1
    ce[victim, CE_TAG] = line
    ce[victim, CE_STAMP] = stamp
    cstat[c, CS_MISSES] += 1
    return False


@hot
def cache_probe(cd, ce, cstat, c, paddr, stamp):
    """Reference one line of cache `c` without allocating on a miss (a write-no-allocate
    cache's store).  True on a hit."""
    line = paddr >> cd[c, CD_LSHIFT]
    ways = cd[c, CD_WAYS]
    base = cd[c, CD_BASE] + (line & (cd[c, CD_SETS] - 1)) * ways
    for w in range(ways):
        e = base + w
        if ce[e, CE_VALID] != 0 and ce[e, CE_TAG] == line:
            ce[e, CE_STAMP] = stamp
            cstat[c, CS_HITS] += 1
            return True
    cstat[c, CS_MISSES] += 1
    return False


@hot
def _cache_stamp(st):
    s = st[S_CTICK] + 1
    st[S_CTICK] = s
    return s


@hot
def mem_cost(costs, cd, ce, cstat, st, paddr, l1, write):
    """Cycles beyond an L1 hit for one reference at `paddr`, entering the hierarchy at `l1`
    (-1: skip the first level, as the Pentium's walker does).  A write that misses a
    write-no-allocate L1 (the Pentium's) leaves L1 alone: its stores drain to L2, costing
    CD_WMISS, plus the memory latency when L2 misses too."""
    l2 = costs[C_L2]
    if l1 >= 0:
        if write and cd[l1, CD_WMISS] >= 0:
            if cache_probe(cd, ce, cstat, l1, paddr, _cache_stamp(st)):
                return 0
            if l2 >= 0 and not cache_access(cd, ce, cstat, l2, paddr, _cache_stamp(st)):
                return cd[l1, CD_WMISS] + costs[C_MEM]
            return cd[l1, CD_WMISS]
        if cache_access(cd, ce, cstat, l1, paddr, _cache_stamp(st)):
            return 0
    if l2 >= 0:
        if cache_access(cd, ce, cstat, l2, paddr, _cache_stamp(st)):
            return cd[l2, CD_LAT]
    return costs[C_MEM]


@hot
def read_pte(mem, addr, pte_bytes):
    i = addr >> 2
    if pte_bytes == 4:
        return np.int64(mem[i])
    return np.int64(mem[i]) | (np.int64(mem[i + 1]) << 32)


@hot
def leaf_perms(fmt, e):
    """PERM_* bits of a leaf entry."""
    p = PERM_R
    if e & fmt[W_MASK]:
        p |= PERM_W
    if fmt[X_MASK] != 0:
        if e & fmt[X_MASK]:
            p |= PERM_X
    elif fmt[NX_MASK] != 0:
        if (e & fmt[NX_MASK]) == 0:
            p |= PERM_X
    else:
        p |= PERM_X
    if e & fmt[U_MASK]:
        p |= PERM_U
    return p


@hot
def walk(mem, fmt, costs, cd, ce, cstat, st, root, va):
    """Walk the tables at `root` for `va`, one level per step, each PTE read through the caches.

    Returns (fault, page_base, page_shift, perms, global, refs, cycles): fault is F_NONE,
    F_NOT_PRESENT (an entry without the present bit) or F_BUS (a table outside memory)."""
    levels = fmt[LEVELS]
    pte_bytes = fmt[PTE_BYTES]
    ppn_mask = (np.int64(1) << fmt[PPN_BITS]) - 1
    l1 = costs[C_L1D] if costs[C_WALK_L1] != 0 else -1
    table = root
    shift = fmt[PAGE_SHIFT]
    for lv in range(1, levels):
        shift += fmt[BITS0 + lv]
    refs = 0
    cyc = 0
    nbytes = np.int64(mem.shape[0]) * 4
    for lv in range(levels):
        idx = (va >> shift) & ((np.int64(1) << fmt[BITS0 + lv]) - 1)
        addr = table + idx * pte_bytes
        if addr < 0 or addr + pte_bytes > nbytes:
            return F_BUS, 0, 0, 0, 0, refs, cyc
        e = read_pte(mem, addr, pte_bytes)
        refs += 1
        cyc += mem_cost(costs, cd, ce, cstat, st, addr, l1, False)
        if (e & fmt[P_MASK]) == 0:
            return F_NOT_PRESENT, 0, 0, 0, 0, refs, cyc
        nxt = ((e >> fmt[PPN_SHIFT]) & ppn_mask) << fmt[PAGE_SHIFT]
        if lv == levels - 1 or (fmt[LEAF_MASK] != 0 and (e & fmt[LEAF_MASK]) != 0):
            base = (nxt >> shift) << shift      # a large page is aligned to its size
            g = 1 if (e & fmt[G_MASK]) != 0 else 0
            return F_NONE, base, shift, leaf_perms(fmt, e), g, refs, cyc
        table = nxt
        shift -= fmt[BITS0 + lv + 1]
    return F_NOT_PRESENT, 0, 0, 0, 0, refs, cyc


@hot
def tlb_lookup(td, tef, t, key, owner, tagged, tick):
    """Index of the entry of TLB `t` translating `key` for `owner`, or -1.  `tef` is the entry
    table flattened (row e at e * TE_LEN); unsigned offsets spare Numba's negative-index
    wraparound on every probe, which sat on the critical path of the set scan."""
    vpn = key >> td[t, TD_SHIFT]
    ways = td[t, TD_WAYS]
    base = td[t, TD_BASE] + (vpn & (td[t, TD_SETS] - 1)) * ways
    u = np.uint64(TE_LEN)
    r = np.uint64(base) * u
    for w in range(ways):
        if tef[r + np.uint64(TE_VPN)] == vpn and tef[r + np.uint64(TE_VALID)] != 0 and \
                (tagged == 0 or tef[r + np.uint64(TE_OWNER)] == owner or tef[r + np.uint64(TE_GLOBAL)] != 0):
            if td[t, TD_POLICY] == LRU:
                tef[r + np.uint64(TE_STAMP)] = tick
            return base + w
        r += u
    return -1


@hot
def tlb_fill(td, te, tstat, st, t, key, owner, pfn, perm, glob, tick):
    """Insert a translation: the first invalid way, else the policy's victim."""
    vpn = key >> td[t, TD_SHIFT]
    ways = td[t, TD_WAYS]
    base = td[t, TD_BASE] + (vpn & (td[t, TD_SETS] - 1)) * ways
    victim = -1
    for w in range(ways):
        if te[base + w, TE_VALID] == 0:
            victim = base + w
            break
    if victim < 0:
        tstat[t, TS_EVICTIONS] += 1
        if td[t, TD_POLICY] == RANDOM:
            victim = base + _rand(st) % ways
        else:                               # LRU and FIFO: oldest stamp (FIFO stamps on fill only)
            victim = base
            for w in range(1, ways):
                if te[base + w, TE_STAMP] < te[victim, TE_STAMP]:
                    victim = base + w
    te[victim, TE_VALID] = 1
    te[victim, TE_VPN] = vpn
    te[victim, TE_OWNER] = owner
    te[victim, TE_PFN] = pfn
    te[victim, TE_PERM] = perm
    te[victim, TE_GLOBAL] = glob
    te[victim, TE_STAMP] = tick
    tstat[t, TS_FILLS] += 1


@jit
def tlb_flush(te, owner, keep_global):
    """Drop entries: every one (owner < 0, keep_global 0), every non-global one (owner < 0,
    keep_global 1), or one owner's non-global ones (owner >= 0)."""
    n = 0
    for e in range(te.shape[0]):
        if te[e, TE_VALID] != 0:
            if keep_global != 0 and te[e, TE_GLOBAL] != 0:
                continue
            if owner >= 0 and te[e, TE_OWNER] != owner:
                continue
            te[e, TE_VALID] = 0
            te[e, TE_VPN] = -1              # no page number: the lookup's first compare fails
            n += 1
    return n


@jit
def tlb_key(sp, tagged, sid, va):
    """The TLB key of `va` in space `sid` (see the module docstring: small spaces)."""
    if tagged == 0 and sp[sid, SP_SMALL] >= 0:
        return SMALL_KEY | (sp[sid, SP_SMALL] + va)
    return va


@jit
def _demap_entry(te, e, lo, hi, sid):
    if te[e, TE_VALID] != 0 and lo <= te[e, TE_VPN] <= hi and \
            (te[e, TE_OWNER] == sid or te[e, TE_GLOBAL] != 0):
        te[e, TE_VALID] = 0
        te[e, TE_VPN] = -1
        return 1
    return 0


@jit
def tlb_demap_range(td, te, sp, tagged, sid, va, size):
    """Drop every entry (global ones too, as invlpg does) translating any byte of
    [va, va + size) of space `sid`, in every TLB: a large page splintered into a small-page
    TLB has one entry per splinter, and each must go."""
    key = tlb_key(sp, tagged, sid, va)
    n = 0
    for t in range(td.shape[0]):
        sh, ways, sets, tb = td[t, TD_SHIFT], td[t, TD_WAYS], td[t, TD_SETS], td[t, TD_BASE]
        lo = key >> sh
        hi = (key + max(size, 1) - 1) >> sh
        if hi - lo + 1 >= sets:             # the range covers every set: scan the whole TLB
            for e in range(tb, tb + sets * ways):
                n += _demap_entry(te, e, lo, hi, sid)
        else:
            for v in range(lo, hi + 1):
                b = tb + (v & (sets - 1)) * ways
                for e in range(b, b + ways):
                    n += _demap_entry(te, e, lo, hi, sid)
    return n


@jit
def tlb_demap(td, te, sp, tagged, sid, va):
    """Drop every entry (global ones too, as invlpg does) that translates `va` of space `sid`."""
    return tlb_demap_range(td, te, sp, tagged, sid, va, 1)


@jit
def do_switch(td, te, sp, st, costs, cyc, sid):
    """Make `sid` current.  Tagged TLB: change the tag.  Untagged: a CR3 load flushes every
    non-global entry, unless the target is a small space (segment reload, Liedtke 1995) or
    the space whose tables are already loaded."""
    if st[S_SPACE] == sid:
        return
    st[S_SWITCHES] += 1
    if st[S_TAGGED] != 0:
        cyc[SPACE_SWITCH] += costs[C_ASID]
    elif costs[C_SMALL] != 0 and sp[sid, SP_SMALL] >= 0:
        cyc[SPACE_SWITCH] += costs[C_SEG]
    elif sid == st[S_CR3]:
        cyc[SPACE_SWITCH] += costs[C_SEG]
    else:
        tlb_flush(te, -1, 1)
        st[S_FLUSHES] += 1
        st[S_CR3_LOADS] += 1
        st[S_CR3] = sid
        cyc[SPACE_SWITCH] += costs[C_CR3]
    st[S_SPACE] = sid


@hot
def _space_view(sp, tagged, sid):
    """(root, key offset, va limit or -1) of the current space, for the loop's locals."""
    if sid < 0:
        return -1, 0, -1
    if tagged == 0 and sp[sid, SP_SMALL] >= 0:
        return sp[sid, SP_ROOT], SMALL_KEY | sp[sid, SP_SMALL], sp[sid, SP_SIZE]
    return sp[sid, SP_ROOT], 0, -1


@hot
def _record(rec, i, paddr, missed, fault, refs, cycles):
    rec[i, R_PADDR] = paddr
    rec[i, R_TLB] = missed
    rec[i, R_FAULT] = fault
    rec[i, R_WALK] = refs
    rec[i, R_CYCLES] = cycles


@jit
def check_ops(ops, va_bits):
    """Index of the first op the loop would refuse for its form (a virtual address outside
    the format's range, an unknown op code, a cycle category out of range), or -1."""
    for i in range(ops.shape[0]):
        w = ops[i]
        code = w & 0xFF
        arg = w >> OP_SHIFT
        if code <= OP_X:
            if arg < 0 or (arg >> va_bits) != 0:
                return i
        elif code == OP_MODE:
            if arg < 0 or arg >= NCAT:
                return i
        elif code == OP_CHARGE:
            if arg < 0 or (arg & 0xFF) >= NCAT:
                return i
        elif code > OP_PX:
            return i
    return -1


@jit
def run(ops, start, end, mem, fmt, costs, td, te, tstat, cd, ce, cstat, sp, st, cyc,
        marks, rec, record, stop_on_fault):
    """Run ops[start:end].  Returns (status, index of the op it stopped at, or end).

    The loop is compiled twice (`_loop` is inlined and its flags become constants): a lean
    copy for batches without record and without caches, and the general one.  Same semantics;
    the lean copy spares the branches and registers of what it does not need."""
    has_cache = costs[C_L1D] >= 0 or costs[C_L2] >= 0
    if record == 0 and not has_cache:
        return _loop(ops, start, end, mem, fmt, costs, td, te, tstat, cd, ce, cstat, sp, st,
                     cyc, marks, rec, 0, stop_on_fault, False)
    return _loop(ops, start, end, mem, fmt, costs, td, te, tstat, cd, ce, cstat, sp, st, cyc,
                 marks, rec, record, stop_on_fault, has_cache)


@hot
def _loop(ops, start, end, mem, fmt, costs, td, te, tstat, cd, ce, cstat, sp, st, cyc,
          marks, rec, record, stop_on_fault, has_cache):
    """The counters the loop bumps per access live in locals (the compiler cannot keep array
    slots in registers: st, cyc and te might alias) and are written back once, at the end."""
    nt = td.shape[0]
    tef = te.reshape(te.shape[0] * TE_LEN)
    tagged = st[S_TAGGED]
    nbytes = np.int64(mem.shape[0]) * 4
    nsp = sp.shape[0]
    c_hit, c_walk, c_fault = costs[C_HIT], costs[C_WALK_BASE], costs[C_FAULT]
    pge = costs[C_PGE]          # without PGE (P5), a G bit is ignored: CR3 loads flush all
    tick, n_acc, n_hit, n_miss = st[S_TICK], st[S_ACCESSES], st[S_HITS], st[S_MISSES]
    n_walk, n_fault, psum, mode = st[S_WALK], st[S_FAULTS], st[S_PSUM], st[S_MODE]
    cy_mode = 0
    cy_walk = 0
    cy_fault = 0
    cy_cache = 0
    sid = st[S_SPACE]
    root, koff, klim = _space_view(sp, tagged, sid)
    status, stop = RUN_DONE, end
    for i in range(start, end):
        w = ops[i]
        code = w & 0xFF
        arg = w >> OP_SHIFT
        if code <= OP_X:
            if sid < 0:
                status, stop = RUN_NO_SPACE, i
                break
            tick += 1
            n_acc += 1
            cy_mode += c_hit
            key = arg + koff
            in_range = klim < 0 or arg < klim
            kbit = KIND_INSTR if code == OP_X else KIND_DATA
            hit = -1
            shift = 0
            if in_range:
                for t in range(nt):
                    if td[t, TD_KIND] & kbit:
                        hit = tlb_lookup(td, tef, t, key, sid, tagged, tick)
                        if hit >= 0:
                            tstat[t, TS_HITS] += 1
                            shift = td[t, TD_SHIFT]
                            break
                        tstat[t, TS_MISSES] += 1
            refs = 0
            wcost = 0
            fault = F_NONE
            pbase = 0
            perm = 0
            glob = 0
            if hit >= 0:
                n_hit += 1
                perm = te[hit, TE_PERM]
                pbase = te[hit, TE_PFN] << shift
            elif not in_range:
                n_miss += 1
                fault = F_NOT_PRESENT
            else:
                n_miss += 1
                fault, pbase, shift, perm, glob, refs, wc = walk(
                    mem, fmt, costs, cd, ce, cstat, st, root, arg)
                n_walk += refs
                wcost = c_walk + wc
                cy_walk += wcost
                if fault == F_BUS:
                    if record != 0:
                        _record(rec, i, -1, 1, F_BUS, refs, c_hit + wcost)
                    status, stop = RUN_BUS, i
                    break
            if fault == F_NONE:
                if (code == OP_W and (perm & PERM_W) == 0) or (code == OP_X and (perm & PERM_X) == 0):
                    fault = F_PROTECTION
            if fault != F_NONE:
                n_fault += 1
                cy_fault += c_fault
                if record != 0:
                    _record(rec, i, -1, 0 if hit >= 0 else 1, fault, refs, c_hit + wcost + c_fault)
                if stop_on_fault != 0:
                    st[S_LAST_FAULT] = fault
                    status, stop = RUN_FAULT, i
                    break
                continue
            paddr = pbase + (arg & ((np.int64(1) << shift) - 1))
            if paddr >= nbytes:                 # check before the commit point (the fill)
                status, stop = RUN_BUS, i
                break
            if hit < 0:
                # fill the TLB holding this page size; else splinter into the largest smaller one
                best = -1
                for t in range(nt):
                    if td[t, TD_KIND] & kbit and td[t, TD_SHIFT] <= shift:
                        if best < 0 or td[t, TD_SHIFT] > td[best, TD_SHIFT]:
                            best = t
                if best >= 0:
                    fshift = td[best, TD_SHIFT]
                    fbase = pbase + (((arg - ((arg >> shift) << shift)) >> fshift) << fshift)
                    tlb_fill(td, te, tstat, st, best, key, sid, fbase >> fshift, perm,
                             glob if pge != 0 else 0, tick)
            ccost = 0
            if has_cache:
                l1 = costs[C_L1I] if code == OP_X else costs[C_L1D]
                ccost = mem_cost(costs, cd, ce, cstat, st, paddr, l1, code == OP_W)
                cy_cache += ccost
            psum += paddr
            if record != 0:
                _record(rec, i, paddr, 0 if hit >= 0 else 1, F_NONE, refs, c_hit + wcost + ccost)
        elif code == OP_SWITCH:
            if arg < 0 or arg >= nsp or sp[arg, SP_ROOT] < 0:
                status, stop = RUN_BAD_SPACE, i
                break
            do_switch(td, te, sp, st, costs, cyc, arg)
            sid = arg
            root, koff, klim = _space_view(sp, tagged, sid)
        elif code == OP_MODE:
            if arg < 0 or arg >= NCAT:
                status, stop = RUN_BAD_OP, i
                break
            cyc[mode] += cy_mode
            cy_mode = 0
            mode = arg
        elif code == OP_CHARGE:
            if (arg & 0xFF) >= NCAT or arg < 0:
                status, stop = RUN_BAD_OP, i
                break
            cyc[arg & 0xFF] += arg >> 8
        elif code == OP_FLUSH_ALL:
            tlb_flush(te, -1, 0)
            st[S_FLUSHES] += 1
        elif code == OP_FLUSH_SPACE:
            if arg < 0 or arg >= nsp:
                status, stop = RUN_BAD_SPACE, i
                break
            tlb_flush(te, arg, 1)
            st[S_FLUSHES] += 1
        elif code == OP_DEMAP:
            dsid = arg >> DEMAP_SID_SHIFT
            if dsid < 0 or dsid >= nsp:
                status, stop = RUN_BAD_SPACE, i
                break
            tlb_demap(td, te, sp, tagged, dsid, (arg & ((np.int64(1) << DEMAP_SID_SHIFT) - 1)) << 8)
        elif code <= OP_PX:
            if arg < 0 or arg >= nbytes:
                status, stop = RUN_BUS, i
                break
            tick += 1
            cy_mode += c_hit
            if has_cache:
                l1 = costs[C_L1I] if code == OP_PX else costs[C_L1D]
                cy_cache += mem_cost(costs, cd, ce, cstat, st, arg, l1, code == OP_PW)
        elif code == OP_MARK:
            if arg < 0 or arg >= marks.shape[0]:
                status, stop = RUN_BAD_OP, i
                break
            total = cy_mode + cy_walk + cy_fault + cy_cache
            for c in range(cyc.shape[0]):
                total += cyc[c]
            marks[arg, M_CYCLES] = total
            marks[arg, M_ACCESSES] = n_acc
            marks[arg, M_HITS] = n_hit
            marks[arg, M_MISSES] = n_miss
            marks[arg, M_WALK] = n_walk
            marks[arg, M_FAULTS] = n_fault
        else:
            status, stop = RUN_BAD_OP, i
            break
    st[S_TICK], st[S_ACCESSES], st[S_HITS], st[S_MISSES] = tick, n_acc, n_hit, n_miss
    st[S_WALK], st[S_FAULTS], st[S_PSUM], st[S_MODE] = n_walk, n_fault, psum, mode
    cyc[mode] += cy_mode
    cyc[TLB_WALK] += cy_walk
    cyc[FAULT] += cy_fault
    cyc[CACHE_MISS] += cy_cache
    return status, stop
