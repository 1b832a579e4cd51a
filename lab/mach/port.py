"""Ports, port rights and per-task port name spaces.

A port is a kernel-protected message queue (Young et al. 1987; Mach 3.0 Kernel Principles).
Tasks hold *rights* to ports under *names* local to their name space:

    RECEIVE     exactly one task holds it; messages are dequeued with it
    SEND        any number; counted in user references
    SEND_ONCE   one message, then the right is gone (used for replies)
    DEAD_NAME   what a send or send-once right becomes when its port dies

A task's receive and send rights to one port share one name; every send-once right gets a
name of its own.  The lecture's older interface (port_enable/port_disable) puts receive rights
into the task's *default group*: msg_receive without a port takes from any enabled port.
"""
from collections import deque
from enum import Enum

from .errors import KernInvalidName, KernInvalidRight

PORT_NULL = 0
PORT_BACKLOG_DEFAULT = 5      # Mach 2.5 <sys/port.h>
PORT_BACKLOG_MAX = 16         # Mach 2.5 <sys/port.h>


def name_text(name):
    """A port name for a message: 0x103, or the repr of something that is not a name."""
    return f"0x{name:x}" if isinstance(name, int) else repr(name)


class Right(Enum):
    RECEIVE = "receive"
    SEND = "send"
    SEND_ONCE = "send-once"
    DEAD_NAME = "dead-name"


class PortState(Enum):
    ACTIVE = "active"
    DEAD = "dead"


class Port:
    """A message queue.  `receiver` is the task holding the receive right (None while the
    right travels in a message, or for a kernel-owned port: then `kobject` says what the
    kernel does with messages sent to it)."""

    def __init__(self, pid, label="", kobject=None):
        self.id = pid
        self.label = label or f"port{pid}"
        self.state = PortState.ACTIVE
        self.receiver = None
        self.destination = None    # while the receive right is in a queued message: its port
        self.kobject = kobject
        self.queue = deque()
        self.backlog = PORT_BACKLOG_DEFAULT
        self.holders = {}          # (task id, name) -> True: whose names denote rights to it

    @property
    def alive(self):
        return self.state is PortState.ACTIVE

    def __repr__(self):
        return f"<Port {self.label} {self.state.value} msgs={len(self.queue)}>"


class Entry:
    """One name in a task's name space: the rights it denotes (send counts user references)."""
    __slots__ = ("name", "port", "receive", "send", "send_once", "dead")

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.receive = False
        self.send = 0
        self.send_once = 0
        self.dead = 0

    @property
    def empty(self):
        return not (self.receive or self.send or self.send_once or self.dead)

    def rights(self):
        out = []
        if self.receive:
            out.append(Right.RECEIVE)
        if self.send:
            out.append(Right.SEND)
        if self.send_once:
            out.append(Right.SEND_ONCE)
        if self.dead:
            out.append(Right.DEAD_NAME)
        return out


class IPCSpace:
    """A task's port name space.  Names are small integers, allocated in order (deterministic),
    shaped like Mach 3.0 names (index << 8 | 3)."""

    def __init__(self, task):
        self.task = task
        self.entries = {}          # name -> Entry
        self.by_port = {}          # port id -> name of the receive/send entry
        self._next = 1

    def _new_name(self):
        name = (self._next << 8) | 3
        self._next += 1
        return name

    def lookup(self, name, what="lookup"):
        if not isinstance(name, int):
            raise KernInvalidName(f"{what}: {name!r} is not a port name (an integer name in "
                                  f"task {self.task.name}'s space)")
        e = self.entries.get(name)
        if e is None:
            raise KernInvalidName(f"{what}: name 0x{name:x} denotes no right in task "
                                  f"{self.task.name}")
        return e

    def insert(self, port, right):
        """Add one right to `port`; returns the name it is under."""
        if right is Right.SEND_ONCE:
            e = Entry(self._new_name(), port)
            e.send_once = 1
            self.entries[e.name] = e
            port.holders[(self.task.id, e.name)] = True
            return e.name
        name = self.by_port.get(port.id)
        if name is None:
            name = self._new_name()
            self.entries[name] = Entry(name, port)
            self.by_port[port.id] = name
            port.holders[(self.task.id, name)] = True
        e = self.entries[name]
        if right is Right.RECEIVE:
            e.receive = True
        elif right is Right.SEND:
            e.send += 1
        else:
            raise KernInvalidRight(f"insert: cannot insert a {right.value} right")
        return name

    def name_of(self, port):
        return self.by_port.get(port.id)

    def drop(self, e):
        """Remove an entry whose rights are all gone."""
        if not e.empty:
            return
        self.entries.pop(e.name, None)
        if e.port is not None:
            e.port.holders.pop((self.task.id, e.name), None)
            if self.by_port.get(e.port.id) == e.name:
                del self.by_port[e.port.id]

    def kill(self, e):
        """The port of `e` died: its send and send-once rights become one dead name."""
        n = e.send + e.send_once
        if e.port is not None:
            e.port.holders.pop((self.task.id, e.name), None)
            if self.by_port.get(e.port.id) == e.name:
                del self.by_port[e.port.id]
        e.receive = False
        e.send = e.send_once = 0
        e.port = None
        if n:
            e.dead += n
        else:
            self.entries.pop(e.name, None)

    def names(self):
        return sorted(self.entries)
