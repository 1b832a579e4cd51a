"""A reference-model test of native Linux's sockets: UDP and TCP over the loopback device
(Linux 2.0's net/socket.c, net/ipv4/af_inet.c, udp.c, tcp.c).

Hypothesis draws small random *programs* over socket, bind, listen, connect, accept,
send/sendto/write, recv/recvfrom/read, close and fork; an interpreter runs each on
`boot("linux")` and records the observable trace (return values, errno names, bytes received
and the source port reported, wait statuses), and `Oracle` -- a plain-Python model written
from the rules below, sharing no code with lab.mono.socket -- predicts it.  They must be
equal, and at the end no frame is lost (every sk_buff freed).

Rules the model states:
  * socket(domain, type) (sock_socket, inet_create): a family Linux 2.0 does not know is
    EINVAL (find_protocol_family); AF_UNIX is known but not in this lab: EAFNOSUPPORT unless
    its type is already bad.  A type other than SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
    SOCK_SEQPACKET, SOCK_PACKET is EINVAL; SOCK_RAW and SOCK_PACKET with protocol 0 are
    EPROTONOSUPPORT; SOCK_SEQPACKET is a TCP socket (inet_create).  The descriptor is the
    lowest free one (0, 1, 2 are /dev/null); a descriptor that is not a socket is ENOTSOCK.
  * bind: a listening or connected socket is EIO (inet_bind: state != TCP_CLOSE); a socket
    that has a port already EINVAL; a port outside 0..65535 EINVAL; port 0 picks an
    ephemeral port; a port another socket of the protocol holds is EADDRINUSE.  Ephemeral
    ports (bind 0, listen, connect, a send or recv on an unbound socket) are above
    PROT_SOCK = 1024, distinct and stable for the socket (the model names them; the trace is
    compared up to renaming them; test_an_unbound_udp_sender_... checks the numbers).
  * UDP: a datagram keeps its boundary; recv of n bytes returns min(n, its length) bytes
    and drops the rest of it; the source port is the sender's; a datagram to a port nobody
    bound, to a socket connected to another port, or to a socket whose queued bytes would
    exceed its receive buffer (32767) is dropped silently; more than 65507 bytes is
    EMSGSIZE; send/write without an address on an unconnected socket is EINVAL and
    sendto port 0 is EINVAL (udp_sendto); connect sets the default destination.  Any send
    or recv binds an unbound socket first, even one that fails (inet_sendmsg,
    inet_recvmsg: a later bind is EINVAL).
  * TCP: listen on a UDP socket is EOPNOTSUPP, on a connected socket EINVAL (sys_listen:
    SS_UNCONNECTED); its backlog, taken unsigned, is 1 for 0 and at most SOMAXCONN = 128
    (inet_listen); a listener holds at most backlog connections not yet accepted, and a
    connect beyond waits (tcp_conn_request drops the SYN; the retransmission gets in after
    an accept); connect to a port without a listener is ECONNREFUSED (RST); connect on
    a connected or listening socket is EISCONN; accept on a socket that does not listen is
    EINVAL; connections are accepted in the order they were made; send on a TCP socket not
    connected (never, or listening) is EPIPE without SIGPIPE (do_tcp_sendmsg: the signal
    only under SO_KEEPALIVE); recv on a listener is ENOTCONN, on a socket never connected 0 the
    first time and ENOTCONN after (tcp_recvmsg's sk->done); bytes arrive in order whatever
    the send and recv sizes; recv of 0 bytes is 0 (on a listener ENOTCONN); recv returns 0
    once the peer has closed and every byte was read; the first send after the peer closed
    succeeds (CLOSE_WAIT; the peer's RST follows) and every later one is EPIPE, without
    SIGPIPE (2.0 sends it only under SO_KEEPALIVE); closing a listener closes its connections
    not yet accepted (their peers see end of file).  read and write on a socket are recv
    and send (a count of 0 is 0 before the socket is looked at: sys_read, sys_write).
  * close of the last descriptor frees the port; fork shares the sockets (the child's exit
    closes its descriptors, the last close counts).
  * A program never makes a call that would sleep forever (recv or accept with nothing
    queued, a TCP send larger than the room in the peer's receive buffer, a connect to a
    listener whose backlog is full, which Linux 2.0 answers by dropping the SYN): the model
    marks it `skipped` and neither side runs it.  Binding a port still used by a
    connection (Linux 2.0 keeps it through TIME_WAIT; the lab has no TIME_WAIT) is skipped
    too.

Where this lab departs from Linux 2.0 on purpose or for now (the model follows the lab):
listen on a UDP socket is EOPNOTSUPP (2.0's inet_listen accepts it and accept then says
EOPNOTSUPP); the UDP receive buffer counts payload bytes (2.0's sock_queue_rcv_skb counts
skb->truesize, >=).
"""
import hashlib
import os
from collections import deque

from hypothesis import event, example, given, settings, strategies as st

