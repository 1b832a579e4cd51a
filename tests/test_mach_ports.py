"""Port rights (Mach 3.0 Kernel Principles; the lecture's port_* interface), in the manner
of GNU Mach's own tests: allocate, deallocate, rights in messages, send-once, dead names,
backlog, timeouts, the default group."""
import pytest

from lab.mach import (Message, PortItem, Disposition, MsgOption, Right, PortDead,
                      SendInvalidPort, SendInvalidReply, SendInvalidRight, SendTimedOut,
                      RcvTimedOut, RcvInvalidPort, Deadlock,
                      KernInvalidArgument, KernInvalidRight, KernInvalidName, MigServerDied,
                      PORT_NULL, PORT_BACKLOG_DEFAULT, NOTIFY_SEND_ONCE, KernInvalidAddress)
from mach_helpers import kernel, echo_server


@pytest.fixture
def k():
    return kernel()[1]


def test_port_allocate_gives_the_receive_right(k):
    """port_allocate: a new port whose receive right the task holds; port_status reports it
    (not enabled, no messages, the default backlog of 5, receiver and owner the task)."""
    a = k.task_create(name="a")
    p = k.port_allocate(a)
    e = a.ipc.lookup(p)
    assert e.rights() == [Right.RECEIVE]
    st = k.port_status(a, p)
    assert (st.enabled, st.num_msgs, st.backlog, st.receiver, st.owner) == \
        (False, 0, PORT_BACKLOG_DEFAULT, "a", "a")
    assert k.m.events.find("port_allocate", task="a", name=p)


def test_names_are_per_task(k):
    """Names are local to a task's name space: the same port has unrelated names in two
    tasks, and a name means nothing in another task."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    pa = k.port_allocate(a)
    k.port_allocate(b)
    k.port_allocate(b)
    nb = k.port_insert_send(a, pa, b)
    assert nb != pa
    assert b.ipc.lookup(nb).port is a.ipc.lookup(pa).port
    with pytest.raises(KernInvalidName):
        k.port_status(a, nb)


def test_send_right_carried_in_a_message(k):
    """A right named in a message with MAKE_SEND gives the receiver a send right: the
    receiver can then send to the port; the sender keeps its receive right."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    mine = k.port_allocate(a)
    k.msg_send(a, Message(remote_port=to_b, ports=[PortItem(mine, Disposition.MAKE_SEND)]))
    got = k.msg_receive(b, inbox)
    name = got.ports[0].name
    assert got.ports[0].right is Right.SEND
    assert b.ipc.lookup(name).rights() == [Right.SEND]
    assert a.ipc.lookup(mine).rights() == [Right.RECEIVE]
    k.msg_send(b, Message(remote_port=name, data=b"hi"))
    assert k.msg_receive(a, mine).data == b"hi"


def test_receive_right_moves(k):
    """MOVE_RECEIVE: the receive right leaves the sender (its name is gone, the port leaves
    its default group) and the receiver becomes the port's receiver."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    moved = k.port_allocate(a)
    k.port_enable(a, moved)
    port = a.ipc.lookup(moved).port
    k.msg_send(a, Message(remote_port=to_b, ports=[PortItem(moved, Disposition.MOVE_RECEIVE)]))
    assert moved not in a.ipc.entries and port not in a.enabled
    got = k.msg_receive(b, inbox)
    nb = got.ports[0].name
    assert k.port_status(b, nb).receiver == "b"


def test_bad_reply_port_and_bad_carried_right_are_msg_send_errors(k):
    """msg_send answers in its own vocabulary (Mach 3 MACH_SEND_INVALID_REPLY /
    MACH_SEND_INVALID_RIGHT; both SEND_INVALID_PORT in Mach 2.5, whose subclasses they are):
    a reply port that names nothing or only a send right made send-once, a carried name
    that denotes no right or the wrong one.  Nothing is sent."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    to_b = k.port_insert_send(b, k.port_allocate(b), a)
    bad = 0x7703
    for msg, exc in [(Message(remote_port=to_b, local_port=bad), SendInvalidReply),
                     (Message(remote_port=to_b, local_port=to_b,
                              local_disposition=Disposition.MAKE_SEND_ONCE), SendInvalidReply),
                     (Message(remote_port=to_b, ports=[PortItem(bad, Disposition.COPY_SEND)]),
                      SendInvalidRight),
                     (Message(remote_port=to_b, ports=[PortItem(to_b, Disposition.MOVE_RECEIVE)]),
                      SendInvalidRight)]:
        with pytest.raises(exc) as err:
            k.msg_send(a, msg)
        assert isinstance(err.value, SendInvalidPort) and err.value.code == exc.code
    assert not k.m.events.find("msg_send")


