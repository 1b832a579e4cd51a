"""A model-based test of L4's IPC and mapping database (S95 §3, L4 x86 reference manual).

A hypothesis state machine drives three tasks of two threads each and keeps a plain-Python
REFERENCE MODEL beside the kernel:

  (a) IPC: every thread is ready, sending to X (in X's FIFO sender queue) or receiving from X
      or anybody, with a deadline; the messages in flight are the blocked senders' requests;
  (b) the mapping tree: which (task, page) holds which frame with which rights, derived from
      which parent mapping, sigma0's frames as the roots.

Rules (`ipc` between any two threads; `exchange`, `serve`, `answer` steer towards rendezvous
so that messages actually move): send / receive / wait / call / reply_and_wait with timeouts
0, finite and never; short
and long messages (extra words, one string item, receive buffers that may be too small: both
sides get L4_IPC_xxMSGCUT and nothing moves); map and grant items with every right (a page the
sender does not have: L4_IPC_xxMAPFAILED, nothing mapped; no receive window: the same);
simulated time advancing so finite timeouts expire (L4_IPC_SETIMEOUT / RETIMEOUT); flush
(fpage_unmap) of derived or own mappings, of all rights or of write only; pages from sigma0
(its ANY_PAGE protocol); user loads and stores through the MMU, which succeed or fault exactly
as the model says (the tasks have no pager: a fault is L4_IPC_ENOT_EXISTENT); task_delete (its
threads' partners get L4_IPC_ENOT_EXISTENT, its mappings and all derived from them vanish);
`map_direct` (kernel.map_fpage: 1- and 2-page fpages, also within one task) and `map_up` (a
derived page mapped or granted back onto a mapping it derives from).

Invariants after every step: each thread's state, partner, deadline and sender queue match the
model; every completed IPC returned exactly the model's outcome (the delivered words, strings,
mapped fpages and sender, or the specific error and phase) -- so no message is lost, duplicated
or delivered twice; every page of every task translates (page tables, without side effects) to
the model's frame with its rights, and every frame holds the model's bytes; the mapping
database is a forest rooted at sigma0 with each child's rights within its parent's, and each
node's parent is the model's.  At the end every task is deleted and every frame is free again
(the machine's free-frame count, sigma0's roots and allocations).

Run with `-s` and L4MODEL_STATS=1 to print what the examples exercised (outcomes by error
code, rules).  The regression tests at the end document the kernel bugs the model found.

The test plays the scheduler for its threads: they have no program and enter the kernel's IPC
path directly (`kernel.ipc_path.syscall`), so several can be blocked at once; a blocked
thread's result arrives in `thread.result` when the kernel wakes it.

Time: the model counts units of T cycles.  A finite timeout of n units is n*T - T/2 cycles
and the clock after an advance sits at T/2 past a unit boundary; every step's own cycles stay
far below T/2 (checked), so a timeout of n units expires exactly when n units have passed.
"""
import os
import sys
from collections import Counter

from hypothesis import settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, rule, invariant, precondition,
                                 initialize)

from engine import Machine
from lab.l4 import (L4Kernel, Message, StringItem, StringBuffer, MapItem, GrantItem, Fpage,
                    ipc_send, ipc_receive, ipc_wait, ipc_call, ipc_reply_and_wait, NEVER,
                    ANY_PAGE, ThreadState, NotExistent, SendMapFailed)
from lab.l4.ipc import BLOCKED

PAGE = 4096
VBASE = 0x10000                  # every task's four pages: VBASE + slot * PAGE
SLOTS = 4
WINDOW = Fpage(VBASE, 14, "rwx")  # a receive window over the four pages (slot i lands at slot i)
T = 10 ** 8                      # cycles per model time unit
H = T // 2
NTASKS, NTHREADS = 3, 2
STATS = Counter()                # what the runs exercised (printed with -s and L4MODEL_STATS=1)


def _inter(a, b):
    return "r" + "".join(c for c in "wx" if c in a and c in b)


def _sub(a, removed):
    if "r" in removed:
        return None
    return "r" + "".join(c for c in "wx" if c in a and c not in removed)


class MNode:
    """A model mapping: (task, va) holds frame `frame` with `rights`, derived from `parent`
    (another MNode, or None for a page sigma0 mapped)."""

    def __init__(self, task, va, frame, rights, parent):
        self.task, self.va, self.frame, self.rights, self.parent = task, va, frame, rights, parent
        self.children = []


class MThread:
    def __init__(self, name, task):
        self.name, self.task = name, task
        self.state = "ready"        # ready | sending | receiving | dead
        self.partner = None
        self.deadline = None        # model time unit, None: never
        self.req = None             # the model request in progress
        self.senders = []           # FIFO of MThreads polling to send here


