"""Lazy event stamps, held-back switches and held-back run results (engine/deferral.py;
`Machine.switch` in engine/machine.py).

While trusted batches are held back (`Machine.defer`), logging an event, switching space or
running provably fault-free work (`try_defer_run`) costs no engine call: an OP_MARK in the queue
records the counters where the event (or the run) stands, and the flush fills them in.  The
rule: nobody can tell -- every stamp, counter and run result equals the one of a machine that
runs everything at once.
"""
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine import Machine, ops as O, core
from engine.errors import ConfigError
from engine.events import Event
from engine.machine import PageFault, RunResult

CODE, DATA, FAULTS = 0x10000, 0x20000, 0x100000


def _machine():
    m = Machine("pentium-133")
    spaces = [m.new_space(), m.new_space()]
    for sid in spaces:
        for i in range(2):
            m.map(sid, CODE + i * 0x1000, m.alloc_page(), "rx")
            m.map(sid, DATA + i * 0x1000, m.alloc_page(), "rw")
    m.switch(spaces[0])
    batches = [
        m.batch(O.concat(O.mode("kernel"), O.charge("kernel", 17),
                         O.access("x", O.lines(CODE, 256, 32)))),
        m.batch(O.concat(O.mode("ipc"), O.access("r", O.lines(DATA + 0x40, 96, 32)),
                         O.access("w", O.lines(DATA + 0x1000, 64, 32)))),
        m.batch(O.access("r", O.lines(DATA + 0x1800, 128, 32))),        # unmoded
        m.batch(O.access("w", [CODE + 4])),          # never provable: runs at once, faults
    ]
    return m, spaces, batches


def _play(actions, eager):
    """Run `actions`; `eager`: read the clock after each one, so that nothing stays held back
    (every stamp taken at once -- the machine as it was before deferral)."""
    m, spaces, batches = _machine()
    results, fault_page = [], [0]

    def on_fault(f):
        m.map(f.space, f.va & ~0xFFF, m.alloc_page(), "rw")
        return True

    for a in actions:
        kind = a[0]
        if kind == "defer":
            b = batches[a[1]]
            try:
                m.defer(b, mode=a[2])
            except PageFault as e:              # the write to code: a fault, at once
                assert a[1] == 3, f"batch {a[1]} faulted: {e}"
                results.append(type(e).__name__)
        elif kind == "charge":
            m.charge(a[1], a[2])
        elif kind == "log":
            m.events.log("k", f"op{a[1]}", n=a[1])
        elif kind == "switch":
            m.switch(spaces[a[1]])
        elif kind == "fault":
            va = FAULTS + fault_page[0] * 0x1000
            fault_page[0] += 1
            with m.mode("user"):
                results.append(m.run(O.access("w", [va, va + 64]), on_fault=on_fault))
        elif kind == "drun":
            b = batches[a[1]]
            r = None if eager else m.try_defer_run(b, "emulation")
            if r is None:
                with m.mode("emulation"):
                    r = m.run(b.ops)
            results.append(r)
        elif kind == "mode":
            m.set_mode(a[1])
        if eager:
            m.cycles
    ev = list(m.events)
    return ev, [r if isinstance(r, str) else RunResult(*r._fields() if hasattr(r, "_fields")
                                                       else (r.ops, r.accesses, r.hits, r.misses,
                                                             r.faults, r.walk_refs, r.cycles,
                                                             None)) for r in results], \
        m.cycles, m.by_category(), m.stats()


CATS = st.sampled_from(["kernel", "ipc", "copy", "user", "server"])
ACTION = st.one_of(
    st.tuples(st.just("defer"), st.integers(0, 3), st.sampled_from([None, "kernel", "server"])),
    st.tuples(st.just("charge"), CATS, st.integers(0, 500)),
    st.tuples(st.just("log"), st.integers(0, 9)),
    st.tuples(st.just("switch"), st.integers(0, 1)),
    st.tuples(st.just("fault")),
    st.tuples(st.just("drun"), st.integers(0, 2)),
    st.tuples(st.just("mode"), CATS),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(ACTION, max_size=40))
def test_held_back_stamps_equal_immediate_ones(actions):
    """Holding batches, switches and fault-free runs back changes nothing anyone can see:
    each event's cycle stamp, the run results, the cycles by category and the statistics
    equal those of a machine that runs everything at once."""
    assert _play(actions, eager=False) == _play(actions, eager=True)


def test_stamp_counts_python_charges_before_the_event_only():
    """An event's cycle is the time when it was logged: a charge made after it, while the
    batch before it is still held back, is not part of its stamp."""
    m, spaces, batches = _machine()
    m.defer(batches[0])
    assert m._pending                                   # held back
    m.charge("copy", 100)
    m.events.log("k", "first")
    m.charge("copy", 1000)
    m.defer(batches[1])
    m.events.log("k", "second")
    assert m._pending and len(m._lazy) == 2             # neither stamp known yet
    e1, e2 = m.events.find("first")[0], m.events.find("second")[0]
    assert not m._pending
    m2, _s, b2 = _machine()
    m2.execute(b2[0].ops)
    m2.charge("copy", 100)
    assert e1.cycle == m2.cycles
    m2.charge("copy", 1000)
    m2.execute(b2[1].ops)
    assert e2.cycle == m2.cycles == m.cycles


