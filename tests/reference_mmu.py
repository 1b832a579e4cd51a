"""A small, obviously-correct MMU in pure Python: the specification engine/core.py is checked against.

Dicts and lists, no NumPy in the logic, nothing shared with the engine but its *inputs*: the
configuration (CPU profile values, TLB and cache geometries, page-table format fields, seed)
and the physical memory words the page tables live in (`RefMMU.like(machine)`).

    ref = RefMMU.like(m)
    ref.add_space(sid, m.root(sid), m.small_base(sid))
    recs = ref.run([("switch", sid), ("r", 0x1234), ("flush",), ...])
    recs[i] -> Rec(paddr|None, tlb "hit"|"miss", fault None|"not-present"|"protection",
                   walk_refs, cycles)  for accesses, None for the other ops
    ref.cycles -> {category: cycles}

Rules (the hardware model of DESIGN.md §2, stated once):
  * An access probes, in configuration order, every TLB that holds its kind (instr for "x",
    data for "r"/"w"); the first hit wins.  Entries match on the page number and, in a tagged
    TLB, on the owner unless global.  On a miss the tables are walked, one entry read per level;
    a missing present bit is a not-present fault; a write to a page without W or a fetch from a
    page without X is a protection fault.  Faults do not fill.  A translation fills the TLB
    of the largest page size not above the mapped page's, first in order on ties (a large
    page is "splintered" into a smaller-page TLB).
  * Replacement: the first empty way, else the least recently used (LRU), the first filled
    (FIFO) or way xorshift64() % ways (random, the engine's generator and seeding).
  * Global entries: a leaf's G bit makes its entry global only if the profile honours global
    pages (P6 and later; the P54C Pentium ignores G).  A global entry matches in every space.
  * Untagged TLB: switching to another space reloads the page-table base and drops every
    non-global entry, except that switching to a small space, or back to the space whose
    tables are loaded, only reloads segments.  Small spaces' entries are keyed apart from
    large spaces' by their linear address (region base + va), and a small space has no
    translations at or beyond its size (miss + not-present fault, no walk).
  * Caches are physically indexed, LRU, allocate on miss.  A walk's reads start at L1 only if
    the profile says walks go through L1 (not on the Pentium), data references at the L1 of
    their kind; the first level that hits decides the extra cycles: 0 (L1), the L2 latency,
    or the memory latency.  Without any cache data references cost nothing extra.
  * Cycles: every access charges the hit cost to the current mode's category; a miss charges
    the walk base cost plus each read's cost to tlb_walk; a fault charges the exception cost
    to fault; a translated access's data reference goes to cache_miss; switches go to
    space_switch (ASID change, segment reload or CR3 load).
"""
from dataclasses import dataclass

from engine.cycles import NAMES as CATEGORIES

MASK64 = (1 << 64) - 1
INT63 = (1 << 63) - 1


def xorshift64(x):
    """One step of the engine's generator on an unsigned 64-bit state: (state, value)."""
    x ^= (x << 13) & MASK64
    x ^= x >> 7
    x ^= (x << 17) & MASK64
    return x, x & INT63


def seed_state(seed):
    return (seed * 0x9E3779B97F4A7C15 + 1) & INT63 or 1


@dataclass
class Entry:
    tag: tuple          # (small?, page number of the linear address at this TLB's page size)
    owner: int
    frame: int          # physical address of the (sub)page
    perms: str          # subset of "rwx"
    glob: bool
    used: int           # LRU: last use; FIFO: fill time


@dataclass(frozen=True)
class Rec:
    paddr: object
    tlb: str
    fault: object
    walk_refs: int
    cycles: int


