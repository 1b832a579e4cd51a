"""The Mach memory-object experiment (R87 Table 7-1, M87 §9): the kernel as cache manager of
memory objects against the 1987 UNIX buffer cache of 10% of memory."""
import math

import pytest

from lab.kprofile import overrides
from lab.mach.examples import fs_read_file
from lab.workloads import mach_objects as mo

PAGE = 4096


def disk_cycles(m):
    return m.profile["disk_ms_per_request"] * 1000 * m.profile["clock_mhz"]


def test_mach_second_read_finds_the_object_cached():
    """Mach caches the pages of a memory object after the reader unmaps it: the first read
    sends one pager_data_request per page and the file server reads the disk; the second
    read of the same file makes neither a request nor a disk access."""
    s = mo.MachSystem(memory_mb=16)
    s.install("f", 8 * PAGE)
    first = s.read_file("f")
    requests = len(s.m.events.find("pager_data_request"))
    second = s.read_file("f")
    assert first.io == 8 and requests == 8
    assert second.io == 0 and len(s.m.events.find("pager_data_request")) == requests
    assert second.cycles < first.cycles / 100


def test_mach_reader_sees_the_file_data():
    """Reading through a memory object delivers the file's bytes (the pager's disk blocks)
    into the client's space, copy-on-write, without copying them through the client."""
    s = mo.MachSystem(memory_mb=16)
    s.install("f", 3 * PAGE + 100)
    a, n = fs_read_file(s.k, s.client, s.server, "f")
    on_disk = b"".join(s.fs.disk.blocks[b] for b in s.fs.files["f"]["blocks"])[:n]
    assert n == 3 * PAGE + 100
    assert s.k.user_read(s.client, a, n) == on_disk


def test_unix_buffer_cache_is_a_tenth_of_memory():
    """The 1987 UNIX caches files only in its buffer cache, 10% of physical memory: a file
    larger than that is read from the disk again on the second read, a small one is not."""
    s = mo.UnixSystem(memory_mb=16)
    assert s.cache_pages == int(0.1 * (16 << 20)) // PAGE == s.linux.bcache.capacity
    big = s.cache_pages + 16
    s.install("big", big * PAGE)
    s.install("small", 4 * PAGE)
    assert [s.read_file("big").io for _ in range(2)] == [big, big]
    assert [s.read_file("small").io for _ in range(2)] == [4, 0]


def test_fork_is_copy_on_write_on_mach_and_eager_on_1987_unix():
    """fork of a 256 KB process: Mach's task_create with VM_INHERIT_COPY copies no page (the
    parent's pages are only write-protected); the 4.3BSD-like UNIX copies every page before
    the child exits (one copy-on-write fault per page on lab.mono)."""
    nbytes = 16 * PAGE
    mach = mo.MachSystem(memory_mb=16)
    before = len(mach.m.events.find("cow_fault"))
    (sample,) = mach.fork(nbytes, 1)
    assert len(mach.m.events.find("cow_fault")) == before and mach.k.stats["cow_faults"] == 0
    assert sample.by_category.get("copy", 0) == 0
    assert mach.m.events.find("task_create", parent="forker1")
    unix = mo.UnixSystem(memory_mb=16)
    c0 = unix.cow_copies()
    unix.fork(nbytes, 1)
    assert unix.cow_copies() - c0 == 2 * 16          # warm-up + one measured fork


def test_zero_fill_takes_one_fault_per_page():
    """zero fill 1K: writing 1 KB into fresh memory is one zero-fill fault (a whole 4 KB page
    cleared) on both systems."""
    mach = mo.MachSystem(memory_mb=16)
    z0 = mach.k.stats["zero_fill"]
    samples = mach.zero_fill(1024, 2)
    assert mach.k.stats["zero_fill"] - z0 == 3 and len(samples) == 2
    unix = mo.UnixSystem(memory_mb=16)
    a0 = len(unix.m.events.find("page_fault", kernel="linux", type="anon"))
    unix.zero_fill(1024, 2)
    assert len(unix.m.events.find("page_fault", kernel="linux", type="anon")) - a0 == 3


def test_disk_time_is_the_profile_time_per_request():
    """The disk model of both kernels: each page-sized request waits disk_ms_per_request of
    the CPU profile, nothing else is charged to the disk."""
    mach = mo.MachSystem(memory_mb=16)
    mach.install("f", 5 * PAGE)
    r = mach.read_file("f")
    assert r.by_category["disk"] == 5 * math.ceil(disk_cycles(mach.m))
    unix = mo.UnixSystem(memory_mb=16)
    unix.install("f", 5 * PAGE)
    r = unix.read_file("f")
    assert r.io == 5 and r.by_category["disk"] == pytest.approx(5 * disk_cycles(unix.m))