class MReq:
    """A request as the model sees it."""

    def __init__(self, op, dest, words, string, item, src, receive, snd_to, rcv_to, window,
                 buf):
        self.op, self.dest, self.words, self.string, self.item = op, dest, words, string, item
        self.src, self.receive, self.snd_to, self.rcv_to = src, receive, snd_to, rcv_to
        self.window, self.buf = window, buf


def _cycles(units):
    return NEVER if units is None else (0 if units == 0 else units * T - H)


TIMEOUTS = st.sampled_from([1, None, 0, 2])      # None: never
RIGHTS = st.sampled_from(["r", "rw", "rx", "rwx"])
SLOT = st.sampled_from([0, 1, 2, 3])             # (0 and 1 start with pages)


class L4Model(RuleBasedStateMachine):

    @initialize()
    def setup(self):
        self.m = m = Machine("pentium-133")
        self.k = k = L4Kernel(m)
        self.free0 = m.memory.free_frames
        self.tasks, self.ktasks = [], []
        self.threads, self.kthreads = [], []
        for i in range(NTASKS):
            kt = k.task_new(f"T{i}")
            self.ktasks.append(kt)
            self.tasks.append({"alive": True, "pages": {}})       # va -> MNode
            for j in range(NTHREADS):
                th = kt.thread if j == 0 else k.thread_new(kt, name=f"T{i}.{j}")
                self.kthreads.append(th)
                self.threads.append(MThread(th.name, i))
        self.frames = {}          # pa -> bytearray (the model's contents of frames in use)
        self.roots = {}           # pa -> [MNode] (sigma0's children)
        self.now = 0
        self.base = m.cycles - H
        self.serial = 0
        self.outstanding = set()  # thread indices blocked in the kernel
        self.expected = {}        # this step's completions: thread index -> outcome
        self.got = {}
        for task in range(NTASKS):          # each task starts with two pages from sigma0
            for slot in range(2):
                self.acquire(task, slot)

    # ------------------------------------------------------------------ model: mappings
    def _remove_subtree(self, n):
        for c in list(n.children):
            self._remove_subtree(c)
        del self.tasks[n.task]["pages"][n.va]
        sib = n.parent.children if n.parent is not None else self.roots[n.frame]
        sib.remove(n)
        if n.parent is None and not sib:
            del self.roots[n.frame]
            del self.frames[n.frame]

    def _revoke(self, n, rights):
        left = _sub(n.rights, rights)
        if left is None:
            self._remove_subtree(n)
            return
        n.rights = left
        for c in list(n.children):
            self._revoke(c, rights)

    def _map(self, src, dtask, dva, rights, grant):
        rights = _inter(src.rights, rights)
        pages = self.tasks[dtask]["pages"]
        old = pages.get(dva)
        if old is src:                  # the page is already there: nothing to do
            return
        if old is not None and old.frame == src.frame and old.parent is src and not grant:
            old.rights = _inter(src.rights, "".join(sorted(set(old.rights) | set(rights))))
            return
        anc = src.parent
        while anc is not None and anc is not old:
            anc = anc.parent
        if old is not None and anc is old:
            # onto the mapping src derives from: it has the page with at least src's rights;
            # a map changes nothing, a grant gives src back (its children now hang off old)
            if grant:
                del self.tasks[src.task]["pages"][src.va]
                src.parent.children.remove(src)
                lost = "".join(x for x in "wx" if x in src.rights and x not in rights)
                for c in list(src.children):
                    c.parent = old
                    old.children.append(c)
                    if lost:
                        self._revoke(c, lost)
                src.children = []
            return
        if old is not None:
            self._remove_subtree(old)
        if grant:
            del self.tasks[src.task]["pages"][src.va]
            lost = "".join(x for x in "wx" if x in src.rights and x not in rights)
            src.task, src.va, src.rights = dtask, dva, rights
            node = src
            if lost:
                for c in list(node.children):
                    self._revoke(c, lost)
        else:
            node = MNode(dtask, dva, src.frame, rights, src)
            src.children.append(node)
        pages[dva] = node

    def _map_pages(self, stask, nodes, va, dtask, dva, rights, grant):
        """Page by page; a page whose mapping an earlier page of the same fpage replaced
        (flushed) is gone, and nothing is mapped for it."""
        for p, node in enumerate(nodes):
            if self.tasks[stask]["pages"].get(va + p * PAGE) is node:
                self._map(node, dtask, dva + p * PAGE, rights, grant)

    # ------------------------------------------------------------------ model: IPC
    def _transfer(self, si, sreq, ri, rreq):
        """(sender outcome, receiver outcome) of moving s's message into r."""
        s, r = self.threads[si], self.threads[ri]
        if sreq.string is not None and (rreq.buf is None or sreq.string[2] > rreq.buf[2]):
            return ("err", "L4_IPC_SEMSGCUT", "send"), ("err", "L4_IPC_REMSGCUT", "receive")
        nodes = None
        if sreq.item is not None:
            kind, slot, rights, npages = sreq.item
            nodes = [self.tasks[s.task]["pages"].get(VBASE + (slot + p) * PAGE)
                     for p in range(npages)]
            if rreq.window is None or None in nodes:
                return ("err", "L4_IPC_SEMAPFAILED", "send"), \
                    ("err", "L4_IPC_REMAPFAILED", "receive")
        strings = ()
        if sreq.string is not None:
            sslot, soff, size = sreq.string
            bslot, boff, _bsize = rreq.buf
            sn = self.tasks[s.task]["pages"].get(VBASE + sslot * PAGE)
            rn = self.tasks[r.task]["pages"].get(VBASE + bslot * PAGE)
            if size and sn is None:
                return ("err", "L4_IPC_SESNDPFTO", "send"), ("err", "L4_IPC_RESNDPFTO", "receive")
            if size and (rn is None or "w" not in rn.rights):
                return ("err", "L4_IPC_SERCVPFTO", "send"), ("err", "L4_IPC_RERCVPFTO", "receive")
            if size:
                data = bytes(self.frames[sn.frame][soff:soff + size])
                self.frames[rn.frame][boff:boff + size] = data
            strings = ((VBASE + bslot * PAGE + boff, size),)
        mapped = ()
        if nodes is not None:
            kind, slot, rights, npages = sreq.item
            va = VBASE + slot * PAGE
            self._map_pages(s.task, nodes, va, r.task, va, rights, kind == "grant")
            mapped = ((va, (va, 11 + npages, rights)),)
        return ("ok",), ("msg", s.name, sreq.words, strings, mapped)

    def _complete(self, i, outcome):
        t = self.threads[i]
        t.state, t.partner, t.deadline, t.req = "ready", None, None, None
        assert i not in self.expected
        self.expected[i] = outcome

    def _send(self, i, req):
        d = self.threads[req.dest]
        if d.state == "dead":
            return ("err", "L4_IPC_ENOT_EXISTENT", "send")
        if d.state == "receiving" and d.partner in (None, i):
            so, ro = self._transfer(i, req, req.dest, d.req)
            self._complete(req.dest, ro)
            return so if so[0] == "err" else None
        if req.snd_to == 0:
            return ("err", "L4_IPC_SETIMEOUT", "send")
        t = self.threads[i]
        t.state, t.partner, t.req = "sending", req.dest, req
        t.deadline = None if req.snd_to is None else self.now + req.snd_to
        d.senders.append(i)
        return BLOCKED

    def _receive(self, i, req):
        t = self.threads[i]
        if req.src is not None and self.threads[req.src].state == "dead":
            return ("err", "L4_IPC_ENOT_EXISTENT", "receive")
        for s in list(t.senders):
            if req.src is None or s == req.src:
                t.senders.remove(s)
                sreq = self.threads[s].req
                so, ro = self._transfer(s, sreq, i, req)
                self._send_done(s, so)
                return ro
        if req.rcv_to == 0:
            return ("err", "L4_IPC_RETIMEOUT", "receive")
        t.state, t.partner, t.req = "receiving", req.src, req
        t.deadline = None if req.rcv_to is None else self.now + req.rcv_to
        return BLOCKED

    def _send_done(self, s, so):
        sreq = self.threads[s].req
        if so[0] == "err" or not sreq.receive:
            self._complete(s, so)
            return
        t = self.threads[s]
        t.state, t.partner, t.deadline = "ready", None, None
        r = self._receive(s, sreq)
        if r is not BLOCKED:
            self._complete(s, r)

    def _syscall(self, i, req):
        if req.dest is not None:
            r = self._send(i, req)
            if r is not None:
                return r
        if not req.receive:
            return ("ok",)
        return self._receive(i, req)

    # ------------------------------------------------------------------ driving the kernel
    def _outcome(self, r):
        if isinstance(r, BaseException):
            return ("err", r.code, r.phase)
        if r is None:
            return ("ok",)
        mapped = tuple((b, (f.base, f.log2size, f.rights)) for b, f in r.mapped)
        return ("msg", r.sender.name, tuple(r.words), tuple(r.strings), mapped)

    def _collect(self):
        for i in sorted(self.outstanding):
            kt = self.kthreads[i]
            if kt.state is ThreadState.READY:
                self.outstanding.discard(i)
                self.got[i] = self._outcome(kt.result)
                kt.result = None

    def _begin(self):
        self.expected, self.got = {}, {}

    def _end(self):
        self._collect()
        assert self.got == self.expected
        STATS["steps"] += 1
        STATS["rule:" + sys._getframe(2 if sys._getframe(1).f_code.co_name == "_ipc"
                                     else 1).f_code.co_name] += 1
        for o in self.got.values():
            STATS[o[1] if o[0] == "err" else o[0] + ("" if o[0] != "msg" else
                                                     "+string" * bool(o[3]) +
                                                     "+map" * bool(o[4]))] += 1

    def _ready(self, i):
        return self.threads[i].state == "ready" and self.tasks[self.threads[i].task]["alive"]

    # ------------------------------------------------------------------ rules
    MSG = st.fixed_dictionaries(dict(snd_to=TIMEOUTS, rcv_to=TIMEOUTS, extra=st.integers(0, 4),
               string=st.tuples(SLOT, st.integers(0, 64),
                                st.sampled_from([16, 48, 1, 0])) | st.none(),
               item=st.tuples(st.sampled_from(["map", "grant"]), SLOT, RIGHTS,
                              st.sampled_from([1, 2])) | st.none(),
               buf=st.tuples(SLOT, st.integers(0, 64),
                             st.sampled_from([64, 48, 8])) | st.none(),
               window=st.sampled_from([True, False])))

    @rule(op=st.sampled_from(["send", "receive", "wait", "call", "reply_and_wait"]),
          i=st.integers(0, NTASKS * NTHREADS - 1), j=st.integers(0, NTASKS * NTHREADS - 1),
          msg=MSG)
    def ipc(self, op, i, j, msg):
        """Any IPC between any two threads (many fail: the specific error is checked)."""
        self._ipc(op, i, j, **msg)

    def _ipc(self, op, i, j, snd_to, rcv_to, extra, string, item, buf, window):
        if not self._ready(i) or i == j:
            return
        ti, tj = self.threads[i], self.threads[j]
        if item is not None and item[3] == 2:
            item = (item[0], item[1] & ~1, item[2], 2)   # a 2-page fpage is 8 KB aligned
        self.serial += 1
        words = (self.serial,) + tuple(range(100, 100 + extra))
        sends = op in ("send", "call", "reply_and_wait")
        receives = op != "send"
        if not sends:
            string = item = None
        if not receives:
            buf, window = None, False
        if op == "reply_and_wait":
            snd_to = 0
        src = j if op in ("receive", "call") else None
        mreq = MReq(op, j if sends else None, words, string, item, src, receives, snd_to,
                    rcv_to, WINDOW if window else None, buf)
        kmsg = None
        if sends:
            strings = () if string is None else \
                (StringItem(VBASE + string[0] * PAGE + string[1], string[2]),)
            items = ()
            if item is not None:
                cls = GrantItem if item[0] == "grant" else MapItem
                items = (cls(Fpage(VBASE + item[1] * PAGE, 11 + item[3], item[2])),)
            kmsg = Message(*words, strings=strings, items=items)
        bufs = () if buf is None else (StringBuffer(VBASE + buf[0] * PAGE + buf[1], buf[2]),)
        w = WINDOW if window else None
        kj = self.kthreads[j]
        if op == "send":
            req = ipc_send(kj, kmsg, timeout=_cycles(snd_to))
        elif op == "receive":
            req = ipc_receive(kj, timeout=_cycles(rcv_to), window=w, buffers=bufs)
        elif op == "wait":
            req = ipc_wait(timeout=_cycles(rcv_to), window=w, buffers=bufs)
        elif op == "call":
            req = ipc_call(kj, kmsg, timeout=_cycles(snd_to), rcv_timeout=_cycles(rcv_to),
                           window=w, buffers=bufs)
        else:
            req = ipc_reply_and_wait(kj, kmsg, timeout=_cycles(rcv_to), window=w, buffers=bufs)
        self._begin()
        r = self._syscall(i, mreq)
        if r is not BLOCKED:
            self._complete(i, r)
        kt = self.kthreads[i]
        self.k.dispatch(kt)
        kr = self.k.ipc_path.syscall(kt, req)
        if kr is BLOCKED:
            self.outstanding.add(i)
        else:
            self.got[i] = self._outcome(kr)
        self._end()

    @rule(n=st.integers(0, 5), closed=st.booleans(), msg=MSG)
    def serve(self, n, closed, msg):
        """A ready thread with polling senders receives (the first one, or its first)."""
        cand = [i for i, t in enumerate(self.threads) if self._ready(i) and t.senders]
        if cand:
            i = cand[n % len(cand)]
            s = self.threads[i].senders[-1 if n % 2 else 0]
            self._ipc("receive" if closed else "wait", i, s, **msg)

    @rule(n=st.integers(0, 5), op=st.sampled_from(["send", "call", "reply_and_wait"]), msg=MSG)
    def answer(self, n, op, msg):
        """A ready thread sends to a thread that waits for it (or for anybody)."""
        cand = [(i, j) for j, t in enumerate(self.threads) if t.state == "receiving"
                for i in range(len(self.threads)) if self._ready(i) and i != j
                and t.partner in (None, i)]
        if cand:
            i, j = cand[n % len(cand)]
            self._ipc(op, i, j, **msg)

    @rule(i=st.integers(0, NTASKS * NTHREADS - 1), j=st.integers(0, NTASKS * NTHREADS - 1),
          closed=st.booleans(), op=st.sampled_from(["send", "call", "reply_and_wait"]),
          msg=MSG)
    def exchange(self, i, j, closed, op, msg):
        """A rendezvous: thread j starts to receive (from i, or from anybody), then i sends to
        it: the message (words, string, map or grant item) moves or fails as a whole."""
        if i == j or not (self._ready(i) and self._ready(j)):
            return
        rcv = dict(msg, rcv_to=None)
        self._ipc("receive" if closed else "wait", j, i, **rcv)
        if self._ready(i):
            self._ipc(op, i, j, **msg)

    @rule(src=st.integers(0, NTASKS - 1), dst=st.integers(0, NTASKS - 1), slot=SLOT,
          dslot=SLOT, rights=RIGHTS, grant=st.booleans(), npages=st.sampled_from([1, 2]))
    def map_direct(self, src, dst, slot, dslot, rights, grant, npages=1):
        """A map or grant item carried by an IPC charged elsewhere (kernel.map_fpage, as the
        L4Linux server's replies): also between pages of one task, at another address."""
        if not (self.tasks[src]["alive"] and self.tasks[dst]["alive"]):
            return
        if npages == 2:
            slot, dslot = slot & ~1, dslot & ~1
        va, dva = VBASE + slot * PAGE, VBASE + dslot * PAGE
        nodes = [self.tasks[src]["pages"].get(va + p * PAGE) for p in range(npages)]
        self._begin()
        try:
            self.k.map_fpage(self.ktasks[src], Fpage(va, 11 + npages, rights), self.ktasks[dst],
                             dva, grant=grant)
        except SendMapFailed:
            assert None in nodes
        else:
            assert None not in nodes
            STATS["map_direct:" + ("grant" if grant else "map")] += 1
            self._map_pages(src, nodes, va, dst, dva, rights, grant)
        self._end()

    @rule(n=st.integers(0, 7), up=st.integers(0, 2), rights=RIGHTS, grant=st.booleans())
    def map_up(self, n, up, rights, grant):
        """A derived page mapped (or granted) back onto one of the mappings it derives from:
        the destination already has the page, with at least its rights."""
        derived = [(t, va) for t, task in enumerate(self.tasks) if task["alive"]
                   for va, x in sorted(task["pages"].items()) if x.parent is not None]
        if not derived:
            return
        t, va = derived[n % len(derived)]
        node, anc = self.tasks[t]["pages"][va], None
        chain = []
        a = node.parent
        while a is not None:
            chain.append(a)
            a = a.parent
        anc = chain[up % len(chain)]
        self.map_direct(t, anc.task, (va - VBASE) // PAGE, (anc.va - VBASE) // PAGE, rights,
                        grant)

    def _timed(self):
        return any(t.deadline is not None for t in self.threads
                   if t.state in ("sending", "receiving"))

    @precondition(lambda self: self._timed())
    @rule(units=st.integers(1, 2))
    def advance(self, units):
        """Simulated time passes: finite timeouts that are due expire."""
        self._begin()
        self.now += units
        target = self.base + self.now * T + H
        gap = target - self.m.cycles
        assert gap > T // 2, "a step used more than half a time unit"
        self.m.charge("idle", gap)
        self.k.sched.expire()
        for i, t in enumerate(self.threads):
            if t.state in ("sending", "receiving") and t.deadline is not None \
                    and t.deadline <= self.now:
                if t.state == "sending":
                    self.threads[t.partner].senders.remove(i)
                    self._complete(i, ("err", "L4_IPC_SETIMEOUT", "send"))
                else:
                    self._complete(i, ("err", "L4_IPC_RETIMEOUT", "receive"))
        self._end()

    @precondition(lambda self: len(self.frames) < 10)
    @rule(task=st.integers(0, NTASKS - 1), slot=st.integers(0, SLOTS - 1))
    def acquire(self, task, slot):
        """A task asks sigma0 for any free page (sigma0's ANY_PAGE protocol) at a slot."""
        idx = [i for i in range(NTASKS * NTHREADS) if self.threads[i].task == task
               and self._ready(i)]
        if not idx or len(self.frames) >= 10:
            return
        self._begin()
        kt = self.kthreads[idx[0]]
        va = VBASE + slot * PAGE
        reply = self.k.ipc(kt, ipc_call(self.k.sigma0.thread, Message(ANY_PAGE),
                                        window=Fpage(va, 12, "rwx")))
        assert reply.mapped and reply.mapped[0][0] == va
        pa = self.m.translate(self.ktasks[task].sid, va)[0]
        assert pa not in self.roots, "sigma0 handed out a frame in use"
        old = self.tasks[task]["pages"].get(va)
        if old is not None:
            self._remove_subtree(old)
        n = MNode(task, va, pa, "rwx", None)
        self.roots[pa] = [n]
        self.frames[pa] = bytearray(self.m.memory.read(pa, PAGE))
        assert self.frames[pa] == bytearray(PAGE), "a fresh frame from sigma0 is zeroed"
        self.tasks[task]["pages"][va] = n
        self._end()

    @rule(i=st.integers(0, NTASKS * NTHREADS - 1), slot=st.integers(0, SLOTS - 1),
          off=st.integers(0, PAGE - 16), write=st.booleans(), data=st.binary(min_size=1, max_size=8))
    def access(self, i, slot, off, write, data):
        """A user load or store through the MMU: succeeds iff the model has the page with the
        right; a fault goes to the (nonexistent) pager: L4_IPC_ENOT_EXISTENT, nothing moves."""
        if not self._ready(i):
            return
        t = self.threads[i]
        va = VBASE + slot * PAGE + off
        n = self.tasks[t.task]["pages"].get(va - off)
        ok = n is not None and (not write or "w" in n.rights)
        kt = self.kthreads[i]
        self._begin()
        try:
            if write:
                self.k.store(kt, va, data)
            else:
                got = self.k.load(kt, va, len(data))
        except NotExistent as e:
            assert not ok, f"access at {va:#x} faulted: {e}"
        else:
            assert ok, f"access at {va:#x} succeeded; the model has {n and n.rights}"
            if write:
                self.frames[n.frame][off:off + len(data)] = data
            else:
                assert got == bytes(self.frames[n.frame][off:off + len(data)])
        self._end()

    @rule(task=st.integers(0, NTASKS - 1), slot=st.integers(0, SLOTS),
          rights=st.sampled_from(["w", "rwx", "wx", "x"]), own=st.booleans())
    def flush(self, task, slot, rights, own):
        """fpage_unmap of one page (or of all four: slot == SLOTS)."""
        if not self.tasks[task]["alive"]:
            return
        fp = WINDOW if slot == SLOTS else Fpage(VBASE + slot * PAGE)
        self._begin()
        self.k.fpage_unmap(self.ktasks[task], fp, rights, own)
        pages = self.tasks[task]["pages"]
        for va in sorted(v for v in pages if fp.contains(v)):
            n = pages.get(va)
            if n is None:
                continue
            if own:
                self._revoke(n, rights)
            else:
                for c in list(n.children):
                    self._revoke(c, rights)
        self._end()

    @precondition(lambda self: sum(t["alive"] for t in self.tasks) > 2)
    @rule(task=st.integers(0, NTASKS - 1))
    def delete(self, task):
        """task_delete: its threads die (partners: L4_IPC_ENOT_EXISTENT), its mappings and all
        derived from them vanish, sigma0 takes back frames nobody maps."""
        if not self.tasks[task]["alive"] or sum(t["alive"] for t in self.tasks) <= 2:
            return
        self._begin()
        self.k.task_delete(self.ktasks[task])
        self._model_delete(task)
        self._end()

    def _model_delete(self, task):
        dying = [i for i, t in enumerate(self.threads) if t.task == task]
        for i in dying:                  # a dying thread gets no result of its own
            t = self.threads[i]
            if t.state == "sending" and i in self.threads[t.partner].senders:
                self.threads[t.partner].senders.remove(i)
            t.state, t.partner, t.deadline, t.req = "dead", None, None, None
            self.outstanding.discard(i)
        for i in dying:
            t = self.threads[i]
            while t.senders:
                s = t.senders.pop(0)
                if self.threads[s].state != "dead":
                    self._complete(s, ("err", "L4_IPC_ENOT_EXISTENT", "send"))
            for x, u in enumerate(self.threads):
                if u.state == "receiving" and u.partner == i:
                    self._complete(x, ("err", "L4_IPC_ENOT_EXISTENT", "receive"))
        self.tasks[task]["alive"] = False
        for va in sorted(self.tasks[task]["pages"]):
            n = self.tasks[task]["pages"].get(va)
            if n is not None:
                self._remove_subtree(n)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def threads_match(self):
        for i, (t, kt) in enumerate(zip(self.threads, self.kthreads)):
            assert kt.state.value == t.state, (t.name, kt.state, t.state)
            if t.state in ("sending", "receiving"):
                kp = kt.partner
                assert (kp.name if kp else None) == \
                    (self.threads[t.partner].name if t.partner is not None else None), t.name
                assert (kt.deadline is None) == (t.deadline is None), t.name
                if t.deadline is not None:     # the phase began in the model's unit
                    assert 0 <= kt.deadline - self.base - t.deadline * T < H, t.name
            if t.state != "dead":
                assert [s.name for s in kt.senders] == \
                    [self.threads[s].name for s in t.senders], t.name

    @invariant()
    def memory_matches(self):
        k, m = self.k, self.m
        for ti, (task, kt) in enumerate(zip(self.tasks, self.ktasks)):
            if not task["alive"]:
                continue
            db = k.mappings(kt)
            want = {va: (n.frame, n.rights) for va, n in task["pages"].items()}
            assert db == want, (kt.name, db, want)
            for s in range(SLOTS):
                va = VBASE + s * PAGE
                tr = m.translate(kt.sid, va)
                n = task["pages"].get(va)
                if n is None:
                    assert tr is None, (kt.name, hex(va))
                else:
                    assert tr is not None and tr[0] == n.frame
                    assert bool(tr[1] & 2) == ("w" in n.rights), (kt.name, hex(va))
        for pa, data in self.frames.items():
            assert m.memory.read(pa, PAGE) == bytes(data), hex(pa)
        assert sorted(k.db.roots) == sorted(self.roots)

    @invariant()
    def database_is_a_forest(self):
        k = self.k
        for ti, kt in enumerate(self.ktasks):
            if not self.tasks[ti]["alive"]:
                continue
            for n in k.db.nodes_of(kt):
                p = n.parent
                assert p is not None and n in p.children
                if p.parent is None:
                    assert p.task is k.sigma0.task and p.pa == n.pa
                else:
                    assert set(n.rights) <= set(p.rights) and p.pa == n.pa
                    assert k.db.lookup(p.task, p.va) is p
                mn = self.tasks[ti]["pages"][n.va]
                if mn.parent is None:
                    assert p.parent is None
                else:
                    assert (p.task.name, p.va) == (self.ktasks[mn.parent.task].name,
                                                   mn.parent.va)
                r = n
                while r.parent is not None:
                    r = r.parent
                assert r.task is k.sigma0.task

    def teardown(self):
        if not hasattr(self, "k"):
            return
        for ti, task in enumerate(self.tasks):
            if task["alive"]:
                self._begin()
                self.k.task_delete(self.ktasks[ti])
                self._model_delete(ti)
                self._end()
        assert self.k.db.roots == {} and self.k.sigma0.allocated == set()
        assert self.m.memory.free_frames == self.free0
        STATS["examples"] += 1
        if os.environ.get("L4MODEL_STATS") and STATS["examples"] % 50 == 0:
            print(dict(sorted(STATS.items())))


