"""L4's synchronous IPC (S95 §3, L4 reference manual): requests and the IPC path.

One IPC system call has an optional send phase and an optional receive phase:

    ipc_send(dest, msg)              send only
    ipc_receive(src)                 closed receive: only from `src`
    ipc_wait()                       open receive: from anybody
    ipc_call(dest, msg)              send, then receive the reply from `dest` (atomically:
                                     the receive phase starts before `dest` can answer)
    ipc_reply_and_wait(dest, msg)    a server's loop: reply with send timeout 0, then open wait

Timeouts are in simulated cycles: 0 (do not wait), a positive count, or NEVER.  The phases are
an explicit state machine on the threads (`ThreadState`): a sender whose partner is not
receiving blocks SENDING in the partner's sender queue (L4's polling); a receiver without a
matching sender blocks RECEIVING.  The transfer happens when both are ready: words in
registers (short IPC), or in memory plus strings copied and map/grant items entered into the
mapping database (long IPC).  If the transfer fails, the sender gets an L4_IPC_SE... error and
the receiver the matching L4_IPC_RE... error, and nothing was mapped.

A program thread yields these requests (`msg = yield ipc_call(server, Message(1))`) and
`compute(ops)` for user-level work; a thread without a program is driven from Python
(`kernel.ipc(thread, request)`).
"""
from dataclasses import dataclass

from .args import as_tuple, check_flag, is_int
from .errors import (InvalidArgument, NotExistent, SendTimeout, ReceiveTimeout, SendMsgCut,
                     ReceiveMsgCut, SendMapFailed, ReceiveMapFailed, IpcError,
                     SendSendPfTimeout, ReceiveSendPfTimeout, SendReceivePfTimeout,
                     ReceiveReceivePfTimeout)
from .fpage import Fpage, destination, PAGE_SHIFT
from .message import Message, StringBuffer
from .thread import Thread, ThreadState

DEAD = ThreadState.DEAD

NEVER = float("inf")


def _deadline(m, timeout):
    """The cycle a wait of `timeout` cycles ends at; NEVER without reading the clock (which
    would run the machine's held-back batches for nothing)."""
    return NEVER if timeout == NEVER else m.cycles + timeout


PAGE = 1 << PAGE_SHIFT


class _Blocked:
    def __repr__(self):
        return "BLOCKED"


BLOCKED = _Blocked()          # an IPC phase that waits: the result comes later


def check_timeout(t, what):
    if (type(t) is int and t >= 0) or t == NEVER or (is_int(t) and t >= 0):
        return t
    raise InvalidArgument(f"{what} {t!r}: a timeout is a cycle count >= 0 or NEVER")


@dataclass(frozen=True)
class Ipc:
    """One IPC system call (use the ipc_* builders)."""
    op: str
    dest: object = None
    msg: Message = None
    receive: bool = False
    src: object = None              # closed receive from this thread; None: open
    snd_timeout: float = NEVER
    rcv_timeout: float = NEVER
    window: Fpage = None            # where received map items may land (None: none accepted)
    buffers: tuple = ()             # StringBuffers for received strings
    pf_timeout: float = NEVER       # page faults during the string copy

    def __post_init__(self):
        check_timeout(self.snd_timeout, f"{self.op}: send timeout")
        check_timeout(self.rcv_timeout, f"{self.op}: receive timeout")
        check_timeout(self.pf_timeout, f"{self.op}: page-fault timeout")
        d, s = self.dest, self.src
        if (d is not None and not isinstance(d, Thread)) or \
                (s is not None and not isinstance(s, Thread)):
            who, x = ("destination", d) if d is not None and not isinstance(d, Thread) \
                else ("source", s)
            raise InvalidArgument(f"{self.op}: {who} {x!r} is not a thread (a Thread; a "
                                  "pager's is pager.thread)")
        if self.dest is not None and self.msg is None:
            raise InvalidArgument(f"{self.op}: a send phase needs a Message")
        if self.msg is not None and not isinstance(self.msg, Message):
            raise InvalidArgument(f"{self.op}: {self.msg!r} is not a Message")
        if self.msg is not None and self.dest is None:
            raise InvalidArgument(f"{self.op}: a send phase needs a destination thread "
                                  "(dest is None)")
        if self.receive is not True and self.receive is not False:
            check_flag(self.receive, f"{self.op}: receive")
        if self.window is not None and not isinstance(self.window, Fpage):
            raise InvalidArgument(f"{self.op}: receive window {self.window!r} is not an Fpage")
        if type(self.buffers) is not tuple:
            object.__setattr__(self, "buffers", as_tuple(self.buffers,
                                                         f"{self.op}: receive buffers"))
        for b in self.buffers:
            if not isinstance(b, StringBuffer):
                raise InvalidArgument(f"{self.op}: receive buffer {b!r} is not a StringBuffer")


def ipc_send(dest, msg, timeout=NEVER, pf_timeout=NEVER):
    return Ipc("send", dest=dest, msg=msg, snd_timeout=timeout, pf_timeout=pf_timeout)


