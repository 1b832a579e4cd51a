"""A reference-model test of the monolithic Linux's virtual memory and processes (lab/mono):
random programs run on native Linux (`boot("linux")`) and on a small plain-Python model of
Linux 2.0's VM semantics, written from Linux 2.0's mm/mmap.c, mm/memory.c and mm/filemap.c
(no code of lab.mono.mm); the two observable traces must be identical.

test_differential_platforms checks that five platforms agree with each other, but they all
share lab/mono: a mistake in Linux's own VM semantics is invisible there.  Here the model
decides.  It knows nothing of PTEs, frames, the zero page or copy-on-write: a process's
memory is a list of *areas* (start, end, protection, shared or private, file and offset) and
a dict page -> `Cell` (the bytes of that page of that process).  Two processes see the same
memory when they hold the same Cell; fork copies a private page's Cell eagerly.  Copy-on-
write must be indistinguishable from that.

Rules checked (each with the Linux 2.0 source it comes from):
  * mmap (do_mmap): the length is rounded up to pages; MAP_FIXED needs a page-aligned
    address inside user space (EINVAL) and replaces whatever was mapped there (do_munmap
    first); without MAP_FIXED the address is a hint: get_unmapped_area rounds it up to a
    page and takes the first gap at or above it (TASK_SIZE/3 when 0), anywhere in user
    space, ENOMEM when there is none; a range beyond TASK_SIZE is EINVAL even for a hint;
    a length of 0 maps nothing and returns the address (after the fd check);
    a file mapping needs a readable fd and, for MAP_SHARED with PROT_WRITE, a writable one
    (EACCES); a closed fd is EBADF; flags without MAP_SHARED or MAP_PRIVATE are EINVAL, and
    so is MAP_SHARED without a file (shared anonymous memory came with 2.4); a file offset
    must be page-aligned (generic_file_mmap: EINVAL), anonymous memory's is ignored.
  * munmap (do_munmap): an unaligned address or a range beyond TASK_SIZE is EINVAL; a length
    of 0 does nothing and succeeds; unmapping nothing succeeds; a partial unmap keeps the
    rest of the area (head, tail, or both sides of a hole: the area is split, the file
    offset of the tail piece advances).
  * brk (sys_brk): below the start of the heap nothing changes; shrinking always works and
    unmaps the pages above the new break (an access there is SIGSEGV; regrown pages read
    zero); growing fails (the old break is returned) if any mapping lies within
    [old break, new break + one page) -- Linux 2.0 keeps a guard page below the next area.
  * protection: a load from PROT_NONE, a store to a PROT_READ area (anonymous or file,
    private or shared), an access outside every area or to the kernel kills the process
    with SIGSEGV; the parent's wait4 gets status 11.
  * anonymous private memory reads zero until written; fork gives the child a copy-on-write
    copy: stores after fork, by the parent or the child, are invisible to the other, over
    several generations; the parent's stores after fork and before wait4 are not seen by the
    child (it runs when the parent sleeps: no preemption).
  * file mappings (filemap_nopage): MAP_SHARED maps the page cache's page: stores are read()
    by any process, and seen by every other shared mapping of that page (another process's
    too); MAP_PRIVATE maps the same page until the process writes it (do_wp_page copies):
    later write()s to the file are seen in pages the process never wrote, never in pages
    it did.  Bytes past the end of the file in its last page read zero; a page wholly
    beyond the end (by i_size) is SIGBUS through a shared mapping (wait status 7) and a
    zero page through a private one ("a private mapping just maps in a zero page").
  * read() into and write() from mapped memory: verify_area refuses a buffer the areas do
    not allow (EFAULT, nothing copied); the kernel's copy faults pages in like the process
    would (copy-on-write of a private page, a file page beyond the end), a file page at a
    time, so a buffer that is a mapping of the file itself sees each page's bytes as the
    copy reaches it.
  * open(O_TRUNC) (vmtruncate): every process's pages of the file go, private copies too;
    an access there is beyond the end until the file grows again.
  * execve drops every mapping (the old addresses are SIGSEGV) and maps the new image: text
    and data from the file (private), bss and stack anonymous, the break at the bss's end;
    open files survive.
  * pids are allocated one after another; wait4 returns (pid, status): exit code << 8 or the
    killing signal (SIGSEGV 11, SIGBUS 7; SIGKILL 9 when a fault finds no memory, checked
    outside the model); wait4 with no child is ECHILD.
  * after each step, the process's VMA list (merged where Linux 2.0's merge_segments would
    merge) equals the model's areas, and every page Linux has mapped for it holds the bytes
    the model says (pages the program never loads too); once every process has exited,
    every frame is back (the free frames are those after boot, less the buffer cache's).

Where the lab's Linux knowingly differs from 2.0 and other tests pin the difference, the model
follows the lab and says so (`LAB_DEVIATIONS`): those are reported, not hidden.
"""
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, given, settings, strategies as st
from hypothesis.control import currently_in_test_context

from lab.errors import KernelError
from lab.linux import boot
from lab.mono.abi import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, O_RDONLY, O_RDWR,
                          O_TRUNC,
                          PROT_EXEC, PROT_READ, PROT_WRITE, SEEK_SET, STACK_SIZE, TASK_SIZE,
                          TEXT_BASE, TASK_UNMAPPED_BASE)
from lab.mono.errors import FatalSignal
from lab.mono.programs import ProgramImage
from mono_helpers import allocated_frames, kept_frames

PAGE = 4096
R, RW, NONE, RX = PROT_READ, PROT_READ | PROT_WRITE, 0, PROT_READ | PROT_EXEC
WBASE = TASK_UNMAPPED_BASE - 2 * PAGE      # the window the programs aim at (2 pages below
NWIN = 14                                  # the mmap base, which are unmapped at first)
LOW = 0x10000000                           # a hint far below TASK_UNMAPPED_BASE
SCRATCH = TASK_SIZE - 20 * PAGE            # stack memory for read()/write() buffers
SIGSEGV = 11
SIGBUS = 7
FILES = ("/tmp/f0", "/tmp/f1")             # f0 opened O_RDWR as fd 3, f1 O_RDONLY as fd 4
IMAGES = {"/bin/vm1": (2, 1, 1), "/bin/vm2": (3, 2, 2)}    # text, data, bss pages

# Where the lab's Linux differs from Linux 2.0 on purpose (pinned by other tests); the model
# follows the lab on these points.
LAB_DEVIATIONS = {
    "private_beyond_eof": "a private file page wholly beyond the end of the file is the zero "
                          "page, a process's own from then on (2.0 maps the page cache's "
                          "page of that offset, all zeros, which a later write() growing "
                          "the file would fill)",
    "heap_prot": "the heap is PROT_READ|PROT_WRITE (2.0's sys_brk maps it with PROT_EXEC "
                 "too: invisible on i386, which cannot refuse execution)",
    "shared_readonly_fd": "MAP_SHARED of a file opened read-only stays shared (2.0 demotes "
                          "it to a private mapping: visible only beyond the end of file)",
    "brk_floor": "brk below the end of bss changes nothing (2.0 compares with end_code and "
                 "would unmap data and bss; no program draws it)",
    "fixed_file_offset": "MAP_FIXED of a file at an unaligned offset is EINVAL before "
                         "anything is unmapped (2.0 unmaps the old range first; not drawn)",
}


