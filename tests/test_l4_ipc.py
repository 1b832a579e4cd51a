"""L4's synchronous IPC (S95 §3, S97 §3): short messages in registers, long messages with
string copy, call/reply, timeouts in simulated time, and no hangs: a deadlock is reported."""
import pytest

from engine import Machine, ops as O
from lab.l4 import (L4Kernel, Message, StringItem, StringBuffer, ipc_send, ipc_receive,
                    ipc_wait, ipc_call, ipc_reply_and_wait, compute, Pager, NotExistent,
                    SendTimeout, ReceiveTimeout, SendMsgCut, ReceiveMsgCut, IpcDeadlock,
                    InvalidArgument, RunStatus, SchedulerStalled)


@pytest.fixture
def k():
    return L4Kernel(Machine("pentium-133"))


def echo_server(t):
    """The classic L4 server loop: wait, then reply_and_wait forever."""
    msg = yield ipc_wait()
    while True:
        msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1, *msg.words[1:]))


class Anon(Pager):
    """Hands out fresh frames from sigma0 (any page) for every fault: a test pager."""
    def page_fault(self, thread, va, write):
        mine = 0x100000 + (va & ~0xFFF)
        if not self.has(mine):
            self.acquire(mine)
        return self.map_item(mine, "rw", send_base=va)


def test_short_ipc_carries_its_words_in_registers(k):
    """A short IPC (S95: up to two words in registers) moves only registers: the kernel path,
    the trap's entry and exit and the address-space switch; nothing is copied."""
    m = k.m
    srv = k.task_new("server", program=echo_server)
    cli = k.task_new("client")
    k.ipc(cli.thread, ipc_call(srv.thread, Message(0)))       # warm: the client runs
    with m.measure() as r:
        reply = k.ipc(cli.thread, ipc_call(srv.thread, Message(41, 7)))
    assert reply.words == (42, 7) and reply.sender is srv.thread
    ev = m.events.find("ipc", kernel="l4")[-2:]
    assert [(e.args["sender"], e.args["receiver"], e.args["short"]) for e in ev] == \
        [("client", "server", True), ("server", "client", True)]
    assert r.by_category["copy"] == 0
    assert r.by_category["entry_exit"] == 2 * m.profile["kernel_entry_exit_cycles"]
    assert r.by_category["ipc"] > 0 and r.stats["switches"] == 2


def test_long_ipc_copies_the_string_into_the_receivers_buffer(k):
    """A long IPC copies strings from the sender's space into the buffer the receiver named
    (S95 §3): the bytes really arrive in the receiver's frame, and the copy is charged."""
    m = k.m
    pager = Anon(k, "anon")
    a = k.task_new("a", pager=pager)
    b = k.task_new("b", pager=pager)
    text = b"the performance of micro-kernel-based systems" * 3
    k.store(a.thread, 0x2000, text)
    k.store(b.thread, 0x7000, b"\0" * len(text))          # the buffer exists before the receive

    got = {}

    def receiver(t):
        got["msg"] = yield ipc_receive(a.thread, buffers=[StringBuffer(0x7000, 512)])
    rt = k.thread_new(b, "b.rcv", program=receiver)
    k.run()
    assert rt.state.value == "receiving"
    with m.measure() as r:
        k.ipc(a.thread, ipc_send(rt, Message(1, 2, 3, strings=[StringItem(0x2000, len(text))])))
    k.run()
    assert got["msg"].strings == ((0x7000, len(text)),) and got["msg"].words == (1, 2, 3)
    assert k.load(b.thread, 0x7000, len(text)) == text
    pa = m.translate(b.sid, 0x7000)[0]
    assert m.memory.read(pa, len(text)) == text            # in the receiver's own frame
    assert r.by_category["copy"] >= len(text) / m.profile["copy_bytes_per_cycle"]
    assert m.events.find("ipc", sender="a", receiver="b.rcv")[-1].args["short"] is False


