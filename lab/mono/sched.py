"""The scheduler: a run queue, wait queues, sleep_on/wake_up, and the hand-over of the CPU.

Each Linux process has a kernel stack on which it can sleep in the middle of a system call
(pipe_read waiting for data, wait4 for a child).  Here each process runs on its own Python
thread, and exactly one thread runs at any time: the CPU is a baton handed from thread to
thread.  So a system call blocks where Linux blocks, and the order of everything is decided
by the scheduler alone: deterministic, with no wall clock.

Policy: a FIFO run queue without preemption (no timer: a process runs until it sleeps, yields
or exits); woken processes join the tail.  `schedule()` charges Linux's `schedule` path (and
one `schedule_goodness` per runnable task examined, as 2.0 loops over the run queue) and asks
the platform to switch (`arch.switch_process`).  When nobody is runnable the CPU goes back to
the *idle* context (the thread that called `LinuxKernel.run`), which ends the run or reports
a deadlock.
"""
import threading
from collections import deque

from .process import ProcState, ProcessExited, ProcessKilled


class Baton:
    """A binary semaphore: `take` waits until someone `give`s."""
    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def give(self):
        self._lock.release()

    def take(self):
        self._lock.acquire()


class WaitQueue:
    """Processes sleeping until an event (struct wait_queue)."""

    def __init__(self, name):
        self.name = name
        self.waiters = []

    def __len__(self):
        return len(self.waiters)

    def __repr__(self):
        return f"<WaitQueue {self.name}: {[p.pid for p in self.waiters]}>"


class Scheduler:
    def __init__(self, kernel):
        self.k = kernel
        self.runqueue = deque()
        self.current = None         # the Process holding the CPU (None: idle)
        self.idle = Baton()
        self.error = None           # an exception raised in a process thread, for run()
        self.shutting_down = False

    # -- process threads --
    def start(self, proc, target):
        """Give `proc` a thread that runs `target(proc)` once it is first scheduled."""
        proc.baton = Baton()
        proc.thread = threading.Thread(target=self._thread, args=(proc, target), daemon=True,
                                       name=f"linux-pid-{proc.pid}")
        proc.thread.start()
        self.make_runnable(proc)

    def _thread(self, proc, target):
        proc.baton.take()
        try:
            if proc.killed:
                raise ProcessKilled()
            target(proc)
        except ProcessExited:
            pass
        except ProcessKilled:
            self.idle.give()
            return
        except BaseException as e:         # a bug, a failed assertion, a panic: run() re-raises
            if self.error is None:
                self.error = e
            self.current = None
            self.idle.give()
            return
        self.exit_switch(proc)

    # -- run queue --
    def make_runnable(self, proc):
        proc.state = ProcState.RUNNABLE
        proc.wchan = ""
        self.runqueue.append(proc)

    def _pick(self):
        k = self.k
        k.arch.run_path("schedule")
        for _ in self.runqueue:             # goodness() of every runnable task
            k.arch.run_path("schedule_goodness")
        return self.runqueue.popleft() if self.runqueue else None

    def _dispatch(self, prev_ctx, nxt):
        """Give the CPU to `nxt` (the platform switches; its thread resumes).  Linux's switch
        and the system calls around it push onto and pop off the next task's kernel stack
        and task_struct (one page-aligned frame per task here, its first lines: many tasks
        compete for the same L1 sets).  Pushes are stores: on a write-no-allocate L1 (the
        Pentium's) a push to a line that is not in L1 drains to L2, and the pop misses again."""
        k = self.k
        if nxt.kstack:
            n = k.image_profile["kernel_stack_bytes"]
            k.arch.touch_kernel_data(nxt.kstack, n, "w")
            k.arch.touch_kernel_data(nxt.kstack, n, "r")
        k.arch.switch_process(prev_ctx, nxt.ctx)
        nxt.state = ProcState.RUNNING
        self.current = nxt
        self.k.log("switch", to=nxt.pid)
        nxt.baton.give()

    # -- called by the running process (in its own thread) --
    def schedule(self):
        """The current process gives up the CPU; returns when it runs again."""
        prev = self.current
        if prev is None or threading.current_thread() is not prev.thread:
            raise RuntimeError("schedule: only a process (in its own thread) can sleep or "
                               "yield; the caller is not the running process")
        if prev.state is ProcState.RUNNING:     # sched_yield: stays runnable
            self.make_runnable(prev)
        nxt = self._pick()
        if nxt is prev:
            prev.state = ProcState.RUNNING
            return
        if nxt is None:
            self.current = None
            self.idle.give()
        else:
            self._dispatch(prev.ctx, nxt)
        prev.baton.take()
        if prev.killed:
            raise ProcessKilled()

    def sleep_on(self, wq, why=None):
        """interruptible_sleep_on: sleep on `wq` until a wake_up; the caller re-checks its
        condition (as Linux's loops do)."""
        k, p = self.k, self.current
        k.arch.run_path("sleep_on")
        p.state = ProcState.SLEEPING
        p.wchan = why or wq.name
        wq.waiters.append(p)
        k.log("sleep", pid=p.pid, on=p.wchan)
        self.schedule()

    def wake_up(self, wq):
        """Wake every sleeper of `wq` (Linux 2.0 wakes them all); they join the run queue."""
        if not wq.waiters:
            return
        waiters, wq.waiters = wq.waiters, []
        for p in waiters:
            if p.state is ProcState.SLEEPING:
                self.k.arch.run_path("wake_up")
                self.make_runnable(p)
                self.k.log("wakeup", pid=p.pid, on=wq.name)

    def exit_switch(self, proc):
        """The exiting process's last act: hand the CPU on and never wait for it back."""
        if self.shutting_down:
            self.current = None
            self.idle.give()
            return
        nxt = self._pick()
        if nxt is None:
            self.current = None
            self.idle.give()
        else:
            self._dispatch(None, nxt)

    # -- called by the idle context (LinuxKernel.run, in the caller's thread) --
    def run_next(self):
        """Dispatch the head of the run queue and wait until the CPU comes back to idle.
        Returns False if nobody was runnable."""
        if not self.runqueue:
            return False
        nxt = self.runqueue.popleft()
        self._dispatch(None, nxt)
        self.idle.take()
        return True

    def kill_all(self, procs):
        """Unwind the threads of parked processes (shutdown after a panic or a deadlock)."""
        for p in procs:
            if p.thread is not None and p.thread.is_alive() and p is not self.current:
                p.killed = True
                p.baton.give()
                self.idle.take()
                p.thread.join(timeout=5)
