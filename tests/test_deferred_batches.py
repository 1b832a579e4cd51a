"""Held-back batches (`Machine.defer`) leave exactly what running them at once leaves.

The engine is sequential over ops, so trusted batches (kernel paths) that cannot stop may be
run later, together, in one engine call: cycles, statistics, TLBs, caches and the event log's
stamps must be those of running each batch when it was issued -- also when a fault, a mapping
change or a bad op comes between them.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine import Machine, ops as O
from engine.errors import ConfigError
from engine.machine import PageFault

TEXT, DATA, USER = 0xC0000000, 0xC0400000, 0x1000


def _machine():
    m = Machine("pentium-133")
    a, b = m.new_space(), m.new_space()
    for sid in (a, b):
        for i in range(4):
            m.map(sid, TEXT + i * 4096, m.alloc_page(), "rx", global_=True) if sid == a else None
    # the same kernel frames in both spaces (as a kernel image is)
    for i in range(4):
        pa = m.translate(a, TEXT + i * 4096)[0]
        m.map(b, TEXT + i * 4096, pa, "rx", global_=True)
        pd = m.alloc_page()
        m.map(a, DATA + i * 4096, pd, "rw", global_=True)
        m.map(b, DATA + i * 4096, pd, "rw", global_=True)
    m.map(a, USER, m.alloc_page(), "rw")
    m.switch(a)
    return m, a, b


def _path(cat, text_off, nx, data_off, nd, kind="r"):
    return O.concat(O.mode(cat), O.charge(cat, 7 * nx),
                    O.access("x", O.lines(TEXT + text_off, 32 * nx, 32)),
                    O.access(kind, O.lines(DATA + data_off, 32 * nd, 32)))


def _exec(m, ops):
    """Run at once as KernelImage.run does: the caller's mode stays, whatever happens."""
    old = m.set_mode("user")
    m.set_mode(old)
    try:
        m.execute(ops)
    finally:
        m.set_mode(old)


def _state(m):
    return (m.cycles, m.by_category(), {k: v for k, (v, _d) in m.stats().items()},
            [tuple(e[:3]) for e in m.events], m.te.tolist(), m.ce.tolist(),
            m.st.tolist(), m.current_space)


def _script(m, a, b, steps, defer):
    """Kernel paths, Python charges, mode changes, events and switches in the order `steps`."""
    for kind, arg in steps:
        if kind == "path":
            ops = _path(*arg)
            if defer:
                m.defer(m.batch(ops))
            else:
                _exec(m, ops)
        elif kind == "charge":
            m.charge("kernel", arg)
        elif kind == "mode":
            m.set_mode(arg)
        elif kind == "event":
            m.events.log("test", "mark", n=arg)
        elif kind == "switch":
            m.switch(a if arg else b)
        elif kind == "user":        # an immediate run, as a user access is
            with m.mode("user"):
                m.run(O.access("w", [USER + arg]))     # in b: a fault, counted
    return _state(m)


_cat = st.sampled_from(["kernel", "ipc", "server", "copy"])
_step = st.one_of(
    st.tuples(st.just("path"), st.tuples(_cat, st.integers(0, 8000), st.integers(1, 40),
                                        st.integers(0, 8000), st.integers(0, 40),
                                        st.sampled_from(["r", "w"]))),
    st.tuples(st.just("charge"), st.integers(0, 500)),
    st.tuples(st.just("mode"), _cat),
    st.tuples(st.just("event"), st.integers(0, 9)),
    st.tuples(st.just("switch"), st.booleans()),
    st.tuples(st.just("user"), st.integers(0, 4000)))


@settings(max_examples=60, deadline=None)
@given(st.lists(_step, max_size=25))
def test_deferred_equals_immediate(steps):
    """Held-back kernel paths leave the cycles, statistics, TLB and cache contents and event
    stamps of running each path when it was issued."""
    m1, a1, b1 = _machine()
    m2, a2, b2 = _machine()
    assert _script(m1, a1, b1, steps, False) == _script(m2, a2, b2, steps, True)