def test_a_cached_reread_costs_more_of_a_disk_read_on_a_1987_class_cpu():
    """R87's 2.5 MB re-read: Mach's cached pages cost CPU work, UNIX's re-read costs disk
    requests.  On the VAX-11/780-class profile instructions are ~250 times slower and the disk
    ~3 times, so the ratio Mach/UNIX grows by an order of magnitude -- the machine, not a
    per-benchmark knob, moves it."""
    big = mo.characteristic("big_file_bytes")
    ratio = {}
    for prof in ("pentium-133", "vax-8200"):
        m2 = mo.read_twice("mach", big, prof, 1, 16)[1]
        u2 = mo.read_twice("unix", big, prof, 1, 16)[1]
        assert u2.io > 0 and m2.io == 0
        ratio[prof] = m2.cycles / u2.cycles
    assert ratio["vax-8200"] > 10 * ratio["pentium-133"]


def test_compile_job_second_pass_is_cached_on_mach_only():
    """A compile-like job larger than the UNIX buffer cache but smaller than Mach's cache of
    memory objects, run twice: both systems read each referenced page once from disk in the
    first pass; in the second Mach reads nothing and UNIX re-reads what LRU evicted."""
    with overrides({"mach_objects": {"unix_buffer_cache_fraction": 0.02}}):
        job = mo.make_compile_job(seed=3, units=6)
        mach = mo.compile_job("mach", seed=3, memory_mb=16, units=6)
        unix = mo.compile_job("unix", seed=3, memory_mb=16, units=6)
    size = dict(job.files)
    used = {f for names, _ in job.units for f in names}
    distinct = sum(-(-size[f] // PAGE) for f in used)
    assert distinct > unix["cache_pages"]
    assert mach["passes"][0].io == distinct and mach["passes"][1].io == 0
    assert unix["passes"][0].io >= distinct and unix["passes"][1].io > 0
    assert unix["passes"][1].cycles > mach["passes"][1].cycles


def test_compile_job_is_deterministic_per_seed():
    """The headers each unit includes are drawn from the seed: same seed, same job; every
    unit includes the common headers and reads cpp, its source, ccom and as."""
    a, b = mo.make_compile_job(seed=5, units=10), mo.make_compile_job(seed=5, units=10)
    c = mo.make_compile_job(seed=6, units=10)
    assert a == b and a != c
    common = mo.characteristic("compile_common_headers")
    other = mo.characteristic("compile_other_headers")
    for i, (names, text) in enumerate(a.units):
        assert names[0] == "cpp" and names[1] == f"u{i}.c" and names[-2:] == ("ccom", "as")
        headers = names[2:-2]
        assert headers[:common] == tuple(f"h{j}.h" for j in range(common))
        assert len(set(headers)) == common + other


@pytest.mark.parametrize("call, match", [
    (lambda: mo.make_system("vms"), "system 'vms' unknown; allowed: mach, unix"),
    (lambda: mo.MachSystem(memory_mb=8), "memory_mb 8 must be an integer >= 16"),
    (lambda: mo.make_compile_job(units=0), "units 0 must be a positive integer"),
    (lambda: mo.compile_job("mach", passes=0), "passes 0 must be a positive integer"),
    (lambda: mo.mean_sample([]), "no samples"),
])
def test_bad_input_is_named(call, match):
    """Bad parameters raise a ValueError naming the value and what is allowed."""
    with pytest.raises(ValueError, match=match):
        call()


def test_every_memory_size_the_notebook_allows_boots_both_systems():
    """The UNIX side is native Linux, which maps all physical memory at 0xD0000000 of a 32-bit
    space: the notebook's memory_mb and memory_sweep_mb allow no more than fits there (768
    MB), that much boots both systems on the 32-bit profiles, and one MB more is refused,
    naming the size."""
    from pathlib import Path
    from lab.runner.params import read_parameters
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "09_mach-memory-objects.ipynb"
    params = read_parameters(nb)
    hi = params["memory_mb"].hi
    assert params["memory_sweep_mb"].hi == hi == 768
    for profile in ("pentium-133", "vax-8200"):
        for system in mo.SYSTEMS:
            assert mo.make_system(system, profile, memory_mb=hi).m.memory.size == hi << 20
    with pytest.raises(ValueError, match=f"{hi + 1} MB"):
        mo.make_system("unix", "pentium-133", memory_mb=hi + 1)
