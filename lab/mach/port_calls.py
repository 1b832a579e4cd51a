"""The port_* calls of the lecture's interface, and what happens when a port dies.

    port_allocate(task) -> name              a new port; the task holds its receive right
    port_deallocate(task, name)              drop the task's rights under `name`
                                             (the receive right: the port dies)
    port_enable(task, name) / port_disable   add to / remove from the default group
    port_messages(task) -> [names]           enabled ports with queued messages
    port_status(task, name) -> PortStatus    enabled, num_msgs, backlog, receiver, owner
    port_set_backlog(task, name, backlog)    at most `backlog` queued messages (1..16)

When a port dies every send and send-once right to it becomes a dead name, its queued
messages are destroyed with the rights and memory they carry, and threads waiting on it
are woken with an error.  Mixin of MachKernel.
"""
from dataclasses import dataclass

from .errors import KernInvalidArgument, KernInvalidRight
from .message import KMsg, NOTIFY_SEND_ONCE
from .port import Port, Right, PORT_BACKLOG_MAX


@dataclass(frozen=True)
class PortStatus:
    enabled: bool           # the lecture's "unrestricted": in the default group
    num_msgs: int
    backlog: int
    receiver: str           # name of the task holding the receive right (None in transit)
    owner: str              # Mach 3.0 merged ownership into the receive right
    send_rights: int        # names in other tasks that denote send or send-once rights