def test_long_ipc_into_a_too_small_buffer_is_cut_and_delivers_nothing(k):
    """If the receiver's buffer is too small, both sides get 'message cut' and nothing moves."""
    pager = Anon(k, "anon")
    a = k.task_new("a", pager=pager)
    b = k.task_new("b", pager=pager)
    k.store(a.thread, 0x2000, b"x" * 100)
    res = {}

    def receiver(t):
        try:
            yield ipc_receive(a.thread, buffers=[StringBuffer(0x7000, 10)])
        except ReceiveMsgCut as e:
            res["err"] = e
    k.thread_new(b, "b.rcv", program=receiver)
    k.run()
    with pytest.raises(SendMsgCut):
        k.ipc(a.thread, ipc_send(b.threads[1], Message(strings=[StringItem(0x2000, 100)])))
    k.run()
    assert res["err"].code == "L4_IPC_REMSGCUT"
    assert k.m.translate(b.sid, 0x7000) is None


def test_send_with_timeout_zero_to_a_thread_that_does_not_receive_fails_at_once(k):
    """Timeout 0: 'do not wait' -- the send fails immediately with L4_IPC_SETIMEOUT,
    no simulated time passes waiting."""
    m = k.m
    idle = k.task_new("idle")                               # never receives
    cli = k.task_new("client")
    with m.measure() as r:
        with pytest.raises(SendTimeout) as e:
            k.ipc(cli.thread, ipc_send(idle.thread, Message(1), timeout=0))
    assert e.value.code == "L4_IPC_SETIMEOUT" and e.value.phase == "send"
    assert r.by_category["idle"] == 0
    assert idle.thread.senders == type(idle.thread.senders)()


def test_a_finite_receive_timeout_expires_in_simulated_time(k):
    """A finite timeout is counted in simulated cycles: with nobody sending, the receive
    ends with L4_IPC_RETIMEOUT once the cycle counter has passed the deadline (idle time)."""
    m = k.m
    cli = k.task_new("client")
    other = k.task_new("other")
    t0 = m.cycles
    with pytest.raises(ReceiveTimeout):
        k.ipc(cli.thread, ipc_receive(other.thread, timeout=50_000))
    assert m.cycles - t0 >= 50_000
    assert m.by_category()["idle"] >= 50_000 - 1000
    assert m.events.find("timeout", thread="client")[-1].args["code"] == "L4_IPC_RETIMEOUT"


def test_a_send_timeout_fires_while_other_threads_run(k):
    """A blocked sender's timeout expires at its deadline in simulated time even while another
    thread keeps the CPU busy (the timeout event is logged then); without preemption the
    sender runs its error handler when the CPU is free."""
    m = k.m
    target = k.task_new("target")
    log = []

    def sender(t):
        try:
            yield ipc_send(target.thread, Message(1), timeout=20_000)
        except SendTimeout:
            log.append("sender saw SETIMEOUT")

    def worker(t):
        for _ in range(30):
            yield compute(O.charge("user", 1000))
        log.append("worker done")
    s = k.task_new("s", program=sender)
    k.task_new("w", program=worker)
    k.run(max_steps=1)                       # the sender blocks first
    t0 = m.cycles
    assert k.run() is RunStatus.IDLE
    fired = m.events.find("timeout", thread="s")[0].cycle - t0
    assert 20_000 <= fired <= 21_000 + 2_000  # at the first scheduling point past the deadline
    assert log == ["worker done", "sender saw SETIMEOUT"]
    assert s.thread not in target.thread.senders


def test_a_wait_behind_a_program_that_never_blocks_is_reported_not_endless(k):
    """No hangs: a synchronous caller waits while program threads run, but a program that
    never blocks would keep the CPU forever (no preemption).  After `max_steps` of its
    steps the wait ends in SchedulerStalled, naming the waiter and the thread."""
    def spinner(t):
        while True:
            yield compute(O.charge("user", 10))
    k.task_new("spinner", program=spinner)
    waiter = k.task_new("waiter").thread
    with pytest.raises(SchedulerStalled, match="waiter still waits after 50 steps.*spinner"):
        k.sched.run_until(lambda: False, waiter=waiter, max_steps=50)
    assert SchedulerStalled.code == "L4_SIM_STALLED"