L4Model.TestCase.settings = settings(max_examples=500, stateful_step_count=50, deadline=None,
                                     derandomize=True)
TestL4Model = L4Model.TestCase


# -- regressions found by the model ------------------------------------------------------------

def _two_tasks_sharing_a_page():
    """A got a page from sigma0 and mapped it to B (rw) at the same address."""
    k = L4Kernel(Machine("pentium-133"))
    free0 = k.m.memory.free_frames
    a, b = k.task_new("A"), k.task_new("B")
    k.ipc(a.thread, ipc_call(k.sigma0.thread, Message(ANY_PAGE), window=Fpage(VBASE, 12, "rwx")))
    k.store(a.thread, VBASE, b"page")
    k.map_fpage(a, Fpage(VBASE, 12, "rw"), b, VBASE)
    return k, a, b, free0


def test_mapping_a_page_back_onto_the_mapping_it_derives_from_changes_nothing():
    """S95 §3.2: a mapping derived from another has at most its rights, so when B maps its page
    back to A at the very place A holds the page B's derives from, A already has it: nothing
    changes.  (Replacing A's mapping would flush B's too -- the source of the map -- and leave
    A with a frame sigma0 took back: the frame would be freed while still mapped.)"""
    k, a, b, free0 = _two_tasks_sharing_a_page()
    pa = k.mappings(a)[VBASE][0]
    k.map_fpage(b, Fpage(VBASE, 12, "r"), a, VBASE)
    assert k.mappings(a) == {VBASE: (pa, "rwx")} and k.mappings(b) == {VBASE: (pa, "rw")}
    assert pa in k.db.roots and pa in k.sigma0.allocated
    assert k.db.tree(pa)["children"][0]["children"][0]["task"] == "B"
    assert k.load(b.thread, VBASE, 4) == b"page"
    k.task_delete(b)
    k.task_delete(a)
    assert k.m.memory.free_frames == free0