def test_rights_are_copied_in_one_after_another(k):
    """A message's rights are taken in order (destination, reply, items): a receive right
    moved twice, or used after it was moved, is SEND_INVALID_RIGHT -- no second receive
    right is forged -- and the refused send leaves the sender as it was."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    to_b = k.port_insert_send(b, k.port_allocate(b), a)
    p = k.port_allocate(a)
    R, S = Disposition.MOVE_RECEIVE, Disposition.MAKE_SEND
    for items in ([(p, R), (p, R)], [(p, R), (p, S)]):
        with pytest.raises(SendInvalidRight, match="after the message's earlier rights"):
            k.msg_send(a, Message(remote_port=to_b, ports=[PortItem(n, d) for n, d in items]))
        assert a.ipc.lookup(p).rights() == [Right.RECEIVE]
    # the other order is legal: the send right is made while `a` still holds the receive
    k.msg_send(a, Message(remote_port=to_b, ports=[PortItem(p, S), PortItem(p, R)]))
    assert p not in a.ipc.entries


def test_receive_right_sent_into_its_own_port_is_destroyed(k):
    """Mach 3 refuses to build a loop no one could receive from: a receive right queued on
    its own port, directly or through a port whose receive right is itself in transit on
    it, destroys the message (the send succeeds) -- the port dies and its senders get dead
    names, instead of the port and what it holds being lost in a cycle."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p = k.port_allocate(a)
    p_in_b = k.port_insert_send(a, p, b)
    k.msg_send(a, Message(remote_port=p, ports=[PortItem(p, Disposition.MOVE_RECEIVE)]))
    assert k.m.events.find("msg_circular")
    assert b.ipc.lookup(p_in_b).rights() == [Right.DEAD_NAME]
    assert p not in a.ipc.entries
    # two ports: q's receive right waits in p's queue, then p's is sent to q
    p, q = k.port_allocate(a), k.port_allocate(a)
    k.port_insert_send(a, q, a)                  # `a` keeps a send right to q under q
    q_in_b = k.port_insert_send(a, q, b)
    k.msg_send(a, Message(remote_port=p, ports=[PortItem(q, Disposition.MOVE_RECEIVE)]))
    assert a.ipc.lookup(q).rights() == [Right.SEND]
    k.msg_send(a, Message(remote_port=q, ports=[PortItem(p, Disposition.MOVE_RECEIVE)]))
    assert len(k.m.events.find("msg_circular")) == 2
    assert a.ipc.lookup(q).rights() == b.ipc.lookup(q_in_b).rights() == [Right.DEAD_NAME]
    # not a loop: a receive right whose port holds another in transit goes to a third port
    p, q = k.port_allocate(a), k.port_allocate(a)
    to_b = k.port_insert_send(b, k.port_allocate(b), a)
    k.msg_send(a, Message(remote_port=p, ports=[PortItem(q, Disposition.MOVE_RECEIVE)]))
    k.msg_send(a, Message(remote_port=to_b, ports=[PortItem(p, Disposition.MOVE_RECEIVE)]))
    assert len(k.m.events.find("msg_circular")) == 2


