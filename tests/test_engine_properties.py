"""The jitted engine against the pure-Python reference MMU (tests/reference_mmu.py), on generated
machines, mappings and op sequences: translations, fault kinds, per-access hit/miss, walk
references and cycles must be identical, and the invariants of DESIGN.md §2 must hold.

Each example builds one machine (format, TLB geometry and policy, tagged or not, small spaces,
caches, costs, seed), two or three spaces, and a random program of mapping changes (map, unmap,
protect, global pages mapped alike in every space, destroy and recreate a space) and op batches
(accesses, switch, flush, flush space, demap, mode, charge, physical references).
"""
import json

import numpy as np
from hypothesis import HealthCheck, event, given, settings, strategies as st

import engine
from engine import core, ops as O
from engine.errors import MappingError
from engine.profile import PROFILE_DIR
from engine.pte import PERM_W, PERM_X

from reference_mmu import RefMMU

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PENTIUM = json.loads((PROFILE_DIR / "pentium-133.json").read_text())
CATS = ("user", "kernel", "server")

# Virtual pages per format: few top-level indices and few low indices, so that spaces share
# directories, sets conflict and walks differ in depth.  x86-32's 0x280 is the small-space
# region (0xA0000000): large spaces map there too, where small spaces' linear addresses lie.
FORMATS = {
    #           memory   page-number builder                               large page size
    "x86-32": (16 << 20, lambda a, b: (a << 22) | (b << 12), (0, 1, 0x280, 0x300), 4 << 20),
    "x86-64": (8 << 20, lambda a, b: (a << 39) | (1 << 30) * (a & 1) | (b << 12), (0, 1, 2), 2 << 20),
    "sv39": (8 << 20, lambda a, b: (a << 30) | (b << 12), (0, 1, 2), 2 << 20),
    "small": (64 << 10, lambda a, b: (a << 12) | (b << 8), (0, 1, 2, 15), None),
}
LOW = (0, 1, 2, 3, 4, 5, 8, 9, 16, 17)     # low index: same sets for small TLBs
GLOBAL_TOP = {"x86-32": 0x301, "x86-64": 3, "sv39": 3, "small": 14}
LARGE_TOPS = {"x86-32": (2, 0x302), "x86-64": (4, 5), "sv39": (4, 5), "small": ()}   # apart from
# the small pages' regions, else a large page would overlap them and never get mapped


def profile_dict(c):
    """pentium-133 with the example's costs (a dict profile: hardware values stay documented)."""
    p = json.loads(json.dumps(PENTIUM))
    p["name"] = "test-machine"
    for k, v in c.items():
        p["values"][k]["value"] = v
    return p


