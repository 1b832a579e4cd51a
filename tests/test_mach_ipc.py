"""Mach IPC as mechanism: a message to another task switches address space, inline data is
copied (really), out-of-line memory is mapped copy-on-write, waits never hang."""
import pytest

from lab.mach import Message, OOLItem, Deadlock, MigServerDied, RcvTooLarge
from mach_helpers import kernel, echo_server


def test_null_rpc_runs_send_receive_and_two_space_switches():
    """A null RPC: the client's trap and msg_send, the server's receive in its own space
    (a CR3 load on the Pentium), its reply, and the client's receive back in its space."""
    m, k = kernel()
    c = k.task_create(name="client")
    s, p = echo_server(k)
    to_s = k.port_insert_send(s, p, c)
    k.rpc(c, to_s)                                   # warm up: reply port, buffers
    m.events.clear()
    with m.measure() as r:
        k.rpc(c, to_s, 7)
    ops = [(e.operation, e.args.get("task")) for e in m.events
           if e.operation in ("msg_send", "msg_receive")]
    assert ops == [("msg_send", "client"), ("msg_receive", "server"),
                   ("msg_send", "server"), ("msg_receive", "client")]
    assert r.stats["cr3.loads"] == 2
    assert r.by_category["space_switch"] == 2 * m.profile["page_table_switch_cycles"]
    assert r.by_category["entry_exit"] == 2 * m.profile["kernel_entry_exit_cycles"]
    assert r.by_category["ipc"] > 0


def test_inline_data_is_copied_bytes():
    """Inline data travels by copy: the server receives the client's bytes, the reply's
    bytes come back, and the copy is charged."""
    m, k = kernel()
    c = k.task_create(name="client")
    s, p = echo_server(k, handler=lambda msg: Message(remote_port=msg.remote_port,
                                                       data=msg.data[::-1]))
    to_s = k.port_insert_send(s, p, c)
    payload = bytes(range(200))
    with m.measure() as r:
        got = k.rpc(c, to_s, data=payload)
    assert got.data == payload[::-1]
    # copied twice each way (into the kernel buffer and out again)
    assert r.by_category["copy"] >= 4 * len(payload) // m.profile["copy_bytes_per_cycle"]


def test_out_of_line_memory_is_copy_on_write():
    """Out-of-line memory is mapped copy-on-write: no frame is copied by the transfer; the
    receiver sees the data; its first write takes one frame and the sender's data stays."""
    m, k = kernel()
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    buf = k.vm_allocate(a, 0, 4 * k.page)
    k.user_write(a, buf, b"x" * (4 * k.page))
    frames = k.object_frames()
    k.msg_send(a, Message(remote_port=to_b, ool=[OOLItem(buf, 4 * k.page)]))
    got = k.msg_receive(b, inbox)
    addr = got.ool[0].address
    assert k.user_read(b, addr + k.page, 4) == b"xxxx"
    assert k.object_frames() == frames
    k.user_write(b, addr, b"B")
    assert k.object_frames() == frames + 1
    assert k.user_read(a, buf, 1) == b"x" and k.user_read(b, addr, 1) == b"B"
    k.user_write(a, buf + k.page, b"A")
    assert k.user_read(b, addr + k.page, 1) == b"x"


def test_wait_cycle_between_servers_is_reported():
    """Two single-threaded servers calling each other wait for each other forever in Mach;
    the scheduler detects the cycle and reports it as an error that reaches the client."""
    m, k = kernel()
    c = k.task_create(name="client")
    names = {}

    def a_handler(msg):
        k.rpc(k.running, names["b_in_a"], 1)
        return Message(remote_port=msg.remote_port)

    def b_handler(msg):
        k.rpc(k.running, names["a_in_b"], 2)
        return Message(remote_port=msg.remote_port)
    sa, pa = echo_server(k, "A", a_handler)
    sb, pb = echo_server(k, "B", b_handler)
    names["b_in_a"] = k.port_insert_send(sb, pb, sa)
    names["a_in_b"] = k.port_insert_send(sa, pa, sb)
    to_a = k.port_insert_send(sa, pa, c)
    with pytest.raises((MigServerDied, Deadlock)):
        k.rpc(c, to_a)
    dl = m.events.find("deadlock")
    assert dl and "A.port" in dl[0].args["chain"]
    # the kernel stays usable
    s, p = echo_server(k, "C")
    assert k.rpc(c, k.port_insert_send(s, p, c), data=b"ok").data == b"ok"


def test_rcv_size_bounds_the_inline_data_received():
    """msg_receive's rcv_size is the receiver's buffer: a message of exactly rcv_size bytes
    fits and is received; one byte more fails with RCV_TOO_LARGE (Mach 2.5 <sys/message.h>),
    checked before the dequeue, so the message stays queued for a bigger buffer."""
    m, k = kernel()
    a, b = k.task_create(name="a"), k.task_create(name="b")
    inbox = k.port_allocate(b)
    to_b = k.port_insert_send(b, inbox, a)
    k.msg_send(a, Message(remote_port=to_b, id=1, data=b"x" * 64))
    got = k.msg_receive(b, inbox, rcv_size=64)
    assert (got.id, got.data) == (1, b"x" * 64)
    k.msg_send(a, Message(remote_port=to_b, id=2, data=b"y" * 65))
    with pytest.raises(RcvTooLarge):
        k.msg_receive(b, inbox, rcv_size=64)
    assert k.port_status(b, inbox).num_msgs == 1
    assert k.msg_receive(b, inbox, rcv_size=65).data == b"y" * 65