def test_a_deadline_that_passed_without_expiring_is_reported_not_spun_on(k):
    """No hangs: when nothing is ready the clock idles to the next deadline; a deadline that
    has passed but whose thread is not blocked (a bookkeeping slip) cannot move the clock,
    and the scheduler says so instead of spinning on it -- in run() and in a synchronous
    wait alike."""
    t = k.task_new("late").thread
    k.m.charge("user", 100)
    t.deadline = 50                          # in the past, and t is not blocked
    k.sched.timed[t.tid] = t
    with pytest.raises(SchedulerStalled, match="deadline at cycle 50 of late has passed"):
        k.run()
    with pytest.raises(SchedulerStalled, match="deadline at cycle 50"):
        k.sched.run_until(lambda: False)


def test_two_threads_sending_to_each_other_forever_is_a_reported_deadlock(k):
    """L4 would block both forever; the model detects the wait-for cycle and reports it
    (IpcDeadlock naming both threads) instead of hanging."""
    box = {}

    def make(name):
        def prog(t):
            yield ipc_send(box["b" if name == "a" else "a"], Message(1))
        return prog
    box["a"] = k.task_new("a", program=make("a")).thread
    box["b"] = k.task_new("b", program=make("b")).thread
    with pytest.raises(IpcDeadlock) as e:
        k.run()
    assert {t.name for t in e.value.cycle} == {"a", "b"}
    assert k.m.events.find("deadlock")[-1].args["threads"] in (["a", "b"], ["b", "a"])


def test_a_python_driven_call_into_a_deadlock_raises_instead_of_hanging(k):
    """A call whose partner waits for the caller is a cycle too: the caller's IPC is
    cancelled and IpcDeadlock raised."""
    cli = k.task_new("client")

    def server(t):
        yield ipc_send(cli.thread, Message(0))            # sends to its own client
    srv = k.task_new("server", program=server)
    with pytest.raises(IpcDeadlock):
        k.ipc(cli.thread, ipc_send(srv.thread, Message(1)))
    assert cli.thread.state.value == "ready"


def test_send_to_a_dead_thread_is_not_existent(k):
    """IPC to a thread that does not exist (any more) fails with L4_IPC_ENOT_EXISTENT."""
    srv = k.task_new("server", program=echo_server)
    cli = k.task_new("client")
    k.task_delete(srv)
    with pytest.raises(NotExistent) as e:
        k.ipc(cli.thread, ipc_call(srv.thread, Message(1)))
    assert e.value.code == "L4_IPC_ENOT_EXISTENT"


def test_bad_timeouts_and_requests_are_typed_errors(k):
    """Bad input gets a typed error naming the value."""
    cli = k.task_new("client")
    with pytest.raises(InvalidArgument, match="-5"):
        ipc_send(cli.thread, Message(1), timeout=-5)
    with pytest.raises(InvalidArgument, match="not an IPC request"):
        k.ipc(cli.thread, "hello")
    with pytest.raises(InvalidArgument, match="itself"):
        k.ipc(cli.thread, ipc_send(cli.thread, Message(1)))


def test_runs_are_deterministic():
    """The same program on the same machine gives the same cycles and event log."""
    def once():
        k = L4Kernel(Machine("pentium-133", seed=3))
        srv = k.task_new("server", program=echo_server)
        cli = k.task_new("client")
        for i in range(5):
            k.ipc(cli.thread, ipc_call(srv.thread, Message(i)))
        return k.m.cycles, [(e.cycle, e.operation) for e in k.m.events]
    assert once() == once()


