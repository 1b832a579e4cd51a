"""What the L4 and the Linux drivers of Appel & Li's benchmarks share: the benchmark's
characteristics (lab/profiles/vm_benchmarks.json), the op batch of its own user-level work, and
the counting of a timed interval (`_Samples` -> `Measured`).

Apart from lab/workloads/appel.py so that the drivers can use them while appel.py imports the
drivers (no import cycle)."""
from dataclasses import dataclass, field

from engine import ops as O
from lab.kprofile import load_kernel_profile


def characteristic(name):
    """A value of lab/profiles/vm_benchmarks.json."""
    return load_kernel_profile("vm_benchmarks")[name]


def footprint(m, category, who, code_va, data_va):
    """The op batch of the handler's or the mutator's own work ("handler" / "mutator" values
    of vm_benchmarks.json): its instructions, its code lines fetched and its data lines
    written, so that the TLB refills after a switch or a flush emerge from the engine."""
    line = min((c["line"] for c in m.cache_config), default=32)
    return O.concat(O.mode(category),
                    O.charge(category, characteristic(f"{who}_instructions") * m.cpi),
                    O.access("x", O.lines(code_va, characteristic(f"{who}_code_bytes"), line)),
                    O.access("w", O.lines(data_va, characteristic(f"{who}_data_bytes"), line)))


# ---------------------------------------------------------------------- measuring
@dataclass
class Measured:
    """Cycles per operation (mean over the timed operations) and their breakdown."""
    cycles: float
    by_category: dict
    count: int
    mhz: float
    events: dict = field(default_factory=dict)    # kernel events per operation

    @property
    def us(self):
        return self.cycles / self.mhz


COUNTED = {"l4": ("pagefault", "ipc", "map", "flush"),
           "linux": ("signal", "mprotect", "page_fault", "sigreturn")}


class _Samples:
    """Accumulates (cycles, by-category, kernel events) between two points in time."""

    def __init__(self, m):
        self.m, self.n, self.total, self.events = m, 0, {}, {}

    def mark(self):
        return self.m.by_category(), len(self.m.events.events)

    def add(self, start, end=None, weight=1):
        """Count from mark `start` to now, or to `end` (a by-category snapshot taken earlier,
        e.g. when the handler was entered)."""
        begin, first = start
        end = end if end is not None else self.m.by_category()
        for k, v in end.items():
            self.total[k] = self.total.get(k, 0) + v - begin.get(k, 0)
        stop = sum(end.values())
        for e in self.m.events.events[first:]:
            if e.cycle <= stop and e.operation in COUNTED.get(e.kernel, ()):
                key = f"{e.kernel}.{e.operation}"
                self.events[key] = self.events.get(key, 0) + 1
        self.n += weight

    def result(self):
        n = max(self.n, 1)
        per = {k: v / n for k, v in self.total.items() if v}
        return Measured(sum(self.total.values()) / n, per, self.n,
                        self.m.profile["clock_mhz"],
                        {k: v / n for k, v in sorted(self.events.items())})
