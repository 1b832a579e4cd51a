"""Mach memory objects against the 1987 UNIX buffer cache (R87 Table 7-1, M87 §9).

The same benchmarks run on two systems built on one simulated machine (`memory_mb` of
physical memory, the CPU profile's clock, caches and disk time):

    Mach   lab.mach.MachKernel with a `FileServer` that is the pager of its files over a
           simulated disk (the lecture's fs_read_file): reading a file maps its memory object
           copy-on-write and touches it; each missing page is a pager_data_request, a disk read
           and pager_data_provided.  The kernel keeps the object's pages as its cache, in all
           of memory but a page-table reserve (`max_resident_pages`), so a second reader finds
           them resident.  fork is task_create with the parent's memory inherited VM_INHERIT_COPY
           (copy-on-write: nothing is copied, the parent's pages are write-protected), then
           the child's task_terminate -- Mach primitives, no UNIX process bookkeeping or
           scheduling of the child (1987 Mach ran 4.3BSD's fork code in its kernel).
    UNIX   lab.mono (Linux's architecture-independent kernel) on the native platform,
           booted with its buffer cache limited to `unix_buffer_cache_fraction` (10%) of
           physical memory, the only file cache of 4.3BSD/SunOS 3: read() copies each block
           out of the cache, LRU evicts.  4.3BSD's fork copied the address space eagerly;
           lab.mono's fork is copy-on-write, so the workload makes the copy explicit: the child
           first writes every page of the 256 KB, and the kernel's copy-on-write path copies
           each page (do_wp_page + copy_page) before the child exits.  That is the copy
           vmdup did in 4.3BSD's fork, plus one page-fault exception per page that 4.3BSD
           did not take (`cow_copies_per_fork` in the result counts the pages copied).  The
           measured fork is fork + the child's run and exit + the parent's wait4.

Disk model (both kernels): every page-sized request costs the CPU profile's
`disk_ms_per_request` as a synchronous wait ("disk" cycles); no seek-distance, rotational
position, read-ahead, clustering or overlap of I/O with computation.  Only reads happen
during the measurements (files are installed beforehand).

The compile-like job (M87 §9's claims): units that each read the compiler's executables,
a source file and the headers it includes, then compute in proportion to the preprocessed
text; the job runs twice on a fresh system, and the disk I/O and time of each pass are kept.
Its characteristics, like the machine's memory size, are estimates in
lab/profiles/mach_objects.json.  Every entry point takes `placement_seed`, the Machine's frame
order (None: lowest first, as after boot).

    t = table("mach", "pentium-133", seed=1)       # t["samples"]["fork"].cycles, .io, ...
    c = compile_job("unix", "pentium-133", seed=1) # c["passes"][1].io: the cached pass
"""
import random
from dataclasses import dataclass

from engine import Machine, ops as O
from engine.profile import load_profile
from engine.pte import get_format
from lab.kprofile import load_kernel_profile
from lab.linux import boot
from lab.mach import MachKernel
from lab.mach.examples import FileServer, fs_read_file
from lab.mono.abi import O_RDONLY

PROFILE = "mach_objects"
SYSTEMS = ("mach", "unix")
LINE = 32
BENCHMARKS = ("zero_fill", "fork", "read_big_1", "read_big_2", "read_small_1", "read_small_2")


def characteristic(name):
    """A workload characteristic from lab/profiles/mach_objects.json."""
    return load_kernel_profile(PROFILE)[name]


@dataclass(frozen=True)
class Sample:
    """One measurement: cycles (disk waits included), disk requests, cycles by category."""
    cycles: float
    io: float
    by_category: dict

    def ms(self, clock_mhz):
        return self.cycles / (clock_mhz * 1000.0)


def mean_sample(samples):
    """The average of measured repetitions (cycles, I/Os and every category)."""
    samples = list(samples)
    if not samples:
        raise ValueError("mean_sample: no samples")
    keys = sorted({k for s in samples for k in s.by_category})
    n = len(samples)
    return Sample(sum(s.cycles for s in samples) / n, sum(s.io for s in samples) / n,
                  {k: sum(s.by_category.get(k, 0) for s in samples) / n for k in keys})


def _check_system(system):
    if system not in SYSTEMS:
        raise ValueError(f"system {system!r} unknown; allowed: {', '.join(SYSTEMS)}")


def _memory_bytes(memory_mb):
    mb = characteristic("memory_mb") if memory_mb is None else memory_mb
    if not isinstance(mb, int) or isinstance(mb, bool) or mb < 16:
        raise ValueError(f"memory_mb {mb!r} must be an integer >= 16 (native Linux's image "
                         "alone takes 8 MB of frames)")
    return mb << 20


