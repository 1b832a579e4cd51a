"""Held-back batches: trusted op batches proven unable to stop are queued and run together,
in order, in one engine call when anything reads or changes the engine's state.  Separate from
`Machine` because it is one self-contained mechanism with its own proof obligation (the
docstrings of `defer` and `_flush` are its design record); `Machine` inherits it from
`Deferral`.
"""
import numpy as np

from . import core, cycles as C
from .errors import EngineError
from .events import Event, _new_event
from .pte import PERM_R, PERM_W, PERM_X
from .results import _DeferredRunResult


def _settled(name):
    """A read-only property for the engine array `_name` that runs held-back batches first."""
    attr = "_" + name

    def get(self):
        if self._pending:
            self._flush()
        return getattr(self, attr)
    get.__name__ = name
    return property(get, doc=f"the engine's {name} array, after the held-back batches ran")


class Batch:
    """A trusted op batch and what `Machine.defer` needs to prove it cannot stop: `pages`,
    ((page va, PERM_* bits needed), ...) of its accesses, or None when it holds an op other
    than an access, a mode or a charge; `unmoded`: an access comes before its first mode op
    (it runs in the caller's mode); `ok`: {space: mapping epoch} of the proofs made."""
    __slots__ = ("ops", "pages", "unmoded", "ok")

    _NEED = {core.OP_R: PERM_R, core.OP_W: PERM_W, core.OP_X: PERM_X}

    def __init__(self, ops, page_shift):
        if type(ops) is not np.ndarray or ops.dtype != np.int64 or ops.ndim != 1 \
                or not ops.flags.c_contiguous:
            ops = np.ascontiguousarray(ops, dtype=np.int64).ravel()
        self.ops, self.ok = ops, {}
        code, arg = ops & 0xFF, ops >> core.OP_SHIFT
        acc = code <= core.OP_X
        self.pages = None
        self.unmoded = False
        if np.all(acc | (code == core.OP_MODE) | (code == core.OP_CHARGE)):
            modes = np.flatnonzero(code == core.OP_MODE)
            first = np.flatnonzero(acc)
            self.unmoded = bool(first.size and (modes.size == 0 or first[0] < modes[0]))
            need = {}
            for va, c in zip((arg[acc] >> page_shift << page_shift).tolist(), code[acc].tolist()):
                need[va] = need.get(va, 0) | self._NEED[c]
            bad = (arg[acc] < 0).any() or ((code == core.OP_MODE) & ((arg < 0) | (arg >= C.NCAT))).any() \
                or ((code == core.OP_CHARGE) & ((arg < 0) | ((arg & 0xFF) >= C.NCAT))).any()
            if not bad:
                self.pages = tuple(need.items())


