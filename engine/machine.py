"""`Machine`: the one facade through which everything above the engine runs.

    m = Machine("pentium-133")
    a = m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "rw")
    m.switch(a)
    r = m.step("w", 0x1234)                       # single step, with the walk shown
    m.run(ops.touch(range(0x1000, 0x2000, 32)))   # a batch: one jitted call
    m.cycles, m.by_category(), m.stats()
    b = m.attach_space(root_paddr)                # tables already built in memory (a loaded image)
    m.root(a), m.small_base(a)                    # CR3 value; small space's (base, size) or None

Hardware values come from the CPU profile; overrides are explicit constructor arguments.
`placement_seed` (None: frames lowest first, as after boot) hands frames out in a seeded
scattered order instead, to measure how much a result owes to physical placement.
Accesses are charged to the current *mode* category (`m.mode("kernel")`); kernel paths charge
instructions with `m.instructions(n, "kernel")`.  Faults in a batch are handed to `on_fault`,
which resolves them (maps the page) so that the access is retried, as hardware re-executes.

`geometry` (TLB and cache arrays), `results` (what a run returns) and `deferral` (held-back
batches, a mixin of Machine) are modules of their own; their public names are importable
from here as before.
"""
from contextlib import contextmanager

import numpy as np

from . import core, cycles as C, ops as O
from .deferral import Deferral
from .errors import ConfigError, AddressError, MappingError
from .events import EventLog
from .geometry import tlb_arrays, cache_arrays
from .memory import PhysicalMemory
from .pagetable import PageTables
from .profile import load_profile
from .pte import get_format, parse_perms, ACCESS_NAMES
from .results import PageFault, BusError, Fault, StepResult, RunResult, Measurement
# names that lived here before the split: still importable from engine.machine
from .deferral import Batch             # noqa: F401
from .geometry import POLICIES, KINDS   # noqa: F401


def _entry_point(fn, args):
    """The compiled function of Numba dispatcher `fn` for the types of `args` (compiled now if
    needed), callable without the dispatcher's per-call type resolution; `fn` itself when
    Numba does not expose it.  Callers must pass arguments of exactly these types (the
    machine's own arrays, C-contiguous int64 op batches)."""
    fn(*args)
    try:
        sig = tuple(fn.typeof_pyval(a) for a in args)
        return fn.overloads[sig].entry_point
    except (AttributeError, KeyError):          # another Numba: the dispatcher still works
        return fn


