"""Untagged vs tagged TLBs and small address spaces (S95 §4.1, S97 §3, H97; the lecture: "With
a µ-kernel, protection-boundary crossing forces us to change memory-map [and] flush TLB
(unless tagged)"; "A Pentium CPU can emulate a tagged TLB for small address spaces")."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lab.workloads import tlbtag as T

PENTIUM = T.configs("pentium-133")
LARGE, SMALL, TAGGED, MODERN = PENTIUM


def test_the_configurations_compared():
    """On the Pentium: two large spaces, a small server space, a (hypothetical) tagged
    Pentium and the modern profile; the modern profile has no segments, so no small space."""
    assert [(c.cpu_profile, c.tagged, c.small_server) for c in PENTIUM] == [
        ("pentium-133", False, False), ("pentium-133", False, True),
        ("pentium-133", True, False), ("x86-64-modern", True, False)]
    assert not any(c.small_server for c in T.configs("x86-64-modern"))


def test_a_full_reload_refills_every_entry_at_9_cycles_plus_its_pte_reads():
    """S95 §4.1: after a CR3 load all 32 + 64 entries must be refilled, each miss costing at
    least 9 cycles (>= 864 in all).  The Pentium's walker reads two PTEs per miss and does not
    fill them into L1, so with the tables in L2 a miss costs 9 + 2 x 8 = 25 (S97)."""
    cold, warm = T.full_reload("pentium-133")
    for r in (cold, warm):
        assert r.entries == 96 and r.misses == 96 and r.walk_refs == 192
        assert r.refs_l1 == 0                           # the walker bypasses L1
        assert r.cycles == r.explained()                # every cycle accounted for
        assert r.cycles >= r.misses * r.base_cycles == 864
    assert warm.ptes == "L2" and warm.refs_dram == 0 and warm.per_miss == 25
    assert cold.ptes == "DRAM" and cold.refs_dram > 0 and cold.cycles > warm.cycles


def test_scattered_pages_read_more_page_table_lines_from_dram():
    """Eight PTEs share a 32-byte line: contiguous pages need one DRAM line per eight misses,
    pages 8 apart one per miss."""
    packed, _w = T.full_reload("pentium-133", stride=1)
    scattered, _w = T.full_reload("pentium-133", stride=8)
    assert scattered.refs_dram >= scattered.misses > packed.refs_dram
    assert scattered.cycles > packed.cycles


def test_a_modern_walker_reads_its_tables_through_l1():
    """x86-64: four PTE reads per miss, through the L1 data cache."""
    _cold, warm = T.full_reload("x86-64-modern")
    assert warm.walk_refs == 4 * warm.misses and warm.refs_l1 == warm.walk_refs
    assert warm.cycles == warm.explained()


def test_a_cr3_load_flushes_and_a_segment_reload_does_not():
    """S95 §4.1: a CR3 load costs 1-10 cycles itself and flushes the TLB; switching to a small
    space reloads segment registers (15 cycles) and flushes nothing; a tag change flushes
    nothing."""
    sw = T.switch_costs("pentium-133")
    assert sw["cr3"] == (10, 1, 1)
    assert sw["segment"] == (15, 0, 0)
    assert sw["tag"][1:] == (0, 0)
    assert "segment" not in T.switch_costs("x86-64-modern")


def test_two_large_spaces_refill_both_working_sets_every_round_trip():
    """Untagged, two large spaces: each round trip loads CR3 twice, and each side misses on
    every one of its W pages after the switch back to it — on top of the kernel's own IPC-path
    entries, which the P54C (no global pages) refills after every CR3 load too."""
    base = T.RoundTrip(LARGE, 0).measure(3)
    r = T.RoundTrip(LARGE, 8).measure(3)
    assert r["cr3_loads"] == 2 and r["switches"] == 2
    assert base["tlb_misses"] > 0                      # the kernel's entries: no PGE on a P5
    assert r["tlb_misses"] - base["tlb_misses"] == 16
    assert r["refill_cycles"] - base["refill_cycles"] == 16 * 25


@pytest.mark.parametrize("cfg", [SMALL, TAGGED, MODERN], ids=lambda c: c.label)
def test_no_flush_no_refill_while_the_working_sets_fit(cfg):
    """A small server space (segments) or a tagged TLB keeps both sides' entries across the
    switches: no CR3 load, no TLB miss per round trip."""
    r = T.RoundTrip(cfg, 8).measure(3)
    assert r["cr3_loads"] == 0 and r["tlb_misses"] == 0 and r["refill_cycles"] == 0


def test_small_and_large_round_trips_run_the_same_kernel_paths():
    """Only the switch and the refills differ: the IPC paths and trap entries are the same."""
    a = T.RoundTrip(LARGE, 4).measure(2)["by_category"]
    b = T.RoundTrip(SMALL, 4).measure(2)["by_category"]
    assert a["ipc"] == b["ipc"] and a["entry_exit"] == b["entry_exit"]
    assert a.get("tlb_walk", 0) > 0 and b.get("tlb_walk", 0) == 0


def test_tags_do_not_help_once_the_working_sets_overflow_the_tlb():
    """64 pages per side are twice the 64-entry data TLB: a cyclic sweep under LRU misses on
    every page, tagged or not."""
    tagged = T.RoundTrip(TAGGED, 64).measure(2)
    untagged = T.RoundTrip(LARGE, 64).measure(2)
    assert tagged["tlb_misses"] >= 128
    # the same sweep misses; the few kernel entries (no PGE on the P5) may differ
    assert abs(tagged["tlb_misses"] - untagged["tlb_misses"]) <= 4


@settings(max_examples=12, deadline=None)
@given(st.integers(min_value=0, max_value=16))
def test_the_refill_grows_with_w_only_when_the_tlb_is_flushed(w):
    """Misses per round trip: 2W more than at W=0 with two large spaces (the kernel's IPC-path
    entries are refilled at W=0 too: no global pages on the P5), none with a small server."""
    base = T.RoundTrip(LARGE, 0).measure(2)["tlb_misses"]
    assert T.RoundTrip(LARGE, w).measure(2)["tlb_misses"] == base + 2 * w
    assert T.RoundTrip(SMALL, w).measure(2)["tlb_misses"] == 0


def test_round_trips_are_real_ipc_and_deterministic():
    """Each round trip is an L4 call and a reply (logged), and a rerun gives the same numbers."""
    rt = T.RoundTrip(LARGE, 4)
    assert rt.once() == 1 and rt.once() == 2             # the server counts the messages
    calls = rt.m.events.find("ipc", kernel="l4", sender="client", receiver="server")
    replies = rt.m.events.find("ipc", kernel="l4", sender="server", receiver="client")
    assert [e.args["words"] for e in calls] == [(0,), (1,)]
    assert [e.args["words"] for e in replies] == [(1,), (2,)]
    assert T.RoundTrip(LARGE, 12).measure(3) == T.RoundTrip(LARGE, 12).measure(3)


def test_snapshots_show_the_flush_and_its_absence():
    """Untagged, two large spaces: when the server has the message the client's entries are
    gone; with the server in a small space they are still there."""
    large = dict((n, o) for n, o, _m in T.round_trip_snapshots(LARGE, 6))
    small = dict((n, o) for n, o, _m in T.round_trip_snapshots(SMALL, 6))
    # owners: 2 = client, 3 = server; each also owns the kernel entries it filled (no PGE)
    assert (large["before the call"] == 2).sum() >= 6
    assert (large["server has the message"] == 2).sum() == 0
    assert (large["server touched its pages"] == 3).sum() >= 6
    assert (small["server has the message"] == 2).sum() >= 6
    assert (small["client touched its pages"] == 3).sum() >= 6


def test_tlb_owners_only_reads_the_machine():
    """The view's data function changes nothing (a view must not disturb what it shows)."""
    rt = T.RoundTrip(LARGE, 3)
    rt.once()
    te = rt.m.te.copy()
    cyc = rt.m.cycles
    owners = T.tlb_owners(rt.m, T.data_tlb(rt.m), rt.client.sid, rt.server.sid)
    assert set(np.unique(owners)) <= {0, 1, 2, 3}
    assert np.array_equal(te, rt.m.te) and rt.m.cycles == cyc