from lab.errors import KernelError
from lab.linux import boot
from lab.mono.abi import AF_INET, SOCK_DGRAM, SOCK_STREAM, WTERMSIG, WEXITSTATUS, WIFEXITED
from mono_helpers import allocated_frames, call, kept_frames, run_ops

AF_UNIX, SOCK_RAW, SOCK_SEQPACKET, SOCK_PACKET = 1, 3, 5, 10
UDP_MAX = 65507                 # 65535 - IP header - UDP header
RCVBUF = 32767                  # the receive buffer of a UDP and of a TCP socket
BUFSZ = 70000
PORTS = (5000, 5001, 5002, 65535)    # the ports programs name; any other is ephemeral
EXAMPLES = int(os.environ.get("SOCKMODEL_EXAMPLES", 300))


ANYPORT = ("port", 5000)
EMPTY = hashlib.md5(b"").hexdigest()[:12]


def _data(seed, n):
    return bytes((seed * 31 + i * 7 + (i >> 8)) & 0xFF for i in range(n))


def _digest(b):
    return hashlib.md5(b).hexdigest()[:12]


class Err(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class Skip(Exception):
    """The call would sleep forever (or the rules leave it open): not made."""


class Eph:
    """An ephemeral port the model hands out: compared up to renaming."""
    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return f"Eph({self.n})"


class MSock:
    def __init__(self, proto):
        self.proto = proto
        self.port = None
        self.state = "unbound"          # unbound, bound, listen, connected, closed
        self.peer = None                # TCP: the other MSock; UDP: default destination port
        self.q = deque()                # UDP: (bytes, source port)
        self.data = bytearray()         # TCP: bytes not yet read
        self.eof = False
        self.acceptq = deque()
        self.backlog = 0
        self.refs = 0
        self.done = False
        self.reset = False              # the peer's RST came (a send after it closed)


# ====================================================================== the model
class Oracle:
    def __init__(self):
        self.ports = {"udp": {}, "tcp": {}}
        self.lingering = set()          # TCP ports held by connections (and TIME_WAIT)
        self.neph = 0

    # -- descriptors --
    def sock(self, fds, fd):
        if fd not in fds:
            raise Err("EBADF")
        s = fds[fd]
        if s is None:
            raise Err("ENOTSOCK")
        return s

    def install(self, fds, s):
        fd = min(set(range(len(fds) + 1)) - set(fds))
        fds[fd] = s
        s.refs += 1
        return fd

    def close(self, fds, fd):
        if fd not in fds:
            raise Err("EBADF")
        s = fds.pop(fd)
        if s is not None:
            s.refs -= 1
            if s.refs == 0:
                self.release(s)
        return 0

    def release(self, s):
        if s.proto == "tcp" and s.state == "connected":
            if s.peer.state != "closed":
                s.peer.eof = True
        while s.acceptq:                # connections never accepted are closed too
            self.release(s.acceptq.popleft())
        if s.port is not None and self.ports[s.proto].get(s.port) is s:
            del self.ports[s.proto][s.port]
        s.state = "closed"

    # -- ports --
    def ephemeral(self):
        self.neph += 1
        return Eph(self.neph)

    def autobind(self, s):
        if s.port is None:
            s.port = self.ephemeral()
            self.ports[s.proto][s.port] = s
            s.state = "bound"

    # -- the calls --
    def socket(self, fds, domain, stype):
        if domain not in (AF_UNIX, AF_INET):
            raise Err("EINVAL")
        if stype not in (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, SOCK_PACKET):
            raise Err("EINVAL")
        if domain == AF_UNIX:
            raise Err("EAFNOSUPPORT")
        if stype in (SOCK_RAW, SOCK_PACKET):
            raise Err("EPROTONOSUPPORT")
        return self.install(fds, MSock("udp" if stype == SOCK_DGRAM else "tcp"))

    def bind(self, s, port):
        if s.state in ("listen", "connected") or (s.proto == "udp" and s.peer is not None):
            raise Err("EIO")
        if s.port is not None:
            raise Err("EINVAL")
        if not 0 <= port < 65536:
            raise Err("EINVAL")
        if port == 0:
            self.autobind(s)
            return 0
        if port in self.ports[s.proto]:
            raise Err("EADDRINUSE")
        if s.proto == "tcp" and port in self.lingering:
            raise Skip()
        s.port, s.state = port, "bound"
        self.ports[s.proto][port] = s
        return 0

    def listen(self, s, backlog):
        if s.state == "connected" or (s.proto == "udp" and s.peer is not None):
            raise Err("EINVAL")
        if s.proto == "udp":
            raise Err("EOPNOTSUPP")
        self.autobind(s)
        b = backlog & 0xFFFFFFFF
        s.state, s.backlog = "listen", 1 if b == 0 else min(b, 128)
        return 0

    def connect(self, s, port):
        if not 0 <= port < 65536:
            raise Err("EINVAL")
        if s.proto == "udp":
            s.peer = port
            self.autobind(s)
            return 0
        if s.state in ("connected", "listen"):
            raise Err("EISCONN")
        lst = self.ports["tcp"].get(port)
        if lst is not None and lst.state == "listen" and len(lst.acceptq) >= lst.backlog:
            raise Skip()                # Linux 2.0 drops the SYN: connect waits
        self.autobind(s)
        if lst is None or lst.state != "listen":
            raise Err("ECONNREFUSED")
        new = MSock("tcp")
        new.port, new.state, new.peer = lst.port, "connected", s
        s.state, s.peer = "connected", new
        lst.acceptq.append(new)
        self.lingering.add(lst.port)
        return 0

    def accept(self, fds, s):
        if s.state != "listen":
            raise Err("EINVAL")
        if not s.acceptq:
            raise Skip()
        return self.install(fds, s.acceptq.popleft())

    def send(self, s, data, port=None):
        n = len(data)
        if s.proto == "tcp" and port is not None:
            raise Skip()                # sendto with an address on TCP: not drawn
        self.autobind(s)
        if s.proto == "udp":
            if port is None:
                if s.peer is None:
                    raise Err("EINVAL")
                port = s.peer
            elif not 0 < port < 65536:
                raise Err("EINVAL")
            if n > UDP_MAX:
                raise Err("EMSGSIZE")
            self.autobind(s)
            dst = self.ports["udp"].get(port)
            if dst is None or (dst.peer is not None and dst.peer != s.port) \
                    or sum(len(d) for d, _ in dst.q) + n > RCVBUF:
                return n                # dropped
            dst.q.append((bytes(data), s.port))
            return n
        if s.state != "connected":      # do_tcp_sendmsg in TCP_CLOSE or LISTEN
            raise Err("EPIPE")
        if n == 0:
            return 0
        if s.peer.state == "closed":    # CLOSE_WAIT: sent; the RST makes the next ones EPIPE
            if s.reset:
                raise Err("EPIPE")
            s.reset = True
            return n
        if len(s.peer.data) + n > RCVBUF:
            raise Skip()
        s.peer.data += data
        return n

    def recv(self, s, n):
        """(bytes, source port)"""
        if s.proto == "udp" and not s.q:
            raise Skip()                # (before any change: the call is not made)
        self.autobind(s)
        if s.proto == "udp":
            d, src = s.q.popleft()
            return d[:n], src
        if s.state == "listen":
            raise Err("ENOTCONN")
        if n == 0:
            return b"", s.peer.port if s.peer else None
        if s.state != "connected":
            if s.done:
                raise Err("ENOTCONN")
            s.done = True               # tcp_recvmsg in TCP_CLOSE: 0 once, then ENOTCONN
            return b"", None
        if not s.data:
            if s.eof:
                return b"", s.peer.port
            raise Skip()
        d = bytes(s.data[:n])
        del s.data[:n]
        return d, s.peer.port


def _fd(handles, sel):
    """A program names descriptors by index (modulo their number) into the handles it got;
    8 is a descriptor never opened, 9 is /dev/null (not a socket)."""
    if sel == 8:
        return 40
    if sel == 9:
        return 1
    return handles[sel % len(handles)] if handles else 41 + sel


def run_model(prog):
    o = Oracle()
    traces, skips = {}, set()
    fds = {0: None, 1: None, 2: None}
    traces["main"] = _model_ops(o, fds, [], prog, traces, skips, ("main",))
    return traces, skips


def _model_ops(o, fds, handles, prog, traces, skips, key):
    trace = []
    for i, op in enumerate(prog):
        try:
            r = _model_op(o, fds, handles, op[0], op[1:], traces, skips, key + (i,))
        except Err as e:
            r = ("error", e.code)
        except Skip:
            skips.add(key + (i,))
            r = ("skipped",)
        trace.append((op[0], r))
    for fd in sorted(fds):               # exit closes every descriptor
        if fds[fd] is not None:
            o.close(fds, fd)
    return trace


def _model_op(o, fds, h, name, a, traces, skips, key):
    if name == "socket":
        fd = o.socket(fds, a[0], a[1])
        h.append(fd)
        return ("ok", fd)
    if name == "fork":
        cfds = dict(fds)
        for s in cfds.values():
            if s is not None:
                s.refs += 1
        traces[key] = _model_ops(o, cfds, list(h), a[0], traces, skips, key)
        return ("ok", "exit", a[1])     # (no socket call kills: the kernel's trace would
                                        # show a kill the model never predicts)
    fd = _fd(h, a[0])
    if name == "close":
        return ("ok", o.close(fds, fd))
    s = o.sock(fds, fd) if name not in ("read", "write") else fds.get(fd, "bad")
    if s == "bad":
        raise Err("EBADF")
    if name in ("read", "write") and (s is None or a[1] == 0):    # /dev/null; sys_read and
        return ("ok", 0, _digest(b"")) if name == "read" else ("ok", a[1])  # sys_write: 0 is 0
    if name == "bind":
        return ("ok", o.bind(s, a[1]))
    if name == "listen":
        return ("ok", o.listen(s, a[1]))
    if name == "connect":
        return ("ok", o.connect(s, a[1]))
    if name == "accept":
        nfd = o.accept(fds, s)
        h.append(nfd)
        return ("ok", nfd)
    if name in ("send", "write"):
        return ("ok", o.send(s, _data(a[2], a[1])))
    if name == "sendto":
        return ("ok", o.send(s, _data(a[2], a[1]), a[3]))
    if name == "recv":
        d, src = o.recv(s, a[1])
        return ("ok", len(d), ("port", src), _digest(d))
    if name == "read":
        d, _src = o.recv(s, a[1])
        return ("ok", len(d), _digest(d))
    raise AssertionError(name)


# ====================================================================== the interpreter
class Proc:
    def __init__(self, p, buf, handles):
        self.p, self.buf, self.handles = p, buf, handles


def run_kernel(prog, skips):
    """Run `prog` on native Linux; (traces, frames lost, ephemeral ports seen)."""
    k = boot("linux", log_syscalls=False)
    before = allocated_frames(k)
    traces = {}
    k.spawn(_main, traces, prog, skips, name="prog")
    k.run()
    assert not k.procs.live(), k.ps()
    lost = sorted(allocated_frames(k) - before - kept_frames(k))
    return traces, lost


def _main(p, traces, prog, skips):
    c = Proc(p, p.malloc(BUFSZ), [])
    traces["main"] = run_ops(c, prog, traces, skips, ("main",), _run_op)
    return 0


def _child(p, c, sub, status, traces, skips, key):
    cc = Proc(p, c.buf, list(c.handles))
    traces[key] = run_ops(cc, sub, traces, skips, key, _run_op)
    return status


def _run_op(c, name, a, traces, skips, key):
    p, h, buf = c.p, c.handles, c.buf
    if name == "socket":
        r = call(p.socket, a[0], a[1])
        if r[0] == "ok":
            h.append(r[1])
        return r
    if name == "fork":
        pid = p.fork(_child, c, a[0], a[1], traces, skips, key)
        wpid, status = p.wait4(pid)
        assert wpid == pid
        if WIFEXITED(status):
            return ("ok", "exit", WEXITSTATUS(status))
        return ("ok", "signal", WTERMSIG(status))
    fd = _fd(h, a[0])
    if name == "close":
        return call(p.close, fd)
    if name == "bind":
        return call(p.bind, fd, a[1])
    if name == "listen":
        return call(p.listen, fd, a[1])
    if name == "connect":
        return call(p.connect, fd, a[1])
    if name == "accept":
        r = call(p.accept, fd)
        if r[0] == "ok":
            h.append(r[1])
        return r
    if name in ("send", "write", "sendto"):
        p.store(buf, _data(a[2], a[1]))
        if name == "send":
            return call(p.send, fd, buf, a[1])
        if name == "write":
            return call(p.write, fd, buf, a[1])
        return call(p.sendto, fd, buf, a[1], a[3])
    if name == "recv":
        r = call(p.recvfrom, fd, buf, a[1])
        if r[0] != "ok":
            return r
        n, src = r[1]
        return ("ok", n, ("port", src), _digest(p.peek(buf, n)))
    if name == "read":
        r = call(p.read, fd, buf, a[1])
        if r[0] != "ok":
            return r
        return ("ok", r[1], _digest(p.peek(buf, r[1])))
    raise AssertionError(name)


# ====================================================================== comparing
def _rename(traces, kernel):
    """The traces with every ephemeral port named by its order of first appearance."""
    names = {}

    def fix(x):
        if isinstance(x, tuple) and len(x) == 2 and x[0] == "port":
            v = x[1]
            if v is None or (isinstance(v, int) and v in PORTS):
                return x
            if kernel:
                assert isinstance(v, int) and 1024 < v < 65536 and v not in PORTS, v
            key = v if kernel else id(v)
            return ("port", f"E{names.setdefault(key, len(names))}")
        if isinstance(x, tuple):
            return tuple(fix(y) for y in x)
        return x

    return {who: [fix(r) for r in traces[who]] for who in sorted(traces, key=str)}


def check(prog, stats=True):
    """Run `prog` on the model and on Linux; the traces must agree; (model's traces)."""
    expect, skips = run_model(prog)
    got, lost = run_kernel(prog, skips)
    expect, got = _rename(expect, False), _rename(got, True)
    assert sorted(got, key=str) == sorted(expect, key=str)
    for who in expect:
        for i, (m, g) in enumerate(zip(expect[who], got[who])):
            assert m == g, f"process {who}, op {i}: kernel {g!r}, model {m!r}"
        assert len(expect[who]) == len(got[who])
    assert lost == [], f"frames lost: {lost}"
    for who in expect if stats else ():
        for name, r in expect[who]:
            event(f"{name}: {r[0]}{' ' + str(r[1]) if r[0] in ('error', 'killed') else ''}")
    return expect


# ====================================================================== strategies
TCP, UDP = (AF_INET, SOCK_STREAM), (AF_INET, SOCK_DGRAM)


def _tcp_setup(backlog=5):
    """handles 0: listener on 5000, 1: client, 2: the accepted end."""
    return (("socket",) + TCP, ("bind", 0, 5000), ("listen", 0, backlog),
            ("socket",) + TCP, ("connect", 1, 5000), ("accept", 0))


UDP_SETUP = (("socket",) + UDP, ("bind", 0, 5001), ("socket",) + UDP)

sel = st.one_of(st.integers(0, 5), st.integers(0, 5), st.sampled_from([8, 9]))
ports = st.one_of(st.sampled_from(PORTS[:3]), st.sampled_from(PORTS[:3]),
                  st.sampled_from([0, 65535, 65536, -1, 70000]))
small = st.one_of(st.integers(0, 40), st.integers(3500, 3600), st.integers(0, 20000))
udp_sizes = st.one_of(small, st.sampled_from([UDP_MAX, UDP_MAX + 1, 12000, 16384]))
seeds = st.integers(0, 255)
rsizes = st.one_of(st.integers(0, 40), st.integers(0, 20000), st.just(BUFSZ))
domains = st.sampled_from([AF_INET, AF_INET, AF_INET, AF_INET, AF_UNIX, 0, 99])
types = st.sampled_from([SOCK_STREAM, SOCK_DGRAM, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
                         SOCK_SEQPACKET, SOCK_PACKET, 4, 0, 99])

simple_ops = st.one_of(
    st.tuples(st.just("socket"), domains, types),
    st.tuples(st.just("socket"), st.just(AF_INET), st.sampled_from([SOCK_STREAM, SOCK_DGRAM])),
    st.tuples(st.just("bind"), sel, ports),
    st.tuples(st.just("listen"), sel, st.sampled_from([0, 1, 2, 5, -1])),
    st.tuples(st.just("connect"), sel, ports),
    st.tuples(st.just("connect"), sel, ports),
    st.tuples(st.just("accept"), sel),
    st.tuples(st.just("accept"), sel),
    st.tuples(st.just("send"), sel, small, seeds),
    st.tuples(st.just("send"), sel, small, seeds),
    st.tuples(st.just("sendto"), sel, udp_sizes, ports, seeds),
    st.tuples(st.just("sendto"), sel, udp_sizes, ports, seeds),
    st.tuples(st.just("write"), sel, small, seeds),
    st.tuples(st.just("recv"), sel, rsizes),
    st.tuples(st.just("recv"), sel, rsizes),
    st.tuples(st.just("recv"), sel, rsizes),
    st.tuples(st.just("read"), sel, rsizes),
    st.tuples(st.just("close"), sel),
)
conn = st.sampled_from([1, 2, 1, 2, 3, 4])        # the connected ends of the set-ups
biased_ops = st.one_of(
    st.tuples(st.just("send"), conn, small, seeds),
    st.tuples(st.just("write"), conn, small, seeds),
    st.tuples(st.just("sendto"), conn, udp_sizes, st.sampled_from([5001, 5001, 5000]), seeds),
    st.tuples(st.just("recv"), conn, rsizes),
    st.tuples(st.just("recv"), conn, rsizes),
    st.tuples(st.just("read"), conn, rsizes),
    st.tuples(st.just("close"), conn),
    st.tuples(st.just("connect"), conn, st.sampled_from([5000, 5001])),
    st.tuples(st.just("bind"), st.integers(0, 5), st.sampled_from([5000, 5001])),
    st.tuples(st.just("recv"), conn, st.one_of(st.integers(1, 40), st.just(BUFSZ))),
    st.tuples(st.just("read"), conn, st.integers(1, 5000)),
)
ops = st.one_of(simple_ops, biased_ops)
fork_op = st.tuples(st.just("fork"), st.lists(ops, min_size=1, max_size=8).map(tuple),
                    st.integers(0, 255))
prefixes = st.sampled_from([(), _tcp_setup(), _tcp_setup(1), UDP_SETUP, UDP_SETUP,
                            _tcp_setup() + UDP_SETUP, UDP_SETUP + _tcp_setup(2)])
programs = st.tuples(prefixes, st.lists(st.one_of(simple_ops, simple_ops, biased_ops,
                                                  biased_ops, biased_ops, fork_op),
                                        min_size=3, max_size=30)).map(
    lambda t: t[0] + tuple(t[1]))


# ====================================================================== the tests
@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(programs)
@example(_tcp_setup() + (("send", 1, 5000, 1), ("send", 1, 3, 2), ("recv", 2, 7),   # stream
                         ("recv", 2, 20000), ("send", 2, 10, 3), ("close", 2), ("recv", 1, 4),
                         ("read", 1, 100), ("recv", 1, 100), ("send", 1, 5, 4)))
@example((("socket",) + UDP, ("bind", 0, 5000), ("socket",) + UDP,                 # UDP
          ("sendto", 1, 100, 5000, 1), ("sendto", 1, 7, 5000, 2), ("sendto", 1, 9, 5001, 3),
          ("recv", 0, 10), ("recv", 0, 100), ("sendto", 1, 12000, 5000, 4),
          ("sendto", 1, 12000, 5000, 5), ("sendto", 1, 12000, 5000, 6), ("recv", 0, 100),
          ("recv", 0, 100), ("recv", 0, 100), ("sendto", 1, UDP_MAX + 1, 5000, 1),
          ("send", 1, 3, 1), ("write", 0, 3, 1), ("connect", 1, 5000), ("write", 1, 5, 7),
          ("read", 0, 100), ("sendto", 0, 5, 0, 1)))
@example((("socket",) + TCP, ("bind", 0, 5000), ("listen", 0, 2),                  # backlog
          ("socket",) + TCP, ("socket",) + TCP, ("socket",) + TCP, ("connect", 1, 5000),
          ("connect", 2, 5000), ("connect", 3, 5000), ("send", 2, 3, 2), ("send", 1, 3, 1),
          ("accept", 0), ("recv", 4, 10), ("accept", 0), ("recv", 5, 10), ("accept", 0),
          ("connect", 1, 5001), ("connect", 0, 5000), ("listen", 1, 3), ("bind", 0, 5001),
          ("send", 0, 1, 1), ("recv", 0, 1), ("close", 0), ("recv", 3, 10), ("bind", 3, 5000)))
@example((("socket",) + TCP, ("bind", 0, 5000), ("listen", 0, 5), ("socket",) + TCP,  # fork
          ("connect", 1, 5000), ("accept", 0),
          ("fork", (("close", 2), ("send", 1, 10, 1), ("recv", 2, 5)), 3),
          ("recv", 2, 100), ("close", 2),
          ("fork", (("send", 1, 1, 1), ("send", 1, 1, 1)), 4), ("send", 1, 1, 1)))
@example((("socket",) + TCP, ("bind", 0, 5000), ("listen", 0, 5), ("socket",) + TCP,  # pending
          ("connect", 1, 5000), ("send", 1, 100, 1), ("close", 0), ("recv", 1, 10),
          ("socket",) + TCP, ("bind", 2, 5000), ("listen", 2, 1), ("socket", 99, 1),
          ("socket", AF_UNIX, 1), ("socket", AF_UNIX, 4), ("socket", AF_INET, SOCK_RAW),
          ("socket", AF_INET, SOCK_SEQPACKET), ("connect", 3, 5000), ("accept", 2),
          ("recv", 4, 0), ("recv", 4, 10)))
def test_linux_sockets_follow_the_model(prog):
    """Random programs over socket/bind/listen/connect/accept/send/sendto/recv/read/write/
    close/fork give the trace the model of Linux 2.0's rules predicts (module docstring),
    up to the names of ephemeral ports, and lose no frame."""
    check(prog)


# ====================================================================== two processes
def _stream_client(p, port, sizes, seed):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, port)
    buf, sent = p.malloc(BUFSZ), 0
    for i, n in enumerate(sizes):
        data = _data(seed + i, n)
        p.store(buf, data)
        sent += p.send(s, buf, n)
    p.close(s)
    return sent


