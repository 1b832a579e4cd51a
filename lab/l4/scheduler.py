"""The L4 model's scheduler: deterministic, in simulated time.

One CPU.  Program threads wait in a FIFO ready queue; a thread that does not block keeps the
CPU (no preemption: programs here are short).  Time is the machine's cycle counter: a blocked
phase with a finite timeout expires when the counter passes its deadline; when no thread can
run, the counter advances to the earliest deadline and the gap is charged as "idle".  When
nothing can run and no deadline is pending, threads blocked with infinite timeouts wait
forever: a wait-for cycle among them is a deadlock, reported as `IpcDeadlock` (L4 would just
hang).  No wall clock, no unordered iteration: runs are reproducible.
"""
from collections import deque
from enum import Enum

from .errors import IpcDeadlock, SchedulerStalled
from .thread import ThreadState


class RunStatus(Enum):
    IDLE = "idle"              # nothing runnable, no pending timeout (servers wait for clients)
    UNTIL = "until"            # the requested cycle was reached
    STEP_LIMIT = "step-limit"  # max_steps thread steps done (a program that never blocks)


class Scheduler:
    def __init__(self, kernel):
        self.k = kernel
        self.ready = deque()
        self.timed = {}            # tid -> thread blocked with a finite deadline

    # -- queue --
    def make_ready(self, t, front=False):
        if t.sync or not t.has_program or t in self.ready:
            return                 # a Python frame waits for it, or it has no program to resume
        (self.ready.appendleft if front else self.ready.append)(t)

    def block(self, t, state, partner, deadline):
        t.state, t.partner = state, partner
        t.deadline = None if deadline == float("inf") else int(deadline)
        if t.deadline is not None:
            self.timed[t.tid] = t

    def wake(self, t, result):
        """End `t`'s blocked phase with `result` (a message, None, or an error)."""
        self.timed.pop(t.tid, None)
        t.state, t.partner, t.deadline, t.result = ThreadState.READY, None, None, result
        self.make_ready(t)

    def _next(self):
        """The first ready thread no Python frame is waiting for (such a thread is inside a
        nested kernel operation -- its own page fault -- and resumes when that returns)."""
        for t in self.ready:
            if not t.sync:
                self.ready.remove(t)
                return t
        return None

    def forget(self, t):
        self.timed.pop(t.tid, None)
        if t in self.ready:
            self.ready.remove(t)

    # -- time --
    def next_deadline(self):
        return min((t.deadline for t in self.timed.values()), default=None)

    def expire(self):
        now = self.k.m.cycles
        due = sorted((t.deadline, t.tid) for t in self.timed.values() if t.deadline <= now)
        for _d, tid in due:
            t = self.timed.get(tid)
            if t is not None and t.blocked:
                self.k.ipc_path.time_out(t)

    def _idle_to(self, cycle):
        """Advance the clock to `cycle`, the next deadline or the caller's limit."""
        gap = cycle - self.k.m.cycles
        if gap > 0:
            self.k.m.charge("idle", gap)

    def _idle_to_deadline(self, nd):
        # expire() has just run: a deadline not in the future should have woken its thread,
        # and idling "to" it would not move the clock -- the loop would spin forever
        if nd <= self.k.m.cycles:
            late = sorted(t.name for t in self.timed.values() if t.deadline == nd)
            raise SchedulerStalled(f"the deadline at cycle {nd} of {', '.join(late)} has "
                                   f"passed (now {self.k.m.cycles}) but did not expire")
        self._idle_to(nd)

    # -- running --
    def run_until(self, done, waiter=None, max_steps=1_000_000):
        """Run program threads until `done()`; raise IpcDeadlock if `waiter` would wait
        forever, SchedulerStalled if `max_steps` thread steps pass without `done()`."""
        steps = 0
        while not done():
            self.expire()
            if done():
                break
            t = self._next()
            if t is not None:
                if steps >= max_steps:
                    who = waiter.name if waiter is not None else "the caller"
                    raise SchedulerStalled(f"{who} still waits after {max_steps} steps of "
                                           f"other threads (the last: {t.name}); a program "
                                           "that never blocks keeps the CPU")
                self.k.step(t)
                steps += 1
                continue
            nd = self.next_deadline()
            if nd is not None:
                self._idle_to_deadline(nd)
                continue
            raise self.deadlock(waiter)

    def run(self, until=None, max_steps=1_000_000):
        steps = 0
        while True:
            self.expire()
            if until is not None and self.k.m.cycles >= until:
                return RunStatus.UNTIL
            if steps >= max_steps and self.ready:
                return RunStatus.STEP_LIMIT
            t = self._next()
            if t is not None:
                self.k.step(t)
                steps += 1
                continue
            nd = self.next_deadline()
            if nd is not None and (until is None or nd <= until):
                self._idle_to_deadline(nd)
                continue
            if until is not None:
                self._idle_to(until)
                return RunStatus.UNTIL
            cycle = self.find_cycle()
            if cycle:
                raise self._report(cycle, "")
            return RunStatus.IDLE

    # -- deadlock --
    @staticmethod
    def _waits_for(t):
        """The thread `t` waits for, or None (open receive, not blocked)."""
        if t.state in (ThreadState.SENDING, ThreadState.RECEIVING):
            return t.partner
        return None

    def chain(self, t):
        """Follow waits-for links from `t`: (chain, cycle) where cycle is the looping part."""
        seen, chain = {}, []
        while t is not None and t.tid not in seen:
            seen[t.tid] = len(chain)
            chain.append(t)
            t = self._waits_for(t)
        cycle = chain[seen[t.tid]:] if t is not None else []
        return chain, cycle

    def find_cycle(self):
        for t in sorted(self.k.threads.values(), key=lambda x: x.tid):
            if t.blocked:
                _chain, cycle = self.chain(t)
                if cycle:
                    return cycle
        return []

    def _report(self, cycle, extra):
        names = " -> ".join(f"{t.name}({t.state.value})" for t in cycle + cycle[:1])
        self.k.m.events.log("l4", "deadlock", threads=[t.name for t in cycle])
        return IpcDeadlock(f"deadlock: {names}, each waiting with an infinite timeout{extra}",
                           cycle=cycle)

    def deadlock(self, waiter):
        """The error for `waiter`, which would wait forever; its IPC is cancelled first."""
        chain, cycle = self.chain(waiter) if waiter is not None else ([], self.find_cycle())
        if cycle:
            err = self._report(cycle, "")
        else:
            names = " -> ".join(f"{t.name}({t.state.value})" for t in chain)
            self.k.m.events.log("l4", "deadlock", threads=[t.name for t in chain])
            err = IpcDeadlock(f"{waiter.name} would wait forever: {names}; no thread can run "
                              "and no timeout is pending")
        if waiter is not None:
            self.k.ipc_path.cancel(waiter)
        return err
