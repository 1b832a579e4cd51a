"""A model-based test of Mach ports, rights and messages (Young et al. 1987; the Mach 3.0
Kernel Principles and Kernel Interface manual; the lecture's port_* / msg_* interface): one
kernel, a few client tasks, one RPC server task, and a plain-Python reference model.

The model knows each port (alive or dead, its receiver -- None while the receive right
travels in a message --, its backlog, its queue of messages in order) and each task's name
space: name -> (port, receive, send user references, send-once, dead-name references).
Names are predicted exactly (each space hands out names in order).  A message in the model
is its id, inline bytes, reply right, carried rights and out-of-line page.

Rules: port_allocate, port_insert_send, msg_send (inline data, a reply port made send-once
or copied, port rights with every disposition, an out-of-line page moved out of the
sender, to a send or a send-once right) with SEND_TIMEOUT 0 or finite, msg_receive on a
port or on the default group (port_enable / port_disable) with RCV_TIMEOUT 0 or finite
(idle simulated time passes), msg_rpc to a server thread, port_set_backlog,
port_deallocate (of a receive, send, send-once or dead name), task_terminate and
task_create, and malformed calls (unknown names, names without the needed right, dead
names).

Invariants after every step: every task's names and rights equal the model's; every port
the model knows is alive or dead as the model says, with its receiver, backlog and queue
(each message's id, bytes, reply right, carried rights, out-of-line memory) in FIFO order.
A received message equals the model's head of queue (no loss, no duplication, no
reordering), with the names the carried rights got.  A send to a full queue fails with
SEND_TIMED_OUT and changes nothing; a call on a dead or invalid name raises the specific
Mach return code and changes nothing.  When a receive right dies, its queued messages are
destroyed with what they carry (receive rights in them die too, send-once rights send the
send-once notification, out-of-line frames are freed: counted).  A message's rights are
taken one after another (a receive right moved twice or used after its move is refused); a
message that would queue a receive right inside its own port, directly or through ports in
transit, is destroyed at once (Mach 3's circularity check).  At teardown every port is dead
and every frame is free again.
"""
import sys

from hypothesis import event, settings, strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, rule, invariant, initialize, precondition

from lab.mach import (Message, PortItem, OOLItem, Disposition, MsgOption, Right,
                      PORT_NULL, PORT_BACKLOG_DEFAULT, PORT_BACKLOG_MAX, NOTIFY_SEND_ONCE,
                      SendInvalidPort, SendInvalidReply, SendInvalidRight, PortDead, SendTimedOut,
                      RcvInvalidPort, RcvTimedOut,
                      KernInvalidName, KernInvalidRight, KernInvalidArgument, KernInvalidTask)
from mach_helpers import kernel, raises

PAGE = 4096
MAX_TASKS = 4
BOGUS = 0x7703                   # a name no space hands out early
D = Disposition


class MPort:
    __slots__ = ("pid", "receiver", "queue", "backlog", "alive", "destination")

    def __init__(self, pid, receiver):
        self.pid, self.receiver, self.queue = pid, receiver, []
        self.destination = None         # the port whose queue holds its receive right
        self.backlog, self.alive = PORT_BACKLOG_DEFAULT, True


class MMsg:
    __slots__ = ("id", "data", "reply", "rights", "ool", "seq")

    def __init__(self, mid, data=b"", reply=None, rights=(), ool=None):
        self.id, self.data, self.reply, self.rights, self.ool = mid, data, reply, list(rights), ool
        self.seq = 0


class MEntry:
    __slots__ = ("port", "receive", "send", "send_once", "dead")

    def __init__(self, port):
        self.port, self.receive, self.send, self.send_once, self.dead = port, False, 0, 0, 0

    @property
    def empty(self):
        return not (self.receive or self.send or self.send_once or self.dead)

    def key(self):
        return (self.port, self.receive, self.send, self.send_once, self.dead)