def _stream_server(p, port, rsizes):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.bind(s, port)
    p.listen(s, 1)
    c = p.accept(s)
    buf, got, counts, i = p.malloc(BUFSZ), b"", [], 0
    while True:
        n = rsizes[i % len(rsizes)]
        i += 1
        r = p.recv(c, buf, n)
        counts.append((n, r))
        if r == 0 and n:
            break
        got += p.peek(buf, r)
    p.close(c)
    p.close(s)
    return got, counts


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(1, 100), st.integers(3000, 40000)), min_size=1,
                max_size=6),
       st.lists(st.one_of(st.integers(0, 50), st.integers(1000, 70000)), min_size=1,
                max_size=5).filter(any),
       seeds)
def test_tcp_is_a_byte_stream_whatever_the_send_and_recv_sizes(sizes, rsizes, seed):
    """Between two processes, every byte sent arrives once and in order whatever the sizes
    of the sends (more than the receive buffer: the sender sleeps until reads make room) and
    of the recvs; a recv returns at most what it asked for and at least one byte while data
    is coming (0 bytes asked is 0), and 0 after the peer closed and everything was read;
    every send returns its full count; no frame is lost."""
    k = boot("linux", log_syscalls=False)
    before = allocated_frames(k)
    srv = k.spawn(_stream_server, 5000, rsizes)
    cli = k.spawn(_stream_client, 5000, sizes, seed)
    k.run()
    got, counts = srv.result
    assert cli.result == sum(sizes)
    assert got == b"".join(_data(seed + i, n) for i, n in enumerate(sizes))
    assert all(0 <= r <= n for n, r in counts)
    assert all(r > 0 for n, r in counts[:-1] if n)
    assert counts[-1][1] == 0
    assert sorted(allocated_frames(k) - before - kept_frames(k)) == []


