"""UDP and TCP over the loopback device (net/ipv4 of Linux 2.0), with real bytes in sk_buffs.

A send copies the user's bytes into sk_buff frames and runs the protocol's output path, IP,
and the loopback driver (`loopback_xmit` -> `netif_rx`); the receive side (`net_bh`, `ip_rcv`,
`udp_rcv`/`tcp_rcv`) runs as the bottom half on the way out of the sender's system call, as
Linux runs bottom halves in ret_from_sys_call.  The receiver's recv copies the bytes out and
frees the buffers.  Per-packet paths come from the kernel profile; checksums cost one
`csum_partial_kb` per KB sent.

TCP here: three-way handshake on connect (three packets), segments of at most MSS bytes,
flow control by the receiver's buffer (a sender sleeps while the receiver's queue is full; a
read that makes room sends a window update), an ACK for every second full segment unless a
reply carries it, FIN on close.  No loss, so no timers or retransmission.
UDP: datagrams up to 65507 bytes, IP-fragmented to the loopback MTU and reassembled; a
datagram to a port nobody bound, or to a full receive queue, is dropped (logged).
Errors, ephemeral ports and the corner cases (a full backlog, a listener closed with
connections not yet accepted, reads of a socket never connected) follow Linux 2.0's
net/socket.c, af_inet.c, udp.c and tcp.c; tests/test_mono_sockets_model.py states the rules.
"""
from collections import deque
from enum import Enum

from .abi import SOCK_STREAM, SOCK_DGRAM, AF_INET, O_RDWR, O_NONBLOCK
from .errors import (EADDRINUSE, EAGAIN, ECONNREFUSED, EINVAL, EIO, EISCONN, EMSGSIZE,
                     ENOTCONN, EOPNOTSUPP, EAFNOSUPPORT, EPROTONOSUPPORT, EPIPE)
from .fs import File, FileOps, InodeType
from .sched import WaitQueue

IP_HDR, UDP_HDR, TCP_HDR = 20, 8, 20
UDP_MAX = 65535 - IP_HDR - UDP_HDR
PROT_SOCK = 1024                # ports below it are privileged
SOCK_ARRAY_SIZE = 256           # the hash chains of a protocol's sockets, by port
SOMAXCONN = 128
AF_UNIX = 1                     # a family Linux 2.0 knows; this lab has only AF_INET
SOCK_RAW, SOCK_SEQPACKET, SOCK_PACKET = 3, 5, 10


class SockState(Enum):
    UNBOUND = "unbound"
    BOUND = "bound"
    LISTEN = "listen"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Skb:
    """An sk_buff: its data in kernel frames (one per fragment/segment), how much of it the
    reader has taken, where it came from."""
    __slots__ = ("frags", "length", "src", "taken")

    def __init__(self, frags, length, src):
        self.frags, self.length, self.src, self.taken = frags, length, src, 0


class Socket:
    def __init__(self, proto):
        self.proto = proto                  # "udp" or "tcp"
        self.state = SockState.UNBOUND
        self.port = None
        self.peer = None                    # TCP: the other end; UDP: default destination port
        self.rcvq = deque()
        self.rcv_bytes = 0
        self.acceptq = deque()
        self.backlog = 0
        self.rx_wait = WaitQueue(f"{proto}-recv")
        self.space_wait = WaitQueue(f"{proto}-space")   # senders to this socket wait here
        self.accept_wait = WaitQueue("tcp-accept")
        self.backlog_wait = WaitQueue("tcp-backlog")    # connects whose SYN found it full
        self.eof = False                    # the peer sent FIN
        self.done = False                   # TCP_CLOSE: a read has returned 0 (sk->done)
        self.reset = False                  # a send after the peer closed drew its RST
        self.unacked = 0                    # full segments received and not yet acknowledged

    def __repr__(self):
        return f"<Socket {self.proto} port={self.port} {self.state.value}>"