def test_the_live_view_builds():
    """The view is built once from snapshots; picking a configuration only recolours it."""
    snaps = {c.label: T.round_trip_snapshots(c, 2) for c in (LARGE, SMALL)}
    v = T.round_trip_view(snaps)
    pick, slider = v.children[0], v.children[1].children[1]
    fig, caption = v.children[2], v.children[3]
    (heat,) = fig.marks
    assert list(pick.options) == [LARGE.label, SMALL.label]
    assert np.array_equal(heat.color, snaps[LARGE.label][0][1])
    phase = 1                                       # "server has the message"
    assert not np.array_equal(snaps[LARGE.label][phase][1], snaps[LARGE.label][0][1])
    slider.value = phase                            # a phase ...
    assert np.array_equal(heat.color, snaps[LARGE.label][phase][1])
    pick.value = SMALL.label                        # ... then the other configuration
    name, owners, misses = snaps[SMALL.label][phase]
    assert fig.marks == [heat]                      # the same mark, recoloured
    assert np.array_equal(heat.color, owners)
    assert name in caption.value and f"{misses} TLB misses" in caption.value


def test_bad_parameters_are_named():
    """Bad parameters (negative page count, unknown operation, zero rounds) are ValueErrors naming
    the value."""
    with pytest.raises(ValueError, match="pages -1"):
        T.RoundTrip(LARGE, -1)
    with pytest.raises(ValueError, match="'fork' unknown"):
        T.linux_op("fork", T.linux_configs()[0])
    with pytest.raises(ValueError, match="n 0"):
        T.RoundTrip(LARGE, 1).measure(0)