def test_send_once_right_is_consumed(k):
    """A send-once right carries exactly one message: after it the name is gone, and a
    second send fails with SEND_INVALID_PORT."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    reply = k.port_allocate(a)
    k.msg_send(a, Message(remote_port=to_b, local_port=reply))      # MAKE_SEND_ONCE
    got = k.msg_receive(b, inbox)
    assert got.reply_right is Right.SEND_ONCE
    so = got.remote_port
    assert b.ipc.lookup(so).rights() == [Right.SEND_ONCE]
    k.msg_send(b, Message(remote_port=so, data=b"answer"))
    assert so not in b.ipc.entries
    with pytest.raises(SendInvalidPort):
        k.msg_send(b, Message(remote_port=so))
    assert k.msg_receive(a, reply).data == b"answer"


def test_dead_name_after_the_receive_right_dies(k):
    """port_deallocate of the receive right destroys the port: every send right to it
    becomes a dead name, and sending to a dead name fails (PORT_DEAD, a SEND_INVALID_PORT)."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p = k.port_allocate(b)
    s = k.port_insert_send(b, p, a)
    k.port_deallocate(b, p)
    assert a.ipc.lookup(s).rights() == [Right.DEAD_NAME]
    with pytest.raises(PortDead):
        k.msg_send(a, Message(remote_port=s))
    with pytest.raises(SendInvalidPort):
        k.msg_send(a, Message(remote_port=s))
    assert k.m.events.find("port_destroyed")
    k.port_deallocate(a, s)                      # a dead name is released like a right
    assert s not in a.ipc.entries


def test_backlog_limits_queue_and_send_times_out(k):
    """port_set_backlog limits the messages waiting on a port; a sender with SEND_TIMEOUT
    then fails with SEND_TIMED_OUT after the timeout (idle time passes), nothing queued;
    backlogs outside 1..16 are refused."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p = k.port_allocate(b)
    k.port_set_backlog(b, p, 2)
    s = k.port_insert_send(b, p, a)
    for i in range(2):
        k.msg_send(a, Message(remote_port=s, id=i), MsgOption.SEND_TIMEOUT, 10)
    idle0 = k.m.by_category()["idle"]
    with pytest.raises(SendTimedOut):
        k.msg_send(a, Message(remote_port=s, id=2), MsgOption.SEND_TIMEOUT, 10)
    assert k.port_status(b, p).num_msgs == 2
    assert k.m.by_category()["idle"] - idle0 >= k.timeout_cycles(10) * 0.99
    for bad in (0, 17):
        with pytest.raises(KernInvalidArgument):
            k.port_set_backlog(b, p, bad)
    assert [k.msg_receive(b, p).id for _ in range(2)] == [0, 1]


def test_full_backlog_waits_for_the_receiver(k):
    """A send to a full port blocks until the receiver (a server thread) takes a message:
    the scheduler runs the server, then the send goes through."""
    c = k.task_create(name="c")
    s, p = echo_server(k)
    k.port_set_backlog(s, p, 1)
    to_s = k.port_insert_send(s, p, c)
    k.msg_send(c, Message(remote_port=to_s, id=1))
    k.msg_send(c, Message(remote_port=to_s, id=2))          # waits: the server takes #1
    assert [e.args["id"] for e in k.m.events.find("msg_receive", task="server")] == [1]
    k.run()
    assert [e.args["id"] for e in k.m.events.find("msg_receive", task="server")] == [1, 2]


def test_receive_timeout_and_no_hang(k):
    """msg_receive with RCV_TIMEOUT fails with RCV_TIMED_OUT when nothing arrives; without
    a timeout, a receive nothing can satisfy is reported as a deadlock, never a hang."""
    a = k.task_create(name="a")
    p = k.port_allocate(a)
    with pytest.raises(RcvTimedOut):
        k.msg_receive(a, p, MsgOption.RCV_TIMEOUT, 5)
    assert k.m.events.find("timeout")
    with pytest.raises(Deadlock):
        k.msg_receive(a, p)
    with pytest.raises(RcvInvalidPort):
        k.msg_receive(a, 0x12345)


def test_default_group(k):
    """port_enable/port_disable: msg_receive without a port takes from the enabled ports,
    oldest message first; port_messages lists the enabled ports with queued messages; a
    disabled port is still received from by name."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p1, p2 = k.port_allocate(b), k.port_allocate(b)
    s1, s2 = k.port_insert_send(b, p1, a), k.port_insert_send(b, p2, a)
    k.port_enable(b, p1)
    k.port_enable(b, p2)
    k.msg_send(a, Message(remote_port=s2, id=20))
    k.msg_send(a, Message(remote_port=s1, id=10))
    k.msg_send(a, Message(remote_port=s2, id=21))
    assert k.port_messages(b) == [p1, p2]
    assert k.port_status(b, p1).enabled
    assert k.msg_receive(b, PORT_NULL).id == 20
    k.port_disable(b, p2)
    assert k.port_messages(b) == [p1]
    assert k.msg_receive(b).id == 10
    with pytest.raises(RcvTimedOut):
        k.msg_receive(b, PORT_NULL, MsgOption.RCV_TIMEOUT, 1)
    assert k.msg_receive(b, p2).id == 21
    with pytest.raises(KernInvalidRight):
        k.port_enable(a, s1)                    # only a receive right can be enabled