def ipc_receive(src, timeout=NEVER, window=None, buffers=()):
    if src is None:
        raise InvalidArgument("ipc_receive: a closed receive names its source (use ipc_wait)")
    return Ipc("receive", receive=True, src=src, rcv_timeout=timeout, window=window,
               buffers=buffers)


def ipc_wait(timeout=NEVER, window=None, buffers=()):
    return Ipc("wait", receive=True, rcv_timeout=timeout, window=window, buffers=buffers)


def ipc_call(dest, msg, timeout=NEVER, rcv_timeout=NEVER, window=None, buffers=(),
             pf_timeout=NEVER):
    return Ipc("call", dest=dest, msg=msg, receive=True, src=dest, snd_timeout=timeout,
               rcv_timeout=rcv_timeout, window=window, buffers=buffers,
               pf_timeout=pf_timeout)


def ipc_reply_and_wait(dest, msg, timeout=NEVER, window=None, buffers=()):
    return Ipc("reply_and_wait", dest=dest, msg=msg, receive=True, snd_timeout=0,
               rcv_timeout=timeout, window=window, buffers=buffers)


@dataclass(frozen=True)
class Compute:
    """User-level work of a program thread: an engine op batch run in its space."""
    ops: object
    category: str = "user"


def compute(ops, category="user"):
    return Compute(ops, category)