def test_a_string_into_an_unmapped_buffer_faults_to_the_receivers_pager_first():
    """During a long IPC, a page fault in the receiver's buffer is itself sent to the
    receiver's pager (L4 handles it inside the IPC, with the page-fault timeout); once the
    page is mapped the string arrives."""
    k = L4Kernel(Machine("pentium-133"))
    m = k.m
    pa_pager, pb_pager = Anon(k, "pa"), Anon(k, "pb")
    a = k.task_new("a", pager=pa_pager)
    b = k.task_new("b", pager=pb_pager)
    k.store(a.thread, 0x2000, b"fault me in")
    got = {}

    def receiver(t):
        got["msg"] = yield ipc_wait(buffers=[StringBuffer(0x9000, 64)])
    rt = k.thread_new(b, "b.rcv", program=receiver, pager=pb_pager)
    k.run()
    assert m.translate(b.sid, 0x9000) is None
    m.events.clear()
    k.ipc(a.thread, ipc_send(rt, Message(strings=[StringItem(0x2000, 11)])))
    k.run()
    assert got["msg"].strings == ((0x9000, 11),)
    assert k.load(b.threads[0], 0x9000, 11) == b"fault me in"
    order = [(e.operation, e.args.get("thread") or e.args.get("sender")) for e in m.events
             if e.operation in ("pagefault", "ipc")]
    assert order[0] == ("pagefault", "b.rcv") and order[-1] == ("ipc", "a")


def test_a_send_with_timeout_zero_never_blocks(k):
    """Timeout 0 means 'do not wait' (L4 reference manual): the send phase fails inside the
    system call -- the sender is never queued, never blocks and no timeout event fires."""
    idle = k.task_new("idle")
    cli = k.task_new("client")
    k.m.events.clear()
    with pytest.raises(SendTimeout):
        k.ipc(cli.thread, ipc_send(idle.thread, Message(1), timeout=0))
    assert k.m.events.find("block", thread="client") == []
    assert k.m.events.find("timeout", thread="client") == []


def test_reply_and_wait_does_not_wait_for_a_client_that_is_not_receiving(k):
    """A server's reply is sent with send timeout 0 (S95 §3, L4's reply-and-wait): a client
    that does not wait for the reply cannot block the server; the server gets
    L4_IPC_SETIMEOUT at once and goes on to its open wait."""
    log = []

    def server(t):
        msg = yield ipc_wait()
        try:
            yield ipc_reply_and_wait(msg.sender, Message(1))
        except SendTimeout as e:
            log.append(e.code)
            yield ipc_wait()
    srv = k.task_new("server", program=server)
    cli = k.task_new("client")
    k.run()
    k.ipc(cli.thread, ipc_send(srv.thread, Message(7)))      # a send, no receive phase
    assert k.run() is RunStatus.IDLE
    assert log == ["L4_IPC_SETIMEOUT"]
    assert srv.thread.state.value == "receiving" and srv.thread.partner is None
    assert cli.thread.senders == type(cli.thread.senders)()


def test_a_string_exactly_as_long_as_the_buffer_is_delivered(k):
    """The message is cut only when a string is LONGER than its receive buffer (S95 §3):
    a string that fills its buffer exactly arrives whole."""
    pager = Anon(k, "anon")
    a = k.task_new("a", pager=pager)
    b = k.task_new("b", pager=pager)
    k.store(a.thread, 0x2000, b"y" * 64)
    k.store(b.thread, 0x7000, b"\0" * 64)
    got = {}

    def receiver(t):
        got["msg"] = yield ipc_receive(a.thread, buffers=[StringBuffer(0x7000, 64)])
    rt = k.thread_new(b, "b.rcv", program=receiver)
    k.run()
    k.ipc(a.thread, ipc_send(rt, Message(strings=[StringItem(0x2000, 64)])))
    k.run()
    assert got["msg"].strings == ((0x7000, 64),)
    assert k.load(b.thread, 0x7000, 64) == b"y" * 64


def test_a_long_message_copies_only_the_words_beyond_the_registers(k):
    """Words that fit the registers (register_words, S95: two on the 486/Pentium) travel in
    registers; the rest of a long message's words is copied: exactly 4 bytes per extra word
    at the profile's copy rate, charged as 'copy'."""
    m = k.m
    got = {}

    def receiver(t):
        got["msg"] = yield ipc_wait()
    rt = k.task_new("rcv", program=receiver).thread
    cli = k.task_new("client")
    k.run()
    words = tuple(range(10))
    with m.measure() as r:
        k.ipc(cli.thread, ipc_send(rt, Message(*words)))
    k.run()
    assert got["msg"].words == words
    extra = (len(words) - k.register_words) * 4
    assert r.by_category["copy"] == round(extra / m.profile["copy_bytes_per_cycle"])