LINUX = {c.label: c for c in T.linux_configs("pentium-133")}


def test_a_linux_process_in_a_small_space_is_promoted_by_its_text():
    """Linux 2.0's text starts at 0x08048000 (128 MB), beyond a 4 MB small space: the first
    fetch of the program's code makes L4 promote the task to a large space (S95 §4.1), and
    from then on the switches load CR3 again."""
    r = T.linux_op("getpid, loop in text", LINUX["l4linux, small spaces"], n=2)
    assert r["small_created"] == 1 and r["promoted"] == 1 and not r["small_at_end"]
    assert r["promotion_vas"] == [0x08048000]
    assert r["cr3_loads"] == 2 and r["tlb_misses"] > 0


def test_a_process_that_touches_nothing_of_its_own_stays_small():
    """The plain getpid loop maps nothing beyond the emulation library, so its process stays
    in its small space: no CR3 load, no refill."""
    r = T.linux_op("getpid", LINUX["l4linux, small spaces"], n=2)
    assert r["promoted"] == 0 and r["small_at_end"]
    assert r["cr3_loads"] == 0 and r["tlb_misses"] == 0


def test_on_a_tagged_tlb_l4linux_refills_nothing():
    """With tags, the switches process <-> server flush nothing: a pipe round trip through
    the Linux server loads no CR3 and misses a small fraction of what large untagged spaces
    refill on every switch (what remains are capacity and conflict misses of the 4-way DTLB)."""
    tagged = T.linux_op("pipe", LINUX["l4linux, tagged TLB (hypothetical)"], n=2)
    large = T.linux_op("pipe", LINUX["l4linux, large spaces, untagged"], n=2)
    assert tagged["cr3_loads"] == 0
    assert tagged["tlb_misses"] < large["tlb_misses"] / 4
    assert large["cr3_loads"] > 0 and large["refill_cycles"] > 0
    assert tagged["cycles"] < large["cycles"]


def test_the_sweep_grid_ends_at_the_largest_working_set_asked_for():
    """The sweep measures W = 0, step, 2 step, ... and always max_pages itself: a step that
    does not divide max_pages must not silently drop the largest working set (max_pages=8
    with step 32 once measured W = 0 only)."""
    assert T.pages_grid(64, 4) == list(range(0, 65, 4))           # the default: unchanged
    assert T.pages_grid(8, 32) == [0, 8]
    assert T.pages_grid(96, 7)[-2:] == [91, 96]
    with pytest.raises(ValueError, match="step 0"):
        T.pages_grid(8, 0)
