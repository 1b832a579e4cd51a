"""Memory: mmap of files through the buffer cache, demand zero, brk."""
from lab.mono.abi import (PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, O_RDWR,
                          O_CREAT)
from lab.mono.errors import EINVAL
from mono_helpers import events
from lab.linux import boot

FILE = bytes((i * 17 + 3) & 0xFF for i in range(3 * 4096 - 100))


def _map_and_read(p, path, n):
    fd = p.open(path)
    out = []
    for _ in range(2):
        va = p.mmap(0, n, PROT_READ, MAP_PRIVATE, fd, 0)
        out.append(p.load(va, n))
        p.munmap(va, n)
    return out


def test_mmap_of_a_file_faults_its_pages_in_from_the_buffer_cache():
    """Reading a mapped file takes one page fault per page, served by filemap_nopage from the
    buffer cache: from the disk the first time, from the cache after munmap and a new mmap."""
    linux = boot("linux")
    linux.fs.create("/tmp/data", FILE)
    proc = linux.spawn(_map_and_read, "/tmp/data", len(FILE))
    linux.run()
    assert proc.result == [FILE, FILE]
    faults = [e for e in events(linux, "page_fault", pid=proc.pid) if e.args["type"] == "file"]
    assert len(faults) == 2 * 3
    reads = events(linux, "disk_read")
    blocks = linux.fs.lookup("/tmp/data").blocks
    assert [e.args["block"] for e in reads] == blocks
    second = faults[3].cycle
    assert all(e.cycle < second for e in reads)         # the second mapping reads no disk


def test_shared_mapping_writes_reach_the_file():
    """A MAP_SHARED mapping maps the cache's frame: stores are seen by read() and stay in
    the file."""
    def prog(p):
        fd = p.open("/tmp/data", O_RDWR)
        va = p.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        p.store(va + 10, b"HELLO")
        buf = p.malloc(32)
        p.read(fd, buf, 32)
        return p.peek(buf + 10, 5)
    linux = boot("linux")
    linux.fs.create("/tmp/data", FILE)
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == b"HELLO"
    assert linux.fs.contents("/tmp/data")[10:15] == b"HELLO"


def test_demand_zero_reads_share_the_zero_page_and_writes_get_frames():
    """Anonymous memory: a read fault maps the shared zero page (no frame used), a write
    gets a fresh zeroed frame (do_anonymous_page)."""
    def prog(p):
        va = p.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        mem = p.kernel.m.memory
        f0 = mem.free_frames
        data = p.load(va, 4 * 4096)
        f1 = mem.free_frames
        p.touch(va, 4 * 4096, write=True)
        return data == bytes(4 * 4096), f0 - f1, f1 - mem.free_frames
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    zeros, after_reads, after_writes = proc.result
    assert zeros and after_reads <= 1 and after_writes == 4   # (<= 1: a page-table page)
    kinds = [e.args["type"] for e in events(linux, "page_fault", pid=proc.pid)
             if e.args["va"] >= 0x40000000 and e.args["va"] < 0x40004000]
    assert kinds == ["zero"] * 4 + ["cow"] * 4


def test_mmap_arguments_are_checked():
    """Linux 2.0's do_mmap: a length of 0 maps nothing and returns the address; a file
    mapping needs a page-aligned offset (generic_file_mmap), anonymous memory has none to
    check; the type must be exactly one of MAP_SHARED/MAP_PRIVATE, and anonymous memory
    MAP_PRIVATE (shared anonymous memory came with 2.4): EINVAL, nothing mapped."""
    def prog(p):
        out = []
        fd = p.open("/tmp/f", O_RDWR | O_CREAT)
        vmas = len(p.proc.mm.vmas)
        for args in ((0, 4096, PROT_READ, MAP_PRIVATE, fd, 100),
                     (0, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0),
                     (0, 4096, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
                     (0x40001000, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                     (0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 100)):
            try:
                out.append(p.mmap(*args))
            except EINVAL as e:
                out.append(e.code)
        return out, len(p.proc.mm.vmas) - vmas
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == (["EINVAL"] * 3 + [0x40001000, 0x40000000], 1)


def test_malloc_grows_the_heap_with_brk():
    """The C library's malloc moves the break; heap pages arrive on first touch."""
    def prog(p):
        b0 = p.proc.mm.brk
        va = p.malloc(3 * 4096 + 10)
        p.store(va + 3 * 4096, b"end")
        return b0, p.proc.mm.brk, va, p.peek(va + 3 * 4096, 3)
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    b0, b1, va, tail = proc.result
    assert va >= b0 and b1 >= va + 3 * 4096 + 10 and tail == b"end"
    assert [e.args["name"] for e in events(linux, "syscall", pid=proc.pid)][:1] == ["brk"]


def test_the_buffer_cache_never_evicts_a_buffer_a_process_maps():
    """The buffer cache evicts the least recently used buffer *that no process maps*: a file
    page mapped into a process keeps its buffer (its frame is the process's page), however
    old, and the next one in LRU order goes instead."""
    def prog(p):
        fd = p.open("/tmp/data")
        va = p.mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0)
        first = p.load(va, 8)                   # block 0 cached and mapped: the oldest
        buf = p.malloc(4096)
        for i in (1, 2):                        # a two-buffer cache: each read evicts
            p.lseek(fd, i * 4096, 0)
            p.read(fd, buf, 4096)
        return first, p.load(va, 8)
    linux = boot("linux", buffer_cache_pages=2)
    linux.fs.create("/tmp/data", FILE)
    b0, b1, b2 = linux.fs.lookup("/tmp/data").blocks
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == (FILE[:8], FILE[:8])
    assert [e.args["block"] for e in events(linux, "evict")] == [b1]
    assert linux.bcache.cached(b0) and linux.bcache.cached(b2)


def test_stores_through_a_shared_mapping_reach_the_disk_after_munmap():
    """A shared writable file mapping maps the cache's frame writable even after a read
    fault, so later stores take no fault: the kernel learns of them when the PTE goes
    (zap_pte_range: a writable PTE marks the buffer dirty), and the buffer is written to
    the disk when it is evicted -- the stores are not lost."""
    def prog(p):
        fd = p.open("/tmp/data", O_RDWR)
        va = p.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        first = p.load(va, 4)                   # read fault: mapped writable, clean
        p.store(va + 20, b"STORE")              # no fault
        p.munmap(va, 4096)
        buf = p.malloc(4096)
        for i in (1, 2):                        # a two-buffer cache: block 0 is evicted
            p.lseek(fd, i * 4096, 0)
            p.read(fd, buf, 4096)
        return first
    linux = boot("linux", buffer_cache_pages=2)
    linux.fs.create("/tmp/data", FILE)
    b0 = linux.fs.lookup("/tmp/data").blocks[0]
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == FILE[:4]
    assert not linux.bcache.cached(b0)
    assert [e.args["block"] for e in events(linux, "disk_write")] == [b0]
    assert linux.disk.data[b0][20:25] == b"STORE"


def test_munmap_rounds_its_length_up_to_whole_pages():
    """do_munmap removes whole pages: a length that ends inside a page takes that whole page
    too (2.0: len = PAGE_ALIGN(len)), so no piece of it stays mapped -- an access anywhere in
    it is a segmentation fault, not a fresh zero page."""
    def prog(p):
        va = p.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.store(va, b"a")
        p.store(va + 4096 + 200, b"b")
        p.munmap(va, 4096 + 1)
        p.load(va + 4096 + 200, 1)
        return "still mapped"
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result is None
    seg = events(linux, "segfault", pid=proc.pid)
    assert len(seg) == 1 and seg[0].args["reason"] == "no mapping"