def test_queued_messages_destroyed_with_their_rights(k):
    """When a port dies its queued messages are destroyed and the rights they carry
    released: a receive right in transit dies too (its senders get dead names), a
    send-once right in transit sends the send-once notification to its port."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    q = k.port_allocate(a)
    q_send_in_b = k.port_insert_send(a, q, b)
    reply = k.port_allocate(a)
    k.msg_send(a, Message(remote_port=to_b, local_port=reply,
                          ports=[PortItem(q, Disposition.MOVE_RECEIVE)]))
    k.port_deallocate(b, inbox)
    assert b.ipc.lookup(q_send_in_b).rights() == [Right.DEAD_NAME]
    assert len(k.m.events.find("msg_destroyed")) == 1
    note = k.msg_receive(a, reply)
    assert note.id == NOTIFY_SEND_ONCE


def test_server_death_reaches_the_client_as_an_error(k):
    """A server that dies while handling a request destroys the reply right unanswered: the
    client's RPC ends with MIG_SERVER_DIED (the send-once notification), not a hang."""
    c = k.task_create(name="c")

    def bad(msg):
        raise KernInvalidAddress("the server's bug")
    s, p = echo_server(k, handler=bad)
    to_s = k.port_insert_send(s, p, c)
    with pytest.raises(MigServerDied):
        k.rpc(c, to_s, 1)
    assert not s.alive
    assert k.m.events.find("server_crashed", task="server")


def test_port_status_counts_the_send_rights_other_tasks_hold(k):
    """port_status reports how many names in other tasks denote send or send-once rights to
    the port; the receiver's own name (which also carries its send rights) is not one of
    them.  A task's send rights share one name, every send-once right has a name of its
    own (Mach 3.0 Kernel Principles)."""
    a, b, c = (k.task_create(name=n) for n in "abc")
    p = k.port_allocate(b)
    assert k.port_status(b, p).send_rights == 0
    k.port_insert_send(b, p, a)
    k.port_insert_send(b, p, a)                 # a second reference: the same name in a
    k.port_insert_send(b, p, b)                 # the receiver's own send right
    assert k.port_status(b, p).send_rights == 1
    k.port_insert_send(b, p, c)
    inbox = k.port_allocate(c)
    to_c = k.port_insert_send(c, inbox, b)
    k.msg_send(b, Message(remote_port=to_c, local_port=p))     # a send-once right for c
    got = k.msg_receive(c, inbox)
    assert got.reply_right is Right.SEND_ONCE
    st = k.port_status(b, p)
    assert (st.receiver, st.send_rights) == ("b", 3)


