"""msg_send, msg_receive and msg_rpc: Mach IPC as the kernel executes it.

A send is a trap, the msg_send path, a lookup per name, the copy of the inline data from
the sender's buffer into a kernel message buffer (copyin), rights moved into the message,
out-of-line regions copied copy-on-write (no data moves), then the message is queued.  A
receive is the msg_receive path, the copy from the kernel buffer into the receiver's buffer
(copyout: Mach copies inline data twice), rights inserted into the receiver's space and the
out-of-line regions mapped.  The receiver runs in its own address space: getting there is a
context switch (on the Pentium a CR3 load that flushes the TLB; the refills come later, as
misses).  Options and timeouts as in the lecture:

    msg_send(caller, msg, option=SEND_TIMEOUT, timeout=ms)
    msg_receive(caller, port=PORT_NULL (default group), option=RCV_TIMEOUT, timeout=ms, rcv_size)
    msg_rpc(caller, msg, option, rcv_size, send_timeout, receive_timeout)

Mixin of MachKernel.
"""
import math
from enum import IntFlag

import numpy as np

from engine import ops as O

from .errors import (SendInvalidPort, PortDead, SendTimedOut, SendInvalidMemory,
                     SendMsgTooLarge, RcvInvalidPort, RcvTimedOut, RcvPortChanged, RcvTooLarge,
                     SendInvalidReply, SendInvalidRight, KernInvalidName,
                     MigServerDied, MachError)
from .message import Disposition, CARRIED, KMsg, Message, PortItem, OOLItem, NOTIFY_SEND_ONCE
from .port import Right, PORT_NULL, name_text
from .task import ThreadState

MSG_SIZE_MAX = 8192          # Mach 2.5 <sys/message.h>


class MsgOption(IntFlag):
    NONE = 0
    SEND_TIMEOUT = 0x1
    SEND_NOTIFY = 0x2
    RCV_TIMEOUT = 0x100