class RefTLB:
    def __init__(self, entries, ways, page_size, policy, kind):
        self.ways, self.nsets = ways, entries // ways
        self.page = page_size
        self.policy = policy
        self.kinds = {"data": "rw", "instr": "x", "unified": "rwx"}[kind]
        self.sets = [[None] * ways for _ in range(self.nsets)]

    def set_of(self, linear):
        return self.sets[(linear // self.page) % self.nsets]

    def lookup(self, small, linear, owner, tagged, now):
        for e in self.set_of(linear):
            if e and e.tag == (small, linear // self.page) and (not tagged or e.owner == owner or e.glob):
                if self.policy == "lru":
                    e.used = now
                return e
        return None

    def fill(self, small, linear, entry, rand):
        ways = self.set_of(linear)
        if None in ways:
            i = ways.index(None)
        elif self.policy == "random":
            i = rand() % self.ways
        else:
            i = min(range(self.ways), key=lambda w: ways[w].used)
        ways[i] = entry

    def drop(self, keep):
        for ways in self.sets:
            for i, e in enumerate(ways):
                if e and not keep(e):
                    ways[i] = None

    def entries(self):
        return [e for ways in self.sets for e in ways if e]


class RefCache:
    def __init__(self, size, line, ways, latency=0, write_miss_cycles=None, **_):
        self.line, self.ways, self.latency = line, ways, latency
        self.write_miss = write_miss_cycles         # None: allocate on writes too
        self.nsets = size // (line * ways)
        self.sets = [[] for _ in range(self.nsets)]      # line numbers, least recent first

    def access(self, paddr, allocate=True):
        n = paddr // self.line
        s = self.sets[n % self.nsets]
        hit = n in s
        if not allocate and not hit:
            return False
        if hit:
            s.remove(n)
        elif len(s) == self.ways:
            s.pop(0)
        s.append(n)
        return hit


class RefMMU:
    def __init__(self, fmt, words, costs, tlbs, caches, tagged, small_spaces, seed):
        self.fmt, self.words, self.c = fmt, words, costs
        self.tlbs = [RefTLB(t["entries"], t["ways"], t["page_size"], t["policy"], t.get("kind", "unified"))
                     for t in tlbs]
        self.l1 = {"r": None, "x": None}
        self.l2 = None
        for c in caches:
            cache = RefCache(**{k: c[k] for k in ("size", "line", "ways")}, latency=c.get("latency", 0),
                             write_miss_cycles=c.get("write_miss_cycles"))
            if c.get("level", 1) == 2:
                self.l2 = cache
            else:
                kind = c.get("kind", "unified")
                if kind in ("data", "unified"):
                    self.l1["r"] = cache
                if kind in ("instr", "unified"):
                    self.l1["x"] = cache
        self.any_cache = bool(caches)
        self.tagged, self.small_spaces = tagged, small_spaces
        self.rng = seed_state(seed)
        self.spaces = {}            # sid -> (root, small base or None, small size)
        self.current = self.loaded = None
        self.mode = "user"
        self.now = 0
        self.cycles = dict.fromkeys(CATEGORIES, 0)
        self.count = dict(accesses=0, hits=0, misses=0, faults=0, walk_refs=0)

    @classmethod
    def like(cls, m):
        """A reference with machine `m`'s configuration, reading `m`'s memory words."""
        p = m.profile
        costs = {k: p[k] for k in ("tlb_hit_cycles", "tlb_miss_base_cycles", "memory_latency_cycles",
                                   "exception_cycles", "page_table_switch_cycles",
                                   "asid_switch_cycles", "segment_switch_cycles", "walk_through_l1",
                                   "global_pages")}
        return cls(m.fmt, m.memory.words, costs, m.tlb_config, m.cache_config, m.tagged,
                   m.small_spaces, m.seed)

    # -- spaces and software-side changes --
    def add_space(self, sid, root, small=None):
        self.spaces[sid] = (root,) + (tuple(small) if small else (None, None))

    def destroy(self, sid):
        """destroy_space: the space's entries go, global ones included."""
        for t in self.tlbs:
            t.drop(lambda e: e.owner != sid)
        del self.spaces[sid]
        if self.current == sid:
            self.current = None
        if self.loaded == sid:
            self.loaded = None

    def _linear(self, sid, va):
        root, base, size = self.spaces[sid]
        small = base is not None and not self.tagged
        return small, (base + va if small else va)

    def demap(self, sid, va, size=1):
        """Drop every entry of `sid` (or global) translating a byte of [va, va + size)."""
        small, lo = self._linear(sid, va)
        for t in self.tlbs:
            first, last = lo // t.page, (lo + size - 1) // t.page
            t.drop(lambda e: not (e.tag[0] == small and first <= e.tag[1] <= last
                                  and (e.owner == sid or e.glob)))

    # -- memory --
    def read(self, addr):
        if self.fmt.pte_bytes == 4:
            return int(self.words[addr // 4])
        return int(self.words[addr // 4]) | (int(self.words[addr // 4 + 1]) << 32)

    def mem_cost(self, paddr, l1, write=False):
        if l1 is not None and write and l1.write_miss is not None:     # write-no-allocate L1
            if l1.access(paddr, allocate=False):
                return 0
            if self.l2 is not None and not self.l2.access(paddr):
                return l1.write_miss + self.c["memory_latency_cycles"]
            return l1.write_miss
        if l1 is not None and l1.access(paddr):
            return 0
        if self.l2 is not None and self.l2.access(paddr):
            return self.l2.latency
        return self.c["memory_latency_cycles"]

    def walk(self, root, va):
        """(fault, page base, page size, perms, global, refs, cycles), one level per step."""
        f = self.fmt
        table, refs, cost = root, 0, 0
        l1 = self.l1["r"] if self.c["walk_through_l1"] else None
        for level, bits in enumerate(f.bits):
            shift = f.page_shift + sum(f.bits[level + 1:])
            index = (va >> shift) % (1 << bits)
            addr = table + index * f.pte_bytes
            if addr + f.pte_bytes > len(self.words) * 4:
                raise AssertionError(f"walk left memory at 0x{addr:x}")
            e = self.read(addr)
            refs += 1
            cost += self.mem_cost(addr, l1)
            if not e & f.p_mask:
                return "not-present", 0, 0, "", False, refs, cost
            frame = ((e >> f.ppn_shift) % (1 << f.ppn_bits)) << f.page_shift
            if level == len(f.bits) - 1 or e & f.leaf_mask:
                size = 1 << shift
                return None, frame - frame % size, size, self.perms(e), bool(e & f.g_mask), refs, cost
            table = frame
        raise AssertionError("unreachable")

    def perms(self, e):
        f = self.fmt
        p = "r" + ("w" if e & f.w_mask else "")
        if f.x_mask:
            return p + ("x" if e & f.x_mask else "")
        if f.nx_mask:
            return p + ("" if e & f.nx_mask else "x")
        return p + "x"

    def rand(self):
        self.rng, v = xorshift64(self.rng)
        return v

    # -- ops --
    def access(self, kind, va):
        self.now += 1
        self.count["accesses"] += 1
        sid = self.current
        assert sid is not None, "access with no current space"
        root, base, size = self.spaces[sid]
        small, linear = self._linear(sid, va)
        cost = self.c["tlb_hit_cycles"]
        self.cycles[self.mode] += cost
        in_range = not small or va < size
        hit = None
        if in_range:
            for t in self.tlbs:
                if kind in t.kinds:
                    hit = t.lookup(small, linear, sid, self.tagged, self.now)
                    if hit:
                        paddr = hit.frame + linear % t.page
                        perms = hit.perms
                        break
        refs = 0
        if hit:
            self.count["hits"] += 1
            fault = None
        else:
            self.count["misses"] += 1
            if not in_range:
                fault = "not-present"
            else:
                fault, page, psize, perms, glob, refs, wc = self.walk(root, va)
                self.count["walk_refs"] += refs
                wc += self.c["tlb_miss_base_cycles"]
                self.cycles["tlb_walk"] += wc
                cost += wc
        if fault is None and kind not in perms:
            fault = "protection"
        if fault:
            self.count["faults"] += 1
            self.cycles["fault"] += self.c["exception_cycles"]
            return Rec(None, "hit" if hit else "miss", fault, refs,
                       cost + self.c["exception_cycles"])
        if not hit:
            paddr = page + va % psize
            fits = [t for t in self.tlbs if kind in t.kinds and t.page <= psize]
            if fits:
                t = max(fits, key=lambda t: t.page)        # first of the largest
                frame = paddr - paddr % t.page
                glob = glob and bool(self.c["global_pages"])
                t.fill(small, linear, Entry((small, linear // t.page), sid, frame, perms, glob,
                                            self.now), self.rand)
        if self.any_cache:
            c = self.mem_cost(paddr, self.l1["x" if kind == "x" else "r"], kind == "w")
            self.cycles["cache_miss"] += c
            cost += c
        return Rec(paddr, "hit" if hit else "miss", None, refs, cost)

    def physical(self, kind, paddr):
        self.cycles[self.mode] += self.c["tlb_hit_cycles"]
        if self.any_cache:
            self.cycles["cache_miss"] += self.mem_cost(paddr, self.l1["x" if kind == "x" else "r"],
                                                       kind == "w")

    def switch(self, sid):
        if sid == self.current:
            return
        if self.tagged:
            self.cycles["space_switch"] += self.c["asid_switch_cycles"]
        elif (self.small_spaces and self.spaces[sid][1] is not None) or sid == self.loaded:
            self.cycles["space_switch"] += self.c["segment_switch_cycles"]
        else:
            for t in self.tlbs:
                t.drop(lambda e: e.glob)
            self.loaded = sid
            self.cycles["space_switch"] += self.c["page_table_switch_cycles"]
        self.current = sid

    def run(self, ops):
        """Execute ops (tuples, see the module docstring); one Rec per access, None otherwise."""
        out = []
        for op in ops:
            name, args = op[0], op[1:]
            rec = None
            if name in ("r", "w", "x"):
                rec = self.access(name, *args)
            elif name in ("pr", "pw", "px"):
                self.physical(name[1], *args)
            elif name == "switch":
                self.switch(*args)
            elif name == "flush":
                for t in self.tlbs:
                    t.drop(lambda e: False)
            elif name == "flush_space":
                for t in self.tlbs:
                    t.drop(lambda e, s=args[0]: e.owner != s or e.glob)
            elif name == "demap":
                self.demap(*args)
            elif name == "mode":
                self.mode = args[0]
            elif name == "charge":
                self.cycles[args[0]] += args[1]
            else:
                raise ValueError(f"reference: unknown op {op!r}")
            out.append(rec)
        return out

    def entries(self):
        return [e for t in self.tlbs for e in t.entries()]
