"""The compile workload (S97 Fig. 7): make -> gcc -> cpp | cc1 | as on the Linux user layer."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lab.kprofile import overrides
from lab.linux import boot
from lab.workloads import compile as cc

# A small unit keeps the tests fast; the mechanism is the same as the default build's.
SMALL = {"compile": {"source_lines": 40, "header_pool": 24, "headers_per_unit": 12,
                     "cc1_text_hot_bytes": 131072, "cc1_heap_base_bytes": 65536}}


def build(system="linux", units=1, seed=1, extra=None, **options):
    """Boot, install and run a build of `units` sampled units; (kernel, Build)."""
    ov = {"compile": dict(SMALL["compile"], **(extra or {}))}
    with overrides(ov):
        k = boot(system, seed=seed, **options)
        b = cc.Build(k, seed=seed)
        b.install(units)
        k.spawn(b.shell, list(b.units), name="sh")
        k.run()
    return k, b


@pytest.fixture(scope="module")
def native():
    return build()


def _execs(k):
    return [(e.args["pid"], e.args["path"]) for e in k.m.events.find("exec", kernel="linux")]


def test_each_unit_runs_the_gcc_pipeline(native):
    """make forks the gcc driver for a unit; the driver forks cpp, cc1 and as, and each of the
    four execs its image from the file system (gcc -pipe: three processes at once)."""
    k, b = native
    paths = [p for _pid, p in _execs(k)]
    assert paths == [cc.PROGRAMS[x] for x in ("make", "gcc", "cpp", "cc1", "as", "ld")]
    gcc_pid = _execs(k)[1][0]
    forks = [e.args for e in k.m.events.find("fork", kernel="linux")]
    assert sum(1 for f in forks if f["parent"] == gcc_pid) == 3


def test_cpp_and_cc1_block_on_the_pipe_between_them(native):
    """The preprocessed text goes through a one-page pipe: cpp, the faster writer, sleeps on
    a full pipe and cc1 on an empty one -- process switches the platform pays for."""
    k, b = native
    pid = {p.rsplit("/", 1)[-1]: i for i, p in _execs(k)}
    sleeps = {(e.args["pid"], e.args["on"]) for e in k.m.events.find("sleep", kernel="linux")}
    assert (pid["cpp"], "pipe_write") in sleeps
    assert (pid["cc1"], "pipe_read") in sleeps


def test_cc1_heap_faults_in_page_by_page(native):
    """cc1's heap grows with brk and its pages arrive on first write: demand-zero faults of
    the cc1 process, at least one per page of the heap it is modelled to use."""
    k, b = native
    pid = {p.rsplit("/", 1)[-1]: i for i, p in _execs(k)}["cc1"]
    faults = k.m.events.find("page_fault", kernel="linux", pid=pid)
    anon = [e for e in faults if e.args["type"] == "anon"]
    unit = next(iter(b.units.values()))
    heap = b.c["cc1_heap_base_bytes"] + b.c["cc1_heap_per_source_line"] * unit.lines
    assert len(anon) >= heap // k.m.fmt.page_size


def test_object_file_has_the_size_the_assembler_output_implies(native):
    """Bytes really flow cpp -> cc1 -> as: the object's size follows from the assembler
    text cc1 wrote for the unit's lines (within one stdio rounding)."""
    k, b = native
    unit = next(iter(b.units.values()))
    c = b.c
    asm = unit.lines * c["asm_lines_per_source_line"] * c["asm_line_bytes"]
    want = asm / c["asm_line_bytes"] * c["object_bytes_per_asm_line"]
    got = len(k.fs.contents(unit.object))
    assert abs(got - want) <= c["object_bytes_per_asm_line"] + 1


def test_warm_cache_keeps_disk_waits_out_of_the_build(native):
    """A recompile finds its files in the buffer cache: no disk request falls into the
    measured units (the warm-up read them)."""
    k, b = native
    assert b.timings[0].counts["disk_requests"] == 0
    assert b.timings[0].by_category.get("disk", 0) == 0


def test_cold_cache_reads_every_header_block_from_disk():
    """cpp reads each header the unit includes through the file system: with a cold cache
    every block of those headers comes from the disk during the build."""
    k, b = build(extra={"cache_warm": 0})
    unit = next(iter(b.units.values()))
    read = {e.args["block"] for e in k.m.events.find("disk_read", kernel="linux")}
    blocks = {blk for h in unit.headers for blk in k.fs.lookup(h).blocks}
    assert blocks <= read
    assert b.timings[0].counts["disk_requests"] >= len(blocks)


def test_same_seed_same_cycles():
    """The build is deterministic for a seed: identical cycles and counts."""
    (_k1, b1), (_k2, b2) = build(seed=3), build(seed=3)
    assert [t.cycles for t in b1.timings] == [t.cycles for t in b2.timings]
    assert b1.timings[0].counts == b2.timings[0].counts


def test_l4linux_does_the_same_work_and_pays_more():
    """The same binaries make the same system calls and page faults on L4Linux; each costs
    more (IPC, address-space switches that flush the TLB), so the build takes longer."""
    _k, nat = build("linux")
    _k, l4 = build("l4linux")
    assert l4.timings[0].counts == nat.timings[0].counts
    assert l4.timings[0].cycles > nat.timings[0].cycles
    assert l4.timings[0].stats["tlb.misses"] > nat.timings[0].stats["tlb.misses"]


def test_scaling_to_the_real_build():
    """The build time is the mean sampled unit times units_total, plus the link per object."""
    t = lambda cyc: cc.UnitTiming("u", cyc, {"user": cyc}, {}, {"syscalls": 2})
    r = cc.CompileResult("linux", 210, [t(100), t(300)], t(40), mhz=100.0)
    assert r.cycles == 210 * (200 + 20)
    assert r.seconds == pytest.approx(210 * 220 / 100e6)
    assert r.by_category()["user"] == pytest.approx(210 * 440 / 2)
    assert r.counts()["syscalls"] == pytest.approx(3.0)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 1 << 20), nbytes=st.integers(1, 1 << 20), npages=st.integers(0, 80),
       seed=st.integers(0, 1000))
def test_page_lines_one_line_per_distinct_page_inside_the_region(start, nbytes, npages, seed):
    """The working-set sample references one line in each of min(npages, pages of the
    region) distinct pages, every line inside the region and line-aligned."""
    page = 4096
    lines = cc._page_lines(np.random.default_rng(seed), start, nbytes, npages, page)
    pages = (start + nbytes - 1) // page - start // page + 1
    assert len(lines) == min(npages, pages)
    assert len(set((lines // page).tolist())) == len(lines)
    assert all(start - start % cc.LINE <= a < start + nbytes for a in lines.tolist())
    assert all(a % cc.LINE == 0 for a in lines.tolist())


def test_bad_sizes_are_rejected_with_the_allowed_range():
    """Bad input fails loudly, naming the value and what is allowed."""
    with pytest.raises(ValueError, match="units 0"):
        cc.measure("linux", units=0)
    k = boot("linux")
    b = cc.Build(k)
    with pytest.raises(ValueError, match="nheaders 999"):
        b.add_unit("/usr/src/linux/x.c", 10, 999)
    with pytest.raises(ValueError, match="instructions -1"):
        cc.work(None, -1, None, (0, 0), (0, 0))