def _client_id(p, port, ident):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, port)
    buf = p.malloc(16)
    p.store(buf, bytes([ident]))
    p.send(s, buf, 1)
    p.close(s)
    return 0


def _acceptor(p, port, n, backlog):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.bind(s, port)
    p.listen(s, backlog)
    p.sched_yield()                     # let the clients connect
    buf, order = p.malloc(16), []
    for _ in range(n):
        c = p.accept(s)
        p.recv(c, buf, 1)
        order.append(p.peek(buf, 1)[0])
        p.close(c)
    p.close(s)
    return order


def test_connections_are_accepted_in_the_order_they_were_made_and_a_full_backlog_waits():
    """accept returns connections in the order their handshakes completed; with a backlog of
    2, the third and fourth clients' SYNs are dropped (Linux 2.0 tcp_conn_request: no RST,
    no ECONNREFUSED) and their connects wait until accepts make room, then complete."""
    k = boot("linux", log_syscalls=False)
    srv = k.spawn(_acceptor, 5000, 4, 2)
    for ident in (1, 2, 3, 4):
        k.spawn(_client_id, 5000, ident)
    k.run()
    assert srv.result == [1, 2, 3, 4]
    assert len(k.m.events.find("tcp_syn_dropped", kernel="linux")) >= 2
    assert not k.m.events.find("tcp_refused", kernel="linux")