def test_lazy_event_is_a_full_event():
    """A lazily stamped entry reads, compares, prints and pickles as any Event."""
    m, spaces, batches = _machine()
    m.defer(batches[0])
    m.events.log("mach", "msg_send", port="p", size=3)
    e = m.events[0]
    assert type(e) is Event and e.cycle == m.cycles and e.kernel == "mach"
    assert e.args == {"port": "p", "size": 3} and tuple(e)[1:3] == ("mach", "msg_send")
    assert pickle.loads(pickle.dumps(e)) == e
    assert repr(e).startswith(f"Event(cycle={m.cycles}, kernel='mach'")
    assert m.events.ops("mach") == ["msg_send"] and len(m.events) == 1


def test_every_read_of_the_log_settles():
    """len, iteration, find, ops, the `events` list and clear all see stamped entries."""
    for read in (lambda l: list(l), lambda l: l.find("x"), lambda l: l.ops(),
                 lambda l: l.events[:], lambda l: l[0], lambda l: len(l)):
        m, spaces, batches = _machine()
        m.defer(batches[0])
        m.events.log("k", "x")
        read(m.events)
        assert not m._pending
        assert type(m.events._events[0]) is Event
    m, spaces, batches = _machine()
    m.defer(batches[0])
    m.events.log("k", "x")
    m.events.clear()
    assert len(m.events) == 0 and not m._pending


def test_more_events_than_marks():
    """Past MARKS pending stamps the log runs the queue first: nothing is lost or misstamped."""
    m, spaces, batches = _machine()
    stamps = []
    m2, _s, b2 = _machine()
    for i in range(Machine.MARKS * 2 + 3):
        m.defer(batches[i % 2])
        m.events.log("k", "e", i=i)
        m2.execute(b2[i % 2].ops)
        stamps.append(m2.cycles)
    assert [e.cycle for e in m.events] == stamps


def test_held_back_switch():
    """A switch joins the queue: current_space answers at once, the CR3 load is charged when
    the queue runs, and destroying the space runs the queue first."""
    m, (a, b), batches = _machine()
    m.cycles
    m.switch(b)
    assert m.current_space == b and m._pending
    assert m.stats()["cr3.loads"][0] == 2 and m._st[core.S_SPACE] == b
    m.switch(a)
    m.destroy_space(b)
    assert m.current_space == a and m._st[core.S_SPACE] == a


def test_deferred_run_result_reads_as_run():
    """try_defer_run returns what run would have: reading it runs the queue; a batch that
    cannot be proven (a write to read-only code) is refused and left to the caller."""
    m, spaces, batches = _machine()
    r = m.try_defer_run(batches[1], "ipc")
    assert m._pending and "cycles" not in r.__dict__
    m2, _s, b2 = _machine()
    with m2.mode("ipc"):
        r2 = m2.run(b2[1].ops)
    assert r == r2 and r.cycles == r2.cycles > 0 and r.faults == 0
    assert repr(r) == repr(r2) and pickle.loads(pickle.dumps(r)) == r2
    assert m.try_defer_run(batches[3]) is None


def test_mark_op_known_answer():
    """OP_MARK writes the counters so far into its row of marks: cycle total (Python's
    charges already in the array included), accesses, hits, misses, walk refs, faults."""
    m, spaces, batches = _machine()
    m.cycles
    c0 = m.cycles
    st0 = m._st.copy()
    m._marks[:] = -1
    ops = O.concat(O.charge("kernel", 40), np.array([core.OP_MARK], np.int64),
                   O.access("r", [DATA, DATA]),
                   np.array([(1 << core.OP_SHIFT) | core.OP_MARK], np.int64))
    status, j = m._loop(ops, 0, ops.shape[0], *m._arrays, m._dummy_rec, 0, 1)
    assert status == core.RUN_DONE
    mk = m._marks
    assert mk[0, core.M_CYCLES] == c0 + 40 and mk[1, core.M_CYCLES] == m.cycles
    assert mk[1, core.M_ACCESSES] - st0[core.S_ACCESSES] == 2
    assert mk[1, core.M_HITS] - mk[0, core.M_HITS] == 1         # the second read hits
    assert mk[1, core.M_MISSES] - mk[0, core.M_MISSES] == 1
    assert mk[1, core.M_WALK] - mk[0, core.M_WALK] == 2         # two-level walk
    assert mk[1, core.M_FAULTS] == st0[core.S_FAULTS]
    bad = np.array([(Machine.MARKS << core.OP_SHIFT) | core.OP_MARK], np.int64)
    assert m._loop(bad, 0, 1, *m._arrays, m._dummy_rec, 0, 1)[0] == core.RUN_BAD_OP


def test_users_cannot_run_marks():
    """A mark is the machine's own: a user's batch holding one is refused by name."""
    m, spaces, batches = _machine()
    with pytest.raises(ConfigError, match="unknown op code 12"):
        m.run(np.array([core.OP_MARK], np.int64))