def page_size(cpu_profile):
    """The page size of a CPU profile's page-table format."""
    return get_format(load_profile(cpu_profile).format).page_size


def buffer_cache_pages(memory_bytes, page_bytes):
    """The UNIX buffer cache: a fraction of physical memory, in page-sized buffers."""
    frac = characteristic("unix_buffer_cache_fraction")
    if not 0 < frac <= 1:
        raise ValueError(f"unix_buffer_cache_fraction {frac!r} must be in (0, 1]")
    return max(1, int(frac * memory_bytes) // page_bytes)


def file_data(name, nbytes, page):
    """The bytes of an installed file: a pattern that depends on the name (not all zeros,
    so that a wrong page shows)."""
    one = bytes((i * 7 + len(name)) % 251 for i in range(page))
    return (one * -(-nbytes // page))[:nbytes]


# ---------------------------------------------------------------------------- Mach side
class MachSystem:
    """A Mach kernel, a file server that pages its files from a simulated disk, a client."""

    def __init__(self, cpu_profile="pentium-133", seed=1, memory_mb=None, placement_seed=None):
        self.m = Machine(cpu_profile, seed=seed, memory_bytes=_memory_bytes(memory_mb),
                         placement_seed=placement_seed)
        self.k = MachKernel(self.m)
        self.fs = FileServer(self.k)
        self.client = self.k.task_create(name="client")
        self.server = self.fs.give(self.fs.service, self.client)
        self.page = self.k.page
        self._next_block = 1

    def disk_requests(self):
        """Every disk request so far: the file server's and the default pager's."""
        n = self.fs.disk.reads + self.fs.disk.writes
        dp = self.k.default_pager
        return n + (dp.disk.reads + dp.disk.writes if dp is not None else 0)

    def install(self, name, nbytes):
        """Put a file of `nbytes` on the file server's disk (set-up; not measured)."""
        self.fs.create_file(name, file_data(name, nbytes, self.page),
                            first_block=self._next_block)
        self._next_block += -(-nbytes // self.page)

    def _measured(self, fn):
        d0 = self.disk_requests()
        with self.m.measure() as r:
            fn()
            self.k.run()                  # messages still queued (none expected) are part of it
        return Sample(r.cycles, self.disk_requests() - d0, r.by_category)

    def _read(self, name):
        """Map the file (fs_read_file: its memory object, copy-on-write), read every line of
        it, unmap it.  Missing pages come from the file server as pager_data_provided."""
        a, n = fs_read_file(self.k, self.client, self.server, name)
        self.k.user_access(self.client, "r", O.lines(a, n, LINE))
        self.k.vm_deallocate(self.client, a, n)

    def read_file(self, name):
        """Read a whole file.  -> Sample"""
        return self._measured(lambda: self._read(name))

    def cow_copies(self):
        """Pages copied by copy-on-write faults so far."""
        return self.k.stats["cow_faults"]

    @property
    def cache_pages(self):
        """Frames the kernel may use as its cache of memory objects."""
        return self.k.max_resident_pages

    def compute(self, instructions):
        self.k.user_run(self.client, O.charge("user", instructions * self.m.cpi))

    def compile_pass(self, job, instructions_per_byte):
        """One pass of a CompileJob: every unit reads its files, then computes."""
        def body():
            for names, text in job.units:
                for f in names:
                    self._read(f)
                self.compute(instructions_per_byte * text)
        return self._measured(body)

    def zero_fill(self, nbytes, iterations):
        """Write `nbytes` into fresh vm_allocate'd pages, one page per measurement: each is a
        zero-fill fault.  -> a Sample per measured repetition (after a warm-up)."""
        a = self.k.vm_allocate(self.client, 0, (iterations + 1) * self.page)
        out = []
        for i in range(iterations + 1):
            va = a + i * self.page
            out.append(self._measured(lambda: self.k.user_access(self.client, "w",
                                                                  O.lines(va, nbytes, LINE))))
        self.k.vm_deallocate(self.client, a, (iterations + 1) * self.page)
        return out[1:]

    def fork(self, nbytes, iterations):
        """fork of a task with `nbytes` of written memory: task_create inheriting its map
        (VM_INHERIT_COPY: copy-on-write), then the child terminates.  -> Samples."""
        out = []
        for i in range(iterations + 1):
            parent = self.k.task_create(name=f"forker{i}")
            a = self.k.vm_allocate(parent, 0, nbytes)
            self.k.user_access(parent, "w", O.lines(a, nbytes, LINE))

            def body():
                child = self.k.task_create(parent, inherit_memory=True, name=f"child{i}",
                                           caller=parent)
                self.k.task_terminate(child, caller=child)
            out.append(self._measured(body))
            self.k.task_terminate(parent)
        return out[1:]


# ---------------------------------------------------------------------------- UNIX side
def _sample(p, fn, *args):
    """Run fn(*args) in the program, measured with the cycle counter (free, like rdtsc)."""
    d0 = p.kernel.disk.requests
    with p.measure() as r:
        fn(*args)
    return Sample(r.cycles, p.kernel.disk.requests - d0, r.by_category)


def _read_whole(p, path, buf, chunk):
    fd = p.open(path, O_RDONLY)
    while True:
        n = p.read(fd, buf, chunk)
        if n <= 0:
            break
        p.touch(buf, n)                    # the reader looks at what it read
    p.close(fd)


def _unix_read(p, path, chunk):
    buf = p.malloc(chunk, align=p.page)
    p.touch(buf, chunk, write=True)        # the buffer is resident before the clock starts
    return _sample(p, _read_whole, p, path, buf, chunk)


def _unix_zero_fill(p, nbytes, iterations):
    region = p.malloc((iterations + 1) * p.page, align=p.page)
    out = [_sample(p, p.touch, region + i * p.page, nbytes, True) for i in range(iterations + 1)]
    return out[1:]


def _bsd_fork_child(c, heap, nbytes):
    """4.3BSD's fork copied the parent's memory eagerly: one write per page makes the kernel
    copy each page now (lab.mono's fork itself is copy-on-write)."""
    c.touch(heap, nbytes, write=True, stride=c.page)
    return 0


def _unix_fork(p, nbytes, iterations):
    heap = p.malloc(nbytes, align=p.page)
    p.touch(heap, nbytes, write=True)
    out = []
    for i in range(iterations + 1):
        out.append(_sample(p, lambda: p.wait4(p.fork(_bsd_fork_child, heap, nbytes))))
        p.touch(heap, nbytes, write=True)  # the parent writes again (untimed): pages its own
    return out[1:]


class UnixSystem:
    """lab.mono on the native platform, its buffer cache 10% of physical memory."""

    def __init__(self, cpu_profile="pentium-133", seed=1, memory_mb=None, placement_seed=None):
        mem = _memory_bytes(memory_mb)
        self.cache_pages = buffer_cache_pages(mem, page_size(cpu_profile))
        self.linux = boot("linux", cpu_profile, seed, memory_bytes=mem,
                          buffer_cache_pages=self.cache_pages, log_syscalls=False,
                          placement_seed=placement_seed)
        self.m = self.linux.m
        self.page = self.m.fmt.page_size

    def disk_requests(self):
        return self.linux.disk.requests

    def install(self, name, nbytes):
        """Put a file on the disk (mkfs time: free, not cached)."""
        self.linux.fs.create(_path(name), file_data(name, nbytes, self.page))

    def run(self, program, *args):
        """Run `program(libc, *args)` as a process to completion; its return value."""
        p = self.linux.spawn(program, *args)
        self.linux.run()
        return p.result

    def read_file(self, name, chunk=None):
        chunk = chunk or characteristic("read_chunk_bytes")
        return self.run(_unix_read, _path(name), chunk)

    def zero_fill(self, nbytes, iterations):
        return self.run(_unix_zero_fill, nbytes, iterations)

    def fork(self, nbytes, iterations):
        return self.run(_unix_fork, nbytes, iterations)

    def cow_copies(self):
        """Pages copied by copy-on-write faults so far (the eager copy's page faults)."""
        return len(self.m.events.find("page_fault", kernel="linux", type="cow"))

    def compile_pass(self, job, instructions_per_byte):
        """One pass of a CompileJob, as one process."""
        return self.run(_unix_compile_pass, job, instructions_per_byte,
                        characteristic("read_chunk_bytes"))


def _path(name):
    return "/tmp/" + name.replace("/", "_")


def make_system(system, cpu_profile="pentium-133", seed=1, memory_mb=None, placement_seed=None):
    _check_system(system)
    cls = MachSystem if system == "mach" else UnixSystem
    return cls(cpu_profile, seed, memory_mb, placement_seed)


# ---------------------------------------------------------------------------- Table 7-1
def table(system, cpu_profile="pentium-133", seed=1, memory_mb=None, quick=False,
          placement_seed=None):
    """R87 Table 7-1 on one system, in one boot: {"samples": {benchmark: Sample}} for
    BENCHMARKS (zero fill and fork averaged over the repetitions; each file read first cold,
    then again), with the clock, the memory, the file cache's size in pages and the
    profile's disk time, memory latency and cache line."""
    s = make_system(system, cpu_profile, seed, memory_mb, placement_seed)
    it = 1 if quick else characteristic("iterations")
    s.install("big", characteristic("big_file_bytes"))
    s.install("small", characteristic("small_file_bytes"))
    samples = {"zero_fill": mean_sample(s.zero_fill(characteristic("zero_fill_bytes"), it))}
    cow0 = s.cow_copies()
    samples["fork"] = mean_sample(s.fork(characteristic("fork_bytes"), it))
    # pages copied per fork (the warm-up fork included): none on Mach, all on 1987 UNIX
    out = {"samples": samples, "cow_copies_per_fork": (s.cow_copies() - cow0) / (it + 1)}
    for name in ("big", "small"):
        for rnd in (1, 2):
            samples[f"read_{name}_{rnd}"] = s.read_file(name)
    out.update(clock_mhz=s.m.profile["clock_mhz"], memory_bytes=s.m.memory.size,
               cache_pages=s.cache_pages, page=s.page,
               disk_ms=s.m.profile["disk_ms_per_request"],
               memory_latency_cycles=s.m.profile["memory_latency_cycles"],
               line=min(c["line"] for c in s.m.cache_config))
    return out


def read_twice(system, nbytes, cpu_profile="pentium-133", seed=1, memory_mb=None,
               placement_seed=None):
    """Read one file of `nbytes` twice on a fresh system: [Sample, Sample]."""
    s = make_system(system, cpu_profile, seed, memory_mb, placement_seed)
    s.install("file", nbytes)
    return [s.read_file("file") for _ in range(2)]


# ---------------------------------------------------------------------------- compile job
@dataclass(frozen=True)
class CompileJob:
    """What a compile-like job reads: files (name -> bytes) and, per unit, the files it
    reads in order and the bytes of preprocessed text the compiler works through."""
    files: tuple          # ((name, bytes), ...)
    units: tuple          # ((file names read, text bytes), ...)

    @property
    def total_bytes(self):
        return sum(n for _, n in self.files)

    @property
    def reads_per_pass(self):
        size = dict(self.files)
        return sum(size[f] for names, _ in self.units for f in names)


def make_compile_job(seed=1, units=None):
    """The compile-like job of lab/profiles/mach_objects.json: each unit runs cpp (reading
    its source and headers), ccom and as; headers beyond the common ones are drawn with
    `seed`."""
    c = characteristic
    units = c("compile_units") if units is None else units
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"units {units!r} must be a positive integer")
    nh, hb, common, other = (c("compile_headers"), c("compile_header_bytes"),
                             c("compile_common_headers"), c("compile_other_headers"))
    if common + other > nh:
        raise ValueError(f"{common} common + {other} other headers exceed the {nh} headers")
    passes = [("cpp", c("compile_cpp_bytes")), ("ccom", c("compile_ccom_bytes")),
              ("as", c("compile_as_bytes"))]
    headers = [(f"h{i}.h", hb) for i in range(nh)]
    sources = [(f"u{i}.c", c("compile_source_bytes")) for i in range(units)]
    rng = random.Random(seed)
    rest = [h for h, _ in headers[common:]]
    plan = []
    for src, sb in sources:
        inc = [h for h, _ in headers[:common]] + sorted(rng.sample(rest, other),
                                                        key=lambda h: int(h[1:-2]))
        names = ("cpp", src, *inc, "ccom", "as")
        plan.append((names, sb + len(inc) * hb))
    return CompileJob(tuple(passes + headers + sources), tuple(plan))


def compile_job(system, cpu_profile="pentium-133", seed=1, memory_mb=None, units=None,
                passes=2, placement_seed=None):
    """Run the compile-like job `passes` times on a fresh system (the first pass finds
    nothing cached).  -> {"passes": [Sample per pass], "job": CompileJob, "cache_pages", ...}"""
    if not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes {passes!r} must be a positive integer")
    job = make_compile_job(seed, units)
    s = make_system(system, cpu_profile, seed, memory_mb, placement_seed)
    for name, n in job.files:
        s.install(name, n)
    ipb = characteristic("compile_instructions_per_byte")
    out = [s.compile_pass(job, ipb) for _ in range(passes)]
    return {"passes": out, "job": job, "cache_pages": s.cache_pages, "page": s.page,
            "memory_bytes": s.m.memory.size, "clock_mhz": s.m.profile["clock_mhz"]}


def _unix_compile_pass(p, job, ipb, chunk):
    buf = p.malloc(chunk, align=p.page)
    p.touch(buf, chunk, write=True)

    def body():
        for names, text in job.units:
            for f in names:
                _read_whole(p, _path(f), buf, chunk)
            p.compute(ipb * text)
    return _sample(p, body)