# ====================================================================== specific cases
def _run(program, *args):
    k = boot("linux", log_syscalls=False)
    before = allocated_frames(k)
    p = k.spawn(program, *args)
    k.run()
    assert sorted(allocated_frames(k) - before - kept_frames(k)) == []
    return k, p.result


def _errno(fn, *args):
    try:
        fn(*args)
    except KernelError as e:
        return e.code
    return "ok"


def test_socket_errors_are_those_of_sock_socket_and_inet_create():
    """Linux 2.0's sock_socket answers EINVAL for a family it does not know and then for a
    type it does not know; inet_create refuses SOCK_RAW and SOCK_PACKET without a protocol
    (EPROTONOSUPPORT) and makes SOCK_SEQPACKET a TCP socket; AF_UNIX exists in Linux 2.0
    but not in this lab (EAFNOSUPPORT)."""
    def prog(p):
        r = [_errno(p.socket, d, t) for d, t in
             ((99, SOCK_STREAM), (0, 99), (AF_UNIX, 99), (AF_UNIX, SOCK_STREAM),
              (AF_INET, 4), (AF_INET, 0), (AF_INET, SOCK_RAW), (AF_INET, SOCK_PACKET))]
        s = p.socket(AF_INET, SOCK_SEQPACKET)
        return r + [_errno(p.listen, s, 1)]            # a UDP socket would be EOPNOTSUPP
    _k_, r = _run(prog)
    assert r == ["EINVAL", "EINVAL", "EINVAL", "EAFNOSUPPORT", "EINVAL", "EINVAL",
                 "EPROTONOSUPPORT", "EPROTONOSUPPORT", "ok"]