def test_the_server_with_the_oldest_message_runs_first(k):
    """The deterministic scheduler runs, among the server threads that could receive, the
    one whose next message is the oldest (lowest sequence number): messages are served in
    the order they were sent, whatever the servers' order of creation."""
    c = k.task_create(name="client")
    sa, pa = echo_server(k, "A")
    sb, pb = echo_server(k, "B")
    to_a, to_b = k.port_insert_send(sa, pa, c), k.port_insert_send(sb, pb, c)
    k.msg_send(c, Message(remote_port=to_b, id=1))
    k.msg_send(c, Message(remote_port=to_a, id=2))
    k.msg_send(c, Message(remote_port=to_b, id=3))
    k.run()
    got = [(e.args["task"], e.args["id"]) for e in k.m.events.find("msg_receive")]
    assert got == [("B", 1), ("A", 2), ("B", 3)]


def test_a_send_right_whose_port_dies_in_transit_arrives_as_a_dead_name(k):
    """A send right carried in a queued message to a port that dies before the message is
    received arrives as a dead name (Mach 3.0: ipc_object_copyout of a dead port gives
    MACH_PORT_DEAD's name): the receiver cannot send to it (PORT_DEAD), and it holds no
    right to the dead port."""
    a, b, c = (k.task_create(name=n) for n in "abc")
    p = k.port_allocate(b)
    s = k.port_insert_send(b, p, a)
    inbox = k.port_allocate(c)
    to_c = k.port_insert_send(c, inbox, a)
    k.msg_send(a, Message(remote_port=to_c, ports=[PortItem(s, Disposition.COPY_SEND)]))
    k.port_deallocate(b, p)                      # the port dies while the right travels
    got = k.msg_receive(c, inbox)
    dead = got.ports[0].name
    assert c.ipc.lookup(dead).rights() == [Right.DEAD_NAME]
    with pytest.raises(PortDead):
        k.msg_send(c, Message(remote_port=dead))


def test_a_reply_through_a_send_once_right_is_not_held_back_by_the_backlog(k):
    """The backlog limits messages sent with send rights; a message sent through a
    send-once right (a reply) is never held back by it -- Mach 3.0's ipc_mqueue_send
    queues send-once messages whatever the queue limit, so a server's reply never blocks
    on its client's port: it is queued at once on a full port."""
    a, b = k.task_create(name="a"), k.task_create(name="b")
    reply = k.port_allocate(a)
    k.port_set_backlog(a, reply, 1)
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    to_a = k.port_insert_send(a, reply, b)
    k.msg_send(a, Message(remote_port=to_b, local_port=reply, id=1))      # a send-once right
    so = k.msg_receive(b, inbox).remote_port
    k.msg_send(b, Message(remote_port=to_a, id=2))                         # fills the backlog
    with pytest.raises(SendTimedOut):
        k.msg_send(b, Message(remote_port=to_a, id=3), MsgOption.SEND_TIMEOUT, 0)
    k.msg_send(b, Message(remote_port=so, id=4), MsgOption.SEND_TIMEOUT, 0)
    assert k.port_status(a, reply).num_msgs == 2
    assert [k.msg_receive(a, reply).id for _ in range(2)] == [2, 4]


def test_move_send_from_a_name_without_a_send_right_fails_at_once(k):
    """MOVE_SEND needs a send right under the name: a name that denotes only the receive
    right cannot give one, and the send fails with SEND_INVALID_PORT at once -- even when
    the port's backlog is full, the sender is not made to wait first."""
    b = k.task_create(name="b")
    p = k.port_allocate(b)
    k.port_set_backlog(b, p, 1)
    k.msg_send(b, Message(remote_port=p, id=1))                 # COPY_SEND from the receive right
    with pytest.raises(SendInvalidPort):
        k.msg_send(b, Message(remote_port=p, id=2, remote_disposition=Disposition.MOVE_SEND),
                   MsgOption.SEND_TIMEOUT, 0)
    assert k.port_status(b, p).num_msgs == 1