class IPC:

    # -- copies ---------------------------------------------------------------------------
    def _msg_buf(self, thread):
        """The thread's message buffer (its part of the stack in Mach): in its task's memory,
        or in the kernel's zone for a thread of a co-located (kernel) task."""
        if thread.msg_buf is None:
            if thread.task.kernel_task:
                thread.msg_buf = self._kbuf_alloc()
            else:
                thread.msg_buf = self._vm_allocate(thread.task, 0, MSG_SIZE_MAX, True)
        return thread.msg_buf

    def _copy_lines(self, src, dst, n, on_fault=True):
        """The kernel copies `n` bytes between virtual addresses of the current space:
        its source and destination lines go through TLB and caches, the copy loop costs
        n / copy_bytes_per_cycle."""
        if n <= 0:
            return
        key = (src, dst, n)                  # messages reuse their buffers: build once
        cache = self.__dict__.setdefault("_copy_ops", {})
        b = cache.get(key)
        if b is None:
            line = self.image.line
            rd = O.access("r", O.lines(src, n, line))
            wr = O.access("w", O.lines(dst, n, line))
            k = min(len(rd), len(wr))
            both = np.empty(len(rd) + len(wr), np.int64)     # interleaved, as rep movs goes
            both[0:2 * k:2], both[1:2 * k:2] = rd[:k], wr[:k]
            both[2 * k:] = np.concatenate([rd[k:], wr[k:]])
            O.check(both, self.m.fmt)
            if len(cache) > 4096:
                cache.clear()
            b = cache[key] = self.m.batch(both)
        m = self.m
        m.charge("copy", math.ceil(n / m.profile["copy_bytes_per_cycle"]))
        if not m.try_defer(b, "copy"):      # a page is missing: run now, faults and all
            with m.mode("copy"):
                m.run(b.ops, on_fault=self._on_fault if on_fault else None, check=False)

    def _lines_batch(self, kind, va, n):
        """The cached batch of `kind` accesses to every line of [va, va + n) (message buffers
        and slots are reused: built once)."""
        key = (kind, va, n)
        cache = self.__dict__.setdefault("_line_ops", {})
        b = cache.get(key)
        if b is None:
            if len(cache) > 4096:
                cache.clear()
            b = cache[key] = self.m.batch(O.access(kind, O.lines(va, n, self.image.line)))
        return b

    def _user_bytes_in(self, thread, va, data):
        """The sender has built `data` in its buffer at `va` (its own stores)."""
        if not thread.task.kernel_task:
            self.user_write(thread, va, data)
            return
        m = self.m
        b = self._lines_batch("w", va, len(data))
        if not m.try_defer(b, thread.task.category):    # a co-located thread: kernel memory
            with m.mode(thread.task.category):
                m.run(b.ops)
        self._write_virtual(m.current_space, va, data)

    def _read_virtual(self, sid, va, n):
        """Bytes at `va` of space `sid` (mapped; a software read of the frames)."""
        out = bytearray()
        ps = self.page
        while n > 0:
            chunk = min(n, ps - va % ps)
            tr = self.m.translate(sid, va)
            out += self.m.memory.read(tr[0], chunk)
            va += chunk
            n -= chunk
        return bytes(out)

    def _write_virtual(self, sid, va, data):
        ps = self.page
        i = 0
        while i < len(data):
            chunk = min(len(data) - i, ps - va % ps)
            tr = self.m.translate(sid, va)
            self.m.memory.write(tr[0], data[i:i + chunk])
            va += chunk
            i += chunk

    # -- copyin ---------------------------------------------------------------------------
    def _resolve_dest(self, task, msg):
        try:
            e = task.ipc.lookup(msg.remote_port, "msg_send")
        except KernInvalidName:
            raise SendInvalidPort(f"msg_send: destination {name_text(msg.remote_port)} is no "
                                  f"right in task {task.name}") from None
        if e.port is None:
            raise PortDead(f"msg_send: destination 0x{msg.remote_port:x} is a dead name")
        disp = msg.remote_disposition
        if disp is None:
            disp = Disposition.COPY_SEND if (e.send or e.receive) else Disposition.MOVE_SEND_ONCE
        self._check_disposition(e, disp, "msg_send: destination", SendInvalidPort)
        return e, disp

    @staticmethod
    def _named(task, name, what, exc):
        """The entry `name` denotes in `task`, or `exc` (msg_send's own return codes)."""
        try:
            return task.ipc.lookup(name, what)
        except KernInvalidName as err:
            raise exc(str(err).split(": ", 1)[1]) from None

    def _check_disposition(self, e, disp, what, exc):
        D = Disposition             # (a chain of `is`: an Enum hashes in Python)
        if disp is D.MOVE_SEND_ONCE:
            ok = e.send_once
        elif disp is D.COPY_SEND:
            ok = e.send or e.receive
        elif disp is D.MOVE_RECEIVE or disp is D.MAKE_SEND or disp is D.MAKE_SEND_ONCE:
            ok = e.receive
        elif disp is D.MOVE_SEND:
            ok = e.send
        else:
            raise KeyError(disp)
        if e.port is None:
            raise exc(f"{what} 0x{e.name:x} is a dead name")
        if not ok:
            raise exc(f"{what} 0x{e.name:x} holds {[r.value for r in e.rights()]}; "
                      f"{disp.value} not possible")

    def _take_right(self, task, e, disp):
        """Apply a disposition to the sender's entry; returns (port, carried right)."""
        port = e.port
        if disp is Disposition.MOVE_RECEIVE:
            e.receive = False
            port.receiver = None
            if port in task.enabled:
                task.enabled.remove(port)
        elif disp is Disposition.MOVE_SEND:
            e.send -= 1
        elif disp is Disposition.MOVE_SEND_ONCE:
            e.send_once -= 1
        task.ipc.drop(e)
        return port, CARRIED[disp]

    def _check_in_order(self, dest_e, dest_disp, reply_e, reply_disp, items):
        """Mach copies a message's rights in one after another (destination, reply port,
        items): each disposition must hold for what the earlier ones left.  Replayed on
        counts, before anything is taken, so a refused send changes nothing: one send
        reference moved twice, a receive right moved twice or used after it was moved."""
        left = {}                               # name -> [receive, send, send-once] left
        order = [(dest_e, dest_disp, SendInvalidPort), (reply_e, reply_disp, SendInvalidReply)]
        for e, d, exc in order + [(e, d, SendInvalidRight) for e, d in items]:
            if e is None:
                continue
            c = left.setdefault(e.name, [int(e.receive), e.send, e.send_once])
            if d is Disposition.MOVE_SEND_ONCE:
                ok, i = c[2] > 0, 2
            elif d is Disposition.MOVE_SEND:
                ok, i = c[1] > 0, 1
            elif d is Disposition.COPY_SEND:
                ok, i = c[1] > 0 or c[0], None
            else:                               # MOVE_RECEIVE, MAKE_SEND, MAKE_SEND_ONCE
                ok, i = c[0], 0 if d is Disposition.MOVE_RECEIVE else None
            if not ok:
                raise exc(
                    f"msg_send: name 0x{e.name:x} used with {d.name} after the message's "
                    f"earlier rights took what it held ({e.send} send, {e.send_once} "
                    f"send-once{', receive' if e.receive else ''} before the send)")
            if i is not None:
                c[i] -= 1

    def _copyin(self, thread, msg, dest_e, dest_disp):
        """Everything checked first, then committed (seL4 style): a failed send changes nothing."""
        task = thread.task
        if len(msg.data) > MSG_SIZE_MAX:
            raise SendMsgTooLarge(f"msg_send: {len(msg.data)} bytes inline; at most {MSG_SIZE_MAX}")
        reply_e = reply_disp = None
        if msg.local_port != PORT_NULL:
            reply_e = self._named(task, msg.local_port, "msg_send: reply port",
                                  SendInvalidReply)
            reply_disp = msg.local_disposition or (
                Disposition.MAKE_SEND_ONCE if reply_e.receive else Disposition.COPY_SEND)
            self._check_disposition(reply_e, reply_disp, "msg_send: reply port",
                                    SendInvalidReply)
        items = []
        for it in msg.ports:
            e = self._named(task, it.name, "msg_send: port item", SendInvalidRight)
            self._check_disposition(e, it.disposition, "msg_send: port item", SendInvalidRight)
            items.append((e, it.disposition))
        self._check_in_order(dest_e, dest_disp, reply_e, reply_disp, items)
        for it in msg.ool:
            try:
                self._vm_check(task, it.address, it.size, "msg_send: out-of-line", need_read=True)
            except Exception as err:
                raise SendInvalidMemory(str(err)) from None
        # ---- commit ----
        nlook = 1 + (reply_e is not None) + len(items)
        for _ in range(nlook):
            self.image.run("ipc_port_lookup", "ipc")
        dest, dright = self._take_right(task, dest_e, dest_disp)
        km = KMsg(msg.id, 0, dest, dright, sender=task)
        if reply_e is not None:
            km.reply, km.reply_right = self._take_right(task, reply_e, reply_disp)
        for e, d in items:
            km.rights.append(self._take_right(task, e, d))
        km.slot = self._kmsg_slot()
        if msg.data:
            buf = self._msg_buf(thread)
            self._user_bytes_in(thread, buf, msg.data)
            self._copy_lines(buf, self._slot_va(km.slot), len(msg.data))
            km.data = bytes(msg.data)       # what the sender just stored in its buffer
        for it in msg.ool:
            self.image.run("ool_copyin", "ipc")
            km.ool.append(self._copyin_region(task, it.address, it.size, move=it.deallocate))
        return km

    # -- copyout --------------------------------------------------------------------------
    def _copyout(self, thread, km, port):
        task = thread.task
        out = Message(local_port=task.ipc.name_of(port) or 0, id=km.id, seqno=km.seqno)
        if km.reply is not None:
            out.remote_port = self._insert_carried(task, km.reply, km.reply_right)
            out.reply_right = km.reply_right
        for p, r in km.rights:
            out.ports.append(PortItem(self._insert_carried(task, p, r), None, r))
        km.reply, km.rights = None, []
        for copy in km.ool:
            self.image.run("ool_copyout", "ipc")
            addr = self._copyout_region(task, copy)
            out.ool.append(OOLItem(addr, copy.size))
        km.ool = []
        if km.data:
            buf = self._msg_buf(thread)
            self._copy_lines(self._slot_va(km.slot), buf, len(km.data))
            self._write_virtual(self.m.current_space, buf, km.data)
            out.data = km.data              # what was just stored in the receiver's buffer
        return out

    def _insert_carried(self, task, port, right):
        self.image.run("ipc_right_copyout", "ipc")
        if right is Right.RECEIVE:
            if not port.alive:
                return PORT_NULL
            port.receiver, port.destination = task, None
            return task.ipc.insert(port, Right.RECEIVE)
        if not port.alive:                       # died in transit: a dead name
            name = task.ipc._new_name()
            from .port import Entry
            e = Entry(name, None)
            e.dead = 1
            task.ipc.entries[name] = e
            return name
        return task.ipc.insert(port, right)

    # -- queueing -------------------------------------------------------------------------
    @staticmethod
    def _moved_receive(km):
        if km.reply is not None and km.reply_right is Right.RECEIVE:
            yield km.reply
        for p, r in km.rights:
            if r is Right.RECEIVE:
                yield p

    def _circular(self, dest, km):
        """Would queueing `km` on `dest` put a receive right it carries inside its own port
        (Mach 3 ipc_port_check_circularity)?  Follow `dest` while its receive right is itself
        in a queued message."""
        moved = list(self._moved_receive(km))
        if not moved:
            return False
        base, seen = dest, set()
        while base.id not in seen:          # (a loop already made would also stop here)
            if any(base is p for p in moved):
                return True
            seen.add(base.id)
            if base.alive and base.receiver is None and base.destination is not None:
                base = base.destination
            else:
                return False
        return True

    def _enqueue(self, port, km):
        for p in self._moved_receive(km):
            p.destination = port            # in transit, queued on `port`
        self._seq += 1
        km.seqno = self._seq
        port.queue.append(km)
        self.m.events.log("mach", "msg_queued", port=port.label, id=km.id, seqno=km.seqno,
                          sender=km.sender.name if km.sender else "kernel")

    def _kmsg_destroy(self, km):
        """A message that will never be received: release what it carries."""
        if km.dest_right is Right.SEND_ONCE and km.id != NOTIFY_SEND_ONCE:
            pass                                  # its destination is the dead port itself
        if km.reply is not None:
            self._release_right(km.reply, km.reply_right)
        for p, r in km.rights:
            self._release_right(p, r)
        for copy in km.ool:
            self._copy_discard(copy)
        km.reply, km.rights, km.ool = None, [], []
        self.m.events.log("mach", "msg_destroyed", id=km.id, seqno=km.seqno)

    def _kernel_send(self, port, msg_id, data=b"", rights=(), ool=(), reply=None):
        """The kernel sends (to a pager, or an exception message): the msg_send path without
        a trap, never blocked by the backlog (Mach's kernel sends with SEND_ALWAYS).
        `reply`: (port, right) the receiver gets as its reply right."""
        self.image.run("msg_send", "ipc")
        km = KMsg(msg_id, 0, port, Right.SEND, data=bytes(data), rights=list(rights),
                  ool=list(ool))
        if reply is not None:
            km.reply, km.reply_right = reply
        km.slot = self._kmsg_slot()
        if data:
            b = self._lines_batch("w", self._slot_va(km.slot), len(data))
            if not self.m.try_defer(b, "ipc"):
                with self.m.mode("ipc"):
                    self.m.run(b.ops)
        if not port.alive:
            self._kmsg_destroy(km)
            return False
        self._enqueue(port, km)
        return True

    # -- msg_send -------------------------------------------------------------------------
    def msg_send(self, caller, msg, option=MsgOption.NONE, timeout=0):
        """Send `msg` to the port named by msg.remote_port."""
        thread = self._caller(caller)
        with self._trap(thread, "msg_send", "ipc"):
            self._msg_send(thread, msg, option, timeout)

    def _check_message(self, msg, what):
        if not isinstance(msg, Message):
            raise SendInvalidMemory(f"{what}: {msg!r} is not a message (a Message with "
                                    "remote_port, local_port, id, data, ports, ool)")

    def _msg_send(self, thread, msg, option, timeout):
        self._check_message(msg, "msg_send")
        task = thread.task
        dest_e, disp = self._resolve_dest(task, msg)
        dest = dest_e.port
        # send-once messages (replies) and kernel ports are not held back by the backlog
        if dest.kobject is None and disp is not Disposition.MOVE_SEND_ONCE \
                and len(dest.queue) >= dest.backlog:
            def room():
                if not dest.alive:
                    raise SendInvalidPort(f"msg_send: {dest.label} died while the sender waited")
                return len(dest.queue) < dest.backlog
            tmo = timeout if option & MsgOption.SEND_TIMEOUT else None
            self._wait(thread, room, via=dest, what=f"msg_send to {dest.label} (backlog "
                       f"{dest.backlog} full)", timeout_ms=tmo, timeout_exc=SendTimedOut)
            dest_e, disp = self._resolve_dest(task, msg)
            dest = dest_e.port
        km = self._copyin(thread, msg, dest_e, disp)
        self.m.events.log("mach", "msg_send", task=task.name, port=dest.label, id=msg.id,
                          size=len(msg.data), rights=len(km.rights), ool=len(km.ool))
        if dest.kobject is not None:
            self._kobject_server(thread, km)
        elif self._circular(dest, km):
            # Mach 3 ipc_kmsg_send: "don't allow the creation of a circular loop" -- a receive
            # right queued (perhaps via other ports in transit) on its own port could never
            # be received; the send succeeds and the message is destroyed with its rights
            self.m.events.log("mach", "msg_circular", port=dest.label, id=km.id)
            self._kmsg_destroy(km)
        else:
            self._enqueue(dest, km)

    # -- msg_receive ----------------------------------------------------------------------
    def _receive_ports(self, thread, port_name, what):
        task = thread.task
        if port_name == PORT_NULL:
            return None
        e = task.ipc.entries.get(port_name) if isinstance(port_name, int) else None
        if e is None or not e.receive:
            raise RcvInvalidPort(f"{what}: name {name_text(port_name)} is not a receive right "
                                 f"of task {task.name}")
        return e.port

    def _pick(self, thread, port):
        """The port to take the next message from: `port`, or the default group's oldest."""
        if port is not None:
            return port if port.queue else None
        best = None
        for p in thread.task.enabled:
            if p.queue and (best is None or p.queue[0].seqno < best.queue[0].seqno):
                best = p
        return best

    def msg_receive(self, caller, port=PORT_NULL, option=MsgOption.NONE, timeout=0,
                    rcv_size=MSG_SIZE_MAX):
        """Receive from `port` (a name), or from the default group (PORT_NULL)."""
        thread = self._caller(caller)
        with self._trap(thread, None):
            return self._msg_receive(thread, port, option, timeout, rcv_size)

    def _msg_receive(self, thread, port_name, option, timeout, rcv_size, via=None):
        task = thread.task
        port = self._receive_ports(thread, port_name, "msg_receive")

        def ready():
            if port is not None and (not port.alive or port.receiver is not task):
                raise RcvPortChanged(f"msg_receive: {port.label} left task {task.name} "
                                     "during the receive")
            return self._pick(thread, port) is not None
        tmo = timeout if option & MsgOption.RCV_TIMEOUT else None
        self._wait(thread, ready, via=via, what="msg_receive", timeout_ms=tmo,
                   timeout_exc=RcvTimedOut)
        src = self._pick(thread, port)
        head = src.queue[0]
        if len(head.data) > rcv_size:
            raise RcvTooLarge(f"msg_receive: message of {len(head.data)} bytes, rcv_size "
                              f"{rcv_size}")
        return self._receive_dequeue(thread, src)

    def _receive_dequeue(self, thread, port):
        """The receive completes: the msg_receive path and the copyout, in the receiver."""
        self.image.run("msg_receive", "ipc")
        km = port.queue.popleft()
        msg = self._copyout(thread, km, port)
        self.m.events.log("mach", "msg_receive", task=thread.task.name, port=port.label,
                          id=km.id, seqno=km.seqno)
        return msg

    # -- msg_rpc --------------------------------------------------------------------------
    def msg_rpc(self, caller, msg, option=MsgOption.NONE, rcv_size=MSG_SIZE_MAX,
                send_timeout=0, receive_timeout=0):
        """Send `msg`, then receive the reply on msg.local_port: one trap."""
        thread = self._caller(caller)
        self._check_message(msg, "msg_rpc")
        if msg.local_port == PORT_NULL:
            raise RcvInvalidPort("msg_rpc: the message names no reply port (local_port)")
        reply_name = msg.local_port
        with self._trap(thread, "msg_send", "ipc"):
            dest = thread.task.ipc.entries.get(msg.remote_port)
            via = dest.port if dest is not None else None
            self._msg_send(thread, msg, option, send_timeout)
            return self._msg_receive(thread, reply_name, option, receive_timeout, rcv_size,
                                     via=via)

    def rpc(self, caller, dest, msg_id=0, data=b"", ports=(), ool=(), timeout=None):
        """A MIG-style RPC: msg_rpc with the thread's reply port (made on first use);
        a send-once notification instead of a reply raises MIG_SERVER_DIED."""
        thread = self._caller(caller)
        if thread.reply_port is None:
            thread.reply_port = self._port_allocate(thread.task, f"{thread.name}.reply")
        opt = MsgOption.NONE if timeout is None else MsgOption.RCV_TIMEOUT | MsgOption.SEND_TIMEOUT
        msg = Message(remote_port=dest, local_port=thread.reply_port, id=msg_id, data=data,
                      ports=list(ports), ool=list(ool))
        reply = self.msg_rpc(thread, msg, opt, send_timeout=timeout or 0,
                             receive_timeout=timeout or 0)
        if reply.id == NOTIFY_SEND_ONCE:
            raise MigServerDied(f"rpc: the server of port 0x{dest:x} destroyed the reply right")
        return reply

    # -- the server loop ------------------------------------------------------------------
    def _server_return(self, thread, reply):
        """A server thread finished a message: send the reply (if any) and enter msg_receive
        again -- one trap (mach_msg with send and receive)."""
        with self._trap(thread, None):
            if reply is not None:
                self.image.run("msg_send", "ipc")
                try:
                    self._msg_send(thread, reply, MsgOption.NONE, 0)
                except MachError as e:       # the client is gone: the server carries on
                    self.m.events.log("mach", "reply_failed", thread=thread.name, error=e.code)
        thread.state = ThreadState.RECEIVING