CARRIED = {D.MOVE_RECEIVE: Right.RECEIVE, D.MOVE_SEND: Right.SEND, D.COPY_SEND: Right.SEND,
           D.MAKE_SEND: Right.SEND, D.MOVE_SEND_ONCE: Right.SEND_ONCE,
           D.MAKE_SEND_ONCE: Right.SEND_ONCE}
who_st = st.integers(0, MAX_TASKS - 1)
name_st = st.integers(0, 40)
timeout_st = st.sampled_from([0, 0, 3])
disp_st = st.sampled_from(list(D))


class MachPortsModel(RuleBasedStateMachine):

    # -- set-up ----------------------------------------------------------------------------
    @initialize()
    def boot(self):
        self.m, self.k = kernel(16)
        self.free0 = self.m.memory.free_frames
        self.tasks = []                 # live client tasks, in creation order
        self.space = {}                 # task -> {name: MEntry}
        self.next_name = {}             # task -> index of its next name
        self.enabled = {}               # task -> [pid] (the default group, in order)
        self.ports = {}                 # pid -> MPort
        self.seq = self.msg_id = self.tseq = 0
        self.ool_frames = 0             # out-of-line pages held by queued messages
        self.server = self.k.task_create(name="srv", category="server")
        self._space_of(self.server)
        self.rpc_name = self.k.port_allocate(self.server, "srv.rpc")
        self._allocated(self.server, self.rpc_name)
        self.rpc_pid = self.space[self.server][self.rpc_name].port
        self.k.thread_create(self.server, ports=[self.rpc_name], handler=lambda msg: Message(
            remote_port=msg.remote_port, id=msg.id + 1, data=msg.data[::-1]))
        self.rpc_send = {}              # client task -> its send right name to the rpc port
        for _ in range(3):
            self._new_task()
        for t in self.tasks:             # each has a port, and the others send rights to it
            self._allocated(t, self.k.port_allocate(t))
        for t in self.tasks:
            mine = sorted(self.space[t])[0]
            for u in self.tasks:
                if u is not t:
                    pid = self.space[t][mine].port
                    assert self.k.port_insert_send(t, mine, u) == self._insert(u, pid, Right.SEND)

    def _space_of(self, t):
        self.space[t], self.next_name[t], self.enabled[t] = {}, 1, []

    def _new_task(self):
        self.tseq += 1
        t = self.k.task_create(name=f"t{self.tseq}")
        self.tasks.append(t)
        self._space_of(t)
        return t

    def task(self, i):
        return self.tasks[i % len(self.tasks)]

    def pick(self, t, i):
        """One of the task's names, or (rarely) a name it does not have."""
        names = sorted(self.space[t])
        return BOGUS if i == 40 or not names else names[i % len(names)]

    # -- the model's kernel ----------------------------------------------------------------
    def _new_name(self, t):
        name = (self.next_name[t] << 8) | 3
        self.next_name[t] += 1
        return name

    def _by_port(self, t, pid):
        for name, e in self.space[t].items():
            if e.port == pid and not e.send_once:
                return name
        return None

    def _insert(self, t, pid, right):
        """A right to a live port enters `t`'s space: the name it is under."""
        sp = self.space[t]
        if right is Right.SEND_ONCE:
            name = self._new_name(t)
            sp[name] = MEntry(pid)
            sp[name].send_once = 1
            return name
        name = self._by_port(t, pid)
        if name is None:
            name = self._new_name(t)
            sp[name] = MEntry(pid)
        if right is Right.RECEIVE:
            sp[name].receive = True
            self.ports[pid].receiver = t
        else:
            sp[name].send += 1
        return name

    def _allocated(self, t, name):
        """The kernel just allocated a port under `name` in `t`: the model's twin."""
        assert name == (self.next_name[t] << 8) | 3, (hex(name), self.next_name[t])
        pid = t.ipc.entries[name].port.id
        assert pid not in self.ports
        self.ports[pid] = MPort(pid, t)
        assert self._insert(t, pid, Right.RECEIVE) == name

    @staticmethod
    def _moved_receive(msg):
        return [q for q, r in ([msg.reply] if msg.reply else []) + msg.rights
                if r is Right.RECEIVE]

    def _circular(self, pid, msg):
        """Mach 3: would `msg` put a receive right inside its own port's queue (directly or
        through ports whose receive rights are themselves queued)?"""
        moved = self._moved_receive(msg)
        while moved:
            if pid in moved:
                return True
            p = self.ports[pid]
            if not (p.alive and p.receiver is None and p.destination is not None):
                return False
            pid = p.destination
        return False

    def _enqueue(self, pid, msg):
        for q in self._moved_receive(msg):
            self.ports[q].destination = pid
        self.seq += 1
        msg.seq = self.seq
        self.ports[pid].queue.append(msg)
        self.ool_frames += msg.ool is not None

    def _drop(self, t, name):
        if self.space[t][name].empty:
            del self.space[t][name]

    def _send_once_destroyed(self, pid):
        if self.ports[pid].alive:
            self._enqueue(pid, MMsg(NOTIFY_SEND_ONCE))

    def _release(self, pid, right):
        if right is Right.RECEIVE:
            self._port_destroy(pid)
        elif right is Right.SEND_ONCE:
            self._send_once_destroyed(pid)

    def _msg_destroy(self, msg):
        if msg.reply is not None:
            self._release(*msg.reply)
        for pid, r in msg.rights:
            self._release(pid, r)
        self.ool_frames -= msg.ool is not None

    def _port_destroy(self, pid):
        p = self.ports[pid]
        if not p.alive:
            return
        p.alive = False
        if p.receiver is not None and pid in self.enabled[p.receiver]:
            self.enabled[p.receiver].remove(pid)
        p.receiver = None
        for t in list(self.space):            # send and send-once rights become dead names
            for name, e in list(self.space[t].items()):
                if e.port == pid:
                    n = e.send + e.send_once
                    e.port, e.receive, e.send, e.send_once = None, False, 0, 0
                    e.dead += n
                    if not n:
                        del self.space[t][name]
        q, p.queue = p.queue, []
        for msg in q:
            self._msg_destroy(msg)

    def _entry_destroy(self, t, name):
        e = self.space[t][name]
        pid = e.port
        if e.receive:
            e.receive = False
            self._port_destroy(pid)
        if e.port is not None and e.send_once:
            self._send_once_destroyed(pid)
        self.space[t].pop(name, None)

    def _check(self, e, disp):
        """Does entry `e` allow `disp`?  (None: a dead name.)"""
        if e.port is None:
            return False
        if disp is D.MOVE_SEND_ONCE:
            return e.send_once > 0
        if disp is D.COPY_SEND:
            return e.send > 0 or e.receive
        if disp is D.MOVE_SEND:
            return e.send > 0
        return e.receive                  # MOVE_RECEIVE, MAKE_SEND, MAKE_SEND_ONCE

    def _take(self, t, name, disp, drop=True):
        e = self.space[t][name]
        pid = e.port
        if disp is D.MOVE_RECEIVE:
            e.receive = False
            self.ports[pid].receiver = None
            if pid in self.enabled[t]:
                self.enabled[t].remove(pid)
        elif disp is D.MOVE_SEND:
            e.send -= 1
        elif disp is D.MOVE_SEND_ONCE:
            e.send_once -= 1
        if drop:
            self._drop(t, name)
        return pid, CARRIED[disp]

    def _copyout(self, t, pid, msg):
        """What msg_receive returns for `msg`, received by `t` on port `pid`."""
        def carried(q, r):
            if r is Right.RECEIVE:
                self.ports[q].destination = None
                return self._insert(t, q, r) if self.ports[q].alive else PORT_NULL
            if not self.ports[q].alive:
                name = self._new_name(t)
                self.space[t][name] = MEntry(None)
                self.space[t][name].dead = 1
                return name
            return self._insert(t, q, r)
        reply = (carried(*msg.reply), msg.reply[1]) if msg.reply else (0, None)
        rights = [(carried(q, r), r) for q, r in msg.rights]
        return (self._by_port(t, pid) or 0, msg.id, msg.data, reply, rights)

    # -- ports -----------------------------------------------------------------------------
    @rule(who=who_st)
    def port_allocate(self, who):
        """port_allocate: a new port, its receive right under the task's next name."""
        t = self.task(who)
        self._allocated(t, self.k.port_allocate(t))

    @rule(frm=who_st, i=name_st, to=who_st)
    def port_insert_send(self, frm, i, to):
        """port_insert_send: the other task gets a send right (one more user reference under
        the name it already has for the port, else a new name); a name without a receive or
        send right: KERN_INVALID_RIGHT; no name: KERN_INVALID_NAME."""
        s, r = self.task(frm), self.task(to)
        name = self.pick(s, i)
        e = self.space[s].get(name)
        call = lambda: self.k.port_insert_send(s, name, r)  # noqa: E731
        if e is None:
            raises(KernInvalidName, call)
        elif e.port is None or not (e.receive or e.send):
            raises(KernInvalidRight, call)
        else:
            assert call() == self._insert(r, e.port, Right.SEND)

    @rule(who=who_st, i=name_st)
    def port_deallocate(self, who, i):
        """port_deallocate drops every right under the name: a receive right destroys the
        port (other names become dead names, queued messages are destroyed with their
        rights and out-of-line memory: frames freed), an unused send-once right sends the
        send-once notification; an unknown name: KERN_INVALID_NAME."""
        t = self.task(who)
        name = self.pick(t, i)
        if name not in self.space[t]:
            raises(KernInvalidName, lambda: self.k.port_deallocate(t, name))
            return
        frames0, ool0 = self.k.object_frames(), self.ool_frames
        self.k.port_deallocate(t, name)
        self._ok(str([k for k, v in zip(("receive", "send", "send-once", "dead"),
                                        self.space[t][name].key()[1:]) if v]))
        self._entry_destroy(t, name)
        assert frames0 - self.k.object_frames() == ool0 - self.ool_frames

    @rule(who=who_st, i=name_st, enable=st.booleans())
    def port_enable(self, who, i, enable):
        """port_enable / port_disable put a receive right into / out of the default group;
        another name: KERN_INVALID_RIGHT (or KERN_INVALID_NAME)."""
        t = self.task(who)
        name = self.pick(t, i)
        e = self.space[t].get(name)
        call = lambda: (self.k.port_enable if enable else self.k.port_disable)(t, name)  # noqa
        if e is None:
            raises(KernInvalidName, call)
        elif not e.receive:
            raises(KernInvalidRight, call)
        else:
            call()
            en = self.enabled[t]
            if enable and e.port not in en:
                en.append(e.port)
            elif not enable and e.port in en:
                en.remove(e.port)

    @rule(who=who_st, i=name_st, backlog=st.integers(0, PORT_BACKLOG_MAX + 1))
    def port_set_backlog(self, who, i, backlog):
        """port_set_backlog: 1..PORT_BACKLOG_MAX on a receive right, else
        KERN_INVALID_ARGUMENT; queued messages stay."""
        t = self.task(who)
        name = self.pick(t, i)
        e = self.space[t].get(name)
        call = lambda: self.k.port_set_backlog(t, name, backlog)  # noqa: E731
        if e is None:
            raises(KernInvalidName, call)
        elif not e.receive:
            raises(KernInvalidRight, call)
        elif not 1 <= backlog <= PORT_BACKLOG_MAX:
            raises(KernInvalidArgument, call)
        else:
            call()
            self.ports[e.port].backlog = backlog

    # -- messages --------------------------------------------------------------------------
    @rule(who=who_st, i=name_st, j=st.integers(0, 60), items=st.lists(
              st.tuples(name_st, disp_st), max_size=3),
          data=st.binary(max_size=40), ool=st.booleans(), move_send=st.booleans(),
          timeout=timeout_st)
    def msg_send(self, who, i, j, items, data, ool, move_send, timeout):
        """msg_send: the message is queued at the tail of the destination's queue with the
        rights it carries (taken from the sender by their dispositions) and its out-of-line
        page (moved out of the sender).  Unknown destination: SEND_INVALID_PORT; a dead name:
        PORT_DEAD; a full queue (not for a send-once right): SEND_TIMED_OUT after the
        timeout; a bad reply port: SEND_INVALID_REPLY; a bad port item: SEND_INVALID_RIGHT
        (also for a right an earlier one of the message took).  A failed send changes nothing.  A
        receive right sent into its own port (a loop): sent, and destroyed."""
        t = self.task(who)
        dest = self.pick(t, i)
        de = self.space[t].get(dest)
        if de is not None and de.port == self.rpc_pid:
            return                         # the rpc port is msg_rpc's (its server thread)
        reply = self.pick(t, j) if j < 40 else PORT_NULL
        rdisp = None
        re_ = self.space[t].get(reply)
        if re_ is not None and re_.port is not None:
            rdisp = D.MAKE_SEND_ONCE if re_.receive else D.COPY_SEND
        pitems = [PortItem(self.pick(t, n), d) for n, d in items]
        addr = None
        if ool:
            addr = self.k.vm_allocate(t, 0, PAGE)
            self.k.user_write(t, addr, bytes([self.msg_id % 251 + 1]) * 8)
        self.msg_id += 1
        mid = 1000 + self.msg_id
        msg = Message(remote_port=dest, local_port=reply, id=mid, data=data, ports=pitems,
                      ool=[OOLItem(addr, PAGE, deallocate=True)] if ool else [],
                      remote_disposition=D.MOVE_SEND if move_send else None)
        idle0 = self.m.by_category()["idle"]
        call = lambda: self.k.msg_send(t, msg, MsgOption.SEND_TIMEOUT, timeout)  # noqa
        err = self._send_error(t, dest, move_send, reply, rdisp, pitems)
        if err is not None:
            raises(err, call)
            if err is SendTimedOut:
                assert self.m.by_category()["idle"] - idle0 >= self.k.timeout_cycles(timeout)
            if ool:
                self.k.vm_deallocate(t, addr, PAGE)
            return
        call()
        self._ok(f"sent {len(pitems)} rights" + (" ool" if ool else ""))
        ddisp = D.MOVE_SEND if move_send else (
            D.COPY_SEND if de.send or de.receive else D.MOVE_SEND_ONCE)
        pid, _ = self._take(t, dest, ddisp, False)
        m = MMsg(mid, data, ool=bytes([(self.msg_id - 1) % 251 + 1]) * 8 if ool else None)
        if reply != PORT_NULL:
            m.reply = self._take(t, reply, rdisp, False)
        m.rights = [self._take(t, it.name, it.disposition, False) for it in pitems]
        for name in set([dest, reply] + [it.name for it in pitems]):
            if name in self.space[t]:
                self._drop(t, name)
        if self._circular(pid, m):
            self._ok("circular: destroyed")
            self.ool_frames += m.ool is not None      # (_msg_destroy takes a queued one's)
            self._msg_destroy(m)
        else:
            self._enqueue(pid, m)

    def _send_error(self, t, dest, move_send, reply, rdisp, pitems):
        """The error the model expects from msg_send, checked in the kernel's order
        (destination, backlog, reply port, items), or None."""
        sp = self.space[t]
        de = sp.get(dest)
        if de is None:
            return SendInvalidPort
        if de.port is None:
            return PortDead
        ddisp = D.MOVE_SEND if move_send else (
            D.COPY_SEND if de.send or de.receive else D.MOVE_SEND_ONCE)
        if not self._check(de, ddisp):
            return SendInvalidPort
        p = self.ports[de.port]
        if ddisp is not D.MOVE_SEND_ONCE and len(p.queue) >= p.backlog:
            return SendTimedOut
        if reply != PORT_NULL:
            re_ = sp.get(reply)
            if re_ is None or re_.port is None or not self._check(re_, rdisp):
                return SendInvalidReply
        for it in pitems:
            e = sp.get(it.name)
            if e is None or not self._check(e, it.disposition):
                return SendInvalidRight
        moves = [(dest, ddisp, SendInvalidPort)] + \
            ([(reply, rdisp, SendInvalidReply)] if reply != PORT_NULL else []) + \
            [(it.name, it.disposition, SendInvalidRight) for it in pitems]
        left = {}                 # rights are taken one after another: replay what is left
        for name, d, err in moves:
            c = left.get(name)
            if c is None:
                e, c = sp[name], left.setdefault(name, MEntry(sp[name].port))
                c.receive, c.send, c.send_once = e.receive, e.send, e.send_once
            if not self._check(c, d):
                return err
            if d is D.MOVE_RECEIVE:
                c.receive = False
            elif d is D.MOVE_SEND:
                c.send -= 1
            elif d is D.MOVE_SEND_ONCE:
                c.send_once -= 1
        return None

    def _ok(self, what):
        if currently_in_test_context():
            event(f"{sys._getframe(1).f_code.co_name}: {what}")

    def _check_received(self, t, pid, got):
        self._ok("received")
        msg = self.ports[pid].queue.pop(0)
        self.ool_frames -= msg.ool is not None
        want = self._copyout(t, pid, msg)
        have = (got.local_port, got.id, got.data, (got.remote_port, got.reply_right),
                [(it.name, it.right) for it in got.ports])
        assert have == want, f"received {have}, model {want}"
        assert len(got.ool) == (msg.ool is not None)
        if msg.ool is not None:
            assert self.k.user_read(t, got.ool[0].address, 8) == msg.ool
            self.k.vm_deallocate(t, got.ool[0].address, PAGE)

    @rule(who=who_st, i=name_st, timeout=timeout_st)
    def msg_receive(self, who, i, timeout):
        """msg_receive on a port takes its oldest message; an empty queue: RCV_TIMED_OUT
        after the timeout (idle time passes); a name that is no receive right:
        RCV_INVALID_PORT."""
        t = self.task(who)
        name = self.pick(t, i)
        e = self.space[t].get(name)
        call = lambda: self.k.msg_receive(t, name, MsgOption.RCV_TIMEOUT, timeout)  # noqa
        if e is None or not e.receive:
            raises(RcvInvalidPort, call)
        elif not self.ports[e.port].queue:
            idle0 = self.m.by_category()["idle"]
            raises(RcvTimedOut, call)
            assert self.m.by_category()["idle"] - idle0 >= self.k.timeout_cycles(timeout)
        else:
            self._check_received(t, e.port, call())

    @rule(who=who_st, timeout=timeout_st)
    def msg_receive_group(self, who, timeout):
        """msg_receive(PORT_NULL) takes the oldest message of the enabled ports."""
        t = self.task(who)
        heads = [(self.ports[p].queue[0].seq, p) for p in self.enabled[t] if self.ports[p].queue]
        call = lambda: self.k.msg_receive(t, PORT_NULL, MsgOption.RCV_TIMEOUT, timeout)  # noqa
        if not heads:
            raises(RcvTimedOut, call)
        else:
            self._check_received(t, min(heads)[1], call())

    @rule(who=who_st, j=name_st, data=st.binary(max_size=20))
    def msg_rpc(self, who, j, data):
        """msg_rpc to a server thread: the request carries a send-once right made from the
        client's receive right; the server's reply comes back on it (its data reversed).
        The server gets a dead name if the port died meanwhile -- not here: the reply port
        is alive and empty, so the reply is what the receive returns."""
        t = self.task(who)
        reply = self.pick(t, j)
        e = self.space[t].get(reply)
        if e is None or not e.receive or self.ports[e.port].queue:
            return
        name = self._by_port(t, self.rpc_pid)
        if name is None or not self.space[t][name].send:
            name = self.k.port_insert_send(self.server, self.rpc_name, t)
            assert name == self._insert(t, self.rpc_pid, Right.SEND)
        self.rpc_send[t] = name
        self.msg_id += 1
        mid = 1000 + self.msg_id
        got = self.k.msg_rpc(t, Message(remote_port=self.rpc_send[t], local_port=reply,
                                        id=mid, data=data),
                             MsgOption.SEND_TIMEOUT | MsgOption.RCV_TIMEOUT,
                             send_timeout=0, receive_timeout=50)
        self.seq += 2                      # the request and the reply were queued
        assert (got.id, got.data, got.local_port, got.remote_port) == \
            (mid + 1, data[::-1], reply, 0)
        assert not self.ports[self.rpc_pid].queue
        self._ok("done")

    # -- tasks -----------------------------------------------------------------------------
    @precondition(lambda self: len(self.tasks) > 1)
    @rule(who=who_st)
    def task_terminate(self, who):
        """task_terminate destroys every right of the task (by name): the ports it received
        on die with their queues; later calls: KERN_INVALID_TASK."""
        t = self.task(who)
        self.k.task_terminate(t)
        for name in sorted(self.space[t]):
            if name in self.space[t]:
                self._entry_destroy(t, name)
        self.tasks.remove(t)
        del self.space[t]
        self.enabled.pop(t)
        self.rpc_send.pop(t, None)
        raises(KernInvalidTask, lambda: self.k.port_allocate(t))

    @precondition(lambda self: len(self.tasks) < MAX_TASKS)
    @rule()
    def task_create(self):
        self._new_task()

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def rights_match(self):
        if not hasattr(self, "k"):
            return
        for t, sp in self.space.items():
            have = {n: (e.port.id if e.port is not None else None, e.receive, e.send,
                        e.send_once, e.dead) for n, e in t.ipc.entries.items()}
            want = {n: e.key() for n, e in sp.items()}
            assert have == want, f"{t.name}: kernel {have} model {want}"
            assert [p.id for p in t.enabled] == self.enabled[t]

    @invariant()
    def queues_match(self):
        if not hasattr(self, "k"):
            return
        for pid, mp in self.ports.items():
            p = self.k.ports[pid]
            assert p.alive == mp.alive and p.receiver is mp.receiver, (p, mp.receiver)
            assert p.backlog == mp.backlog
            have = [(km.id, km.data, (km.reply.id, km.reply_right) if km.reply else None,
                     [(q.id, r) for q, r in km.rights], len(km.ool)) for km in p.queue]
            want = [(m.id, m.data, m.reply, m.rights, int(m.ool is not None))
                    for m in mp.queue]
            assert have == want, f"{p.label}: kernel {have} model {want}"

    def teardown(self):
        """Nothing leaks: with every task gone, every port is dead and every frame free."""
        if not hasattr(self, "k"):
            return
        for t in list(self.tasks) + [self.server]:
            self.k.task_terminate(t)
        live = [p for pid, p in self.k.ports.items() if pid in self.ports and p.alive]
        assert not live, live
        assert self.m.memory.free_frames == self.free0


MachPortsModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60,
                                            deadline=None, derandomize=True)
test_mach_ports_model = MachPortsModel.TestCase


# -- regressions found by the model ------------------------------------------------------------
def test_a_send_right_moved_twice_needs_two_references():
    """A message may move a right only as often as the sender holds it (Mach copies the
    rights of a message in one after another; the second MOVE_SEND of a name with one user
    reference finds none): SEND_INVALID_RIGHT, nothing sent, nothing changed -- not two
    send rights forged from one."""
    m, k = kernel()
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p = k.port_allocate(b)
    to_b = k.port_insert_send(b, p, a)
    x = k.port_allocate(b)
    xs = k.port_insert_send(b, x, a)
    twice = [PortItem(xs, D.MOVE_SEND), PortItem(xs, D.MOVE_SEND)]
    raises(SendInvalidRight, lambda: k.msg_send(a, Message(remote_port=to_b, ports=twice)))
    assert a.ipc.entries[xs].send == 1 and not k.m.events.find("msg_send")
    assert k.port_status(b, p).num_msgs == 0
    k.port_insert_send(b, x, a)                  # with two references it goes through
    k.msg_send(a, Message(remote_port=to_b, ports=twice))
    assert xs not in a.ipc.entries
    assert [it.right for it in k.msg_receive(b, p).ports] == [Right.SEND, Right.SEND]