class PortCalls:

    # -- helpers -------------------------------------------------------------------------
    def _new_port(self, label="", kobject=None):
        self._port_seq += 1
        p = Port(self._port_seq, label or f"port{self._port_seq}", kobject)
        self.ports[p.id] = p
        return p

    def _receive_entry(self, task, name, what):
        e = task.ipc.lookup(name, what)
        if not e.receive:
            raise KernInvalidRight(f"{what}: name 0x{name:x} in task {task.name} is not a "
                                   "receive right")
        return e

    # -- calls ---------------------------------------------------------------------------
    def port_allocate(self, task, label="", caller=None):
        """Allocate a new port; `task` gets its receive right.  Returns the name."""
        self._check_task(task, "port_allocate")
        with self._trap(caller or task, "port_allocate"):
            return self._port_allocate(task, label)

    def _port_allocate(self, task, label=""):
        self._check_task(task, "port_allocate")
        p = self._new_port(label)
        p.receiver = task
        name = task.ipc.insert(p, Right.RECEIVE)
        self.m.events.log("mach", "port_allocate", task=task.name, name=name, port=p.label)
        return name

    def port_deallocate(self, task, name, caller=None):
        """Deallocate the task's rights to this port (the receive right destroys it)."""
        self._check_task(task, "port_deallocate")
        with self._trap(caller or task, "port_deallocate"):
            e = task.ipc.lookup(name, "port_deallocate")
            self.m.events.log("mach", "port_deallocate", task=task.name, name=name,
                              rights=[r.value for r in e.rights()])
            self._entry_destroy(task, e)

    def port_enable(self, task, name, caller=None):
        """Add this port to the task's default group of ports for msg_receive."""
        self._check_task(task, "port_enable")
        with self._trap(caller or task, "port_enable"):
            e = self._receive_entry(task, name, "port_enable")
            if e.port not in task.enabled:
                task.enabled.append(e.port)
            self.m.events.log("mach", "port_enable", task=task.name, name=name)

    def port_disable(self, task, name, caller=None):
        """Remove this port from the task's default group of ports for msg_receive."""
        self._check_task(task, "port_disable")
        with self._trap(caller or task, "port_disable"):
            e = self._receive_entry(task, name, "port_disable")
            if e.port in task.enabled:
                task.enabled.remove(e.port)
            self.m.events.log("mach", "port_disable", task=task.name, name=name)

    def port_messages(self, task, caller=None):
        """Names of the enabled ports on which messages are currently queued."""
        self._check_task(task, "port_messages")
        with self._trap(caller or task, "port_messages"):
            return [task.ipc.name_of(p) for p in task.enabled if p.queue]

    def port_status(self, task, name, caller=None):
        self._check_task(task, "port_status")
        with self._trap(caller or task, "port_status"):
            e = task.ipc.lookup(name, "port_status")
            p = e.port
            if p is None:
                raise KernInvalidRight(f"port_status: name 0x{name:x} is a dead name")
            recv = p.receiver.name if p.receiver is not None else None
            senders = sum(1 for (tid, _n) in p.holders if tid != (p.receiver.id if p.receiver else -1))
            return PortStatus(p in task.enabled, len(p.queue), p.backlog, recv, recv, senders)

    def port_set_backlog(self, task, name, backlog, caller=None):
        """Limit the number of messages that can be waiting on this port."""
        self._check_task(task, "port_set_backlog")
        with self._trap(caller or task, "port_set_backlog"):
            e = self._receive_entry(task, name, "port_set_backlog")
            if not isinstance(backlog, int) or not 1 <= backlog <= PORT_BACKLOG_MAX:
                raise KernInvalidArgument(f"port_set_backlog: backlog {backlog!r}; allowed "
                                          f"1..{PORT_BACKLOG_MAX}")
            e.port.backlog = backlog

    def port_insert_send(self, from_task, name, to_task, caller=None):
        """Give `to_task` a send right to the port `from_task` names `name` -- what passing
        the right in a message through a name server achieves.  Returns the new name."""
        self._check_task(from_task, "port_insert_send: from_task")
        self._check_task(to_task, "port_insert_send: to_task")
        with self._trap(caller or from_task, "ipc_port_lookup"):
            e = from_task.ipc.lookup(name, "port_insert_send")
            if e.port is None or not (e.receive or e.send):
                raise KernInvalidRight(f"port_insert_send: name 0x{name:x} holds no receive "
                                       "or send right")
            return to_task.ipc.insert(e.port, Right.SEND)

    # -- destruction ---------------------------------------------------------------------
    def _entry_destroy(self, task, e):
        """Remove every right under entry `e` from `task`'s space."""
        port = e.port
        if e.receive:
            e.receive = False
            self._port_destroy(port)      # turns the other names into dead names
        if e.port is not None:
            if e.send_once:
                self._send_once_destroyed(port)
            e.send = e.send_once = 0
        e.dead = 0
        task.ipc.drop(e)
        task.ipc.entries.pop(e.name, None)
        if port is not None:
            port.holders.pop((task.id, e.name), None)
            if task.ipc.by_port.get(port.id) == e.name:
                del task.ipc.by_port[port.id]

    def _port_destroy(self, port):
        """The receive right is gone: the port dies."""
        if not port.alive:
            return
        from .port import PortState
        port.state = PortState.DEAD
        rt = port.receiver
        port.receiver = None
        if rt is not None and port in rt.enabled:
            rt.enabled.remove(port)
        self.m.events.log("mach", "port_destroyed", port=port.label, queued=len(port.queue))
        for (tid, name) in list(port.holders):
            t = self.tasks.get(tid)
            if t is not None and name in t.ipc.entries:
                t.ipc.kill(t.ipc.entries[name])
        port.holders.clear()
        while port.queue:
            self._kmsg_destroy(port.queue.popleft())
        self._port_died(port)           # memory objects whose manager this was

    def _send_once_destroyed(self, port):
        """A send-once right vanished unused: its port gets the send-once notification
        (how a client learns that the server died before replying)."""
        if port is not None and port.alive and port.kobject is None:
            self._enqueue(port, KMsg(NOTIFY_SEND_ONCE, 0, port, Right.SEND_ONCE))

    def _release_right(self, port, right):
        """A right in a destroyed message."""
        if right is Right.RECEIVE:
            self._port_destroy(port)
        elif right is Right.SEND_ONCE:
            self._send_once_destroyed(port)