class Deferral:
    """The held-back-batch methods of `Machine` (a mixin: they share the machine's state).

    It relies on what `Machine.__init__` sets up -- the queue `_pending` (op arrays, in order),
    the marks (`_marks`, one of the arrays the loop is bound to; `_mark_ops`, `_nmarks`), the
    lazy stamps and runs (`_lazy`, `_lazy_runs`), `_mode_ops`, `_space`, `_epoch`, `_gperm`,
    the engine's arrays (`_st`, `_cyc`, `sp`, `_loop`, `_arrays`, `_dummy_rec`), `_page_shift`,
    `tagged`, `memory` and `events` -- and on `translate`, `set_mode` and `execute`."""

    MARKS = 256             # event stamps one flush fills in at most (then the log flushes)
    HOLD = 4096             # batches held back at most (with the event log off, nothing else
                            # bounds the queue)

    def batch(self, ops):
        """`ops` (a trusted batch: C-contiguous int64) wrapped for `defer`, with the pages it
        touches; build once per path and keep it."""
        return Batch(ops, self._page_shift)

    def defer(self, batch, mode=None):
        """Run `batch` (from `batch()`) as `execute` would -- but the caller's mode stays, as
        `KernelImage.run` keeps it -- possibly later: batches proven
        unable to stop (below) are held back and run together, in order, in one engine call
        the next time anything reads or changes what the engine does (cycles, statistics,
        the event log's stamps, a mapping, a switch, any immediate run).  The engine is
        sequential over ops, so the held-back batches leave the very cycles, TLBs and caches
        they would have left one by one; Python's `charge`s only add to counters, which
        commutes.  `mode`: the category of the batch's accesses when it does not set its own
        (None: the current mode).

        A batch is held back only if it cannot fault or stop: its accesses come after a mode
        op (or `mode`), it neither switches nor flushes, and in the current space each page
        it touches is mapped with the rights it needs -- also in every global mapping of the
        page (a global TLB entry from another space could answer instead).  The proof is kept
        per space until the next change of a mapping.  Anything else runs at once."""
        if self.try_defer(batch, mode):
            return
        old = self.set_mode(mode) if mode is not None else self._st.item(core.S_MODE)
        try:
            return self.execute(batch.ops)
        finally:
            self._st[core.S_MODE] = old

    def try_defer(self, batch, mode=None):
        """Hold `batch` back as `defer` does if it is proven unable to stop, and return True;
        else return False having done nothing (the caller runs it its own way, e.g. `run`
        with its page-fault handler)."""
        sid = self._space
        if batch.ok.get(sid) != self._epoch and not self._provable(batch, sid):
            return False
        if mode is not None or batch.unmoded:
            self._pending.append(self._mode_ops[self._st.item(core.S_MODE) if mode is None
                                                else C.category_index(mode)])
        self._pending.append(batch.ops)
        if len(self._pending) > self.HOLD:
            self._flush()
        return True

    def _provable(self, batch, sid):
        if batch.pages is None or sid < 0:
            return False
        sp = self.sp
        limit = int(sp[sid, core.SP_SIZE]) if not self.tagged and sp[sid, core.SP_SMALL] >= 0 else -1
        gperm, nbytes = self._gperm, self.memory.size
        gsizes = sorted({size for size, _ in gperm}) if gperm else ()
        for va, need in batch.pages:
            if 0 <= limit <= va:
                return False
            try:
                tr = self.translate(sid, va)
            except EngineError:         # outside the format: the engine would refuse it
                return False
            if tr is None or need & ~tr[1] or tr[0] >= nbytes:
                return False
            for size in gsizes:
                g = gperm.get((size, va // size))
                if g is not None and need & ~g:
                    return False
        batch.ok[sid] = self._epoch
        return True

    def _flush(self):
        """Run the held-back batches (one engine call)."""
        p = self._pending
        self._pending = []
        ops = p[0] if len(p) == 1 else np.concatenate(p)
        st = self._st
        mode = st[core.S_MODE]      # each batch sets its own; the caller's mode stays
        lazy = self._lazy
        if lazy:
            c0 = sum(self._cyc.tolist())
        status, j = self._loop(ops, 0, ops.shape[0], *self._arrays, self._dummy_rec, 0, 1)
        st[core.S_MODE] = mode
        if status != core.RUN_DONE:     # the proof in `defer` rules this out
            raise EngineError(f"internal: a deferred batch stopped (status {status}, op {j}); "
                              "a mapping was changed behind the machine's back?")
        if self._nmarks:
            marks = self._marks[:self._nmarks].tolist()
            self._nmarks = 0
            if lazy:
                # an entry's cycle: what Python had charged when it was logged (s0, which
                # includes every earlier flush) plus the engine's cycles of this flush up to
                # its mark (the mark's total minus the total the flush started from)
                self._lazy = []
                entries = self.events._events
                for i, s0, k in lazy:
                    e = entries[i]
                    entries[i] = _new_event(Event, (s0 + marks[k][0] - c0, e[0], e[1], e[2]))
            if self._lazy_runs:
                runs, self._lazy_runs = self._lazy_runs, []
                for r, k0, k1 in runs:
                    r._fill(marks[k0], marks[k1])

    def _log_event(self, entries, kernel, operation, args):
        """The event log's writer: stamped now if nothing is held back; else a mark op joins
        the queue and the entry's stamp is filled in by the flush that reaches it (logging
        then costs no engine call -- Mach logs about six entries per system call, L4 twelve)."""
        if self._pending:
            k = self._nmarks
            if k < self.MARKS:
                self._nmarks = k + 1
                self._pending.append(self._mark_ops[k])
                self._lazy.append((len(entries), sum(self._cyc.tolist()), k))
                entries.append((kernel, operation, args))   # the Event comes with its stamp
                return
            self._flush()
        entries.append(_new_event(Event, (sum(self._cyc.tolist()), kernel, operation, args)))

    def try_defer_run(self, batch, mode=None):
        """`run(batch.ops)` (no record, no fault handler needed) held back as `try_defer`
        holds batches back, if proven unable to stop: returns its RunResult, whose numbers
        are filled in when the held-back batches run (reading any of them runs them), or None
        having done nothing.  A proven batch cannot fault, so it is what `run` returns."""
        sid = self._space
        if batch.ok.get(sid) != self._epoch and not self._provable(batch, sid):
            return None
        k = self._nmarks
        if k + 2 > self.MARKS or len(self._pending) > self.HOLD:
            if self._pending:
                self._flush()
            k = 0
        p = self._pending
        p.append(self._mark_ops[k])
        if mode is not None or batch.unmoded:
            p.append(self._mode_ops[self._st.item(core.S_MODE) if mode is None
                                    else C.category_index(mode)])
        p.append(batch.ops)
        p.append(self._mark_ops[k + 1])
        self._nmarks = k + 2
        r = _DeferredRunResult(self, batch.ops.shape[0])
        self._lazy_runs.append((r, k, k + 1))
        return r

    def _settle(self):
        """Before the log is read: run the held-back batches, which fills in pending stamps."""
        if self._pending:
            self._flush()

    # the engine's state arrays (st, cyc, te, ce, tstat, cstat): reading one runs the held-back
    # batches first; the machine itself uses the underscored arrays
    st, cyc, te, ce, tstat, cstat = (_settled(n) for n in ("st", "cyc", "te", "ce", "tstat",
                                                            "cstat"))
