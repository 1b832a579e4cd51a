"""Pipes and RPC on L4 IPC (S97 Table 4): a user-level pipe server, synchronous RPC with long-IPC
string copies, and mapping RPC that maps the data pages instead of copying them."""
import pytest

from lab.l4 import ipc_wait, ReceiveTimeout
from lab.mono.abi import PIPE_BUF
from lab.results import published
from lab.workloads import l4ipc
from lab.workloads.l4ipc import (World, PipeState, BLOCK, PATTERN, CLIENT_BUF, REPLY_BUF,
                                 SERVER_BUF, WINDOW, L4_VARIANTS, LINUX_PIPES, measure, rpc,
                                 mapping_rpc, pipe_bandwidth, pipe_latency, pipe_read,
                                 pipe_write)


def _window_pages(w, task_name):
    t = next(t for t in w.k.tasks.values() if t.name == task_name)
    return [va for va in w.k.mappings(t) if WINDOW <= va < WINDOW + BLOCK]


def _measured(w, clock, operation):
    """Events of `operation` logged between the benchmark's start and stop marks."""
    lo, hi = sum(clock.start.values()), sum(clock.stop.values())
    return [e for e in w.m.events.find(operation, kernel="l4") if lo <= e.cycle <= hi]


def test_names_are_the_rows_of_table_4():
    """The experiment's rows are published.json's Table 4 rows, no more, no less."""
    rows = [r["system"] for r in published()["table4_pipes_rpc"]["rows"]]
    assert sorted(rows) == sorted(list(LINUX_PIPES) + list(L4_VARIANTS))


def test_a_mapping_rpc_moves_no_bytes_but_maps_pages_and_unmaps_them():
    """Mapping RPC: the 64 KB block reaches the server as a map item (16 pages entered into its
    window); nothing is copied; the server unmaps them before replying."""
    w = World()
    clock = mapping_rpc(w, BLOCK, 3, echo=False)
    span = clock.span()
    assert span["copy"] == 0
    maps = _measured(w, clock, "map")
    assert len(maps) == 3 * 16 and {e.args["dst"] for e in maps} == {"map-server"}
    flushes = _measured(w, clock, "flush")
    assert [(f.args["task"], f.args["affected"], f.args["own"]) for f in flushes] == \
        [("map-server", 16, True)] * 3
    assert _window_pages(w, "map-server") == []


def test_a_synchronous_rpc_copies_the_bytes_into_the_servers_buffer():
    """Synchronous RPC: the data is a string of a long IPC, copied once into the buffer the
    server named; the echo reply copies it back into the client's reply buffer."""
    w = World()
    clock = rpc(w, 200, 2, echo=True)
    srv = next(t for t in w.k.tasks.values() if t.name == "rpc-server")
    cli = next(t for t in w.k.tasks.values() if t.name == "rpc-client")
    data = w.k.load(cli.thread, CLIENT_BUF, 200)
    assert data == PATTERN[:200]
    assert w.k.load(srv.thread, SERVER_BUF, 200) == data
    assert w.k.load(cli.thread, REPLY_BUF, 200) == data
    ipcs = _measured(w, clock, "ipc")
    assert [(e.args["sender"], e.args["string_bytes"]) for e in ipcs] == \
        [("rpc-client.main", 200), ("rpc-server", 200)] * 2


def test_one_byte_rpc_ping_pong_is_two_ipcs_per_round_trip():
    """A synchronous RPC round trip is exactly two IPCs: the call and the reply."""
    w = World()
    clock = rpc(w, 1, 5, echo=True)
    assert len(_measured(w, clock, "ipc")) == 2 * 5


def test_the_user_level_pipe_copies_every_byte_twice():
    """The pipe server buffers the data: each byte is copied into its buffer (the writer's
    call) and out of it (the reply to the reader)."""
    w = World()
    clock, got = pipe_bandwidth(w, 2 * BLOCK)
    assert got == 2 * BLOCK
    moved = sum(e.args["string_bytes"] for e in _measured(w, clock, "ipc"))
    # in and out; the start mark may fall after the writer's next chunk went in (one chunk of
    # at most the pipe's PIPE_BUF bytes outside the measured span), nothing else is missing
    assert 2 * got - PIPE_BUF <= moved <= 2 * got


