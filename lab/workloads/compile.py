"""Recompiling the Linux server (S97 Fig. 7) as a build on the Linux user layer.

What a 1996 `make` of Linux 2.0 does for each C file, as programs on `lab.mono.user.Libc`:

    make         stats the unit's prerequisites, forks a child that execs the gcc driver, waits
    gcc          (dynamically linked: ld.so maps libc.so.5) reads its specs, makes two pipes and
                 forks cpp | cc1 | as (gcc -pipe), each child redirecting stdin/stdout with
                 close + dup before its execve; waits for the three
    cpp          reads the source and every header it includes through the file system (namei,
                 buffer cache), writes the preprocessed text into the first pipe
    cc1          reads the pipe in stdio-buffer pieces; after each piece it does the compiler's
                 work for it (instructions, plus its code and heap touched through the MMU: its
                 heap grows by brk and faults in page by page), writes assembler into the second
    as           reads the assembler, assembles it, writes the object file
    ld           (once, after the units) reads the objects and writes the linked output

The images (/usr/bin/make, /usr/bin/gcc, .../cpp, .../cc1, /usr/bin/as, /usr/bin/ld) are
installed into the file system as `ProgramImage`s (text from the file, faulted in from the
buffer cache on each exec), with sizes from lab/profiles/compile.json.  All workload
characteristics come from there: documented estimates, never fitted to Fig. 7 (DESIGN §4).

User work and its locality (`work`): a program's instructions run in rounds of
`round_instructions`; each round fetches the program's hot code lines and one line of each page
of its code working set, reads and writes its hot data lines and one line of each page of its
data working set, and writes its share of newly allocated memory.  So a space switch (which on
the Pentium flushes the TLB) or a server's cache footprint costs the program refills in the
following rounds: the TLB and cache effects of a platform emerge, they are not charged.

Sampling and scaling: `measure` compiles a sample of units (sizes spread around the average
unit, stratified) in full detail and scales the mean per unit to `units_total`, the number of
C files of the real build; the link is scaled per object.  Before the measured build a process
reads every file of the build once (a recompile finds the tree in the buffer cache;
`cache_warm`), so no disk wait falls into the measurement unless the cache overflows.

    r = measure("l4linux", units=4)      # -> CompileResult: r.seconds, r.per_unit, r.counts
"""
import math
from dataclasses import dataclass, field

import numpy as np

from engine import ops as O
from lab.mono.programs import ld_so
from lab.kprofile import load_kernel_profile
from lab.mono import ProgramImage
from lab.mono.abi import O_CREAT, O_TRUNC, O_WRONLY
from lab.mono.errors import ENOENT
from lab.mono.programs import image_contents

PROFILE = "compile"
SRC = "/usr/src/linux"
INCLUDE = SRC + "/include"
LIBEXEC = "/usr/lib/gcc-lib/i486-linux/2.7.2"
PROGRAMS = {"make": "/usr/bin/make", "gcc": "/usr/bin/gcc", "cpp": LIBEXEC + "/cpp",
            "cc1": LIBEXEC + "/cc1", "as": "/usr/bin/as", "ld": "/usr/bin/ld"}
LINE = 32
# Names of the sampled units, for readable logs; their sizes come from the profile, not these files.
UNIT_NAMES = ("kernel/sched.c", "mm/memory.c", "fs/buffer.c", "net/ipv4/tcp.c", "fs/ext2/inode.c",
              "drivers/char/tty_io.c", "kernel/fork.c", "fs/namei.c", "mm/filemap.c",
              "net/core/dev.c", "drivers/block/ll_rw_blk.c", "ipc/shm.c")


# ---------------------------------------------------------------------- characteristics
def characteristics(profile=PROFILE):
    """The workload characteristics (a KernelProfile: c["units_total"], ...)."""
    return load_kernel_profile(profile)


@dataclass(frozen=True)
class Locality:
    """What a program touches per round of `round` instructions (see the module docstring)."""
    round: int
    code_hot: int
    code_pages: int
    data_hot: int
    data_pages: int

    @classmethod
    def of(cls, c, prog):
        return cls(int(c["round_instructions"]), int(c[f"{prog}_code_hot_bytes"]),
                   int(c[f"{prog}_code_pages"]), int(c[f"{prog}_data_hot_bytes"]),
                   int(c[f"{prog}_data_pages"]))


