"""TLB and cache geometries: the profile's (or caller's) dicts validated and built into the
engine's arrays.  Separate from `Machine` because it is input checking with no machine state
(a `create_*` factory in QuantEcon's sense): every bad entries/ways/size/policy is refused
here, by name, before any array reaches the jitted loop.
"""
import numpy as np

from . import core
from .errors import ConfigError

POLICIES = {"lru": core.LRU, "fifo": core.FIFO, "random": core.RANDOM}
KINDS = {"data": core.KIND_DATA, "instr": core.KIND_INSTR, "unified": core.KIND_DATA | core.KIND_INSTR}


def _need(d, keys, what):
    """The values of `keys` in the geometry dict `d`, or ConfigError naming the missing one."""
    if not isinstance(d, dict):
        raise ConfigError(f"{what}: a geometry must be a dict with {', '.join(keys)}; got {d!r}")
    for k in keys:
        if k not in d:
            raise ConfigError(f"{what}: {k!r} missing (required: {', '.join(keys)})")
    return [d[k] for k in keys]


def _positive_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0


def tlb_arrays(tlbs, page_shift):
    """Validate TLB geometries and build (td, te, tstat).  Each dict: entries, ways, page_size,
    policy, kind."""
    if len(tlbs) == 0:
        raise ConfigError("tlbs: at least one TLB is required")
    td = np.zeros((len(tlbs), core.TD_LEN), np.int64)
    base = 0
    for i, t in enumerate(tlbs):
        name = t.get("name", f"tlb{i}") if isinstance(t, dict) else f"tlb{i}"
        n, w = _need(t, ("entries", "ways"), name)
        if not _positive_int(n):
            raise ConfigError(f"{name}: entries {n!r} must be a positive integer")
        if not _positive_int(w):
            raise ConfigError(f"{name}: ways {w!r} must be a positive integer")
        if n % w:
            raise ConfigError(f"{name}: ways {w} do not divide entries {n}")
        sets = n // w
        if sets & (sets - 1):
            raise ConfigError(f"{name}: {n} entries / {w} ways = {sets} sets; sets must be a power of two")
        ps = t.get("page_size", 1 << page_shift)
        if not _positive_int(ps) or ps & (ps - 1) or ps < (1 << page_shift):
            raise ConfigError(f"{name}: page size {ps} must be a power of two >= {1 << page_shift}")
        pol = t.get("policy", "lru")
        if pol not in POLICIES:
            raise ConfigError(f"{name}: policy {pol!r} unknown; allowed: {', '.join(POLICIES)}")
        kind = t.get("kind", "unified")
        if kind not in KINDS:
            raise ConfigError(f"{name}: kind {kind!r} unknown; allowed: {', '.join(KINDS)}")
        td[i] = (base, sets, w, ps.bit_length() - 1, POLICIES[pol], KINDS[kind])
        base += n
    for kbit, what in ((core.KIND_DATA, "data"), (core.KIND_INSTR, "instruction")):
        if not any(td[i, core.TD_KIND] & kbit and td[i, core.TD_SHIFT] == page_shift
                   for i in range(len(tlbs))):
            raise ConfigError(f"tlbs: no TLB holds {what} translations of {1 << page_shift}-byte "
                              f"base pages (each access kind needs a TLB with kind "
                              f"{'data' if kbit == core.KIND_DATA else 'instr'} or unified and "
                              f"page_size {1 << page_shift})")
    te = np.zeros((base, core.TE_LEN), np.int64)
    tstat = np.zeros((len(tlbs), core.TS_LEN), np.int64)
    return td, te, tstat


def cache_arrays(caches):
    """Validate cache geometries and build (cd, ce, cstat, l1d, l1i, l2)."""
    cd = np.zeros((max(len(caches), 1), core.CD_LEN), np.int64)
    base, l1d, l1i, l2 = 0, -1, -1, -1
    taken = {}
    for i, c in enumerate(caches):
        name = c.get("name", f"cache{i}") if isinstance(c, dict) else f"cache{i}"
        size, line, ways = _need(c, ("size", "line", "ways"), name)
        for what, v in (("size", size), ("line", line), ("ways", ways)):
            if not _positive_int(v):
                raise ConfigError(f"{name}: {what} {v!r} must be a positive integer")
        lat = c.get("latency", 0)
        if not isinstance(lat, (int, np.integer)) or isinstance(lat, bool) or lat < 0:
            raise ConfigError(f"{name}: latency {lat!r} must be a non-negative integer (cycles)")
        wmiss = c.get("write_miss_cycles")
        if wmiss is not None and (not isinstance(wmiss, (int, np.integer)) or isinstance(wmiss, bool)
                                  or wmiss < 0):
            raise ConfigError(f"{name}: write_miss_cycles {wmiss!r} must be a non-negative integer "
                              "(cycles of a write miss that allocates no line) or absent")
        if line & (line - 1) or size % (line * ways):
            raise ConfigError(f"{name}: line {line} must be a power of two and divide size/ways")
        sets = size // (line * ways)
        if sets & (sets - 1):
            raise ConfigError(f"{name}: {sets} sets; sets must be a power of two")
        cd[i] = (base, sets, ways, line.bit_length() - 1, lat, -1 if wmiss is None else wmiss)
        base += sets * ways
        kind, level = c.get("kind", "unified"), c.get("level", 1)
        if kind not in KINDS:
            raise ConfigError(f"{name}: kind {kind!r} unknown; allowed: {', '.join(KINDS)}")
        if level not in (1, 2):
            raise ConfigError(f"{name}: level {level!r}; allowed: 1, 2")
        roles = ["l2"] if level == 2 else {"data": ["l1d"], "instr": ["l1i"], "unified": ["l1d", "l1i"]}[kind]
        for r in roles:
            if taken.get(r) is not None:
                raise ConfigError(f"{name}: a second {r} cache (after {taken[r]}); one per role")
            taken[r] = name
        l2 = i if level == 2 else l2
        l1d = i if "l1d" in roles else l1d
        l1i = i if "l1i" in roles else l1i
    ce = np.zeros((max(base, 1), core.CE_LEN), np.int64)
    cstat = np.zeros((cd.shape[0], core.CS_LEN), np.int64)
    return cd, ce, cstat, l1d, l1i, l2