@st.composite
def machines(draw, small_spaces=False, large_pages=False):
    """A machine; `small_spaces`: always x86-32, untagged, with small spaces (Pentium style);
    `large_pages`: a format that has them."""
    fmt = "x86-32" if small_spaces else draw(st.sampled_from(
        ("sv39", "x86-32", "x86-64") if large_pages else sorted(FORMATS)))
    tagged = False if small_spaces else draw(st.booleans())
    small = small_spaces or (fmt == "x86-32" and not tagged and draw(st.booleans()))
    sets = draw(st.sampled_from((1, 2, 1, 2, 4)))           # small TLBs: evictions
    ways = draw(st.sampled_from((1, 2, 4, 2, 4, 8)))
    policy = draw(st.sampled_from(("lru", "fifo", "random")))
    page = 1 << (8 if fmt == "small" else 12)
    tlbs = ([dict(name="tlb", entries=sets * ways, ways=ways, page_size=page, policy=policy)]
            if draw(st.booleans()) else
            [dict(name="itlb", kind="instr", entries=max(sets // 2, 1) * ways, ways=ways,
                  page_size=page, policy=policy),
             dict(name="dtlb", kind="data", entries=sets * ways, ways=ways, page_size=page,
                  policy=policy)])
    large = FORMATS[fmt][3]
    if large and draw(st.booleans()):
        tlbs.append(dict(name="ltlb", kind=draw(st.sampled_from(("data", "unified"))),
                         entries=2, ways=draw(st.sampled_from((1, 2))), page_size=large,
                         policy=policy))
    caches = []
    line = draw(st.sampled_from((16, 32)))
    l1 = draw(st.sampled_from(("none", "unified", "split")))
    wmiss = draw(st.sampled_from((None, 0, 7, 32)))     # None: write-allocate
    if l1 == "unified":
        caches.append(dict(name="l1", kind="unified", size=4 * line * 2, line=line, ways=2))
    elif l1 == "split":
        caches += [dict(name="l1i", kind="instr", size=2 * line * 2, line=line, ways=2),
                   dict(name="l1d", kind="data", size=4 * line * 2, line=line, ways=2)]
    if l1 != "none" and wmiss is not None:
        caches[-1]["write_miss_cycles"] = wmiss
    if draw(st.booleans()):
        caches.append(dict(name="l2", level=2, kind="unified", size=16 * line, line=line,
                           ways=draw(st.sampled_from((1, 2, 4))), latency=draw(st.integers(2, 9))))
    costs = dict(tlb_hit_cycles=draw(st.integers(0, 2)), tlb_miss_base_cycles=draw(st.integers(0, 11)),
                 memory_latency_cycles=draw(st.integers(10, 40)), exception_cycles=draw(st.integers(50, 99)),
                 page_table_switch_cycles=draw(st.integers(1, 20)), asid_switch_cycles=draw(st.integers(0, 5)),
                 segment_switch_cycles=draw(st.integers(1, 20)), walk_through_l1=draw(st.booleans()),
                 global_pages=draw(st.booleans()), small_spaces=small)
    seed = draw(st.integers(0, 2 ** 40))
    m = engine.Machine(profile_dict(costs), fmt=fmt, tagged=tagged, small_spaces=small, tlbs=tlbs,
                       caches=caches, memory_bytes=FORMATS[fmt][0], seed=seed)
    return m


class Both:
    """Calls a method on two machines alike; returns the first's result (they must agree)."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __getattr__(self, name):
        def call(*args, **kw):
            r = getattr(self.a, name)(*args, **kw)
            assert getattr(self.b, name)(*args, **kw) == r
            return r
        return call


def twin_of(m):
    """A machine of the same configuration, from its public attributes."""
    return engine.Machine(m.profile, fmt=m.fmt, tagged=m.tagged, small_spaces=m.small_spaces,
                          tlbs=m.tlb_config, caches=m.cache_config, memory_bytes=m.memory.size,
                          seed=m.seed)


class World:
    """One machine, its reference, and the software view of the mappings.  A twin machine
    gets the same changes and batches but runs them without recording (the loop's lean copy
    when there are no caches): it must end in exactly the same state."""

    def __init__(self, m, nlarge, nsmall):
        self.m, self.ref = m, RefMMU.like(m)
        self.twin = twin_of(m)
        self.mm = Both(m, self.twin)
        self.small = {}
        self.gone = {}              # sid -> addresses of pages unmapped or protected
        self.globals = {}           # va -> (pa, perms) mapped alike in every large space
        self.sids = [self.new(False) for _ in range(nlarge)] + [self.new(True) for _ in range(nsmall)]
        self.current = None

    def new(self, small):
        sid = self.mm.new_space(small=small)
        self.small[sid] = small
        self.ref.add_space(sid, self.m.root(sid), self.m.small_base(sid))
        if not small:
            for va, (pa, perms) in self.globals.items():
                self.mm.map(sid, va, pa, perms, global_=True)
        return sid

    def large_sids(self):
        return [s for s in self.sids if not self.small[s]]

    def page_size(self, sid, va):
        r = self.m.tables.lookup(self.m.root(sid), va)
        return None if r is None else r[2]

    # -- software-side changes, applied to the machine and told to the reference --
    def map(self, sid, va, pa, perms, large):
        try:
            self.m.map(sid, va, pa, perms, large=large)
            self.twin.map(sid, va, pa, perms, large=large)
        except MappingError:
            pass                    # mapped already / overlaps: the call changes nothing

    def unmap(self, sid, va):
        size = self.page_size(sid, va)
        if size and va % size == 0:
            self.mm.unmap(sid, va)
            self.ref.demap(sid, va, size)
            self.forget(sid, va, size)

    def forget(self, sid, va, size):
        """Remember a few addresses of a page just unmapped or protected: accesses there must
        never hit a stale entry."""
        ps = self.m.fmt.page_size
        self.gone.setdefault(sid, []).extend(va + k * ps for k in (0, 1, 5, 9) if k * ps < size)

    def protect(self, sid, va, perms):
        size = self.page_size(sid, va)
        if size and va % size == 0:
            self.mm.protect(sid, va, perms)
            self.ref.demap(sid, va, size)
            self.forget(sid, va, size)

    def gmap(self, va, pa, perms):
        if va in self.globals:
            return
        self.globals[va] = (pa, perms)
        for s in self.large_sids():
            self.mm.map(s, va, pa, perms, global_=True)

    def gunmap(self, va):
        if self.globals.pop(va, None):
            for s in self.large_sids():
                self.unmap(s, va)

    def gprotect(self, va, perms):
        if va in self.globals:
            self.globals[va] = (self.globals[va][0], perms)
            for s in self.large_sids():
                self.protect(s, va, perms)

    def recreate(self, i):
        sid = self.sids[i]
        self.mm.destroy_space(sid)
        self.ref.destroy(sid)
        if self.current == sid:
            self.current = None
        self.sids[i] = self.new(self.small[sid])


def encode(w, batch):
    """Engine op words of a reference op list."""
    parts = []
    for op in batch:
        name, a = op[0], op[1:]
        if name in ("r", "w", "x"):
            parts.append(O.access(name, [a[0]]))
        elif name in ("pr", "pw", "px"):
            parts.append(O.physical(name[1], [a[0]]))
        elif name == "switch":
            parts.append(O.switch(a[0]))
        elif name == "flush":
            parts.append(O.flush())
        elif name == "flush_space":
            parts.append(O.flush(a[0]))
        elif name == "demap":
            parts.append(O.demap(a[0], a[1]))
        elif name == "mode":
            parts.append(O.mode(a[0]))
        elif name == "charge":
            parts.append(O.charge(a[0], a[1]))
    return O.concat(*parts)


@st.composite
def programs(draw, m, large_pages=False):
    """(number of large spaces, small spaces, steps); a step is a software change or a batch.
    `large_pages`: every large space gets large pages, changes are mostly to them."""
    fmt = m.fmt.name
    mem, vpage, tops, large = FORMATS[fmt]
    nlarge = draw(st.integers(2, 3))
    nsmall = draw(st.integers(1, 2)) if m.small_spaces else 0
    ps = m.fmt.page_size
    frames = st.integers(mem // ps // 2, mem // ps - 1).map(lambda f: f * ps)
    vas = st.builds(vpage, st.sampled_from(tops), st.sampled_from(LOW))
    small_vas = st.builds(lambda b: b << 12, st.sampled_from(LOW))     # inside a 4 MB small space
    large_vas = st.builds(vpage, st.sampled_from(LARGE_TOPS[fmt]), st.just(0)) if large else st.nothing()
    gvas = st.builds(vpage, st.just(GLOBAL_TOP[fmt]), st.sampled_from(LOW[:4]))
    perms = st.sampled_from(("r", "rw", "rx", "rwx"))
    nsp = nlarge + nsmall
    space = st.integers(0, nsp - 1)

    def page_of(i, small):
        return small_vas if small else vas

    steps = []
    for _ in range(draw(st.integers(0, 3))):        # kernel-like global pages
        steps.append(("gmap", draw(gvas), draw(frames), draw(perms)))
    for i in range(nsp):             # populate every space first
        for _ in range(draw(st.integers(2, 14))):
            steps.append(("map", i, draw(page_of(i, i >= nlarge)), draw(frames), draw(perms), False))
        for _ in range((2 if large_pages else draw(st.integers(0, 1))) if large and i < nlarge else 0):
            steps.append(("map", i, draw(large_vas), draw(st.integers(0, mem // large - 1)) * large,
                          draw(perms), True))
    for _ in range(draw(st.integers(1, 6))):
        # a few software changes
        for _ in range(draw(st.integers(0, 8))):
            kind = draw(st.sampled_from(("unmap", "protect", "large") if large_pages else (
                "map", "map", "map", "unmap", "protect", "large", "gmap", "gunmap", "gprotect",
                "recreate")))
            i = draw(space)
            small = i >= nlarge
            if kind == "map":
                steps.append(("map", i, draw(page_of(i, small)), draw(frames), draw(perms), False))
            elif kind == "large" and large and not small:
                steps.append(("map", i, draw(large_vas),
                              draw(st.integers(0, mem // large - 1)) * large, draw(perms), True))
            elif kind in ("unmap", "protect"):       # a page mapped at that point, by rank
                steps.append((kind, i, draw(st.integers(0, 3 if large_pages else 15))) +
                             ((draw(perms),) if kind == "protect" else ()))
            elif kind == "gmap":
                steps.append(("gmap", draw(gvas), draw(frames), draw(perms)))
            elif kind in ("gunmap", "gprotect"):
                steps.append((kind, draw(gvas)) + ((draw(perms),) if kind == "gprotect" else ()))
            elif kind == "recreate":
                steps.append(("recreate", i))
        # a batch of ops
        batch = [("switch", draw(space))]
        for _ in range(draw(st.integers(1, 60))):
            k = draw(st.sampled_from("rrrrwwwxxxd" if large_pages else "rrrrrrrrrwwwwwxxxgggsssS!fdmcp"))
            if k in "rwx":
                batch.append((k, ("va", draw(st.integers(0, 9)), draw(st.integers(0, 255)))))
            elif k == "g":              # a kernel-like global page, from whichever space
                batch.append((draw(st.sampled_from("rwx")), ("va", -1, draw(st.integers(0, 255)))))
            elif k == "s":
                batch.append(("switch", draw(space)))
            elif k == "S":              # back to the space before: large -> small -> large
                batch.append(("switch back",))
            elif k == "!":
                batch.append(("flush",))
            elif k == "f":
                batch.append(("flush_space", draw(space)))
            elif k == "d":
                batch.append(("demap", draw(space), ("va", draw(st.integers(0, 9)), 0)))
            elif k == "m":
                batch.append(("mode", draw(st.sampled_from(CATS))))
            elif k == "c":
                batch.append(("charge", draw(st.sampled_from(CATS)), draw(st.integers(0, 500))))
            else:
                batch.append(("p" + draw(st.sampled_from("rwx")), draw(st.integers(0, mem // 8 - 1)) * 8))
        batch.append(("final", not large_pages and draw(st.booleans())))
        steps.append(("batch", batch, draw(st.randoms(use_true_random=False))))
    return nlarge, nsmall, steps


def resolve(w, batch, rnd):
    """Turn symbolic addresses ("va", pick, offset) into addresses mapped (or not) in the space
    current at that point, and space indices into ids.  Returns the reference ops."""
    out, cur, prev = [], w.current, None
    mem, vpage, tops, large = FORMATS[w.m.fmt.name]
    for op in batch:
        name = op[0]
        if name == "final":
            if op[1]:
                out.append(("flush",))
            continue
        if name == "switch back":
            prev, cur = cur, (prev if prev is not None else cur)
            out.append(("switch", cur))
            continue
        if name in ("switch", "flush_space"):
            sid = w.sids[op[1]]
            out.append((name, sid))
            if name == "switch":
                prev, cur = cur, sid
            continue
        if name in ("r", "w", "x", "demap"):
            pick, off = op[-1][1], op[-1][2]
            sid = w.sids[op[1]] if name == "demap" else cur
            mapped = sorted(_mapped_pages(w, sid))
            if pick < 0 and w.globals and not w.small[sid]:
                va = sorted(w.globals)[rnd.randrange(len(w.globals))] + off
            elif pick < 8 and mapped:
                base, size = mapped[(pick * 3 + rnd.randrange(2)) % len(mapped)]   # a working set
                # a large page: one of a few splinters, so that a splintered entry is used again
                ps = w.m.fmt.page_size
                va = base + (rnd.choice((0, 1, 5, 9)) * ps + off if size > ps else off % size)
            elif pick >= 8 and w.gone.get(sid):
                va = rnd.choice(w.gone[sid][-8:]) + off     # a page just unmapped or protected
            elif w.small[sid]:
                va = rnd.randrange(0, 8 << 20, 4)       # beyond the 4 MB small space half the time
            else:
                va = vpage(rnd.choice(tops + LARGE_TOPS[w.m.fmt.name]), rnd.choice(LOW)) + off
            if name == "demap":
                out.append(("demap", sid, va - va % w.m.fmt.page_size))
            else:
                out.append((name, va))
            continue
        out.append(op)
    return out


def _mapped_pages(w, sid):
    """(va, size) of every page mapped in `sid`, from the tables (software lookup)."""
    mem, vpage, tops, large = FORMATS[w.m.fmt.name]
    cands = {vpage(t, b) for t in tops + (GLOBAL_TOP[w.m.fmt.name],) for b in LOW}
    cands |= {vpage(t, 0) for t in LARGE_TOPS[w.m.fmt.name]}
    if w.small[sid]:
        cands = {b << 12 for b in LOW}
    out = set()
    for va in cands:
        r = w.m.tables.lookup(w.m.root(sid), va)
        if r is not None:
            out.add((va - va % r[2], r[2]))
    return out


def check_batch(w, ops):
    """Run one batch on both; compare everything observable."""
    m, ref = w.m, w.ref
    c0 = m.by_category()
    r = m.run(encode(w, ops), record=True)
    c1 = m.by_category()
    r2 = w.twin.run(encode(w, ops))
    assert (r2.accesses, r2.hits, r2.misses, r2.faults, r2.walk_refs, r2.cycles) == \
        (r.accesses, r.hits, r.misses, r.faults, r.walk_refs, r.cycles)
    for a in ("st", "cyc", "te", "tstat", "ce", "cstat"):
        assert np.array_equal(getattr(m, a), getattr(w.twin, a)), f"{a} differs without record"
    rc0 = dict(ref.cycles)
    recs = ref.run(ops)
    cur = w.current
    for i, (op, want) in enumerate(zip(ops, recs)):
        if op[0] == "switch":
            cur = op[1]
        if want is None:
            continue
        got = r.records[i]
        paddr = None if got[core.R_PADDR] < 0 else int(got[core.R_PADDR])
        assert (paddr, "miss" if got[core.R_TLB] else "hit", core.FAULT_NAMES[got[core.R_FAULT]],
                int(got[core.R_WALK]), int(got[core.R_CYCLES])) == \
            (want.paddr, want.tlb, want.fault, want.walk_refs, want.cycles), f"op {i} {op} of {ops}"
        # the translation is the page table's current content (no stale entry), whatever the TLB
        tr = _translate(w, cur, op[1])
        if tr is None:
            assert want.fault == "not-present", f"op {i} {op}: unmapped but {want}"
        else:
            pa, perms = tr
            need = {"r": 0, "w": PERM_W, "x": PERM_X}[op[0]]
            if perms & need != need:
                assert want.fault == "protection", f"op {i} {op}: {want}"
            else:
                assert paddr == pa, f"op {i} {op}: 0x{paddr:x} but the tables say 0x{pa:x}"
    w.current = cur
    assert {k: c1[k] - c0[k] for k in c1} == {k: ref.cycles[k] - rc0[k] for k in c1}
    # the total is the sum of the categories; and the records add up with switches and charges
    assert r.cycles == sum(c1.values()) - sum(c0.values())
    charged = sum(op[2] for op in ops if op[0] == "charge")
    if not any(op[0] in ("pr", "pw", "px") for op in ops):
        per_access = sum(int(x[core.R_CYCLES]) for x, o in zip(r.records, ops) if o[0] in "rwx")
        assert per_access + charged + (c1["space_switch"] - c0["space_switch"]) == r.cycles
    assert (r.accesses, r.hits, r.misses, r.faults) == (
        sum(1 for x in recs if x), sum(1 for x in recs if x and x.tlb == "hit"),
        sum(1 for x in recs if x and x.tlb == "miss"), sum(1 for x in recs if x and x.fault))
    # the TLB holds exactly what the reference holds
    assert _engine_entries(m) == _ref_entries(ref)
    if ops and ops[-1] == ("flush",):
        assert not m.te[:, core.TE_VALID].any(), "flush all leaves entries"


def _translate(w, sid, va):
    small = w.small[sid] and not w.m.tagged
    if small and va >= w.m.small_base(sid)[1]:
        return None
    return w.m.translate(sid, va)


def _engine_entries(m):
    """(tlb, page number, owner, frame address, global) of every valid engine entry."""
    out = []
    for t in range(m.td.shape[0]):
        b, n, sh = m.td[t, core.TD_BASE], m.td[t, core.TD_SETS] * m.td[t, core.TD_WAYS], m.td[t, core.TD_SHIFT]
        for e in m.te[b:b + n]:
            if e[core.TE_VALID]:
                out.append((t, int(e[core.TE_VPN]), int(e[core.TE_OWNER]), int(e[core.TE_PFN]) << int(sh),
                            bool(e[core.TE_GLOBAL])))
    return sorted(out)


def _ref_entries(ref):
    """The same for the reference; small spaces' page numbers carry the engine's key bit."""
    out = []
    for t, tlb in enumerate(ref.tlbs):
        for e in tlb.entries():
            small = int(core.SMALL_KEY) // tlb.page if e.tag[0] else 0
            out.append((t, small | e.tag[1], e.owner, e.frame, e.glob))
    return sorted(out)


def play(m, program):
    nlarge, nsmall, steps = program
    w = World(m, nlarge, nsmall)
    for step in steps:
        kind = step[0]
        if kind == "batch":
            ops = resolve(w, step[1], step[2])
            if w.current is None and ops[0][0] != "switch":
                ops.insert(0, ("switch", w.sids[0]))
            check_batch(w, ops)
        elif kind == "map":
            _, i, va, pa, perms, large = step
            w.map(w.sids[i], va, pa, perms, large)
        elif kind in ("unmap", "protect"):
            sid = w.sids[step[1]]
            mapped = sorted((p for p in _mapped_pages(w, sid) if p[0] not in w.globals),
                            key=lambda p: (-p[1], p[0]))      # large first; globals go alike
            if mapped:          # rank 0..3: the largest page (a splintered large page, often)
                va = mapped[0 if step[2] < 4 else step[2] % len(mapped)][0]
                w.unmap(sid, va) if kind == "unmap" else w.protect(sid, va, step[3])
        elif kind == "gmap":
            w.gmap(*step[1:])
        elif kind == "gunmap":
            w.gunmap(step[1])
        elif kind == "gprotect":
            w.gprotect(*step[1:])
        elif kind == "recreate":
            w.recreate(step[1])
    return w


@st.composite
def worlds(draw, small_spaces=False, large_pages=False):
    m = draw(machines(small_spaces, large_pages))
    return m, draw(programs(m, large_pages))


@SETTINGS
@given(worlds())
def test_engine_matches_reference(world):
    """Every access: same translation, TLB hit or miss, fault kind, walk references and cycles
    as the reference MMU; per-category cycles identical; the TLB holds the same entries; an
    access's physical address is always the page tables' current content (no stale entry
    survives unmap, protect, demap, destroy or an untagged switch); flush all empties the TLB."""
    m, program = world
    w = play(m, program)
    s = {k: v for k, (v, _d) in m.stats().items()}
    event(f"{m.fmt.name} {'tagged' if m.tagged else 'untagged'}{' small' if m.small_spaces else ''} "
          f"{m.tlb_config[0]['policy']}")
    event(f"hits {min(s['tlb.hits'], 30) // 10 * 10}+ misses {min(s['tlb.misses'], 30) // 10 * 10}+ "
          f"faults {min(s['faults'], 10) // 5 * 5}+")
    event(f"evictions {sum(v for k, v in s.items() if k.endswith('.evictions')) > 0}")
    event(f"globals {len(w.globals) > 0}")


@SETTINGS
@given(worlds(small_spaces=True))
def test_small_spaces_match_reference(world):
    """Small address spaces on an untagged TLB (Liedtke 1995, S97 §3): switching to a small
    space, or back to the space whose tables are loaded, reloads segments and flushes nothing;
    a small space's entries never alias a large space's or another small space's, and it has
    no translations beyond its size.  Same comparisons and invariants as above."""
    m, program = world
    play(m, program)
    event(f"small spaces {program[1]}, segment switches "
          f"{min(m.stats()['switches'][0] - m.stats()['cr3.loads'][0], 10) // 5 * 5}+")


@SETTINGS
@given(worlds(large_pages=True))
def test_large_pages_match_reference(world):
    """Large pages (x86-32 4 MB with PSE, x86-64 and Sv39 2 MB): a TLB of their size holds them
    whole, a smaller-page TLB holds splinters; unmapping or protecting a large page drops every
    splinter of it (no access hits a stale piece).  Same comparisons and invariants."""
    m, program = world
    play(m, program)
    event(f"{m.fmt.name} large TLB {'yes' if len(m.tlb_config) > (1 if m.tlb_config[0].get('kind', 'unified') == 'unified' else 2) else 'no'}")


@st.composite
def replacement_runs(draw):
    """One space, a working set of 1..3 times the TLB's size, a long run of accesses (some
    pages hot, some cold) and nothing that flushes: the replacement policy decides every miss."""
    m = draw(machines())
    entries = sum(t["entries"] for t in m.tlb_config)
    mem, vpage, tops, large = FORMATS[m.fmt.name]
    ps = m.fmt.page_size
    pages = sorted({vpage(t, b) for t in tops for b in LOW})
    n = min(len(pages), draw(st.integers(2, 3 * entries + 2)))
    chosen = draw(st.permutations(pages))[:n]
    hot = draw(st.integers(1, n))
    accesses = draw(st.lists(st.tuples(st.sampled_from("rrrwx"), st.integers(0, 4 * n - 1),
                                       st.integers(0, ps - 1)), min_size=20, max_size=300))
    return m, chosen, [(k, chosen[i % hot if i < 3 * n else i % n] + off) for k, i, off in accesses]


@SETTINGS
@given(replacement_runs())
def test_replacement_policies_match_reference(run):
    """LRU evicts the least recently used way, FIFO the first filled, random the way chosen by
    the seeded xorshift64 generator: the per-access hit/miss sequence equals the reference's."""
    m, pages, accesses = run
    w = World(m, 1, 0)
    for j, va in enumerate(pages):
        w.map(w.sids[0], va, (m.memory.size // 2 // m.fmt.page_size + j) * m.fmt.page_size, "rwx", False)
    check_batch(w, [("switch", w.sids[0])] + accesses)
    event(f"{m.tlb_config[0]['policy']} evictions "
          f"{sum(int(m.tstat[t, core.TS_EVICTIONS]) for t in range(m.td.shape[0])) > 0}")