def test_blocked_senders_are_served_in_the_order_they_came(k):
    """Senders polling a thread that is not receiving wait in its queue; its receives serve
    them first come, first served (L4's sender queue is FIFO)."""
    target = k.task_new("target")

    def sender(word):
        def prog(t):
            yield ipc_send(target.thread, Message(word))
        return prog
    k.task_new("first", program=sender(1))
    k.task_new("second", program=sender(2))
    k.task_new("third", program=sender(3))
    k.run()
    got = [k.ipc(target.thread, ipc_wait()).words[0] for _ in range(3)]
    assert got == [1, 2, 3]


def test_a_sender_blocked_on_a_thread_that_dies_gets_not_existent(k):
    """When a thread dies (its task deleted) every thread blocked sending to it ends its IPC
    with L4_IPC_ENOT_EXISTENT: nobody waits forever for a partner that is gone."""
    target = k.task_new("target")
    seen = {}

    def sender(t):
        try:
            yield ipc_send(target.thread, Message(1))
        except NotExistent as e:
            seen["error"] = (e.code, e.phase)
    s = k.task_new("s", program=sender)
    k.run()
    assert s.thread.state.value == "sending"
    k.task_delete(target)
    assert k.run() is RunStatus.IDLE
    assert seen["error"] == ("L4_IPC_ENOT_EXISTENT", "send")
    assert s.thread.state.value == "dead"              # its program ended


def test_a_map_item_to_a_receiver_without_a_window_fails_and_maps_nothing(k):
    """A receiver accepts mappings only inside the receive window it names (S95 §3.2): a map
    item to a receiver that named none fails on both sides (L4_IPC_SEMAPFAILED /
    L4_IPC_REMAPFAILED) and nothing is mapped."""
    from lab.l4 import MapItem, Fpage, SendMapFailed, ReceiveMapFailed
    pager = Anon(k, "anon")
    a = k.task_new("a", pager=pager)
    b = k.task_new("b")
    k.store(a.thread, 0x5000, b"page")
    res = {}

    def receiver(t):
        try:
            yield ipc_receive(a.thread)                        # no window
        except ReceiveMapFailed as e:
            res["err"] = e.code
    k.thread_new(b, "b.rcv", program=receiver)
    k.run()
    with pytest.raises(SendMapFailed):
        k.ipc(a.thread, ipc_send(b.threads[1], Message(items=[MapItem(Fpage(0x5000))])))
    k.run()
    assert res["err"] == "L4_IPC_REMAPFAILED"
    assert k.mappings(b) == {}


def test_a_closed_receive_takes_only_its_partners_message(k):
    """A closed receive names its source (S95 §3, L4 reference manual): a message from any
    other thread stays queued -- even one that was there first -- and is delivered to a later
    open wait."""
    target = k.task_new("target")

    def sender(word):
        def prog(t):
            yield ipc_send(target.thread, Message(word))
        return prog
    other = k.task_new("other", program=sender(1))
    partner = k.task_new("partner", program=sender(2))
    k.run()
    assert [s.name for s in target.thread.senders] == ["other", "partner"]
    msg = k.ipc(target.thread, ipc_receive(partner.thread))
    assert (msg.words, msg.sender) == ((2,), partner.thread)
    assert [s.name for s in target.thread.senders] == ["other"]
    assert k.ipc(target.thread, ipc_wait()).sender is other.thread


def test_a_dead_sender_leaves_the_queue_of_its_destination(k):
    """A thread that dies while blocked sending leaves its destination's sender queue: the
    destination never receives from a thread that no longer exists (its later receive
    times out)."""
    target = k.task_new("target")

    def sender(t):
        yield ipc_send(target.thread, Message(1))
    s = k.task_new("s", program=sender)
    k.run()
    assert [x.name for x in target.thread.senders] == ["s"]
    k.task_delete(s)
    assert len(target.thread.senders) == 0
    with pytest.raises(ReceiveTimeout):
        k.ipc(target.thread, ipc_wait(timeout=1000))