def _listener_and_client(p):
    """A listener on port 5000 (backlog 5) and a client connected to it, not yet accepted."""
    lst, cli = p.socket(AF_INET, SOCK_STREAM), p.socket(AF_INET, SOCK_STREAM)
    p.bind(lst, 5000)
    p.listen(lst, 5)
    p.connect(cli, 5000)
    return lst, cli


def test_closing_a_listener_closes_the_connections_it_had_not_accepted():
    """tcp_close of a listener closes its connections not yet accepted: the client reads
    what remains and then end of file (was: it slept forever), a send then goes (the RST
    follows; the next one is EPIPE), and
    the data the client had sent is freed with the connection (was: frames lost)."""
    def prog(p):
        lst, cli = _listener_and_client(p)
        buf = p.malloc(8192)
        p.send(cli, buf, 5000)
        p.close(lst)
        return p.recv(cli, buf, 100)
    k, r = _run(prog)
    assert r == 0
    assert any(e.args["flags"] == "FIN" for e in k.m.events.find("packet", kernel="linux"))


def test_listen_on_a_connected_socket_is_einval_and_connect_on_a_listener_is_eisconn():
    """sys_listen refuses a socket that is not SS_UNCONNECTED (EINVAL: was accepted, turning
    a connection into a listener); tcp_connect refuses a socket not in TCP_CLOSE, a listener
    too (EISCONN: was connected, taking the listener's port away); bind on either is EIO
    (inet_bind: state != TCP_CLOSE)."""
    def prog(p):
        lst, cli = _listener_and_client(p)
        srv = p.accept(lst)
        r = [_errno(p.listen, cli, 5), _errno(p.listen, srv, 5), _errno(p.connect, lst, 5000),
             _errno(p.bind, lst, 5001), _errno(p.bind, cli, 5001)]
        buf = p.malloc(16)
        p.store(buf, b"hi")
        p.send(cli, buf, 2)
        r.append(p.recv(srv, buf, 16))
        return r
    _k_, r = _run(prog)
    assert r == ["EINVAL", "EINVAL", "EISCONN", "EIO", "EIO", 2]


