"""The event log: `(cycle, kernel, operation, arguments)` tuples that tests and views read.

Kernels append; nothing in the engine's hot loop does (per-access detail comes from a recorded
run instead).  Entries are never dropped: a log that must stay small is `clear()`ed by its owner.
"""
from operator import itemgetter


class Event(tuple):
    """One entry: `e.cycle`, `e.kernel`, `e.operation`, `e.args`; unpacks as the 4-tuple of
    the contract.  A tuple (not a dataclass): a log holds hundreds of thousands of entries,
    and each costs the garbage collector one object to traverse instead of two, and is made
    by one call."""
    __slots__ = ()

    def __new__(cls, cycle, kernel, operation, args=None):
        return tuple.__new__(cls, (cycle, kernel, operation, {} if args is None else args))

    cycle = property(itemgetter(0))
    kernel = property(itemgetter(1))
    operation = property(itemgetter(2))
    args = property(itemgetter(3))

    def __getnewargs__(self):       # pickling calls __new__ with the four fields
        return tuple(self)

    def __repr__(self):
        return (f"Event(cycle={self[0]!r}, kernel={self[1]!r}, operation={self[2]!r}, "
                f"args={self[3]!r})")

    def __setattr__(self, name, value):
        raise AttributeError(f"Event is immutable (cannot set {name})")


_new_event = tuple.__new__


class EventLog:
    """The log.  `clock()` gives the current cycle.  A machine that holds batches back
    (`Machine.defer`) passes `write` and `settle`: `write(entries, kernel, operation, args)`
    appends the entry -- possibly with its stamp still to come, when held-back batches stand
    before it (their cycles count) -- and `settle()` fills in every pending stamp.  Every read
    settles first, so nobody ever sees an entry without its cycle."""

    def __init__(self, clock, write=None, settle=None):
        self._clock = clock         # callable giving the current cycle
        self._events = []
        self._write = self._write_now if write is None else write
        self._settle = settle
        self.enabled = True

    def _write_now(self, entries, kernel, operation, args):
        entries.append(_new_event(Event, (int(self._clock()), kernel, operation, args)))

    def log(self, kernel, operation, **args):
        if self.enabled:
            self._write(self._events, kernel, operation, args)

    @property
    def events(self):
        """The entries (a list), every stamp filled in."""
        if self._settle is not None:
            self._settle()
        return self._events

    def __len__(self):
        return len(self.events)

    def __iter__(self):
        return iter(self.events)

    def __getitem__(self, i):
        return self.events[i]

    def clear(self):
        self.events.clear()

    def ops(self, kernel=None):
        """The operation names in order (optionally of one kernel): handy for assertions."""
        return [e.operation for e in self.events if kernel is None or e.kernel == kernel]

    def find(self, operation, kernel=None, **match):
        return [e for e in self.events if e.operation == operation
                and (kernel is None or e.kernel == kernel)
                and all(e.args.get(k) == v for k, v in match.items())]
