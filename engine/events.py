"""The event log: `(cycle, kernel, operation, arguments)` tuples that tests and views read.

Kernels append; nothing in the engine's hot loop does (per-access detail comes from a recorded
run instead).  Entries are never dropped: a log that must stay small is `clear()`ed by its owner.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    cycle: int
    kernel: str
    operation: str
    args: dict = field(default_factory=dict)

    def __iter__(self):             # unpacks as the 4-tuple of the contract
        return iter((self.cycle, self.kernel, self.operation, self.args))


class EventLog:
    def __init__(self, clock):
        self._clock = clock         # callable giving the current cycle
        self.events = []
        self.enabled = True

    def log(self, kernel, operation, **args):
        if self.enabled:
            self.events.append(Event(int(self._clock()), kernel, operation, args))

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