def test_tcp_recv_of_zero_bytes_returns_zero_without_waiting():
    """tcp_recvmsg copies while len > 0: a recv of 0 bytes on a connection with nothing
    queued returns 0 at once (was: slept forever)."""
    def prog(p):
        lst, cli = _listener_and_client(p)
        srv = p.accept(lst)
        return p.recvfrom(srv, p.malloc(16), 0)[0]
    assert _run(prog)[1] == 0


def test_recv_on_a_tcp_socket_never_connected_is_0_once_then_enotconn():
    """tcp_recvmsg on a socket in TCP_CLOSE returns 0 the first time (it sets sk->done) and
    ENOTCONN after (was ENOTCONN at once); on a listener it is ENOTCONN from the start."""
    def prog(p):
        s, lst = p.socket(AF_INET, SOCK_STREAM), p.socket(AF_INET, SOCK_STREAM)
        p.listen(lst, 1)
        buf = p.malloc(16)
        return [p.recv(s, buf, 16), _errno(p.recv, s, buf, 16), _errno(p.recv, lst, buf, 16)]
    assert _run(prog)[1] == [0, "ENOTCONN", "ENOTCONN"]


def test_udp_without_an_address_is_einval_and_a_connected_socket_hears_only_its_peer():
    """udp_sendto: a send without an address on an unconnected socket is EINVAL (was
    EDESTADDRREQ) and port 0 is EINVAL (was sent and dropped); either binds the socket
    (inet_sendmsg autobinds first: a bind then is EINVAL); a socket connected to a port
    receives only datagrams from that port (get_sock matches the remote port): others are
    dropped as to a port nobody bound."""
    def prog(p):
        a, b, c = (p.socket(AF_INET, SOCK_DGRAM) for _ in range(3))
        p.bind(a, 5000)
        p.bind(b, 5001)
        p.bind(c, 5002)
        buf = p.malloc(64)
        d = p.socket(AF_INET, SOCK_DGRAM)
        r = [_errno(p.send, c, buf, 4), _errno(p.sendto, c, buf, 4, 0),
             _errno(p.sendto, d, buf, 4, 0), _errno(p.bind, d, 5003)]
        p.connect(a, 5001)
        p.store(buf, b"from-c")
        p.sendto(c, buf, 6, 5000)       # dropped: a listens to 5001 only
        p.store(buf, b"from-b")
        p.sendto(b, buf, 6, 5000)
        n, src = p.recvfrom(a, buf, 64)
        return r + [p.peek(buf, n), src]
    k, r = _run(prog)
    assert r == ["EINVAL", "EINVAL", "EINVAL", "EINVAL", b"from-b", 5001]
    assert [e.args["src"] for e in k.m.events.find("udp_drop", kernel="linux")] == [5002]


