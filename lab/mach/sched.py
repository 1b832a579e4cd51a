"""The deterministic scheduler: who runs when a thread blocks.

Client threads are driven by their caller (a test, a workload, the Linux server's arch);
server threads (pagers, file servers, the default pager, the Linux server) sit in
msg_receive and are run by the kernel.  When a thread must wait (a reply, a page from a
pager, room in a port's backlog), `_wait` runs the server threads that can make progress --
always the one whose next message is oldest (lowest sequence number), so a run is a pure
function of its inputs -- until the wait is satisfied.  When nothing can run:

  * the thread it waits on is itself blocked under this very wait -> a deadlock cycle,
    reported at once (`Deadlock` / `PagerDeadlock`, with the chain);
  * otherwise, with a timeout, the time passes idle and the wait fails with the timeout
    error (RCV_TIMED_OUT, SEND_TIMED_OUT, or the pager's); without one, `Deadlock`.
Nothing hangs.  Mixin of MachKernel.
"""
from .errors import Deadlock, MachError
from .task import ThreadState


class Scheduler:

    def _enter(self, thread, space=None):
        """Make `thread` the running thread: a Mach context switch (thread_switch path) and,
        for a thread of a user task, a switch of address space (CR3 load on the Pentium)."""
        if self.running is not thread:
            if self.running is not None:
                self.image.run("thread_switch", "kernel")
            self.running = thread
        if space is None and not thread.task.kernel_task:
            space = thread.task.space
        if space is not None and self.m.current_space != space:
            self.m.switch(space)

    def timeout_cycles(self, ms):
        return int(round(ms * 1000 * self.m.profile["clock_mhz"]))

    def _servers_of(self, port):
        """The server threads that would receive from `port`."""
        task = port.receiver
        if task is None or not task.alive:
            return []
        out = []
        for t in task.threads:
            if not t.is_server or t.state is ThreadState.HALTED:
                continue
            if self._thread_ports(t).count(port):
                out.append(t)
        return out

    def _thread_ports(self, t):
        """The ports a server thread receives on (its names, or its task's default group)."""
        task = t.task
        if t.ports is None:
            return list(task.enabled)
        out = []
        for name in t.ports:
            e = task.ipc.entries.get(name)
            if e is not None and e.receive:
                out.append(e.port)
        return out

    def _next_dispatch(self):
        """(thread, port) of the idle server thread with the oldest queued message, or None."""
        best = None
        for task in self.tasks.values():
            if not task.alive:
                continue
            for t in task.threads:
                if not t.is_server or t.state is not ThreadState.RECEIVING:
                    continue
                for p in self._thread_ports(t):
                    if p.queue and p.receiver is task:
                        key = (p.queue[0].seqno, t.id)
                        if best is None or key < best[0]:
                            best = (key, t, p)
        return None if best is None else best[1:]

    def _cycle(self, thread, via):
        """The wait chain if the servers of `via` are all blocked under this wait."""
        if via is None or not via.alive:
            return ()
        servers = self._servers_of(via)
        if servers and all(s.state in (ThreadState.RUNNING, ThreadState.WAITING) for s in servers):
            return (thread.name, via.label) + tuple(s.name for s in servers)
        return ()

    def _wait(self, thread, ready, via=None, what="wait", timeout_ms=None,
              timeout_exc=None, deadlock_exc=Deadlock, stuck_exc=Deadlock):
        """Block `thread` until `ready()` is true (it may raise to fail the wait)."""
        if ready():
            return
        space0 = self.m.current_space
        deadline = None if timeout_ms is None else self.m.cycles + self.timeout_cycles(timeout_ms)
        prev = thread.state
        thread.state = ThreadState.WAITING
        thread.waiting_for = (what, via)
        try:
            while not ready():
                if deadline is not None and self.m.cycles >= deadline:
                    self.m.events.log("mach", "timeout", thread=thread.name, wait=what)
                    raise timeout_exc(f"{what}: thread {thread.name} waited {timeout_ms} ms")
                cand = self._next_dispatch()
                if cand is None:
                    chain = self._cycle(thread, via)
                    if chain:
                        self.m.events.log("mach", "deadlock", thread=thread.name, wait=what,
                                          chain=chain)
                        raise deadlock_exc(f"{what}: {' -> '.join(chain)} (each waits for the "
                                           "next; none can run)", chain)
                    if deadline is not None:
                        self.m.charge("idle", deadline - self.m.cycles)
                        continue
                    self.m.events.log("mach", "deadlock", thread=thread.name, wait=what,
                                      chain=(thread.name,))
                    msg = (f"{what}: thread {thread.name} would wait forever "
                           "(no thread can run and no timeout was given)")
                    raise (Deadlock(msg, (thread.name,)) if stuck_exc is Deadlock
                           else stuck_exc(msg))
                self._dispatch(*cand)
        finally:
            thread.state = prev
            thread.waiting_for = None
            if thread.task.alive:
                back = space0 if thread.task.kernel_task and space0 in self.m.space_ids() else None
                self._enter(thread, back)

    def _dispatch(self, thread, port):
        """Complete `thread`'s pending msg_receive with the head of `port` and run its
        handler; an error escaping the handler is an unhandled exception: the task dies."""
        thread.state = ThreadState.RUNNING
        done = False
        try:
            self._enter(thread)
            msg = self._receive_dequeue(thread, port)
            reply = None
            try:
                reply = thread.handler(msg)
            except MachError as e:
                self.m.events.log("mach", "server_crashed", task=thread.task.name,
                                  thread=thread.name, error=e.code)
                self.crashes.append((thread.task.name, e))
                if thread.task.alive:
                    self._task_terminate(thread.task)
            if thread.task.alive and thread.state is not ThreadState.HALTED:
                self._server_return(thread, reply)
            done = True
        finally:
            # whatever unwound the handler (a process exit in a Linux server...), the
            # thread is back in msg_receive unless it was halted
            if thread.state is not ThreadState.HALTED:
                thread.state = ThreadState.RECEIVING
            if not done and self.running is thread:
                self.running = None

    def run(self, limit=100000):
        """Run server threads until none has a message (what happens while clients think).
        Returns the number of messages handled."""
        n = 0
        while n < limit:
            cand = self._next_dispatch()
            if cand is None:
                return n
            self._dispatch(*cand)
            n += 1
        raise Deadlock(f"run: {limit} messages handled and servers still busy (a livelock?)")