def test_the_user_level_pipe_delivers_the_bytes_in_order():
    """A pipe is a byte stream: what the writer writes (in chunks of at most the pipe's 4 KB
    buffer) arrives at the reader complete and in order."""
    w = World()
    _srv, (p,) = l4ipc._pipe_world(w, 1)
    data = bytes((i * 7 + i // 4096) % 256 for i in range(10000))

    def writer(t):
        yield from pipe_write(p, CLIENT_BUF, len(data))

    def reader(t):
        n = 0
        while n < len(data):
            n += yield from pipe_read(p, REPLY_BUF + n, len(data) - n)
    ta, tb = l4ipc._two_ends(w, writer, reader)
    p.open_reader(tb)
    w.k.store(ta.task.thread, CLIENT_BUF, data)
    w.k.run()
    assert w.k.load(tb.task.thread, REPLY_BUF, len(data)) == data
    writes = w.m.events.find("ipc", kernel="l4", sender="end-a.main")
    assert [e.args["string_bytes"] for e in writes] == [4096, 4096, 10000 - 8192]


def test_a_pipe_holding_data_makes_the_writer_wait_in_the_kernel():
    """Flow control by L4 IPC: while the pipe's buffer holds data the pipe thread receives only
    from its reader (PipeState.HOLDING), so the writer's next call blocks (sending) in the
    kernel until the reader has drained the buffer."""
    w = World()
    _srv, (p,) = l4ipc._pipe_world(w, 1)

    def writer(t):
        yield from pipe_write(p, CLIENT_BUF, 8192)

    def reader(t):
        try:                                   # the reader comes late
            yield ipc_wait(timeout=50_000)
        except ReceiveTimeout:
            pass
        n = 0
        while n < 8192:
            n += yield from pipe_read(p, REPLY_BUF, 8192 - n)
    _ta, tb = l4ipc._two_ends(w, writer, reader)
    p.open_reader(tb)
    w.k.run()
    states = [e.args["state"] for e in w.m.events.find("pipe_state", pipe="pipe0")]
    assert states == ["holding", "empty", "holding", "empty"]
    blocks = w.m.events.find("block", kernel="l4", thread="end-a.main", state="sending")
    assert [b.args["partner"] for b in blocks] == ["pipe0"]
    assert p.state is PipeState.EMPTY


def test_pipe_ping_pong_ends_with_both_pipes_empty():
    """After the last round trip of the ping-pong both pipe threads wait (open receive) with
    empty buffers: every byte written was read."""
    w = World()
    pipe_latency(w, 3)
    threads = {t.name: t for t in w.k.threads.values()}
    assert [threads[n].state.value for n in ("pipe0", "pipe1")] == ["receiving"] * 2
    assert all(threads[n].partner is None for n in ("pipe0", "pipe1"))
    for n in ("pipe0", "pipe1"):           # a pipe that held a byte gave it away again
        states = [e.args["state"] for e in w.m.events.find("pipe_state", pipe=n)]
        assert states == ["holding", "empty"] * (len(states) // 2)


def test_conflicting_l2_placement_costs_the_copy_its_cache():
    """Placement in the direct-mapped L2: when the client's and the server's buffers have the
    same colours, the copy evicts one with the other and the bandwidth drops; a mapping RPC,
    which touches no data, does not care."""
    v_rpc, v_map = L4_VARIANTS[1], L4_VARIANTS[2]
    good = measure(v_rpc, "bandwidth", quick=True, placement="disjoint")
    bad = measure(v_rpc, "bandwidth", quick=True, placement="conflicting")
    assert bad.value < good.value and bad.by_category["cache_miss"] > good.by_category["cache_miss"]
    assert measure(v_map, "bandwidth", quick=True, placement="conflicting").value == \
        measure(v_map, "bandwidth", quick=True, placement="disjoint").value


def test_measure_is_deterministic_and_checks_its_arguments():
    """Same parameters, same numbers; unknown names are errors listing the allowed ones."""
    a = measure(L4_VARIANTS[0], "latency", quick=True)
    b = measure(L4_VARIANTS[0], "latency", quick=True)
    assert a.value == b.value and a.by_category == b.by_category
    with pytest.raises(ValueError, match="synchronous L4 RPC"):
        measure("L4 socket", "latency")
    with pytest.raises(ValueError, match="latency, bandwidth"):
        measure(L4_VARIANTS[1], "jitter")
    with pytest.raises(ValueError, match="disjoint, conflicting"):
        measure(L4_VARIANTS[1], "latency", placement="random")
    with pytest.raises(ValueError, match="Linux pipe"):
        l4ipc.linux_pipe("Windows pipe", "latency")


def test_linux_pipe_latency_is_the_steady_state():
    """lat_pipe's rounds are all alike once warm: the echo child's exit is kept out of the
    timed rounds, so 3 round trips give the same latency as 8."""
    a = l4ipc.linux_pipe("Linux pipe", "latency", n=3)
    b = l4ipc.linux_pipe("Linux pipe", "latency", n=8)
    assert a.unit == "us" and a.value == pytest.approx(b.value, rel=1e-9)
