"""Sockets over the loopback device: UDP datagrams and TCP streams carry real bytes."""
from lab.linux import boot
from lab.mono.abi import AF_INET, SOCK_DGRAM, SOCK_STREAM
from lab.mono.errors import ECONNREFUSED, EPIPE
from mono_helpers import events

DATA = bytes((i * 13 + 5) & 0xFF for i in range(70000))


def _udp_server(p, port):
    s = p.socket(AF_INET, SOCK_DGRAM)
    p.bind(s, port)
    buf = p.malloc(65536)
    n, src = p.recvfrom(s, buf, 65536)
    p.sendto(s, buf, n, src)                    # echo to the sender's port
    return p.peek(buf, n)


def _udp_client(p, port, data):
    s = p.socket(AF_INET, SOCK_DGRAM)
    out, back = p.malloc(len(data)), p.malloc(len(data))
    p.store(out, data)
    p.sendto(s, out, len(data), port)
    n, src = p.recvfrom(s, back, len(data))
    return p.peek(back, n), src


def test_udp_datagram_round_trip_over_loopback():
    """A UDP datagram larger than the loopback MTU is fragmented, reassembled and delivered
    whole; the echo comes back from the server's port; the bytes are the bytes sent."""
    linux = boot("linux")
    data = DATA[:20000]
    srv = linux.spawn(_udp_server, 5000)
    cli = linux.spawn(_udp_client, 5000, data)
    linux.run()
    assert srv.result == data and cli.result == (data, 5000)
    pk = [e.args for e in events(linux, "packet", proto="udp")]
    assert len(pk) == 2 and pk[0]["dst"] == 5000 and pk[0]["len"] == 20000
    assert pk[0]["frags"] == -(-(20000 + 8) // (linux.net.mtu - 20))


def _tcp_server(p, port):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.bind(s, port)
    p.listen(s)
    c = p.accept(s)
    buf, got = p.malloc(65536), b""
    while True:
        n = p.recv(c, buf, 65536)
        if n == 0:
            break
        got += p.peek(buf, n)
    return got


def _tcp_client(p, port, data):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, port)
    buf = p.malloc(len(data))
    p.store(buf, data)
    sent = p.send(s, buf, len(data))
    p.close(s)
    return sent


def test_tcp_stream_delivers_every_byte_in_order():
    """connect is a three-way handshake; 70 KB go out in MSS-sized segments, the sender
    sleeps while the receiver's window is full, and the receiver reads every byte in order
    until the FIN."""
    linux = boot("linux")
    srv = linux.spawn(_tcp_server, 6000)
    cli = linux.spawn(_tcp_client, 6000, DATA)
    linux.run()
    assert cli.result == len(DATA) and srv.result == DATA
    flags = [e.args["flags"] for e in events(linux, "packet", proto="tcp")]
    assert flags[:3] == ["SYN", "SYN-ACK", "ACK"] and flags[-1] == "FIN"
    data = [e.args["len"] for e in events(linux, "packet", flags="DATA")]
    assert sum(data) == len(DATA) and max(data) == linux.net.mss
    assert any(e.args["on"] == "tcp_send" for e in events(linux, "sleep"))


def test_connect_to_a_port_nobody_listens_on_is_refused():
    """A SYN to a closed port is answered with RST: ECONNREFUSED."""
    def prog(p):
        s = p.socket(AF_INET, SOCK_STREAM)
        try:
            p.connect(s, 4242)
        except ECONNREFUSED as e:
            return e.code
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == "ECONNREFUSED"
    assert [e.args["flags"] for e in events(linux, "packet")] == ["SYN", "RST"]


def test_datagram_to_an_unbound_port_is_dropped_and_run_until_leaves_servers_waiting():
    """UDP does not promise delivery: a datagram to a port nobody bound is dropped (logged).
    run(until=p) returns when p has exited although a server still waits for datagrams."""
    def server(p):
        s = p.socket(AF_INET, SOCK_DGRAM)
        p.bind(s, 7000)
        buf = p.malloc(64)
        while True:
            p.recvfrom(s, buf, 64)

    def client(p):
        s = p.socket(AF_INET, SOCK_DGRAM)
        buf = p.malloc(16)
        p.sendto(s, buf, 16, 7001)              # nobody there
        p.sendto(s, buf, 16, 7000)
        return "sent"
    linux = boot("linux")
    srv = linux.spawn(server)
    cli = linux.spawn(client)
    linux.run(until=cli)
    assert cli.result == "sent" and srv.state.value == "sleeping" and srv.wchan == "udp_recv"
    drops = events(linux, "udp_drop")
    assert [(d.args["dst"], d.args["reason"]) for d in drops] == [(7001, "no socket")]
    linux.shutdown()
    assert not srv.thread.is_alive()