class Machine(Deferral):
    """A simulated machine: memory with page tables in it, TLBs, caches and a cycle counter."""

    MAX_RETRIES = 8         # faults of one access in a row that on_fault claims to resolve
    # MARKS and HOLD, the bounds of the held-back queue, are Deferral's

    STATS = {
        "accesses": "translated references",
        "tlb.hits": "references that hit a TLB",
        "tlb.misses": "references that missed every TLB probed (counted once)",
        "walk.refs": "page-table entries read by the walker",
        "faults": "not-present and protection faults",
        "switches": "address-space switches",
        "tlb.flushes": "TLB flushes (CR3 loads, flush all, flush space)",
        "cr3.loads": "page-table base reloads (untagged TLB)",
    }

    def __init__(self, profile="pentium-133", *, fmt=None, tagged=None, small_spaces=None,
                 tlbs=None, caches=True, memory_bytes=None, seed=1, max_spaces=64,
                 placement_seed=None):
        self.profile = load_profile(profile)
        p = self.profile
        self.fmt = get_format(fmt or p.format)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed {seed!r} must be a non-negative integer")
        self.seed = int(seed)
        self.memory = PhysicalMemory(memory_bytes or p["memory_bytes"], self.fmt.page_size,
                                     placement_seed)
        self.tables = PageTables(self.memory, self.fmt)
        self.tlb_config = [dict(t) for t in (tlbs if tlbs is not None else p.tlbs)]
        if tlbs is None:        # another format: the profile's base-page TLBs hold its base pages
            base = get_format(p.format).page_size
            for t in self.tlb_config:
                if t["page_size"] == base:
                    t["page_size"] = self.fmt.page_size
        self.td, self._te, self._tstat = tlb_arrays(self.tlb_config, self.fmt.page_shift)
        self.cache_config = [dict(c) for c in p.caches] if caches is True else list(caches or [])
        self.cd, self._ce, self._cstat, l1d, l1i, l2 = cache_arrays(self.cache_config)
        self.tagged = bool(p["tagged_tlb"] if tagged is None else tagged)
        small = bool(p["small_spaces"] if small_spaces is None else small_spaces)
        if small and not p["small_spaces"]:
            raise ConfigError(f"profile {p.name} cannot emulate small address spaces (no segments)")
        self.small_spaces = small
        self.costs = np.zeros(core.NCOSTS, np.int64)
        cst = self.costs
        cst[core.C_HIT] = p["tlb_hit_cycles"]
        cst[core.C_WALK_BASE] = p["tlb_miss_base_cycles"]
        cst[core.C_MEM] = p["memory_latency_cycles"]
        cst[core.C_FAULT] = p["exception_cycles"]
        cst[core.C_CR3] = p["page_table_switch_cycles"]
        cst[core.C_ASID] = p["asid_switch_cycles"]
        cst[core.C_SEG] = p["segment_switch_cycles"]
        cst[core.C_WALK_L1] = int(bool(p["walk_through_l1"]))
        cst[core.C_SMALL] = int(small)
        cst[core.C_L1D], cst[core.C_L1I], cst[core.C_L2] = l1d, l1i, l2
        cst[core.C_PGE] = int(bool(p["global_pages"]))
        self.cpi = float(p["cycles_per_instruction"])
        if not isinstance(max_spaces, (int, np.integer)) or max_spaces < 1:
            raise ConfigError(f"max_spaces {max_spaces!r} must be a positive integer (it grows as needed)")
        self.sp = np.full((max_spaces, core.SP_LEN), -1, np.int64)
        self._small_next = p["small_space_base"]
        self._small_free = []       # (base, size) slices given back by destroy_space
        st = self._st = np.zeros(core.NSTATE, np.int64)
        st[core.S_SPACE] = -1
        st[core.S_CR3] = -1
        st[core.S_RNG] = (self.seed * 0x9E3779B97F4A7C15 + 1) & 0x7FFFFFFFFFFFFFFF or 1
        st[core.S_TAGGED] = int(self.tagged)
        st[core.S_MODE] = C.USER
        self._cyc = np.zeros(C.NCAT, np.int64)
        self._pending = []          # deferred trusted batches (see `defer`), in order
        # lazy event stamps: an entry logged while batches are held back gets an OP_MARK in
        # the queue; the flush fills its cycle in (see `_log_event`)
        self._marks = np.zeros((self.MARKS, core.M_LEN), np.int64)
        self._mark_ops = [np.array([(k << core.OP_SHIFT) | core.OP_MARK], np.int64)
                          for k in range(self.MARKS)]
        self._lazy = []             # (entry index in the log, Python-side cycles when logged)
        self._lazy_runs = []        # (_DeferredRunResult, mark before, mark after)
        self._nmarks = 0            # marks used by the held-back queue
        self._space = -1            # the current space, a held-back switch included
        self._switch_ops = {}       # sid -> its switch op (held back like a batch)
        self._epoch = 0             # bumped by every change of a mapping or space
        self._gperm = {}            # (page size, va // size) -> perms common to its global mappings
        self._mode_ops = [np.array([(c << core.OP_SHIFT) | core.OP_MODE], np.int64)
                          for c in range(C.NCAT)]
        self._dummy_rec = np.zeros((1, core.R_LEN), np.int64)
        self._step_op = np.zeros(1, np.int64)
        self._step_rec = np.zeros((1, core.R_LEN), np.int64)
        self._bind()
        self._tr = {}                # translate's results: (sid, page) -> (frame paddr, perms)
        self._page_shift = self.fmt.page_shift
        self._page_mask = self.fmt.page_size - 1
        self.events = EventLog(self._clock, self._log_event, self._settle)

    def _bind(self):
        """The machine's arrays as the loop takes them, and the loop's compiled entry point for
        their types.  Calling the entry point skips Numba's dispatcher, whose type checks of
        18 arguments cost about as much as simulating a short kernel path (a third of a
        microsecond per call); called again when an array is replaced (sp grows)."""
        self._arrays = (self.memory.words, self.fmt.desc, self.costs, self.td, self._te,
                        self._tstat, self.cd, self._ce, self._cstat, self.sp, self._st, self._cyc,
                        self._marks)
        probe = np.zeros(1, np.int64)
        self._loop = _entry_point(core.run, (probe, 0, 0) + self._arrays + (self._dummy_rec, 0, 0))
        self._check = _entry_point(core.check_ops, (probe, 0))

    # ---------------------------------------------------------------- spaces
    def new_space(self, small=False, small_size=None):
        """Create an address space with an empty root table; returns its id.  A *small* space
        (untagged TLB with segments) gets a slice of the small-space region: switching to it
        reloads segments instead of CR3, so nobody's TLB entries are flushed."""
        self._changed()
        sid = self._free_sid()
        if small:
            if not self.small_spaces:
                raise ConfigError("new_space: small spaces are off on this machine "
                                  f"(profile {self.profile.name}, small_spaces=False)")
            size = small_size or (4 << 20)
            p = self.profile
            if size < (4 << 20) or size & (size - 1):
                raise ConfigError(f"new_space: small space size {size} must be a power of two >= 4 MB")
            # a slice freed by destroy_space first (lowest address of that size), else a new one
            reuse = sorted(b for b, sz in self._small_free if sz == size)
            if reuse:
                base = reuse[0]
                self._small_free.remove((base, size))
            else:
                if self._small_next + size > p["small_space_base"] + p["small_space_size"]:
                    raise ConfigError("new_space: the small-space region is full "
                                      f"({p['small_space_size'] >> 20} MB)")
                base = self._small_next
                self._small_next += size
            self.sp[sid, core.SP_SMALL] = base
            self.sp[sid, core.SP_SIZE] = size
        else:
            self.sp[sid, core.SP_SMALL] = -1
            self.sp[sid, core.SP_SIZE] = -1
        self.sp[sid, core.SP_ROOT] = self.tables.create_root()
        return sid

    def _free_sid(self):
        free = np.flatnonzero(self.sp[:, core.SP_ROOT] < 0)
        if free.size == 0:
            self.sp = np.vstack([self.sp, np.full_like(self.sp, -1)])
            self._bind()
            free = np.flatnonzero(self.sp[:, core.SP_ROOT] < 0)
        return int(free[0])

    def attach_space(self, root_paddr):
        """Register page tables already built in memory (root table at `root_paddr`) as a new
        large space; returns its id.  The tables stay the caller's: destroy_space drops the
        space's TLB entries but frees none of their frames, and the allocator does not know
        them (reserve them with `memory.alloc_frame_at` if it also hands out frames)."""
        self._changed()
        ps = self.fmt.page_size
        if not isinstance(root_paddr, (int, np.integer)) or root_paddr % ps \
                or not 0 < root_paddr <= self.memory.size - ps:
            raise AddressError(f"attach_space: root 0x{int(root_paddr):x} must be a page-aligned "
                               f"(0x{ps:x}) frame inside memory (0x{ps:x}..0x{self.memory.size - ps:x})")
        sid = self._free_sid()
        self.sp[sid] = (int(root_paddr), -1, -1)
        return sid

    def root(self, sid):
        """Physical address of the space's root table (its 'CR3' value)."""
        return self._root(sid, "root")

    def small_base(self, sid):
        """(base, size) of a small space's slice of the small-space region, or None."""
        self._root(sid, "small_base")
        b = int(self.sp[sid, core.SP_SMALL])
        return None if b < 0 else (b, int(self.sp[sid, core.SP_SIZE]))

    def _root(self, sid, what):
        if not isinstance(sid, (int, np.integer)) or not 0 <= sid < self.sp.shape[0] \
                or self.sp[sid, core.SP_ROOT] < 0:
            raise MappingError(f"{what}: space {sid!r} does not exist")
        return int(self.sp[sid, core.SP_ROOT])

    def destroy_space(self, sid):
        """Drop the space's TLB entries, free its tables (not its data frames)."""
        self._changed()
        root = self._root(sid, "destroy_space")
        core.tlb_flush(self._te, sid, 0)
        if self.sp[sid, core.SP_SMALL] >= 0:      # its slice of the small-space region returns
            self._small_free.append((int(self.sp[sid, core.SP_SMALL]), int(self.sp[sid, core.SP_SIZE])))
        self.tables.destroy(root)
        self.sp[sid] = -1
        if self._st[core.S_SPACE] == sid:
            self._st[core.S_SPACE] = -1
            self._space = -1
        if self._st[core.S_CR3] == sid:
            self._st[core.S_CR3] = -1

    def is_small(self, sid):
        return self.sp.item(sid, core.SP_SMALL) >= 0

    @property
    def current_space(self):
        return self._space      # the engine's, once the held-back switches have run

    def space_ids(self):
        return [int(s) for s in np.flatnonzero(self.sp[:, core.SP_ROOT] >= 0)]

    # ---------------------------------------------------------------- frames
    def alloc_page(self, colour=None, colours=1):
        """A zeroed free frame; returns its physical address."""
        return self.memory.alloc(colour, colours) * self.fmt.page_size

    def free_page(self, paddr):
        self.memory.free(paddr // self.fmt.page_size)

    # ---------------------------------------------------------------- mappings (software)
    @staticmethod
    def _perms(perms):
        return parse_perms(perms) if isinstance(perms, str) else int(perms)

    def map(self, sid, va, pa, perms="rw", global_=False, large=False):
        """Map one page (`large`: one level up, 4 MB on x86-32).  A small space's pages must lie
        inside its size; mapping a mapped page is an error."""
        self._changed()
        root = self._root(sid, "map")
        perms = self._perms(perms)
        if self.sp[sid, core.SP_SMALL] >= 0:
            size = int(self.sp[sid, core.SP_SIZE])
            ps = 1 << self.fmt.level_shift(self.fmt.levels - (2 if large else 1))
            if not isinstance(va, (int, np.integer)) or va < 0 or va + ps > size:
                raise AddressError(f"map: va 0x{int(va):x} outside small space {sid} "
                                   f"(allowed 0..0x{size:x})")
        self.tables.map(root, va, pa, perms, global_, large, space=sid)
        if global_:         # what a global TLB entry of this page may grant in any space
            pa_, bits, size, _e = self.tables.lookup(root, va)
            key = (size, va // size)
            self._gperm[key] = self._gperm.get(key, bits) & bits

    def unmap(self, sid, va):
        """Remove the mapping and `sid`'s TLB entry for the page (invlpg)."""
        self._changed()
        root = self._root(sid, "unmap")
        size = self._page_size(root, va)
        e = self.tables.unmap(root, va, space=sid)
        core.tlb_demap_range(self.td, self._te, self.sp, self._st[core.S_TAGGED], sid, va, size)
        return e

    def _page_size(self, root, va):
        """Size of the page mapped at `va` (1 if none: the table call then raises)."""
        r = self.tables.lookup(root, va) if isinstance(va, (int, np.integer)) and va >= 0 else None
        return 1 if r is None else r[2]

    def protect(self, sid, va, perms):
        """Change the page's permissions and demap its stale TLB entry."""
        self._changed()
        root = self._root(sid, "protect")
        size = self._page_size(root, va)
        self.tables.protect(root, va, self._perms(perms), space=sid)
        core.tlb_demap_range(self.td, self._te, self.sp, self._st[core.S_TAGGED], sid, va, size)

    def translate(self, sid, va):
        """(paddr, perms) for `va` in `sid`, or None: a software lookup that charges nothing.
        Kernels translate on every message copy, so results are kept per (space, page) until
        the next change of any mapping or space through this Machine (map, unmap, protect,
        new/attach/destroy_space): page tables must not be edited behind its back."""
        if type(va) is int and type(sid) is int:
            key = (sid, va >> self._page_shift)
            hit = self._tr.get(key, False)
            if hit is not False:
                return None if hit is None else (hit[0] + (va & self._page_mask), hit[1])
        r = self.tables.lookup(self._root(sid, "translate"), va)
        if type(va) is int and type(sid) is int:
            if len(self._tr) > 65536:
                self._tr.clear()
            self._tr[key] = None if r is None else (r[0] - (va & self._page_mask), r[1])
        return None if r is None else (r[0], r[1])

    def table_frames(self, sid):
        """Physical addresses of the frames that hold `sid`'s page tables (root included),
        ascending.  The engine builds tables for free (they are what the MMU walks); the
        kernel that allocates a table charges clearing it (lab/ptclear.py)."""
        root = self._root(sid, "table_frames")
        ps = self.fmt.page_size
        return tuple(f * ps for f in sorted(self.tables.tables.get(root, ())))

    def table_count(self, sid):
        """How many frames hold `sid`'s page tables (a cheap test before `table_frames`)."""
        return len(self.tables.tables.get(self._root(sid, "table_count"), ()))

    def walk_steps(self, sid, va):
        return self.tables.walk_steps(self._root(sid, "walk_steps"), va)

    # ---------------------------------------------------------------- execution
    def run(self, ops, record=False, on_fault=None, check=True):
        """Run a batch of encoded ops (see `engine.ops`) in one jitted call per fault.

        A fault goes to `on_fault(fault)`; if it returns True the access is retried, otherwise
        the fault is counted and (with on_fault given) PageFault is raised.  Without on_fault,
        faults are counted and the batch goes on, as `microlab mmu` wants.  An access that
        faults again MAX_RETRIES times after on_fault said it was resolved raises PageFault
        (a handler that does not fix the cause must not hang the machine).

        `check=False` skips the Python-side validation of the ops (virtual addresses inside
        the format, known op codes): for large trusted batches such as benchmarks."""
        if type(ops) is not np.ndarray or ops.ndim != 1 or ops.dtype != np.int64 \
                or not ops.flags.c_contiguous:
            raw = np.asarray(ops)
            # an op word is an integer: a float (truncated) or a scalar (a batch of one by
            # accident) would run something nobody wrote
            if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):
                raise ConfigError(f"run: ops must be a 1-d array of integer op words "
                                  f"(engine.ops builds them); got {raw.dtype} of shape {raw.shape}")
            ops = np.ascontiguousarray(raw, dtype=np.int64)
        if ops.ndim != 1:
            raise ConfigError(f"run: ops must be a 1-d array of int64 op words; got shape {ops.shape}")
        if check and self._check(ops, self.fmt.va_bits) >= 0:
            O.check(ops, self.fmt)              # raises the error naming the bad op
        if self._pending:
            self._flush()
        n = ops.shape[0]
        rec = np.zeros((n, core.R_LEN), np.int64) if record else self._dummy_rec
        st, cyc, arrays, loop = self._st, self._cyc, self._arrays, self._loop
        st0, c0 = st.tolist(), sum(cyc.tolist())
        stop = 1 if on_fault is not None else 0
        rflag = 1 if record else 0
        i, last, tries = 0, -1, 0
        while i < n:
            status, j = loop(ops, i, n, *arrays, rec, rflag, stop)
            self._space = st.item(core.S_SPACE)     # the batch may switch
            if status == core.RUN_DONE:
                break
            if status == core.RUN_FAULT:
                f = self._fault_at(ops, j, rec if record else None)
                tries = tries + 1 if j == last else 1
                last = j
                if tries > self.MAX_RETRIES or not on_fault(f):
                    raise PageFault(f)
                if self._pending:   # the handler's kernel paths ran before the retry
                    self._flush()
                i = j               # retry the access, walk and all
                arrays, loop = self._arrays, self._loop     # on_fault may have grown sp
                continue
            self._raise_status(status, ops, j)
        st1 = st.tolist()
        return RunResult(n, st1[core.S_ACCESSES] - st0[core.S_ACCESSES],
                         st1[core.S_HITS] - st0[core.S_HITS],
                         st1[core.S_MISSES] - st0[core.S_MISSES],
                         st1[core.S_FAULTS] - st0[core.S_FAULTS],
                         st1[core.S_WALK] - st0[core.S_WALK],
                         sum(cyc.tolist()) - c0, rec if record else None)

    def execute(self, ops):
        """Run a trusted batch -- a kernel path, an IPC path -- in one jitted call and return
        nothing: the lean twin of `run` for the hot paths of the kernels (one call costs a
        few microseconds less, which is most of a simulated system call's wall time).  `ops`
        must be a C-contiguous int64 array (what `engine.ops` builds).  A fault raises
        PageFault at once (kernel paths run over mapped images; a fault there is a bug), as
        does any other stop."""
        if self._pending:
            self._flush()
        status, j = self._loop(ops, 0, ops.shape[0], *self._arrays, self._dummy_rec, 0, 1)
        self._space = self._st.item(core.S_SPACE)     # the batch may switch
        if status != core.RUN_DONE:
            if status == core.RUN_FAULT:
                raise PageFault(self._fault_at(ops, j, None))
            self._raise_status(status, ops, j)

    # ---------------------------------------------------------------- held-back batches
    # (the queue is `Deferral`'s, engine/deferral.py; a change or a read runs it first)
    def _changed(self):
        """A mapping or space changes: held-back batches run first (they walk the tables as
        they are now), translations and proofs are forgotten."""
        if self._pending:
            self._flush()
        self._tr.clear()
        self._epoch += 1

    def _clock(self):
        if self._pending:
            self._flush()
        return sum(self._cyc.tolist())

    def _fault_at(self, ops, j, rec):
        w = int(ops[j])
        code, va = w & 0xFF, w >> core.OP_SHIFT
        reason = core.FAULT_NAMES[int(self._st[core.S_LAST_FAULT])]
        return Fault(self.current_space, va, ACCESS_NAMES[code], reason, j)

    def _raise_status(self, status, ops, j):
        w = int(ops[j])
        code, arg = w & 0xFF, w >> core.OP_SHIFT
        if status == core.RUN_BUS:
            raise BusError(f"op {j}: address 0x{arg:x} leads outside physical memory "
                           f"({self.memory.size} bytes)")
        if status == core.RUN_NO_SPACE:
            raise MappingError(f"op {j}: access at va 0x{arg:x} with no current space; "
                               "switch to a space first")
        if status == core.RUN_BAD_SPACE:
            raise MappingError(f"op {j}: space {arg if code != core.OP_DEMAP else arg >> core.DEMAP_SID_SHIFT} "
                               "does not exist")
        if code in (core.OP_MODE, core.OP_CHARGE):
            raise ConfigError(f"op {j}: cycle category {arg if code == core.OP_MODE else arg & 0xFF} "
                              f"out of range 0..{C.NCAT - 1}")
        raise ConfigError(f"op {j}: unknown op code {code}; allowed 0..{core.OP_PX}")

    def step(self, kind, va):
        """Single step: one access with everything a view shows (the walk read before it)."""
        if kind not in ACCESS_NAMES:
            raise ConfigError(f"step: access kind {kind!r}; allowed: r, w, x")
        sid = self.current_space
        if sid < 0:
            raise MappingError("step: no current space; switch to one first")
        fmt = self.fmt
        if not isinstance(va, (int, np.integer)) or va < 0 or va >> fmt.va_bits:
            raise AddressError(f"step: va {va!r} outside the {fmt.va_bits}-bit {fmt.name} address space")
        # one op through the loop, without the batch machinery (a view steps access by access)
        if self._pending:
            self._flush()
        op, rec = self._step_op, self._step_rec
        op[0] = (int(va) << core.OP_SHIFT) | ACCESS_NAMES.index(kind)
        status, j = self._loop(op, 0, 1, *self._arrays, rec, 1, 0)
        if status != core.RUN_DONE:
            self._raise_status(status, op, 0)
        paddr, miss, f, refs, cyc = rec[0].tolist()
        fault = core.FAULT_NAMES[f]
        # the tables do not change during an access: the walk read is the one shown now
        walk = tuple(self.walk_steps(sid, va)) if refs else ()
        return StepResult(kind, va, None if fault else paddr, "miss" if miss else "hit", fault,
                          refs, cyc, walk)

    access = step

    def switch(self, sid):
        """Make `sid` current.  The switch op joins the held-back batches (it cannot stop: the
        space exists, and destroying it runs them first); `current_space` answers at once."""
        self._root(sid, "switch")
        op = self._switch_ops.get(sid)
        if op is None:
            op = self._switch_ops[sid] = O.switch(sid)
        self._pending.append(op)
        self._space = sid
        if len(self._pending) > self.HOLD:
            self._flush()

    def flush(self, sid=None):
        """Flush every entry (sid None) or one space's non-global entries."""
        if sid is not None:
            self._root(sid, "flush")
        self.execute(O.flush(sid))

    def invlpg(self, va, sid=None):
        sid = self.current_space if sid is None else sid
        self._root(sid, "invlpg")
        self.execute(O.demap(sid, va))

    def charge(self, category, cycles):
        """Add cycles to a category (kernel path costs, disk waits)."""
        if cycles < 0:
            raise ConfigError(f"charge: cycles {cycles} must be >= 0")
        i = C.INDEX.get(category) if type(category) is str else None
        self._cyc[C.category_index(category) if i is None else i] += int(round(cycles))

    def instructions(self, n, category="kernel"):
        """Charge `n` instructions at the profile's cycles per instruction."""
        self.charge(category, n * self.cpi)

    def set_mode(self, category):
        st = self._st
        old = int(st[core.S_MODE])
        i = C.INDEX.get(category) if type(category) is str else None
        st[core.S_MODE] = C.category_index(category) if i is None else i
        return old

    def mode(self, category):
        """`with m.mode("server"): ...`: accesses in the block are charged to `category`."""
        return _Mode(self, category)

    # ---------------------------------------------------------------- counters
    @property
    def cycles(self):
        if self._pending:
            self._flush()
        return sum(self._cyc.tolist())      # a Python sum of 13 ints beats a NumPy reduce

    def by_category(self):
        return C.as_dict(self.cyc)

    def time_us(self, cycles=None):
        return (self.cycles if cycles is None else cycles) / self.profile["clock_mhz"]

    def stats(self):
        """Named statistics: {name: (value, description)}, per TLB and cache too."""
        st = self.st
        vals = {"accesses": st[core.S_ACCESSES], "tlb.hits": st[core.S_HITS],
                "tlb.misses": st[core.S_MISSES], "walk.refs": st[core.S_WALK],
                "faults": st[core.S_FAULTS], "switches": st[core.S_SWITCHES],
                "tlb.flushes": st[core.S_FLUSHES], "cr3.loads": st[core.S_CR3_LOADS]}
        out = {k: (int(v), self.STATS[k]) for k, v in vals.items()}
        for i, t in enumerate(self.tlb_config):
            n = t.get("name", f"tlb{i}")
            out[f"{n}.hits"] = (int(self.tstat[i, core.TS_HITS]), f"references that hit {n}")
            out[f"{n}.misses"] = (int(self.tstat[i, core.TS_MISSES]), f"lookups that missed {n}")
            out[f"{n}.evictions"] = (int(self.tstat[i, core.TS_EVICTIONS]), f"valid entries replaced in {n}")
        for i, c in enumerate(self.cache_config):
            n = c.get("name", f"cache{i}")
            out[f"{n}.hits"] = (int(self.cstat[i, core.CS_HITS]), f"references that hit {n}")
            out[f"{n}.misses"] = (int(self.cstat[i, core.CS_MISSES]), f"references that missed {n}")
        for name, v in self.by_category().items():
            out[f"cycles.{name}"] = (v, C.DESCRIPTIONS[name])
        return out

    def snapshot(self):
        """Counters now, for differences: (cycles by category array, stats dict)."""
        return self.cyc.copy(), {k: v for k, (v, _d) in self.stats().items()}

    @contextmanager
    def measure(self):
        """`with m.measure() as r: ...` then r.cycles, r.by_category, r.stats (differences)."""
        r = Measurement()
        c0, s0 = self.snapshot()
        try:
            yield r
        finally:
            c1, s1 = self.snapshot()
            d = c1 - c0
            r.cycles = int(d.sum())
            r.by_category = C.as_dict(d)
            r.stats = {k: s1[k] - s0.get(k, 0) for k in s1}
            r.us = self.time_us(r.cycles)

    def config(self):
        """The resolved configuration (dumped beside results)."""
        return {"profile": self.profile.name, "format": self.fmt.name, "tagged": self.tagged,
                "small_spaces": self.small_spaces, "seed": self.seed,
                "placement_seed": self.memory.placement_seed, "tlbs": self.tlb_config,
                "caches": self.cache_config, "memory_bytes": self.memory.size,
                "cycles_per_instruction": self.cpi,
                "costs": {k: int(self.costs[i]) for i, k in enumerate(
                    ("tlb_hit", "walk_base", "memory", "fault", "cr3_switch", "asid_switch",
                     "segment_switch", "walk_through_l1", "small_spaces", "l1d", "l1i", "l2",
                     "global_pages"))}}


class _Mode:
    """The context manager of `Machine.mode` (a class: cheaper than a generator-based one on
    the kernels' hot paths)."""
    __slots__ = ("m", "category", "old")

    def __init__(self, m, category):
        self.m, self.category = m, category

    def __enter__(self):
        self.old = self.m.set_mode(self.category)
        return self.m

    def __exit__(self, *exc):
        self.m._st[core.S_MODE] = self.old
        return False