class IpcPath:
    """The IPC system call and the transfer, over the kernel's threads and mapping database."""

    def __init__(self, kernel):
        self.k = kernel

    # -- the system call --
    def syscall(self, t, req, entry=True):
        """IPC `req` by the running thread `t`: BLOCKED, or the result (Message, None, error)."""
        if t.__class__ is not Thread or t.kernel is not self.k or t.state is DEAD:
            self.k.check_thread(t, "ipc")
        if not isinstance(req, Ipc):
            raise InvalidArgument(f"ipc: {req!r} is not an IPC request (use ipc_call, ...)")
        if req.dest is t:
            raise InvalidArgument(f"{req.op}: thread {t.name} sends to itself")
        d = req.dest
        dest = d if d is not None and d.state is not DEAD and d.kernel is self.k else None
        self.k.run_kernel("ipc_short", "ipc", threads=(t, dest), entry=entry)
        if req.dest is not None:
            r = self._send(t, req)
            if r is not None:
                return r
        if not req.receive:
            return None
        return self._receive(t, req)

    def _send(self, t, req):
        d = req.dest
        if d.state is DEAD or d.kernel is not self.k:
            return NotExistent(f"{req.op} from {t.name}: destination {d!r} does not exist", "send")
        if d.state is ThreadState.RECEIVING and d.partner in (None, t):
            res = self.transfer(t, req, d, d.request)
            if isinstance(res, tuple):
                self.k.sched.wake(d, res[1])
                return res[0]
            self.k.sched.wake(d, res)
            return None
        if req.snd_timeout == 0:
            return SendTimeout(f"{req.op} from {t.name}: {d.name} is not receiving (timeout 0)")
        t.request = req
        d.senders.append(t)
        self.k.sched.block(t, ThreadState.SENDING, d, _deadline(self.k.m, req.snd_timeout))
        self.k.m.events.log("l4", "block", thread=t.name, state="sending", partner=d.name)
        return BLOCKED

    def _receive(self, t, req):
        src = req.src
        if src is not None and (src.state is DEAD or src.kernel is not self.k):
            return NotExistent(f"{req.op} by {t.name}: source {src!r} does not exist", "receive")
        for s in list(t.senders):
            if src is None or s is src:
                t.senders.remove(s)
                self.k.run_kernel(None, "ipc", threads=(s,))      # the polling sender's TCB
                res = self.transfer(s, s.request, t, req)
                if isinstance(res, tuple):
                    self._send_done(s, res[0])
                    return res[1]
                self._send_done(s, None)
                return res
        if req.rcv_timeout == 0:
            return ReceiveTimeout(f"{req.op} by {t.name}: no message (timeout 0)")
        t.request = req
        self.k.sched.block(t, ThreadState.RECEIVING, src, _deadline(self.k.m, req.rcv_timeout))
        self.k.m.events.log("l4", "block", thread=t.name, state="receiving",
                            partner=src.name if src else None)
        return BLOCKED

    def _send_done(self, s, err):
        """The send phase of blocked sender `s` completed (or failed): go on to its receive."""
        self.k.sched.timed.pop(s.tid, None)
        if err is not None or not s.request.receive:
            self.k.sched.wake(s, err)
            return
        r = self._receive(s, s.request)
        if r is not BLOCKED:
            self.k.sched.wake(s, r)

    def time_out(self, t):
        if t.state is ThreadState.SENDING:
            t.partner.senders.remove(t)
            err = SendTimeout(f"{t.request.op} from {t.name}: {t.partner.name} did not receive "
                              f"within {t.request.snd_timeout} cycles")
        else:
            err = ReceiveTimeout(f"{t.request.op} by {t.name}: no message within "
                                 f"{t.request.rcv_timeout} cycles")
        self.k.m.events.log("l4", "timeout", thread=t.name, code=err.code)
        self.k.sched.wake(t, err)

    def cancel(self, t):
        """Abandon t's blocked phase (no result): used when a waiter is reported deadlocked."""
        if t.state is ThreadState.SENDING and t in t.partner.senders:
            t.partner.senders.remove(t)
        self.k.sched.timed.pop(t.tid, None)
        t.state, t.partner, t.deadline = ThreadState.READY, None, None

    # -- the transfer --
    def transfer(self, s, sreq, r, rreq):
        """Move s's message into r: the delivered Message, or (sender error, receiver error)."""
        msg = sreq.msg
        k = self.k
        if len(msg.strings) > len(rreq.buffers) or any(
                si.size > b.size for si, b in zip(msg.strings, rreq.buffers)):
            why = f"{r.name} offers {len(rreq.buffers)} buffer(s) for {len(msg.strings)} string(s)"
            return SendMsgCut(why), ReceiveMsgCut(why)
        plan = self._plan_items(s, msg, r, rreq)
        if isinstance(plan, tuple):
            return plan
        short = msg.is_short(k.register_words)
        if not short:
            k.run_kernel("ipc_long", "ipc")
            extra = max(0, len(msg.words) - k.register_words) * 4
            if extra:
                k.m.charge("copy", extra / k.m.profile["copy_bytes_per_cycle"])
        strings = ()
        if msg.strings:
            strings = self._copy_strings(s, sreq, r, rreq)
            if isinstance(strings[0], IpcError):
                return strings
            plan = self._plan_items(s, msg, r, rreq)        # re-check: faults ran other threads
            if isinstance(plan, tuple):
                return plan
        mapped = []
        for item, fp, base, nodes in plan:
            k.map_nodes(s.task, nodes, fp, r.task, base, item.grant)
            mapped.append((base, Fpage(base, fp.log2size, fp.rights)))
        out = Message(*msg.words, error=msg.error, payload=msg.payload)
        out.sender, out.strings, out.mapped = s, strings, tuple(mapped)
        out.pagefault = msg.pagefault
        k.m.events.log("l4", "ipc", sender=s.name, receiver=r.name, words=msg.words,
                       short=short, string_bytes=msg.nbytes_strings, items=len(msg.items))
        return out

    def _plan_items(self, s, msg, r, rreq):
        plan = []
        if not msg.items:
            return plan
        if rreq.window is None:
            why = f"{r.name} accepts no mappings (no receive window)"
            return SendMapFailed(why), ReceiveMapFailed(why)
        for item in msg.items:
            fp, base = destination(item.fpage, item.hot_spot, rreq.window)
            try:
                r.task.check_user_range(base, fp.size, "map")
                nodes = self.k.db.owned(s.task, fp)
            except (InvalidArgument, SendMapFailed) as e:
                return SendMapFailed(str(e)), ReceiveMapFailed(str(e))
            plan.append((item, fp, base, nodes))
        return plan

    def _copy_strings(self, s, sreq, r, rreq):
        """Copy every string into its buffer.  Page faults on either side go to that side's
        pager first (with the page-fault timeout); then the bytes move."""
        chunks = []
        for si, buf in zip(sreq.msg.strings, rreq.buffers):
            off = 0
            while off < si.size:
                sva, dva = si.va + off, buf.va + off
                n = min(si.size - off, PAGE - sva % PAGE, PAGE - dva % PAGE)
                chunks.append((sva, dva, n))
                off += n
        held = self._hold((s, r))
        try:
            for sva, dva, _n in chunks:
                if self.k.resolve(s, sva, False, sreq.pf_timeout) is not None:
                    why = f"page fault of {s.name} at 0x{sva:x} not served"
                    return SendSendPfTimeout(why), ReceiveSendPfTimeout(why)
                if self.k.resolve(r, dva, True, rreq.pf_timeout) is not None:
                    why = f"page fault of {r.name} at 0x{dva:x} not served"
                    return SendReceivePfTimeout(why), ReceiveReceivePfTimeout(why)
        finally:
            self._release(held)
        err = self.k.copy_string(s, r, chunks)
        if err is not None:
            return SendSendPfTimeout(err), ReceiveSendPfTimeout(err)
        return tuple((b.va, si.size) for si, b in zip(sreq.msg.strings, rreq.buffers))

    def _hold(self, threads):
        """Suspend the timeouts of blocked partners while their transfer is in progress."""
        held = []
        for t in threads:
            if t.blocked and t.state is not ThreadState.LOCKED:
                held.append((t, t.state, t.deadline))
                self.k.sched.timed.pop(t.tid, None)
                t.state, t.deadline = ThreadState.LOCKED, None
        return held

    def _release(self, held):
        for t, state, _deadline in held:
            if t.alive:
                t.state = state          # the transfer completes now: no timeout left to run