def test_an_unbound_udp_sender_gets_one_unprivileged_ephemeral_port():
    """A send on an unbound socket binds it to an ephemeral port (inet_autobind), the same
    for every later datagram, another for another socket; the receiver sees it as the source
    port.  Linux 2.0's get_new_socknum picks it above PROT_SOCK = 1024: from 1025 + a
    rotating start, the first port whose hash chain (port mod 256) is empty -- 1026 first,
    and a port whose chain holds a bound socket is passed over (was: counting up from
    1024)."""
    def prog(p):
        rx, s1, s2, s3, other = (p.socket(AF_INET, SOCK_DGRAM) for _ in range(5))
        p.bind(rx, 5000)
        p.bind(other, 1027)             # chain 3 is taken
        buf = p.malloc(16)
        for s in (s1, s1, s2, s3):
            p.sendto(s, buf, 1, 5000)
        return [p.recvfrom(rx, buf, 16)[1] for _ in range(4)]
    assert _run(prog)[1] == [1026, 1026, 1028, 1029]


def test_a_send_after_the_peer_closed_goes_and_the_next_is_epipe_without_sigpipe():
    """do_tcp_sendmsg sends in CLOSE_WAIT: the first send after the peer closed succeeds
    (the closed peer answers with an RST: tcp_reset sets EPIPE and TCP_CLOSE); every later
    send, by any process sharing the socket, is EPIPE -- SIGPIPE only under SO_KEEPALIVE,
    so nobody is killed.  The data the peer had not read is freed with it."""
    t = check(_tcp_setup() + (("send", 1, 100, 1), ("close", 2), ("recv", 1, 10),
                              ("fork", (("send", 1, 10, 2), ("recv", 1, 10)), 0),
                              ("recv", 1, 10), ("send", 1, 1, 3), ("recv", 1, 1)), stats=False)
    child = [v for k, v in t.items() if k != "main"][0]
    assert child[0] == ("send", ("ok", 10))
    assert t["main"][-2:] == [("send", ("error", "EPIPE")), ("recv", ("ok", 0, ANYPORT, EMPTY))]