def _region_lines(rng, start, nbytes, hot):
    """Line addresses of a hot block of `hot` bytes at a random place in [start, +nbytes)."""
    hot = min(hot, nbytes)
    if hot <= 0:
        return np.zeros(0, np.int64)
    off = int(rng.integers(0, (nbytes - hot) // LINE + 1)) * LINE
    return O.lines(start + off, hot, LINE)


def _page_lines(rng, start, nbytes, npages, page):
    """One line in each of `npages` distinct pages of [start, +nbytes) (fewer if it is smaller)."""
    first, last = start // page, (start + nbytes - 1) // page
    avail = last - first + 1 if nbytes > 0 else 0
    n = min(npages, avail)
    if n <= 0:
        return np.zeros(0, np.int64)
    pages = first + np.sort(rng.choice(avail, size=n, replace=False))
    lo = np.maximum(pages * page, start)
    hi = np.minimum(pages * page + page, start + nbytes)
    span = np.maximum((hi - lo) // LINE, 1)
    return (lo - lo % LINE) + (rng.integers(0, 1 << 30, size=n) % span) * LINE


def work(p, instructions, loc, code, data, grow=None, rng=None):
    """`instructions` of user work in process `p` (see the module docstring).

    `code`, `data`: (start, nbytes) regions the hot lines and working-set pages are drawn from
    (data must already be in use: written before); `grow`: (start, nbytes) of memory the work
    writes for the first time (its pages fault in: demand zero).  One engine batch."""
    if instructions < 0:
        raise ValueError(f"work: instructions {instructions} must be >= 0")
    rng = rng if rng is not None else np.random.default_rng(0)
    page = p.page
    rounds = max(1, math.ceil(instructions / loc.round))
    per = instructions * p.m.cpi / rounds
    gl = O.lines(grow[0], grow[1], LINE) if grow and grow[1] > 0 else np.zeros(0, np.int64)
    gsplit = np.array_split(gl, rounds)
    code_hot = _region_lines(rng, code[0], code[1], loc.code_hot)
    data_hot = _region_lines(rng, data[0], data[1], loc.data_hot)
    parts = []
    for i in range(rounds):
        parts += [O.charge("user", per),
                  O.access("x", code_hot),
                  O.access("x", _page_lines(rng, code[0], code[1], loc.code_pages, page)),
                  O.access("w", data_hot),
                  O.access("r", _page_lines(rng, data[0], data[1], loc.data_pages, page)),
                  O.access("w", gsplit[i])]
    p.run(O.concat(*parts))


# ---------------------------------------------------------------------- images
def start(p):
    """ld.so, then the image's own start-up: its start-up code and data are touched."""
    img, lay = p.proc.image, p.kernel.layout(p.proc)
    ld_so(p)
    p.compute(img.startup_instructions, code_bytes=img.text_touched)
    p.touch(lay["data"][0], img.data_touched, write=True)


def _exec(c, path, argv):
    c.execve(path, argv)


def _tool(c, path, argv, stdin, stdout, close):
    """A child of the gcc driver: stdin/stdout onto the pipes (close + dup), the pipe
    descriptors closed, then the tool's image."""
    if stdin is not None:
        c.close(0)
        c.dup(stdin)
    if stdout is not None:
        c.close(1)
        c.dup(stdout)
    for fd in close:
        c.close(fd)
    c.execve(path, argv)


COUNTED = {"syscall": "syscalls", "page_fault": "page_faults", "switch": "switches",
           "fork": "forks", "exec": "execs"}


def event_counts(events):
    """How many system calls, page faults, process switches, forks and execs Linux logged."""
    out = dict.fromkeys(COUNTED.values(), 0)
    for e in events:
        if e.kernel == "linux" and e.operation in COUNTED:
            out[COUNTED[e.operation]] += 1
    return out


@dataclass(frozen=True)
class Unit:
    """One compilation unit: its source path, lines of code, headers and their total bytes."""
    path: str
    lines: int
    body_bytes: int
    headers: tuple
    header_bytes: int

    @property
    def object(self):
        return self.path[:-2] + ".o"


@dataclass
class UnitTiming:
    path: str
    cycles: int
    by_category: dict
    stats: dict
    counts: dict


class Build:
    """The build tree, tool images and programs on one booted LinuxKernel `kernel`."""

    def __init__(self, kernel, seed=1, profile=PROFILE):
        self.k = kernel
        self.c = characteristics(profile)
        self.seed = seed
        self.units = {}
        self.files = []             # every file of the build (what the warm-up reads)
        self.timings = []
        self.link = None
        self._hsize = {}            # header path -> bytes
        c = self.c
        self.loc = {p: Locality.of(c, p) for p in ("cc1", "cpp", "as", "tool")}
        self.buf = int(c["stdio_buffer_bytes"])

    # -- installation (mkfs time: charges nothing) --
    def _mkdirs(self, path):
        parts = [x for x in path.split("/") if x]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            try:
                self.k.fs.lookup(d)
            except ENOENT:
                self.k.fs.mkdir(d)

    def _file(self, path, data, image=None):
        self._mkdirs(path.rsplit("/", 1)[0])
        self.k.fs.create(path, data, image=image)
        self.files.append(path)

    def _image(self, prog, main):
        v = lambda name: int(self.c[f"{prog}_{name}"])
        img = ProgramImage(PROGRAMS[prog], v("text_bytes"), v("data_bytes"), v("bss_bytes"),
                           v("text_touched_bytes"), v("data_touched_bytes"),
                           v("startup_instructions"), main)
        self._file(img.path, image_contents(img, self.k.m.fmt.page_size), image=img)
        self.k.images[img.path] = img
        return img

    def install_tools(self):
        """The tool images, the header pool, the Makefile and the specs file."""
        if self._hsize:
            return
        c = self.c
        rng = np.random.default_rng([self.seed, 7])
        mains = {"make": self._make, "gcc": self._gcc, "cpp": self._cpp, "cc1": self._cc1,
                 "as": self._as, "ld": self._ld}
        for prog, main in mains.items():
            self._image(prog, main)
        self.files.append("/lib/libc.so.5")
        for i in range(int(c["header_pool"])):
            path = f"{INCLUDE}/{'linux' if i % 4 else 'asm'}/h{i:03d}.h"
            n = max(64, int(round(c["header_bytes"] * rng.uniform(0.3, 1.7))))
            self._file(path, bytes((j * 13 + i) & 0x7F | 0x20 for j in range(n)))
            self._hsize[path] = n
        self._file(f"{SRC}/Makefile", b"#" * int(c["make_read_bytes"]))
        self._file(f"{LIBEXEC}/specs", b"*" * int(c["gcc_specs_bytes"]))

    def add_unit(self, path, lines, nheaders):
        """A source file of `lines` lines including `nheaders` headers (the common ones first,
        the rest drawn from the pool with the build's seed)."""
        c = self.c
        self.install_tools()
        paths = sorted(self._hsize)
        pool, common = len(paths), min(int(c["headers_common"]), nheaders)
        if not 0 < nheaders <= pool or lines < 1:
            raise ValueError(f"add_unit: nheaders {nheaders} must be in 1..{pool}, "
                             f"lines {lines} >= 1")
        rng = np.random.default_rng([self.seed, 11, len(self.units)])
        extra = rng.choice(pool - common, size=nheaders - common, replace=False) + common
        heads = tuple(paths[i] for i in list(range(common)) + sorted(int(x) for x in extra))
        body = lines * int(c["source_line_bytes"])
        text = "".join(f"#include <{h[len(INCLUDE) + 1:]}>\n" for h in heads).encode()
        self._file(path, text + b"x" * body)
        self.units[path] = Unit(path, lines, body, heads, sum(self._hsize[h] for h in heads))
        return self.units[path]

    def install(self, nunits):
        """Tools, headers and `nunits` sampled units around the average unit (stratified)."""
        if not isinstance(nunits, int) or nunits < 1:
            raise ValueError(f"install: nunits {nunits!r} must be an int >= 1")
        c = self.c
        spread = float(c["unit_size_spread"])
        factors = [1.0] if nunits == 1 else list(1 + spread * np.linspace(-1, 1, nunits))
        for u in range(nunits):
            name = UNIT_NAMES[u % len(UNIT_NAMES)]
            if u >= len(UNIT_NAMES):
                name = name[:-2] + f"_{u // len(UNIT_NAMES)}.c"
            self.add_unit(f"{SRC}/{name}", max(1, int(round(c["source_lines"] * factors[u]))),
                          int(c["headers_per_unit"]))

    @staticmethod
    def gcc_argv(unit, obj=None):
        """The command line make runs for a unit (Linux 2.0's Rules.make with gcc -pipe)."""
        return ["gcc", "-D__KERNEL__", f"-I{INCLUDE}", "-Wall", "-O2", "-fomit-frame-pointer",
                "-pipe", "-c", "-o", obj or unit.object, unit.path]

    # -- helpers of the programs --
    def _rng(self, p, what):
        return np.random.default_rng([self.seed, p.pid, sum(what.encode())])

    def _code(self, p, hot=None):
        lay, img = p.kernel.layout(p.proc), p.proc.image
        return lay["text"][0], min(hot or img.text_touched, img.text_bytes)

    def _read_file(self, p, path, buf, chunk=None, each=None):
        """open/read in stdio pieces/close; `each(n)` after every piece; total bytes."""
        fd = p.open(path)
        total = 0
        while True:
            n = p.read(fd, buf, chunk or self.buf)
            if n == 0:
                break
            total += n
            if each is not None:
                each(n)
        p.close(fd)
        return total

    def _write_file(self, p, path, buf, nbytes):
        """create/truncate `path` and write `nbytes` from `buf` in stdio pieces."""
        fd = p.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        left = nbytes
        while left > 0:
            left -= p.write(fd, buf, min(self.buf, left))
        p.close(fd)

    class _Out:
        """A stdio output stream: bytes collect in the buffer, written in full pieces."""

        def __init__(self, p, fd, buf, size):
            self.p, self.fd, self.buf, self.size, self.pending = p, fd, buf, size, 0.0

        def put(self, nbytes):
            self.pending += nbytes
            while self.pending >= self.size:
                self.p.write(self.fd, self.buf, self.size)
                self.pending -= self.size

        def flush(self):
            n = int(round(self.pending))
            if n > 0:
                self.p.write(self.fd, self.buf, n)
            self.pending = 0.0

    # -- the programs (main(p, argv)) --
    def shell(self, p, units):
        """The user's shell: (warm-up) read the build's files, then `make` the units."""
        if int(self.c["cache_warm"]):
            buf = p.malloc(64 * 1024)
            for path in self.files:
                self._read_file(p, path, buf, chunk=64 * 1024)
        p.wait4(p.fork(_exec, PROGRAMS["make"], ["make"] + list(units)))
        return 0

    def _timed(self, p, fn):
        """Run fn() measured: (measurement, event counts, disk requests included)."""
        n0, d0 = len(self.k.m.events), self.k.disk.requests
        with p.measure() as r:
            fn()
        counts = event_counts(self.k.m.events.events[n0:])
        counts["disk_requests"] = self.k.disk.requests - d0
        return r, counts

    def _make(self, p, argv):
        c = self.c
        start(p)
        buf = p.malloc(self.buf)
        self._read_file(p, f"{SRC}/Makefile", buf)
        rng = self._rng(p, "make")
        heap = (p.proc.mm.brk_start, max(self.buf, p.proc.user["heap"] - p.proc.mm.brk_start))
        for src in argv[1:]:
            unit = self.units[src]

            def one():
                deps = unit.headers[:max(0, int(c["make_stats_per_unit"]) - 2)]
                for path in (src, unit.object) + deps:
                    try:
                        p.stat(path)
                    except ENOENT:          # the object does not exist yet
                        pass
                work(p, int(c["make_instructions_per_unit"]), self.loc["tool"], self._code(p),
                     heap, rng=rng)
                p.wait4(p.fork(_exec, PROGRAMS["gcc"], self.gcc_argv(unit)))
            r, counts = self._timed(p, one)
            self.timings.append(UnitTiming(src, r.cycles, r.by_category, r.stats, counts))
        objs = [self.units[s].object for s in argv[1:]]

        def link():
            p.wait4(p.fork(_exec, PROGRAMS["ld"], ["ld", "-r", "-o", f"{SRC}/built.o"] + objs))
        r, counts = self._timed(p, link)
        self.link = UnitTiming("ld", r.cycles, r.by_category, r.stats, counts)
        return 0

    def _gcc(self, p, argv):
        c = self.c
        src, obj = argv[-1], argv[argv.index("-o") + 1]
        start(p)
        buf = p.malloc(self.buf)
        self._read_file(p, f"{LIBEXEC}/specs", buf)
        work(p, int(c["gcc_driver_instructions"]), self.loc["tool"], self._code(p),
             (buf, self.buf), rng=self._rng(p, "gcc"))
        r1, w1 = p.pipe()
        r2, w2 = p.pipe()
        fds = (r1, w1, r2, w2)
        pids = [p.fork(_tool, PROGRAMS["cpp"], ["cpp", "-D__KERNEL__", f"-I{INCLUDE}", src],
                       None, w1, fds),
                p.fork(_tool, PROGRAMS["cc1"], ["cc1", "-quiet", "-dumpbase", src, "-O2"],
                       r1, w2, fds),
                p.fork(_tool, PROGRAMS["as"], ["as", "-o", obj], r2, None, fds)]
        for fd in fds:
            p.close(fd)
        for pid in pids:
            p.wait4(pid)
        return 0

    def _cpp(self, p, argv):
        c, src = self.c, argv[-1]
        unit = self.units[src]
        start(p)
        rng = self._rng(p, "cpp")
        inbuf, outbuf = p.malloc(self.buf), p.malloc(self.buf)
        heap0 = inbuf
        out = self._Out(p, 1, outbuf, self.buf)
        ipb, ratio, hpb = (float(c["cpp_instructions_per_byte"]), float(c["cpp_output_ratio"]),
                           float(c["cpp_heap_per_input_byte"]))
        code = self._code(p)

        def consume(n):
            g = int(n * hpb)
            gva = p.malloc(g) if g else 0
            top = p.proc.user["heap"]
            work(p, int(n * ipb), self.loc["cpp"], code, (heap0, gva - heap0 if g else top - heap0),
                 grow=(gva, g), rng=rng)
            out.put(n * ratio)
        text = bytearray()

        def collect(n):
            text.extend(p.peek(inbuf, n))
        self._read_file(p, src, inbuf, each=collect)
        heads = [l[len("#include <"):-1] for l in text.decode(errors="replace").split("\n")
                 if l.startswith("#include <")]
        for h in heads:                             # each header in place of its #include
            self._read_file(p, f"{INCLUDE}/{h}", inbuf, each=consume)
        consume(unit.body_bytes)                    # then the unit's own text
        out.flush()
        return 0

    def _cc1(self, p, argv):
        c = self.c
        unit = self.units[argv[argv.index("-dumpbase") + 1]]
        start(p)
        rng = self._rng(p, "cc1")
        inbuf, outbuf = p.malloc(self.buf), p.malloc(self.buf)
        heap0 = inbuf
        out = self._Out(p, 1, outbuf, self.buf)
        ratio = float(c["cpp_output_ratio"])
        hdr_pp = unit.header_bytes * ratio
        src_pp = max(1.0, unit.body_bytes * ratio)
        rate_h = c["cc1_instructions_per_header_line"] / c["header_line_bytes"]
        rate_s = c["cc1_instructions_per_source_line"] * unit.lines / src_pp
        heap_h = c["cc1_heap_base_bytes"] / max(1.0, hdr_pp)
        heap_s = c["cc1_heap_per_source_line"] * unit.lines / src_pp
        asm_s = c["asm_lines_per_source_line"] * c["asm_line_bytes"] * unit.lines / src_pp
        code = self._code(p, int(c["cc1_text_hot_bytes"]))
        seen = 0
        while True:
            n = p.read(0, inbuf, self.buf)
            if n == 0:
                break
            h = min(n, max(0, int(hdr_pp) - seen))
            s = n - h
            seen += n
            g = int(h * heap_h + s * heap_s)
            gva = p.malloc(g) if g else 0
            top = p.proc.user["heap"]
            work(p, int(h * rate_h + s * rate_s), self.loc["cc1"], code,
                 (heap0, (gva if g else top) - heap0), grow=(gva, g), rng=rng)
            out.put(s * asm_s)
        out.flush()
        return 0

    def _as(self, p, argv):
        c, obj = self.c, argv[argv.index("-o") + 1]
        start(p)
        rng = self._rng(p, "as")
        inbuf = p.malloc(self.buf)
        heap0 = inbuf
        lb = float(c["asm_line_bytes"])
        rate, hpb = c["as_instructions_per_asm_line"] / lb, c["as_heap_per_asm_line"] / lb
        code = self._code(p)
        total = 0
        while True:
            n = p.read(0, inbuf, self.buf)
            if n == 0:
                break
            total += n
            g = int(n * hpb)
            gva = p.malloc(g) if g else 0
            top = gva if g else p.proc.user["heap"]
            work(p, int(n * rate), self.loc["as"], code, (heap0, top - heap0), grow=(gva, g),
                 rng=rng)
        nobj = int(total / lb * c["object_bytes_per_asm_line"])
        self._write_file(p, obj, inbuf, nobj)
        return 0

    def _ld(self, p, argv):
        c = self.c
        out_path, objs = argv[argv.index("-o") + 1], argv[argv.index("-o") + 2:]
        start(p)
        rng = self._rng(p, "ld")
        buf = p.malloc(self.buf)
        code = self._code(p)
        total = 0
        for o in objs:
            total += self._read_file(p, o, buf, each=lambda n: work(
                p, int(n * c["ld_instructions_per_object_byte"]), self.loc["tool"], code,
                (buf, self.buf), rng=rng))
        self._write_file(p, out_path, buf, total)
        return 0


# ---------------------------------------------------------------------- the experiment
@dataclass
class CompileResult:
    system: str
    units_total: int
    per_unit: list = field(default_factory=list)     # UnitTiming of each sampled unit
    link: UnitTiming = None
    mhz: float = 133.0
    cpi: float = 1.0

    @property
    def unit_cycles(self):
        """Mean cycles of a sampled unit (make's stat and fork, gcc, cpp, cc1, as)."""
        return float(np.mean([t.cycles for t in self.per_unit]))

    @property
    def cycles(self):
        """The whole build: the mean unit scaled to units_total, the link scaled per object."""
        n = len(self.per_unit)
        return self.units_total * (self.unit_cycles + self.link.cycles / n)

    @property
    def seconds(self):
        return self.cycles / (self.mhz * 1e6)

    def by_category(self):
        """Cycles of the whole (scaled) build by category."""
        n = len(self.per_unit)
        out = {}
        for t in self.per_unit + [self.link]:
            for k, v in t.by_category.items():
                out[k] = out.get(k, 0) + v * self.units_total / n
        return out

    def counts(self):
        """Mechanism counts per unit (system calls, page faults, switches, ...), link included."""
        n = len(self.per_unit)
        out = {}
        for t in self.per_unit + [self.link]:
            for k, v in t.counts.items():
                out[k] = out.get(k, 0) + v / n
        return out

    def stat(self, name):
        """An engine statistic (tlb.misses, l2.misses, ...) per unit, link included."""
        n = len(self.per_unit)
        return sum(t.stats.get(name, 0) for t in self.per_unit + [self.link]) / n


def measure(system, units=4, cpu_profile="pentium-133", seed=1, profile=PROFILE, **boot_options):
    """Build `units` sampled compilation units on `system` and scale to the real build.
    `boot_options` go to `lab.linux.boot` (e.g. placement_seed=N: frames in a scattered
    order)."""
    from lab.linux import boot
    if not isinstance(units, int) or units < 1:
        raise ValueError(f"measure: units {units!r} must be an int >= 1")
    k = boot(system, cpu_profile=cpu_profile, seed=seed, **boot_options)
    b = Build(k, seed=seed, profile=profile)
    b.install(units)
    k.spawn(b.shell, list(b.units), name="sh")
    k.run()
    return CompileResult(system, int(b.c["units_total"]), b.timings, b.link,
                         float(k.m.profile["clock_mhz"]), float(k.m.cpi))