def test_granting_a_page_back_onto_the_mapping_it_derives_from_returns_it():
    """A grant moves the granter's mapping to the receiver (S95 §3.2); granted back onto the
    mapping it derives from, B's page goes back into A's (which already has it) and B loses
    it; what B had mapped on now derives from A's page.  Nothing is freed while mapped."""
    k, a, b, free0 = _two_tasks_sharing_a_page()
    c = k.task_new("C")
    pa = k.mappings(a)[VBASE][0]
    k.map_fpage(b, Fpage(VBASE, 12, "rw"), c, VBASE)
    k.map_fpage(b, Fpage(VBASE, 12, "r"), a, VBASE, grant=True)
    assert k.mappings(a) == {VBASE: (pa, "rwx")} and k.mappings(b) == {}
    assert k.mappings(c) == {VBASE: (pa, "r")}       # only what was granted is passed on
    tree = k.db.tree(pa)["children"][0]
    assert tree["task"] == "A" and [x["task"] for x in tree["children"]] == ["C"]
    assert k.load(c.thread, VBASE, 4) == b"page"
    for t in (c, b, a):
        k.task_delete(t)
    assert k.m.memory.free_frames == free0 and k.db.roots == {}


def test_mapping_a_page_onto_itself_in_an_ipc_changes_nothing_and_delivers():
    """A map item whose page lands where it already is (two threads of one task, receive
    window over the page itself) finds the page there: nothing to map, and the IPC succeeds
    as a whole -- string and words delivered.  (It used to raise L4_INVALID_ARGUMENT halfway
    through the transfer, after the string had been copied, with the receiver left waiting:
    a failed IPC must change nothing.)"""
    k = L4Kernel(Machine("pentium-133"))
    a = k.task_new("A")
    a1 = k.thread_new(a, name="A.1")
    k.ipc(a.thread, ipc_call(k.sigma0.thread, Message(ANY_PAGE), window=Fpage(VBASE, 12, "rwx")))
    k.store(a.thread, VBASE, b"abcdef")
    pa = k.mappings(a)[VBASE][0]
    k.dispatch(a.thread)
    assert k.ipc_path.syscall(a.thread, ipc_wait(window=WINDOW, buffers=(
        StringBuffer(VBASE + 0x100, 8),))) is BLOCKED
    k.ipc(a1, ipc_send(a.thread, Message(1, strings=(StringItem(VBASE, 6),),
                                         items=(MapItem(Fpage(VBASE, 12, "r")),))))
    got = a.thread.result
    assert a.thread.state is ThreadState.READY and got.words == (1,)
    assert got.strings == ((VBASE + 0x100, 6),) and got.mapped == ((VBASE, Fpage(VBASE, 12, "r")),)
    assert k.mappings(a) == {VBASE: (pa, "rwx")}
    assert k.load(a.thread, VBASE + 0x100, 6) == b"abcdef"