def test_paths_are_held_back_and_run_in_one_call():
    """Paths that cannot stop are held back until machine state is read."""
    m, a, b = _machine()
    c0 = m.cycles
    for i in range(3):
        m.defer(m.batch(_path("kernel", 0, 10, 0, 4)))
    assert len(m._pending) == 3
    assert m.cycles > c0 and not m._pending


def test_a_faulting_path_runs_at_once_after_the_held_back_ones():
    """A path touching an unmapped page is not held back: it raises PageFault where execute
    would, after the earlier paths ran -- the state is that of running everything at once."""
    m1, a1, _ = _machine()
    m2, a2, _ = _machine()
    bad = O.concat(O.mode("kernel"), O.access("r", [DATA + 0x10000]))
    for m, defer in ((m1, False), (m2, True)):
        good = _path("ipc", 64, 12, 32, 5)
        if defer:
            m.defer(m.batch(good))
            with pytest.raises(PageFault):
                m.defer(m.batch(bad))
        else:
            _exec(m, good)
            with pytest.raises(PageFault):
                _exec(m, bad)
    assert _state(m1) == _state(m2)


def test_a_bad_op_is_refused_at_once():
    """A batch with an op the engine refuses (a category out of range) is never held back:
    it fails as execute fails, at once."""
    m, a, _ = _machine()
    bad = np.array([(99 << 8) | 7], np.int64)        # OP_MODE with category 99
    m.defer(m.batch(_path("kernel", 0, 4, 0, 2)))
    with pytest.raises(ConfigError):
        m.defer(m.batch(bad))


def test_mapping_change_runs_held_back_paths_first():
    """A path held back before an unmap walks the tables as they were when it was issued."""
    m1, a1, _ = _machine()
    m2, a2, _ = _machine()
    for m, a, defer in ((m1, a1, False), (m2, a2, True)):
        p = _path("kernel", 0, 4, 0, 8, "w")
        m.defer(m.batch(p)) if defer else _exec(m, p)
        m.unmap(a, DATA)
        with pytest.raises(PageFault):
            q = _path("kernel", 0, 4, 0, 8, "w")
            m.defer(m.batch(q)) if defer else _exec(m, q)
    assert _state(m1) == _state(m2)


def test_weaker_global_mapping_elsewhere_blocks_holding_back():
    """A global TLB entry filled in another space answers for every space: when some space
    maps the page global with fewer rights, a write there is not proven safe (runs at once)."""
    m = Machine("pentium-133")
    a, b = m.new_space(), m.new_space()
    pa = m.alloc_page()
    m.map(a, DATA, pa, "r", global_=True)
    m.map(b, DATA, pa, "rw", global_=True)
    m.switch(b)
    batch = m.batch(O.concat(O.mode("kernel"), O.access("w", [DATA])))
    m.defer(batch)
    assert not m._pending and b not in batch.ok


def test_fault_handler_paths_run_before_the_retry():
    """Kernel paths a page-fault handler issues run before the faulting access is retried,
    as they do when each runs at once."""
    results = []
    for defer in (False, True):
        m, a, _ = _machine()
        va = 0x8000

        def on_fault(f, m=m, defer=defer):
            p = _path("kernel", 128, 20, 64, 6)
            m.defer(m.batch(p)) if defer else _exec(m, p)
            m.map(a, va, m.alloc_page(), "rw") if m.translate(a, va) is None else None
            m.defer(m.batch(_path("kernel", 0, 3, 0, 1))) if defer else \
                _exec(m, _path("kernel", 0, 3, 0, 1))
            return True
        with m.mode("user"):
            m.run(O.access("w", O.lines(va, 256, 32)), on_fault=on_fault)
        results.append(_state(m))
    assert results[0] == results[1]