def _data(seed, n):
    return bytes((seed * 37 + i * 11 + (i >> 7)) & 0xFF for i in range(n))


def _up(n):
    return -(-n // PAGE) * PAGE


def _layout(image):
    """(text, data, bss) ranges and the heap base of an image (ELF layout of the time)."""
    t, d, b = IMAGES[image]
    t1 = TEXT_BASE + t * PAGE
    d1 = t1 + d * PAGE
    return (TEXT_BASE, t1), (t1, d1), (d1, d1 + b * PAGE), d1 + b * PAGE


def _image_bytes(image):
    t, d, _b = IMAGES[image]
    return _data(sum(image.encode()), (t + d) * PAGE)


def _addr(image, target):
    kind, j = target
    (t0, _t1), (d0, _d1), (b0, _b1), heap = _layout(image)
    return {"t": t0 + j * PAGE, "d": d0 + j * PAGE, "b": b0 + j * PAGE, "h": heap + j * PAGE,
            "w": WBASE + j * PAGE, "s": TASK_SIZE - (40 + j) * PAGE, "lo": LOW + j * PAGE,
            "k": 0xC0001000}[kind]


def _mmap_args(image, kind, npages, trim, prot, place, offsel):
    """The mmap(2) arguments an op stands for (shared by the interpreter and the model)."""
    length = npages * PAGE - trim if npages else 0
    typ, fd = {"anon_p": (MAP_PRIVATE | MAP_ANONYMOUS, -1),
               "anon_s": (MAP_SHARED | MAP_ANONYMOUS, -1),
               "anon_none": (MAP_ANONYMOUS, -1), "f0_p": (MAP_PRIVATE, 3), "f0_s": (MAP_SHARED, 3),
               "f1_p": (MAP_PRIVATE, 4), "f1_s": (MAP_SHARED, 4), "f0_none": (0, 3),
               "bad_fd": (MAP_PRIVATE, 9)}[kind]
    where, j = place
    if where == "any":
        addr = 0
    elif where == "hint":
        addr = WBASE + j * PAGE
    elif where == "hint_unal":
        addr = WBASE + j * PAGE + 8
    elif where == "hint_low":
        addr = LOW + 8 * j
    elif where == "hint_high":
        addr = TASK_SIZE - PAGE
    elif where == "fixed":
        addr, typ = WBASE + j * PAGE, typ | MAP_FIXED
    elif where == "fixed_heap":
        addr, typ = _layout(image)[3] + j * PAGE, typ | MAP_FIXED
    elif where == "fixed_unal":
        addr, typ = WBASE + j * PAGE + 8, typ | MAP_FIXED
    else:                                               # fixed_high
        addr, typ = TASK_SIZE - PAGE, typ | MAP_FIXED
    if where.endswith("_high"):         # [TASK_SIZE - PAGE, +2 pages): beyond user space
        length = 2 * PAGE
    offset = 100 if offsel == "unal" else offsel * PAGE
    return addr, length, prot, typ, fd, offset


# ====================================================================== the interpreter (Linux)
class Run:
    """One program's run on the kernel: the trace every process appends to (they run one at a
    time), and the exec'd images' programs."""

    def __init__(self, linux):
        self.k = linux
        self.trace = []
        self.execs = []
        self.pages = []             # present_pages at each snap, for the model to check

    def snap(self, p, label):
        self.trace.append((label, "vmas", kernel_areas(self.k, p.proc)))
        self.trace.append((label, "pages", ()))
        self.pages.append(present_pages(self.k, p.proc))


EXEC_RUNS = []              # the current example's Run (the exec'd image finds it here)


def kernel_areas(k, proc):
    """The process's VMAs as the model writes areas, merged as merge_segments would."""
    names = {}
    for path in FILES + tuple(IMAGES):
        names[id(k.fs.lookup(path))] = path
    out = []
    for v in proc.mm.vmas:
        f = names.get(id(v.inode), "?") if v.inode is not None else None
        out.append((v.start, v.end, v.prot, bool(v.flags & MAP_SHARED), f,
                    v.offset if f else 0))
    return merge_areas(out)


def present_pages(k, proc):
    """{page address: bytes} of every page Linux has mapped for the process now (the C
    library's own pages at the top of the stack left out: the model does not track them)."""
    return {vpn * PAGE: k.m.memory.read(pte.pa, PAGE)
            for vpn, pte in sorted(proc.mm.ptes.items()) if vpn * PAGE < SCRATCH}


def merge_areas(areas):
    out = []
    for a in sorted(areas):
        if out:
            s, e, prot, sh, f, off = out[-1]
            if e == a[0] and (prot, sh, f) == a[2:5] and (f is None or off + e - s == a[5]):
                out[-1] = (s, a[1], prot, sh, f, off)
                continue
        out.append(tuple(a))
    return tuple(out)


def k_load(p, image, target, off, n):
    return p.load(_addr(image, target) + off, min(n, PAGE - off))


def k_store(p, image, target, off, n, seed):
    p.store(_addr(image, target) + off, _data(seed, min(n, PAGE - off)))
    return 0


def k_mmap(p, image, *args):
    return p.mmap(*_mmap_args(image, *args))


def k_munmap(p, image, where, npages, trim):
    return p.munmap(*_munmap_args(image, where, npages, trim))


def _munmap_args(image, where, npages, trim):
    """(address, length) of a munmap op.  "high": [TASK_SIZE - PAGE, +2 pages), beyond user
    space (the top page itself is the C library's argument page: the programs keep it)."""
    kind, j = where
    length = npages * PAGE - trim if npages else 0
    if kind == "unal":
        return WBASE + j * PAGE + 8, length
    if kind == "high":
        return TASK_SIZE - PAGE, 2 * PAGE
    return _addr(image, where), length


def k_brk(p, image, pages, extra):
    cur = p.brk(0)
    return cur, p.brk(cur + pages * PAGE + extra)


def k_brk_to(p, image, j):
    return p.brk(_layout(image)[3] + j * PAGE)


def k_fwrite(p, image, f, off, n, seed):
    p.store(SCRATCH, _data(seed, n))
    p.lseek(3 + f, off, SEEK_SET)
    return p.write(3 + f, SCRATCH, n)


def k_fread(p, image, f, off, n):
    p.lseek(3 + f, off, SEEK_SET)
    got = p.read(3 + f, SCRATCH, n)
    return p.load(SCRATCH, got) if got else b""


def k_fread_to(p, image, target, off, f, foff, n):
    """read() from a file straight into mapped memory (the kernel's copy_to_user)."""
    p.lseek(3 + f, foff, SEEK_SET)
    return p.read(3 + f, _addr(image, target) + off, min(n, PAGE - off))


def k_fwrite_from(p, image, target, off, foff, n):
    """write() to f0 straight from mapped memory (the kernel's copy_from_user)."""
    p.lseek(3, foff, SEEK_SET)
    return p.write(3, _addr(image, target) + off, min(n, PAGE - off))


def k_trunc(p, image):
    """open(O_TRUNC) of f0 (and close): the file's pages leave every mapping."""
    return p.close(p.open(FILES[0], O_RDWR | O_TRUNC))


def k_wait_none(p, image):
    return p.wait4(-1)


K_LEAF = {"load": k_load, "store": k_store, "mmap": k_mmap, "munmap": k_munmap, "brk": k_brk,
          "brk_to": k_brk_to, "fwrite": k_fwrite, "fread": k_fread, "wait_none": k_wait_none,
          "fread_to": k_fread_to, "fwrite_from": k_fwrite_from, "trunc": k_trunc}
DEAD = "dead"


def k_run(p, R, label, image, ops):
    """Run `ops` in process `p`; DEAD once a signal has killed it."""
    for i, op in enumerate(ops):
        name = op[0]
        if name == "fork":
            _n, code, child_ops, parent_ops = op
            pid = p.fork(_k_child, R, f"{label}.{i}", image, child_ops, code)
            R.trace.append((label, "fork", pid))
            if k_run(p, R, label, image, parent_ops) == DEAD:
                return DEAD
            R.trace.append((label, "wait4", p.wait4(pid)))
            R.snap(p, label)
            continue
        if name == "exec":
            _n, code, sub = op
            R.execs.append((f"{label}x{i}", sub, code))
            p.execve("/bin/vm2", ["vm2", str(len(R.execs) - 1)])     # does not return
        try:
            res = ("ok", K_LEAF[name](p, image, *op[1:]))
        except FatalSignal as e:                  # the process dies with it (program ends)
            R.trace.append((label, name, ("killed", e.signal)))
            return DEAD
        except KernelError as e:
            res = ("error", e.code)
        R.trace.append((label, name, res))
        R.snap(p, label)
    return None


def _k_child(p, R, label, image, ops, code):
    R.snap(p, label)
    k_run(p, R, label, image, ops)
    return code


def _k_exec_main(p, argv):
    R = EXEC_RUNS[-1]
    label, ops, code = R.execs[int(argv[1])]
    R.snap(p, label)
    k_run(p, R, label, "/bin/vm2", ops)
    return code


def _k_main(p, R, ops):
    fd0, fd1 = p.open(FILES[0], O_RDWR), p.open(FILES[1], O_RDONLY)
    assert (fd0, fd1) == (3, 4)
    R.snap(p, "m")
    k_run(p, R, "m", "/bin/vm1", ops)
    return 0


def run_on_linux(prog, **boot_args):
    """(trace, main's exit status, frames lost, present pages at each snap) of `prog` on
    native Linux."""
    sizes, ops = prog
    linux = boot("linux", log_syscalls=False, **boot_args)
    for path, (t, d, b) in IMAGES.items():
        img = ProgramImage(path, t * PAGE, d * PAGE, b * PAGE, 0, 0, 0, _k_exec_main)
        linux.images[path] = img
        linux.fs.create(path, _image_bytes(path), image=img)
    for path, n in zip(FILES, sizes):
        linux.fs.create(path, _data(len(path) + n, n))
    before = allocated_frames(linux)
    R = Run(linux)
    EXEC_RUNS.append(R)
    try:
        proc = linux.spawn(_k_main, R, ops, image="/bin/vm1", name="vm")
        linux.run()
    finally:
        EXEC_RUNS.remove(R)
    assert not linux.procs.live()
    return R.trace, proc.exit_status, allocated_frames(linux) - before - kept_frames(linux), R.pages


# ====================================================================== the model (Linux 2.0)
class Cell:
    """One page of memory: what every page sharing it reads."""
    __slots__ = ("data",)

    def __init__(self, data=None):
        self.data = bytearray(PAGE) if data is None else bytearray(data)


@dataclass
class Area:
    start: int
    end: int
    prot: int
    shared: bool
    file: str = None            # a path, or None for anonymous memory
    offset: int = 0

    def key(self):
        return (self.start, self.end, self.prot, self.shared, self.file,
                self.offset if self.file else 0)


class MFile:
    """A file as the page cache holds it: its size and its pages (bytes beyond the size in
    the last page are the page's, seen by mappings, not by read())."""

    def __init__(self, data):
        self.size = len(data)
        self.pages = {}
        for i in range(0, len(data), PAGE):
            self.pages[i // PAGE] = bytearray(data[i:i + PAGE].ljust(PAGE, b"\0"))

    def page(self, idx):
        return self.pages.setdefault(idx, bytearray(PAGE))

    def read(self, off, n):
        n = max(0, min(n, self.size - off))
        out = bytearray()
        for a in range(off, off + n):
            out.append(self.page(a // PAGE)[a % PAGE])
        return bytes(out)

    def write(self, off, data):
        for i, b in enumerate(data):
            a = off + i
            self.page(a // PAGE)[a % PAGE] = b
        self.size = max(self.size, off + len(data))


class Killed(Exception):
    def __init__(self, sig):
        self.sig = sig


class Errno(Exception):
    def __init__(self, code):
        self.code = code


@dataclass
class MProc:
    pid: int
    image: str
    areas: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)       # page address -> Cell
    brk_start: int = 0
    brk: int = 0


class Model:
    """Linux 2.0's VM as the programs see it: files (page-cache pages), processes (areas and
    Cells), and the same program run op by op in the order Linux's scheduler runs it (no
    preemption: a child runs when its parent sleeps in wait4 or dies), producing the trace
    the interpreter records on the kernel."""

    def __init__(self, sizes, present=None):
        self.files = {path: MFile(_data(len(path) + n, n)) for path, n in zip(FILES, sizes)}
        for path in IMAGES:
            self.files[path] = MFile(_image_bytes(path))
        self.trace = []
        self.next_pid = 2
        self.live = []              # processes with an address space (zombies have none)
        self.present = list(present or ())

    # -------------------------------------------------------------- processes
    def new_proc(self, image):
        p = MProc(self.next_pid, image)
        self.next_pid += 1
        self.live.append(p)
        self.load_image(p, image)
        return p

    def load_image(self, p, image):
        """The binfmt loader: text and data private from the file, bss and stack anonymous."""
        (t0, t1), (d0, d1), (b0, b1), heap = _layout(image)
        p.image, p.cells = image, {}
        p.areas = [Area(t0, t1, RX, False, image, 0), Area(d0, d1, RW, False, image, t1 - t0),
                   Area(b0, b1, RW, False), Area(TASK_SIZE - STACK_SIZE, TASK_SIZE, RW, False)]
        p.brk_start = p.brk = heap

    def fork(self, parent):
        """The child's memory: the same areas; a private page is a copy, a shared one the
        same Cell."""
        c = MProc(self.next_pid, parent.image, brk_start=parent.brk_start, brk=parent.brk)
        self.next_pid += 1
        self.live.append(c)
        c.areas = [Area(**a.__dict__) for a in parent.areas]
        for va, cell in parent.cells.items():
            a = self.area(parent, va)
            c.cells[va] = cell if a.shared else Cell(cell.data)
        return c

    def snap(self, p, label):
        """The areas; and every page Linux has mapped at this point (`present`, in snap order)
        must hold the bytes the model says: the pages the program has not loaded too."""
        self.trace.append((label, "vmas", merge_areas([a.key() for a in p.areas])))
        present = self.present.pop(0) if self.present else {}
        self.trace.append((label, "pages", tuple(
            hex(va) for va, data in present.items() if self.view(p, va) != data)))

    def view(self, p, va):
        """The bytes of page `va` as the process would read them (None if it could not)."""
        a = self.area(p, va)
        if a is None:
            return None
        cell = p.cells.get(va)
        if cell is not None:
            return bytes(cell.data)
        if a.file is None:
            return bytes(PAGE)
        return bytes(self.files[a.file].page((a.offset + va - a.start) // PAGE))

    # -------------------------------------------------------------- areas
    def area(self, p, va):
        for a in p.areas:
            if a.start <= va < a.end:
                return a
        return None

    def unmap(self, p, start, end):
        """Cut [start, end) out of every area (do_munmap's unmap_fixup); its pages go."""
        keep = []
        for a in p.areas:
            if a.end <= start or end <= a.start:
                keep.append(a)
                continue
            if a.start < start:
                keep.append(Area(a.start, start, a.prot, a.shared, a.file, a.offset))
            if end < a.end:
                keep.append(Area(end, a.end, a.prot, a.shared, a.file,
                                 a.offset + end - a.start))
        p.areas = sorted(keep, key=lambda a: a.start)
        for va in [va for va in p.cells if start <= va < end]:
            del p.cells[va]

    def get_unmapped_area(self, p, addr, length):
        if length > TASK_SIZE:
            return 0
        addr = _up(addr or TASK_SIZE // 3)
        for a in sorted(p.areas, key=lambda a: a.start):
            if a.end <= addr:
                continue
            if TASK_SIZE - length < addr:
                return 0
            if addr + length <= a.start:
                return addr
            addr = a.end
        return 0 if TASK_SIZE - length < addr else addr

    # -------------------------------------------------------------- system calls
    def mmap(self, p, addr, length, prot, flags, fd, offset):
        """old_mmap + do_mmap + generic_file_mmap of Linux 2.0."""
        if not flags & MAP_ANONYMOUS and fd not in (3, 4):
            raise Errno("EBADF")
        length = _up(length)
        if length == 0:
            return addr                 # "if ((len = PAGE_ALIGN(len)) == 0) return addr;"
        if addr > TASK_SIZE - length:
            raise Errno("EINVAL")
        typ = flags & (MAP_SHARED | MAP_PRIVATE)
        if not flags & MAP_ANONYMOUS:
            if typ not in (MAP_SHARED, MAP_PRIVATE):
                raise Errno("EINVAL")
            if typ == MAP_SHARED and prot & PROT_WRITE and fd != 3:
                raise Errno("EACCES")                   # f1 is open read-only
        elif typ != MAP_PRIVATE:                        # no shared anonymous memory in 2.0
            raise Errno("EINVAL")
        if offset % PAGE and not flags & MAP_ANONYMOUS:
            raise Errno("EINVAL")                       # generic_file_mmap's check
        if flags & MAP_FIXED:
            if addr % PAGE:
                raise Errno("EINVAL")
        else:
            addr = self.get_unmapped_area(p, addr, length)
            if not addr:
                raise Errno("ENOMEM")
        self.unmap(p, addr, addr + length)
        f = None if flags & MAP_ANONYMOUS else FILES[fd - 3]
        p.areas.append(Area(addr, addr + length, prot, typ == MAP_SHARED, f,
                            offset if f else 0))
        p.areas.sort(key=lambda a: a.start)
        return addr

    def munmap(self, p, addr, length):
        if addr % PAGE or addr > TASK_SIZE or length > TASK_SIZE - addr:
            raise Errno("EINVAL")
        length = _up(length)
        if length:
            self.unmap(p, addr, addr + length)
        return 0

    def sys_brk(self, p, new):
        if new < p.brk_start:                   # (2.0: below end_code; nothing drawn there)
            return p.brk
        newp, oldp = _up(new), _up(p.brk)
        if newp == oldp:
            p.brk = new
            return new
        if new <= p.brk:
            p.brk = new
            self.unmap(p, newp, oldp)
            return new
        if any(a.start < newp + PAGE and oldp < a.end for a in p.areas):
            return p.brk                        # a mapping within the guard page
        p.areas.append(Area(oldp, newp, RW, False))     # LAB_DEVIATIONS["heap_prot"]
        p.areas.sort(key=lambda a: a.start)
        p.brk = new
        return new

    # -------------------------------------------------------------- memory
    def _page(self, p, va, write):
        """The bytearray behind page `va` for an access (SIGSEGV where 2.0 refuses it)."""
        a = self.area(p, va)
        if a is None or not a.prot & (PROT_WRITE if write else PROT_READ):
            raise Killed(SIGSEGV)
        page = va - va % PAGE
        if a.file is None:
            cell = p.cells.get(page)
            if cell is None and (write or a.shared):     # a shared page exists once touched
                cell = p.cells[page] = Cell()
            return cell.data if cell is not None else bytearray(PAGE)
        cell = p.cells.get(page)
        if cell is not None:
            return cell.data
        f = self.files[a.file]
        off = a.offset + page - a.start
        if off >= f.size:                               # wholly beyond the end
            if currently_in_test_context():
                event(f"beyond the end of a file: {'shared' if a.shared else 'private'}")
            if a.shared:
                raise Killed(SIGBUS)                    # do_no_page: send_sig(SIGBUS)
            return p.cells.setdefault(page, Cell()).data    # LAB_DEVIATIONS: zero page
        if a.shared:
            return f.page(off // PAGE)
        if write:                                       # do_wp_page: the process's own copy
            return p.cells.setdefault(page, Cell(f.page(off // PAGE))).data
        return f.page(off // PAGE)

    def verify_area(self, p, va, n, write):
        """verify_area: the kernel's copy may touch [va, va+n) (EFAULT); [va, va+n) lies in
        one page here."""
        a = self.area(p, va) if va + n <= TASK_SIZE else None
        if a is None or not a.prot & (PROT_WRITE if write else PROT_READ):
            raise Errno("EFAULT")

    def load(self, p, va, n):
        if va + n > TASK_SIZE:
            raise Killed(SIGSEGV)
        data = self._page(p, va, False)
        return bytes(data[va % PAGE: va % PAGE + n])

    def store(self, p, va, data):
        if va + len(data) > TASK_SIZE:
            raise Killed(SIGSEGV)
        buf = self._page(p, va, True)
        buf[va % PAGE: va % PAGE + len(data)] = data

    # -------------------------------------------------------------- ops
    def leaf(self, p, name, args):
        img = p.image
        if name == "load":
            target, off, n = args
            return self.load(p, _addr(img, target) + off, min(n, PAGE - off))
        if name == "store":
            target, off, n, seed = args
            self.store(p, _addr(img, target) + off, _data(seed, min(n, PAGE - off)))
            return 0
        if name == "mmap":
            return self.mmap(p, *_mmap_args(img, *args))
        if name == "munmap":
            return self.munmap(p, *_munmap_args(img, *args))
        if name == "brk":
            pages, extra = args
            cur = self.sys_brk(p, 0)
            return cur, self.sys_brk(p, cur + pages * PAGE + extra)
        if name == "brk_to":
            return self.sys_brk(p, _layout(img)[3] + args[0] * PAGE)
        if name == "fwrite":
            f, off, n, seed = args
            if f == 1:
                raise Errno("EBADF")                    # fd 4 is open read-only
            self.files[FILES[0]].write(off, _data(seed, n))
            return n
        if name == "fread":
            f, off, n = args
            return self.files[FILES[f]].read(off, n)
        if name == "fread_to":                          # sys_read, generic_file_read
            target, off, f, foff, n = args
            va, n = _addr(img, target) + off, min(n, PAGE - off)
            self.verify_area(p, va, n, True)
            file = self.files[FILES[f]]
            n, total = max(0, min(n, file.size - foff)), 0
            while total < n:                            # a file page at a time
                c = min(n - total, PAGE - (foff + total) % PAGE)
                self.store(p, va + total, file.read(foff + total, c))
                total += c
            return total
        if name == "fwrite_from":                       # sys_write, ext2_file_write
            target, off, foff, n = args
            va, n = _addr(img, target) + off, min(n, PAGE - off)
            self.verify_area(p, va, n, False)
            file, total = self.files[FILES[0]], 0
            while total < n:
                c = min(n - total, PAGE - (foff + total) % PAGE)
                file.write(foff + total, self.load(p, va + total, c))
                total += c
            return total
        if name == "trunc":                             # vmtruncate(inode, 0)
            self.files[FILES[0]] = MFile(b"")
            for q in self.live:
                for a in q.areas:
                    if a.file == FILES[0]:              # its pages go, private copies too
                        for va in [va for va in q.cells if a.start <= va < a.end]:
                            del q.cells[va]
            return 0
        if name == "wait_none":
            raise Errno("ECHILD")
        raise AssertionError(name)

    def run(self, p, label, ops):
        """Run `ops` in `p`; returns its wait status if it ended (killed or exec'd out)."""
        for i, op in enumerate(ops):
            name = op[0]
            if name == "fork":
                _n, code, child_ops, parent_ops = op
                c = self.fork(p)
                self.trace.append((label, "fork", c.pid))
                st = self.run(p, label, parent_ops)
                if st is not None:                      # killed: the orphan runs now
                    self.life(c, f"{label}.{i}", child_ops, code)
                    return st
                cst = self.life(c, f"{label}.{i}", child_ops, code)
                self.trace.append((label, "wait4", (c.pid, cst)))
                self.snap(p, label)
                continue
            if name == "exec":
                _n, code, sub = op
                self.load_image(p, "/bin/vm2")
                return self.life(p, f"{label}x{i}", sub, code)
            try:
                res = ("ok", self.leaf(p, name, op[1:]))
            except Killed as e:
                self.trace.append((label, name, ("killed", e.sig)))
                return e.sig
            except Errno as e:
                res = ("error", e.code)
            self.trace.append((label, name, res))
            self.snap(p, label)
        return None

    def life(self, p, label, ops, code):
        """A process (or an exec'd image) running `ops`: its wait status."""
        self.snap(p, label)
        st = self.run(p, label, ops)
        if p in self.live:                  # (an exec'd image returns through both lives)
            self.live.remove(p)
        return (code & 0xFF) << 8 if st is None else st


def run_on_model(prog, present=None):
    sizes, ops = prog
    m = Model(sizes, present)
    main = m.new_proc("/bin/vm1")
    return m.trace, m.life(main, "m", ops, 0)


# ====================================================================== programs
def _targets():
    """Mostly where the programs' mappings are (the mmap base, the heap, bss, data, stack);
    now and then text (read-only) or the kernel."""
    return st.one_of(
        st.tuples(st.just("w"), st.integers(2, 4)),
        st.tuples(st.just("w"), st.integers(2, 4)),
        st.tuples(st.just("w"), st.integers(5, 7)),        # the setup's mappings
        st.tuples(st.just("w"), st.integers(0, NWIN - 1)),
        st.tuples(st.sampled_from(["h", "h", "d", "b", "s", "lo"]), st.integers(0, 1)),
        st.tuples(st.sampled_from(["t", "k"]), st.just(0)))


OFFS = st.sampled_from([0, 5, 100, 2048, PAGE - 16, PAGE - 1])
KINDS = ["anon_p", "anon_p", "anon_s", "f0_p", "f0_s", "f0_s", "f1_p", "f1_s",
         "anon_none", "f0_none", "bad_fd"]
PLACES = st.one_of(
    st.tuples(st.just("any"), st.just(0)),
    st.tuples(st.sampled_from(["fixed", "hint"]), st.integers(0, NWIN - 1)),
    st.tuples(st.just("fixed"), st.integers(1, 6)),
    st.tuples(st.just("fixed_heap"), st.integers(0, 4)),
    st.tuples(st.sampled_from(["hint_unal", "hint_low", "fixed_unal"]), st.integers(0, 3)),
    st.tuples(st.sampled_from(["hint_high", "fixed_high"]), st.just(0)))


@st.composite
def mmap_ops(draw):
    kind = draw(st.sampled_from(KINDS))
    place = draw(PLACES)
    offsel = draw(st.sampled_from([0, 0, 1, 2, "unal"]))
    if offsel == "unal" and (place[0].startswith("fixed") or kind.startswith("anon")):
        offsel = 0          # (2.0 unmaps the old range before refusing it: not modelled)
    npages = draw(st.sampled_from([1, 1, 2, 3, 4, 0]))
    return ("mmap", kind, npages, draw(st.sampled_from([0, 0, 100])),
            draw(st.sampled_from([R, RW, RW, NONE])), place, offsel)


def leaf_ops(waits=True):
    """Leaf operations; `waits=False` between a fork and its wait4 (a wait4(-1) there would
    reap the child)."""
    return st.one_of(
        mmap_ops(), mmap_ops(),
        st.tuples(st.just("load"), _targets(), OFFS, st.integers(1, 16)),
        st.tuples(st.just("load"), _targets(), OFFS, st.integers(1, 16)),
        st.tuples(st.just("store"), _targets(), OFFS, st.integers(1, 16), st.integers(0, 255)),
        st.tuples(st.just("store"), _targets(), OFFS, st.integers(1, 16), st.integers(0, 255)),
        st.tuples(st.just("munmap"),
                  st.one_of(st.tuples(st.just("w"), st.integers(0, NWIN - 1)),
                            st.tuples(st.just("h"), st.integers(0, 3)),
                            st.tuples(st.sampled_from(["unal", "high"]), st.just(0))),
                  st.sampled_from([1, 1, 2, 3, 0]), st.sampled_from([0, 0, 100])),
        st.tuples(st.just("brk"), st.integers(-3, 3), st.sampled_from([0, 0, 100])),
        st.tuples(st.just("brk_to"), st.integers(0, 6)),
        st.tuples(st.just("fwrite"), st.sampled_from([0, 0, 0, 1]), st.integers(0, 3 * PAGE - 300),
                  st.integers(1, 300), st.integers(0, 255)),
        st.tuples(st.just("fread"), st.integers(0, 1), st.integers(0, 3 * PAGE),
                  st.integers(1, 64)),
        st.tuples(st.just("fread_to"), _targets(), OFFS, st.integers(0, 1),
                  st.integers(0, 3 * PAGE), st.integers(1, 64)),
        st.tuples(st.just("fwrite_from"), _targets(), OFFS, st.integers(0, 3 * PAGE - 64),
                  st.integers(1, 64)),
        st.tuples(st.just("trunc")),
        *([st.tuples(st.just("wait_none"))] if waits else []),
    )


def programs(depth=0):
    kinds = {"leaf": leaf_ops()}
    if depth < 2:
        sub = st.deferred(lambda: programs(depth + 1))
        kinds["fork"] = st.tuples(st.just("fork"), st.integers(0, 3), sub,
                                  st.lists(leaf_ops(waits=False), max_size=3).map(tuple))
        kinds["exec"] = st.tuples(st.just("exec"), st.integers(0, 3), sub)
    # the kind first, then the op: a one_of would flatten the leaves' many branches and
    # draw fork and exec rarely
    op = st.sampled_from(["leaf", "leaf", "fork", "exec"] if depth < 2 else ["leaf"]).flatmap(
        kinds.__getitem__)
    body = st.lists(op, min_size=1, max_size=10 if depth == 0 else 5)
    if depth:
        return body.map(tuple)
    # a few mappings first, at the mmap base: the accesses drawn find memory there
    setup = st.lists(st.tuples(st.just("mmap"), st.sampled_from(["anon_p", "f0_s", "f0_p",
                                                                 "f0_s", "f1_p"]),
                               st.integers(1, 3), st.just(0), st.just(RW), st.just(("any", 0)),
                               st.just(0)), max_size=2)
    first = ("mmap", "anon_p", 3, 0, RW, ("any", 0), 0)        # slots 2..4
    heap = st.tuples(st.just("brk_to"), st.integers(0, 3))
    return st.tuples(setup, heap, body).map(lambda t: (first, *t[0], t[1], *t[2]))


SIZES = st.tuples(st.sampled_from([0, 100, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE + 50, 3 * PAGE,
                                   3 * PAGE]),
                  st.sampled_from([0, 5, PAGE, 2 * PAGE - 7]))


def check(prog):
    trace, status, lost, present = run_on_linux(prog)
    mtrace, mstatus = run_on_model(prog, present)
    for i, (got, want) in enumerate(zip(trace, mtrace)):
        assert got == want, f"step {i}: Linux {got}\n  model {want}\n  program {prog}"
    assert len(trace) == len(mtrace), (trace[len(mtrace):], mtrace[len(trace):])
    assert status == mstatus
    assert not lost, f"frames {sorted(lost)} lost by {prog}"
    return trace, status


# ====================================================================== the tests
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(prog=st.tuples(SIZES, programs()))
def test_linux_vm_agrees_with_the_linux_2_0_model(prog):
    """Every rule of the module docstring: the kernel's trace (results, errnos, bytes,
    signals, wait statuses, VMA lists after every step) is the model's, and no frame is lost."""
    trace, _status = check(prog)
    for _label, name, res in trace:         # (pytest --hypothesis-show-statistics)
        if name in ("fork", "wait4"):
            event(name if name == "fork" else f"wait4: status {res[1]}")
        elif name not in ("vmas", "pages"):
            event(f"{name}: {res[0]}" + ("" if res[0] == "ok" else f" {res[1]}"))


# ---------------------------------------------------------------------- rules, one by one
def results(trace, label):
    """(op, result) of one process, without the VMA snapshots."""
    return [(name, res) for lab_, name, res in trace
            if lab_ == label and name not in ("vmas", "pages")]


W2, W3, W4 = WBASE + 2 * PAGE, WBASE + 3 * PAGE, WBASE + 4 * PAGE
FULL = (3 * PAGE, 5)            # f0: three whole pages; f1: 5 bytes


def test_fork_is_copy_on_write_in_both_directions_over_generations():
    """fork copies private memory: the child sees the parent's bytes of the moment of fork,
    not its later stores; the child's stores (and its own child's) are invisible upwards."""
    prog = (FULL, (
        ("mmap", "anon_p", 2, 0, RW, ("any", 0), 0),
        ("store", ("w", 2), 0, 4, 1),
        ("fork", 1, (("load", ("w", 2), 0, 4),
                     ("store", ("w", 2), 0, 4, 2),
                     ("fork", 2, (("load", ("w", 2), 0, 4), ("store", ("w", 2), 0, 4, 3)), ()),
                     ("load", ("w", 2), 0, 4)),
         (("store", ("w", 2), 0, 4, 9),)),
        ("load", ("w", 2), 0, 4)))
    trace, status = check(prog)
    assert results(trace, "m.2") == [
        ("load", ("ok", _data(1, 4))), ("store", ("ok", 0)), ("fork", 4),
        ("wait4", (4, 2 << 8)), ("load", ("ok", _data(2, 4)))]
    assert results(trace, "m.2.2") == [("load", ("ok", _data(2, 4))), ("store", ("ok", 0))]
    assert results(trace, "m")[-2:] == [("wait4", (3, 1 << 8)), ("load", ("ok", _data(9, 4)))]
    assert status == 0


def test_shared_file_mappings_are_the_file_in_every_process():
    """MAP_SHARED of a file maps the page cache's page: a child's store is read() by the
    parent, seen through the parent's mapping and through a second mapping of the file."""
    prog = (FULL, (
        ("mmap", "f0_s", 1, 0, RW, ("any", 0), 0),
        ("fork", 0, (("store", ("w", 2), 10, 4, 5),), ()),
        ("load", ("w", 2), 10, 4),
        ("fread", 0, 10, 4),
        ("mmap", "f0_s", 1, 0, R, ("any", 0), 0),
        ("load", ("w", 3), 10, 4)))
    trace, _status = check(prog)
    res = results(trace, "m")
    assert res[3:] == [("load", ("ok", _data(5, 4))), ("fread", ("ok", _data(5, 4))),
                       ("mmap", ("ok", W3)), ("load", ("ok", _data(5, 4)))]


def test_private_file_mappings_see_later_writes_only_in_pages_never_written():
    """MAP_PRIVATE maps the cache's page until the process writes it (2.0's filemap_nopage
    shares it; do_wp_page copies on the first store): a later write() to the file shows in a
    page the process only read, not in the page it wrote."""
    prog = (FULL, (
        ("mmap", "f0_p", 2, 0, RW, ("any", 0), 0),
        ("load", ("w", 2), 0, 4),
        ("store", ("w", 3), 0, 4, 7),
        ("fwrite", 0, 0, 4, 8), ("fwrite", 0, PAGE, 4, 8),
        ("load", ("w", 2), 0, 4), ("load", ("w", 3), 0, 4), ("fread", 0, PAGE, 4)))
    trace, _status = check(prog)
    assert results(trace, "m")[-3:] == [("load", ("ok", _data(8, 4))),
                                        ("load", ("ok", _data(7, 4))),
                                        ("fread", ("ok", _data(8, 4)))]


def test_execve_drops_the_old_mappings_and_maps_the_new_image():
    """After execve the old mmap'd address is SIGSEGV (status 11 for the parent); the new
    image's data comes from its file, its bss reads zero."""
    prog = (FULL, (
        ("mmap", "anon_p", 1, 0, RW, ("any", 0), 0),
        ("store", ("w", 2), 0, 4, 1),
        ("fork", 0, (("exec", 3, (("load", ("d", 0), 0, 4), ("load", ("b", 1), 0, 4),
                                  ("load", ("w", 2), 0, 4))),), ())))
    trace, _status = check(prog)
    assert results(trace, "m.2x0") == [("load", ("ok", _image_bytes("/bin/vm2")[3 * PAGE:][:4])),
                                       ("load", ("ok", bytes(4))), ("load", ("killed", 11))]
    assert results(trace, "m")[-1] == ("wait4", (3, 11))


def test_brk_shrink_takes_the_pages_and_a_regrown_heap_reads_zero():
    """Shrinking the break unmaps the pages above it (SIGSEGV there); growing it again gives
    fresh zero pages."""
    prog = (FULL, (("brk_to", 3), ("store", ("h", 2), 0, 4, 1), ("brk_to", 1), ("brk_to", 3),
                   ("load", ("h", 2), 0, 4), ("brk_to", 1), ("load", ("h", 2), 0, 4)))
    trace, status = check(prog)
    res = results(trace, "m")
    assert res[4:] == [("load", ("ok", bytes(4))),
                       ("brk_to", ("ok", _layout("/bin/vm1")[3] + PAGE)),
                       ("load", ("killed", 11))]
    assert status == 11


def test_munmap_splits_areas_and_map_fixed_replaces_mappings():
    """munmap of the middle page of a file mapping leaves two areas (the tail's file offset
    advanced: its bytes are the file's third page); MAP_FIXED over anonymous memory replaces
    it (a read-only file page there now: a store is SIGSEGV)."""
    prog = (FULL, (
        ("mmap", "f0_p", 3, 0, R, ("any", 0), 0),
        ("munmap", ("w", 3), 1, 0),
        ("load", ("w", 4), 0, 4),
        ("mmap", "anon_p", 1, 0, RW, ("fixed", 3), 0),
        ("store", ("w", 3), 0, 4, 2),
        ("mmap", "f0_p", 1, 0, R, ("fixed", 3), 1),
        ("load", ("w", 3), 0, 4),
        ("store", ("w", 3), 0, 1, 1)))
    trace, _status = check(prog)
    f0 = _data(len(FILES[0]) + 3 * PAGE, 3 * PAGE)
    res = results(trace, "m")
    assert res[2] == ("load", ("ok", f0[2 * PAGE:2 * PAGE + 4]))
    assert res[5:] == [("mmap", ("ok", W3)), ("load", ("ok", f0[PAGE:PAGE + 4])),
                       ("store", ("killed", 11))]
    areas = [v for lab_, name, v in trace if name == "vmas"][2]
    assert (W2, W3, R, False, FILES[0], 0) in areas and (W4, W4 + PAGE, R, False, FILES[0],
                                                         2 * PAGE) in areas


def test_a_store_to_a_read_only_mapping_kills_the_child_with_sigsegv():
    """PROT_READ forbids stores: the child dies with SIGSEGV, wait4 gives status 11."""
    prog = (FULL, (("mmap", "anon_p", 1, 0, R, ("any", 0), 0),
                   ("fork", 0, (("store", ("w", 2), 0, 1, 1),), ())))
    trace, _status = check(prog)
    assert results(trace, "m")[-1] == ("wait4", (3, 11))


# ---------------------------------------------------------------------- regressions
def test_an_mmap_hint_is_rounded_up_and_honoured_anywhere_in_user_space():
    """2.0's get_unmapped_area rounds a hint up to a page and takes the first gap at or
    above it, below TASK_UNMAPPED_BASE too; a hinted range beyond TASK_SIZE is EINVAL.
    Before the fix an unaligned hint was EINVAL, a low hint was moved up to the mmap base,
    and a hint near TASK_SIZE was ENOMEM."""
    prog = (FULL, (("mmap", "anon_p", 1, 0, RW, ("hint_unal", 0), 0),
                   ("mmap", "anon_p", 1, 0, RW, ("hint_low", 1), 0),
                   ("store", ("lo", 1), 0, 4, 3), ("load", ("lo", 1), 0, 4),
                   ("mmap", "anon_p", 1, 0, RW, ("hint_high", 0), 0)))
    trace, _status = check(prog)
    assert results(trace, "m") == [("mmap", ("ok", WBASE + PAGE)), ("mmap", ("ok", LOW + PAGE)),
                                   ("store", ("ok", 0)), ("load", ("ok", _data(3, 4))),
                                   ("mmap", ("error", "EINVAL"))]


def test_munmap_of_length_zero_succeeds_and_changes_nothing():
    """2.0's do_munmap: after the address checks, a length of 0 returns 0 (an unaligned
    address is still EINVAL).  Before the fix a zero length was EINVAL."""
    prog = (FULL, (("munmap", ("w", 2), 0, 0), ("munmap", ("unal", 0), 0, 0)))
    trace, _status = check(prog)
    assert results(trace, "m") == [("munmap", ("ok", 0)), ("munmap", ("error", "EINVAL"))]


def test_brk_keeps_a_guard_page_below_the_next_mapping():
    """2.0's sys_brk refuses to grow when a mapping lies within [old break, new break + one
    page): the old break comes back.  Before the fix the heap grew up to the mapping."""
    heap = _layout("/bin/vm1")[3]
    prog = (FULL, (("mmap", "anon_p", 1, 0, RW, ("fixed_heap", 2), 0),
                   ("brk_to", 1), ("brk_to", 2)))
    trace, _status = check(prog)
    assert results(trace, "m") == [("mmap", ("ok", heap + 2 * PAGE)),
                                   ("brk_to", ("ok", heap + PAGE)), ("brk_to", ("ok", heap + PAGE))]


# ---------------------------------------------------------------------- Linux 2.0's rules
# Four rules where the lab's Linux used to differ from 2.0 (each failed before its fix).
def _linux_results(prog, label="m"):
    trace, status, _lost, _pages = run_on_linux(prog)
    return results(trace, label), status


def test_linux_2_0_a_shared_mapping_beyond_the_end_of_the_file_is_sigbus():
    """2.0's filemap_nopage: a MAP_SHARED page wholly beyond the end of the file is an error
    (do_no_page sends SIGBUS: wait status 7)."""
    res, _st = _linux_results(((100, 5), (("mmap", "f0_s", 2, 0, R, ("any", 0), 0),
                                          ("fork", 0, (("load", ("w", 3), 0, 4),), ()))))
    assert res[-1] == ("wait4", (3, 7))


def test_linux_2_0_a_private_mapping_beyond_the_end_of_the_file_reads_zero():
    """2.0's filemap_nopage: "a private mapping just maps in a zero page" beyond the end."""
    res, _st = _linux_results(((100, 5), (("mmap", "f0_p", 2, 0, R, ("any", 0), 0),
                                          ("load", ("w", 3), 0, 4))))
    assert res[-1] == ("load", ("ok", bytes(4)))


def test_linux_2_0_mmap_of_length_zero_returns_the_address():
    """2.0's do_mmap starts with `if ((len = PAGE_ALIGN(len)) == 0) return addr;`."""
    res, _st = _linux_results((FULL, (("mmap", "anon_p", 0, 0, RW, ("hint", 2), 0),)))
    assert res == [("mmap", ("ok", W2))]


def test_linux_2_0_refuses_shared_anonymous_memory():
    """2.0's do_mmap: without a file, `if ((flags & MAP_TYPE) != MAP_PRIVATE) return
    -EINVAL;` (shared anonymous memory came with 2.4's shmem)."""
    res, _st = _linux_results((FULL, (("mmap", "anon_s", 1, 0, RW, ("any", 0), 0),)))
    assert res == [("mmap", ("error", "EINVAL"))]


def test_linux_2_0_ignores_the_offset_of_anonymous_memory():
    """2.0 checks a mapping's offset only in the file's mmap (generic_file_mmap)."""
    res, _st = _linux_results((FULL, (("mmap", "anon_p", 1, 0, RW, ("any", 0), "unal"),)))
    assert res == [("mmap", ("ok", W2))]


def test_mmap_checks_the_range_before_the_files_access_mode():
    """2.0's do_mmap refuses a range beyond TASK_SIZE (EINVAL) before it looks at the file's
    mode (EACCES for MAP_SHARED|PROT_WRITE of a read-only fd); a bad fd (EBADF) comes first
    of all (old_mmap).  Before the fix the mode was checked first."""
    prog = (FULL, (("mmap", "f1_s", 1, 0, RW, ("hint_high", 0), 0),
                   ("mmap", "bad_fd", 1, 0, RW, ("hint_high", 0), 0),
                   ("mmap", "f1_s", 1, 0, RW, ("any", 0), 0)))
    trace, _status = check(prog)
    assert results(trace, "m") == [("mmap", ("error", "EINVAL")), ("mmap", ("error", "EBADF")),
                                   ("mmap", ("error", "EACCES"))]


def test_brk_grows_the_heap_not_a_mapping_placed_over_it():
    """sys_brk maps new anonymous read-write memory above the old break.  A MAP_FIXED
    mapping placed over the heap's start (read-only, or a file's) keeps its own extent.
    Before the fix brk extended that mapping: the new heap page was read-only (a store
    there was SIGSEGV) or showed the file's bytes."""
    for fixed, access, want in ((("anon_p", 1, 0, R), ("store", ("h", 1), 0, 4, 1), 0),
                                (("f0_p", 1, 0, RW), ("load", ("h", 1), 0, 4), bytes(4))):
        prog = (FULL, (("brk_to", 1), ("mmap", *fixed, ("fixed_heap", 0), 0),
                       ("brk_to", 2), access))
        trace, _status = check(prog)
        assert results(trace, "m")[-1] == (access[0], ("ok", want))


def test_a_page_is_beyond_the_end_of_the_file_by_its_size_not_its_blocks():
    """filemap_nopage compares the page's offset with i_size.  A write() that extends the
    file allocates the block of a page before it copies the user's bytes into it; when
    those bytes come from a mapping of that very page, the page is still beyond the end
    (SIGBUS through this shared mapping).  Before the fix the kernel looked at the blocks,
    mapped the new page, and the write succeeded with bytes that were never in the file."""
    prog = ((100, 5), (("mmap", "f0_s", 2, 0, RW, ("any", 0), 0),
                       ("fork", 0, (("fwrite_from", ("w", 3), 0, 2 * PAGE - 10, 20),), ()),
                       ("fread", 0, 0, 200)))
    trace, _status = check(prog)
    assert results(trace, "m.1") == [("fwrite_from", ("killed", SIGBUS))]
    assert results(trace, "m")[-2:] == [("wait4", (3, SIGBUS)),
                                        ("fread", ("ok", _data(len(FILES[0]) + 100, 100)))]


def test_truncating_a_file_takes_its_pages_from_every_mapping():
    """open(O_TRUNC): 2.0's vmtruncate zaps every mapped page beyond the new end, a private
    copy-on-write copy as well: until the file grows again an access there is beyond the
    end (through the private mapping a zero page, the child's own), and after a write() both
    mappings read the file's new bytes."""
    prog = (FULL, (("mmap", "f0_p", 1, 0, RW, ("any", 0), 0),
                   ("store", ("w", 2), 0, 4, 1),
                   ("mmap", "f0_s", 1, 0, R, ("any", 0), 0),
                   ("load", ("w", 3), 0, 4),
                   ("trunc",),
                   ("fork", 0, (("load", ("w", 2), 0, 4),), ()),
                   ("fwrite", 0, 0, 4, 9),
                   ("load", ("w", 2), 0, 4), ("load", ("w", 3), 0, 4)))
    trace, _status = check(prog)
    assert results(trace, "m.5") == [("load", ("ok", bytes(4)))]
    assert results(trace, "m")[-2:] == [("load", ("ok", _data(9, 4))),
                                        ("load", ("ok", _data(9, 4)))]


def test_a_fault_that_finds_no_memory_kills_with_sigkill_and_frees_everything():
    """A page fault that needs a cache buffer when every buffer is mapped has no error to
    return: Linux 2.0's oom() kills the process with SIGKILL (wait status 9); its frames
    come back and its parent runs on.  (Outside the model: it depends on the cache's size.)"""
    prog = ((3 * PAGE, 5), (("mmap", "f0_s", 3, 0, R, ("any", 0), 0),
                            ("fork", 0, (("load", ("w", 2), 0, 1), ("load", ("w", 3), 0, 1),
                                         ("load", ("w", 4), 0, 1)), ()),
                            ("load", ("w", 2), 0, 1)))
    trace, status, lost, _pages = run_on_linux(prog, buffer_cache_pages=2)
    assert results(trace, "m.1")[-1] == ("load", ("killed", 9))
    first = _data(len(FILES[0]) + 3 * PAGE, 1)
    assert results(trace, "m")[-2:] == [("wait4", (3, 9)), ("load", ("ok", first))]
    assert status == 0 and not lost