class Network:
    """The loopback network: port tables and the packet path."""

    def __init__(self, kernel):
        self.k = kernel
        self.ports = {"udp": {}, "tcp": {}}
        self.start = 0                  # get_new_socknum's rotating start
        self.mtu = int(kernel.image_profile["loopback_mtu"])
        self.mss = self.mtu - IP_HDR - TCP_HDR
        self.rcvbuf = {"udp": int(kernel.image_profile["udp_rcvbuf_bytes"]),
                       "tcp": int(kernel.image_profile["tcp_rcvbuf_bytes"])}
        self.packets = 0

    # -- sockets and ports --
    def socket(self, domain, stype):
        # sock_socket: an unknown family, then an unknown type, is EINVAL; inet_create
        # refuses SOCK_RAW/SOCK_PACKET with protocol 0 and makes SOCK_SEQPACKET a TCP socket.
        if domain not in (AF_UNIX, AF_INET):
            raise EINVAL(f"socket: domain {domain}; allowed AF_INET ({AF_INET})")
        if stype not in (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, SOCK_PACKET):
            raise EINVAL(f"socket: type {stype}; allowed SOCK_STREAM, SOCK_DGRAM")
        if domain != AF_INET:
            raise EAFNOSUPPORT(f"socket: domain {domain}; only AF_INET ({AF_INET})")
        proto = {SOCK_STREAM: "tcp", SOCK_SEQPACKET: "tcp", SOCK_DGRAM: "udp"}.get(stype)
        if proto is None:
            raise EPROTONOSUPPORT(f"socket: type {stype} needs a protocol; allowed "
                                  "SOCK_STREAM, SOCK_DGRAM")
        return Socket(proto)

    def bind(self, s, port):
        table = self.ports[s.proto]
        if s.state in (SockState.LISTEN, SockState.ESTABLISHED) or s.peer is not None:
            raise EIO(f"bind: socket is {s.state.value}")        # inet_bind: not TCP_CLOSE
        if s.port is not None:
            raise EINVAL(f"bind: socket already bound to port {s.port}")
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise EINVAL(f"bind: port {port!r} outside 0..65535")
        if port == 0:
            port = self._ephemeral(table)
        if port in table:
            raise EADDRINUSE(f"bind: {s.proto} port {port} in use")
        table[port] = s
        s.port = port
        s.state = SockState.BOUND

    def _ephemeral(self, table):
        """get_new_socknum of Linux 2.0: from PROT_SOCK + 1 + a rotating start, the first
        port whose hash chain is empty (else one of the shortest chain that is free)."""
        base = PROT_SOCK + 1 + (self.start & 1023)
        chains = [0] * SOCK_ARRAY_SIZE
        for port in table:
            chains[port & (SOCK_ARRAY_SIZE - 1)] += 1
        best, size = 0, 32767
        for i in range(SOCK_ARRAY_SIZE):
            j = chains[(i + base + 1) & (SOCK_ARRAY_SIZE - 1)]
            if j == 0:
                self.start = (i + 1 + self.start) & 1023
                return i + base + 1
            if j < size:
                best, size = i, j
        while base + best + 1 in table:
            best += SOCK_ARRAY_SIZE
        if base + best + 1 >= 65536:
            raise EADDRINUSE("no free ephemeral port")
        return base + best + 1

    def _autobind(self, s):
        if s.port is None:
            self.bind(s, 0)

    # -- the wire --
    def _frames(self, proc, va, n, frag):
        """skb_alloc + copy from user into kernel frames of at most `frag` bytes each."""
        k, frags = self.k, []
        off = 0
        while True:
            c = min(frag, n - off)
            k.arch.run_path("skb_alloc")
            pa = k.m.alloc_page()
            if c:
                k.m.memory.write(pa, k.copy_from_user(proc, va + off, c, kpa=pa))
            frags.append((pa, c))
            off += c
            if off >= n:
                break
        for _ in range(-(-n // 1024)):
            k.arch.run_path("csum_partial_kb")
        return frags

    def _free(self, skb):
        for pa, _c in skb.frags:
            self.k.arch.run_path("kfree_skb")
            self.k.m.free_page(pa)
        skb.frags = []

    def _wire(self, proto, nfrags, src, dst, length, flags=""):
        """IP output and the loopback driver, then the bottom half's IP input, per fragment."""
        k = self.k
        for i in range(nfrags):
            k.arch.run_path("ip_output")
            k.arch.run_path("loopback_xmit")
        for i in range(nfrags):
            k.arch.run_path("net_bh")
            k.arch.run_path("ip_rcv")
            if nfrags > 1:
                k.arch.run_path("ip_defrag")
        self.packets += nfrags
        k.log("packet", proto=proto, src=src, dst=dst, len=length, frags=nfrags, flags=flags)

    def _control(self, src, dst, flags, path="tcp_send_ack"):
        """A TCP segment without data (SYN, ACK, FIN, RST, window update) between ports."""
        k = self.k
        k.arch.run_path(path)
        k.arch.run_path("skb_alloc")
        self._wire("tcp", 1, src, dst, 0, flags)
        k.arch.run_path("tcp_ack_rcv" if flags in ("ACK", "WIN") else "tcp_rcv")
        k.arch.run_path("kfree_skb")

    # -- UDP --
    def udp_send(self, proc, s, va, n, port):
        k = self.k
        self._autobind(s)               # inet_sendmsg binds first, whatever follows
        if port is None:                # udp_sendto: no address and not connected is EINVAL
            port = s.peer
            if port is None:
                raise EINVAL("send without an address on an unconnected UDP socket")
        elif not 0 <= port < 65536:
            raise EINVAL(f"sendto: port {port!r} outside 0..65535")
        elif port == 0:
            raise EINVAL("sendto: port 0 is no destination")
        if n > UDP_MAX:
            raise EMSGSIZE(f"UDP datagram of {n} bytes > {UDP_MAX}")
        self._autobind(s)
        k.arch.run_path("udp_sendmsg")
        frags = self._frames(proc, va, n, self.mtu - IP_HDR - UDP_HDR)
        self._wire("udp", len(frags), s.port, port, n)
        k.arch.run_path("udp_rcv")
        dst = self.ports["udp"].get(port)
        if dst is not None and dst.peer is not None and dst.peer != s.port:
            dst = None                  # connected elsewhere: get_sock does not match it
        skb = Skb(frags, n, s.port)
        if dst is None or dst.rcv_bytes + n > self.rcvbuf["udp"]:
            k.log("udp_drop", src=s.port, dst=port, len=n,
                  reason="no socket" if dst is None else "receive queue full")
            self._free(skb)
            return n
        dst.rcvq.append(skb)
        dst.rcv_bytes += n
        k.sched.wake_up(dst.rx_wait)
        return n

    def udp_recv(self, proc, s, va, n, nonblock):
        k = self.k
        self._autobind(s)               # inet_recvmsg binds first
        k.arch.run_path("udp_recvmsg")
        while not s.rcvq:
            if nonblock:
                raise EAGAIN("no datagram queued")
            k.sched.sleep_on(s.rx_wait, "udp_recv")
        skb = s.rcvq.popleft()
        s.rcv_bytes -= skb.length
        done = self._copy_out(proc, skb, va, n)
        self._free(skb)
        return done, skb.src

    def _copy_out(self, proc, skb, va, n):
        """Copy up to n bytes of `skb` (from skb.taken on) to user memory."""
        k, done, pos = self.k, 0, 0
        for pa, c in skb.frags:
            lo = max(skb.taken - pos, 0)
            if lo < c and done < n:
                m = min(c - lo, n - done)
                k.copy_to_user(proc, va + done, k.m.memory.read(pa + lo, m), kpa=pa + lo)
                done += m
            pos += c
        skb.taken += done
        return done

    # -- TCP --
    def listen(self, s, backlog):
        if s.state is SockState.ESTABLISHED or s.peer is not None:
            raise EINVAL("listen on a connected socket")        # sys_listen: SS_UNCONNECTED
        if s.proto != "tcp":
            raise EOPNOTSUPP("listen on a UDP socket")
        self._autobind(s)
        b = backlog & 0xFFFFFFFF        # inet_listen: an unsigned 0 is 1 (a BSDism), at most
        s.state, s.backlog = SockState.LISTEN, 1 if b == 0 else min(b, SOMAXCONN)   # SOMAXCONN

    def connect(self, proc, s, port):
        k = self.k
        if not 0 <= port < 65536:               # sin_port has 16 bits
            raise EINVAL(f"connect: port {port!r} outside 0..65535")
        if s.proto == "udp":
            self._autobind(s)
            s.peer = port
            return 0
        if s.state in (SockState.ESTABLISHED, SockState.LISTEN):
            raise EISCONN(f"connect: socket is {s.state.value}")   # tcp_connect: not TCP_CLOSE
        self._autobind(s)
        k.arch.run_path("tcp_connect")
        while True:
            lst = self.ports["tcp"].get(port)
            self._control(s.port, port, "SYN", path="tcp_send_syn")
            if lst is None or lst.state is not SockState.LISTEN \
                    or len(lst.acceptq) < lst.backlog:
                break
            # tcp_conn_request drops a SYN when the backlog is full: no RST, the connect
            # waits and its retransmitted SYN gets in once an accept has made room
            k.log("tcp_syn_dropped", port=port)
            k.sched.sleep_on(lst.backlog_wait, "connect")
        if lst is None or lst.state is not SockState.LISTEN:
            self._control(port, s.port, "RST", path="tcp_send_ack")
            k.log("tcp_refused", port=port)
            raise ECONNREFUSED(f"connect: nobody listens on tcp port {port}")
        new = Socket("tcp")
        new.port, new.state = lst.port, SockState.ESTABLISHED
        self._control(new.port, s.port, "SYN-ACK", path="tcp_send_syn")
        self._control(s.port, new.port, "ACK")
        s.peer, new.peer = new, s
        s.state = SockState.ESTABLISHED
        lst.acceptq.append(new)
        k.sched.wake_up(lst.accept_wait)
        return 0

    def accept(self, proc, s, nonblock):
        k = self.k
        if s.state is not SockState.LISTEN:
            raise EINVAL("accept on a socket that does not listen")
        k.arch.run_path("tcp_accept")
        while not s.acceptq:
            if nonblock:
                raise EAGAIN("no pending connection")
            k.sched.sleep_on(s.accept_wait, "accept")
        k.sched.wake_up(s.backlog_wait)
        return s.acceptq.popleft()

    def tcp_send(self, proc, s, va, n, nonblock):
        k = self.k
        self._autobind(s)               # inet_sendmsg binds first
        if s.state is not SockState.ESTABLISHED:     # do_tcp_sendmsg: not even connecting:
            raise EPIPE(f"send on a TCP socket that is {s.state.value}, not connected "
                        "(SIGPIPE only under SO_KEEPALIVE)")
        done = 0
        while done < n:
            peer = s.peer
            if peer is None or peer.state is SockState.CLOSED:
                # do_tcp_sendmsg sends in CLOSE_WAIT; the closed peer answers with an RST
                # (tcp_reset: err EPIPE, state TCP_CLOSE), so the next send is EPIPE -- with
                # SIGPIPE only under SO_KEEPALIVE, which this lab does not have
                if done:
                    return done
                if s.reset:
                    raise EPIPE("send: the peer has closed the connection and reset it")
                k.arch.run_path("tcp_sendmsg")
                s.reset = True
                k.log("tcp_reset", port=s.port, dropped=n)
                return n                    # gone with the peer: nobody can read it
            seg = min(self.mss, n - done)
            if peer.rcv_bytes + seg > self.rcvbuf["tcp"]:
                if nonblock:
                    if done:
                        return done
                    raise EAGAIN("peer's receive window is full")
                k.sched.sleep_on(peer.space_wait, "tcp_send")
                continue
            k.arch.run_path("tcp_sendmsg")
            frags = self._frames(proc, va + done, seg, self.mss)
            k.arch.run_path("tcp_transmit")
            s.unacked = 0                   # the segment carries our ACK
            self._wire("tcp", 1, s.port, peer.port, seg, "DATA")
            k.arch.run_path("tcp_rcv")
            peer.rcvq.append(Skb(frags, seg, s.port))
            peer.rcv_bytes += seg
            k.sched.wake_up(peer.rx_wait)
            if seg == self.mss:
                peer.unacked += 1
                if peer.unacked >= 2:       # ACK every second full segment
                    peer.unacked = 0
                    self._control(peer.port, s.port, "ACK")
            done += seg
        return done

    def tcp_recv(self, proc, s, va, n, nonblock):
        k = self.k
        self._autobind(s)               # inet_recvmsg binds first
        if s.state is not SockState.ESTABLISHED and not s.rcvq:
            if s.state is SockState.LISTEN:
                raise ENOTCONN("recv on a listening TCP socket")
            if s.state is SockState.CLOSED or s.eof or n == 0:
                return 0
            # tcp_recvmsg on a socket in TCP_CLOSE (never connected): the first read
            # returns 0 and sets sk->done, later ones are ENOTCONN
            if not s.done:
                s.done = True
                return 0
            raise ENOTCONN("recv on an unconnected TCP socket")
        k.arch.run_path("tcp_recvmsg")
        if n == 0:
            return 0                    # tcp_recvmsg's copy loop runs while len > 0
        while not s.rcvq:
            if s.eof:
                return 0
            if nonblock:
                raise EAGAIN("no data queued")
            k.sched.sleep_on(s.rx_wait, "tcp_recv")
        done = 0
        was_full = s.space_wait.waiters != []
        while s.rcvq and done < n:
            skb = s.rcvq[0]
            done += self._copy_out(proc, skb, va + done, n - done)
            if skb.taken >= skb.length:
                s.rcvq.popleft()
                self._free(skb)
        s.rcv_bytes -= done
        if was_full and s.peer is not None:
            self._control(s.port, s.peer.port, "WIN")     # window update wakes the sender
            k.sched.wake_up(s.space_wait)
        return done

    def close(self, s):
        k = self.k
        if s.proto == "tcp" and s.state is SockState.ESTABLISHED and s.peer is not None:
            k.arch.run_path("tcp_close")
            peer = s.peer
            if peer.state is not SockState.CLOSED:
                self._control(s.port, peer.port, "FIN", path="tcp_send_fin")
                peer.eof = True
                k.sched.wake_up(peer.rx_wait)
        for skb in s.rcvq:
            self._free(skb)
        s.rcvq.clear()
        while s.acceptq:                # connections never accepted: tcp_close_pending
            self.close(s.acceptq.popleft())
        if s.port is not None and self.ports[s.proto].get(s.port) is s:
            del self.ports[s.proto][s.port]
        s.state = SockState.CLOSED
        k.sched.wake_up(s.space_wait)
        k.sched.wake_up(s.backlog_wait)


class SocketFile(FileOps):
    """read/write on a socket descriptor = recv/send."""
    kind = InodeType.SOCK.value

    def read(self, k, proc, f, va, n):
        return k.sock_recv(proc, f.obj, va, n, bool(f.flags & O_NONBLOCK))[0]

    def write(self, k, proc, f, va, n):
        return k.sock_send(proc, f.obj, va, n, None, bool(f.flags & O_NONBLOCK))

    def release(self, k, f):
        k.arch.run_path("sock_close")
        k.net.close(f.obj)


SOCKET_OPS = SocketFile()


def socket_file(sock):
    return File(SOCKET_OPS, None, O_RDWR, sock)
