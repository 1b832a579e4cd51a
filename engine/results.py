"""What running ops gives back: `RunResult` (a batch), `StepResult` (one access), `Fault` (what
`on_fault` is handed), `Measurement` (`Machine.measure`), and the two errors a run raises
(`PageFault`, `BusError`).  Separate so that kernels and tests can name them without the
machine, and so that `deferral` can build a held-back batch's result without importing
`Machine`.
"""
from dataclasses import dataclass

from . import core
from .errors import EngineError


class PageFault(EngineError):
    """An access faulted and nobody resolved it."""

    def __init__(self, fault):
        self.fault = fault
        super().__init__(f"{fault.reason} fault: {fault.kind} at va 0x{fault.va:x} in space {fault.space}")


class BusError(EngineError):
    """A translation or table pointer led outside physical memory."""


@dataclass(frozen=True)
class Fault:
    space: int
    va: int
    kind: str           # "r", "w" or "x"
    reason: str         # "not-present" or "protection"
    index: int          # op index in the batch


@dataclass(frozen=True)
class StepResult:
    """One access, as a view shows it."""
    op: str
    vaddr: int
    paddr: object       # None on a fault
    tlb: str            # "hit" or "miss"
    fault: object       # None, "not-present" or "protection"
    walk_refs: int
    cycles: int
    walk: tuple         # WalkStep per level read (empty on a TLB hit)


@dataclass
class RunResult:
    ops: int
    accesses: int
    hits: int
    misses: int
    faults: int
    walk_refs: int
    cycles: int
    records: object = None     # int64[n, core.R_LEN] when recorded


class _DeferredRunResult(RunResult):
    """The RunResult of a held-back batch (`Machine.try_defer_run`): its counters are the
    differences of the marks around it, filled in by the flush; reading one flushes."""

    def __init__(self, machine, n):
        self.__dict__["_m"] = machine
        self.__dict__["ops"] = n
        self.__dict__["records"] = None

    def _fill(self, before, after):
        d = self.__dict__
        d["cycles"] = after[core.M_CYCLES] - before[core.M_CYCLES]
        d["accesses"] = after[core.M_ACCESSES] - before[core.M_ACCESSES]
        d["hits"] = after[core.M_HITS] - before[core.M_HITS]
        d["misses"] = after[core.M_MISSES] - before[core.M_MISSES]
        d["walk_refs"] = after[core.M_WALK] - before[core.M_WALK]
        d["faults"] = after[core.M_FAULTS] - before[core.M_FAULTS]
        del d["_m"]

    def __getattr__(self, name):         # only for attributes not filled in yet
        m = self.__dict__.get("_m")
        if m is None or name.startswith("__"):
            raise AttributeError(name)
        m._settle()
        return object.__getattribute__(self, name)

    def _fields(self):
        return (self.ops, self.accesses, self.hits, self.misses, self.faults, self.walk_refs,
                self.cycles, self.records)

    def __eq__(self, other):            # equal to the RunResult `run` would have returned
        if not isinstance(other, RunResult):
            return NotImplemented
        return self._fields() == (other.ops, other.accesses, other.hits, other.misses,
                                  other.faults, other.walk_refs, other.cycles, other.records)

    __hash__ = None

    def __repr__(self):
        return repr(RunResult(*self._fields()))

    def __reduce__(self):
        return (RunResult, (self.ops, self.accesses, self.hits, self.misses, self.faults,
                            self.walk_refs, self.cycles, None))


class Measurement:
    cycles = 0
    by_category = None
    stats = None
    us = 0.0