def _tcp_closer(p, port):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.bind(s, port)
    p.listen(s)
    c = p.accept(s)
    p.close(c)                                  # the peer goes away before any data
    return 0


def _tcp_late_sender(p, port, sent):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, port)
    p.sched_yield()                             # the server accepts and closes
    buf = p.malloc(100)
    sent.append(p.send(s, buf, 100))            # CLOSE_WAIT: it goes, the peer resets
    for _ in range(2):
        try:
            p.send(s, buf, 100)
        except EPIPE as e:
            sent.append(e.code)
    return 0


def test_tcp_send_after_the_peer_closed_is_epipe_without_sigpipe():
    """Linux 2.0's do_tcp_sendmsg sends in CLOSE_WAIT: the first send after the peer closed
    succeeds, and the closed peer answers with an RST; every later send is EPIPE.  SIGPIPE
    comes only with SO_KEEPALIVE (not here): the sender lives on (unlike a pipe's writer)."""
    linux = boot("linux")
    sent = []
    srv = linux.spawn(_tcp_closer, 6000)
    cli = linux.spawn(_tcp_late_sender, 6000, sent)
    linux.run()
    assert srv.exit_status == 0 and cli.exit_status == 0 and sent == [100, "EPIPE", "EPIPE"]
    assert events(linux, "tcp_reset") and not events(linux, "sigpipe")


def test_a_send_that_exactly_fills_the_receive_window_does_not_wait():
    """Flow control holds a sender back only when a segment would overflow the receiver's
    buffer: data that exactly fills the window (SK_RMEM_MAX bytes, no reader yet) goes out
    without sleeping; every full segment is acknowledged in pairs -- one ACK for every
    second full segment (tcp_rcv's delayed ACK), not one per segment."""
    linux = boot("linux")
    n = linux.net.rcvbuf["tcp"]
    srv = linux.spawn(_tcp_server, 6100)
    cli = linux.spawn(_tcp_client, 6100, DATA[:n])
    linux.run()
    assert cli.result == n and srv.result == DATA[:n]
    assert not [e for e in events(linux, "sleep", pid=cli.pid) if e.args["on"] == "tcp_send"]
    full = n // linux.net.mss
    tcp = [e.args for e in events(linux, "packet", proto="tcp")]
    data_end = max(i for i, a in enumerate(tcp) if a["flags"] == "DATA")
    acks = [a for a in tcp[3:data_end + 1] if a["flags"] == "ACK"]
    assert len(acks) == full // 2 and all(a["src"] == 6100 for a in acks)


def test_udp_datagrams_queue_up_to_the_receive_buffer_then_drop():
    """A UDP socket queues datagrams while their bytes fit its receive buffer (SK_RMEM_MAX):
    datagrams that exactly fill it are all kept; the next one, which would exceed it, is
    dropped (udp_rcv: sock_queue_rcv_skb fails), and nothing is lost of the queued ones."""
    def prog(p, size, count):
        s = p.socket(AF_INET, SOCK_DGRAM)
        p.bind(s, 5100)
        buf = p.malloc(size)
        for i in range(count + 1):
            p.store(buf, bytes([i]) * 4)
            p.sendto(s, buf, size, 5100)        # to itself: nobody reads meanwhile
        got = []
        for _ in range(count):
            m, src = p.recvfrom(s, buf, size)
            got.append((m, p.peek(buf, 1)))
        return got
    linux = boot("linux")
    rcvbuf = linux.net.rcvbuf["udp"]
    count = 7
    assert rcvbuf % count == 0                  # 32767 = 7 * 4681: the last one fills it
    size = rcvbuf // count
    proc = linux.spawn(prog, size, count)
    linux.run()
    assert proc.result == [(size, bytes([i])) for i in range(count)]
    drops = events(linux, "udp_drop")
    assert len(drops) == 1 and drops[0].args["reason"] == "receive queue full"


def test_listen_with_a_backlog_of_zero_still_takes_one_connection():
    """inet_listen treats a backlog of 0 as 1 (a BSDism): a listener with backlog 0 accepts
    a connection -- the SYN is not dropped and the connect does not wait."""
    def server(p, port):
        s = p.socket(AF_INET, SOCK_STREAM)
        p.bind(s, port)
        p.listen(s, 0)
        c = p.accept(s)
        buf = p.malloc(16)
        n = p.recv(c, buf, 16)
        return p.peek(buf, n)
    linux = boot("linux")
    srv = linux.spawn(server, 6200)
    cli = linux.spawn(_tcp_client, 6200, b"zero")
    linux.run()
    assert srv.result == b"zero" and cli.result == 4
    assert events(linux, "tcp_syn_dropped") == []