def test_a_page_flushed_by_an_earlier_page_of_the_same_fpage_is_not_mapped():
    """A map item is entered page by page (S95 §3.2); mapping onto the receiver's page first
    replaces -- flushes -- the mapping there and everything derived from it.  When a later
    page of the same fpage was derived from it, that page is gone by its turn: nothing is
    mapped for it.  (It used to be mapped from the detached node: the receiver kept a frame
    sigma0 had already taken back, and deleting the tasks crashed.)"""
    k = L4Kernel(Machine("pentium-133"))
    free0 = k.m.memory.free_frames
    a, b = k.task_new("A"), k.task_new("B")
    for t in (a, b):
        k.ipc(t.thread, ipc_call(k.sigma0.thread, Message(ANY_PAGE),
                                 window=Fpage(VBASE, 12, "rwx")))
    pa_a, pa_b = k.mappings(a)[VBASE][0], k.mappings(b)[VBASE][0]
    k.map_fpage(b, Fpage(VBASE, 12, "rw"), a, VBASE + PAGE)     # A's 2nd page: from B's 1st
    k.map_fpage(a, Fpage(VBASE, 13, "rw"), b, VBASE)            # A's two pages onto B's
    assert k.mappings(a) == {VBASE: (pa_a, "rwx")}
    assert k.mappings(b) == {VBASE: (pa_a, "rw")}
    assert sorted(k.db.roots) == [pa_a] and k.sigma0.allocated == {pa_a}
    assert k.m.translate(b.sid, VBASE + PAGE) is None and pa_b not in k.db.roots
    k.task_delete(a)
    k.task_delete(b)
    assert k.m.memory.free_frames == free0
