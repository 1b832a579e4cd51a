"""The file system and its buffer cache (LRU, a disk model, real bytes)."""
from lab.linux import boot
from lab.mono.abi import O_CREAT, O_RDWR, SEEK_SET
from mono_helpers import events

PAGE = 4096


def _read_pages(p, path, order):
    fd = p.open(path)
    buf = p.malloc(PAGE)
    out = []
    for i in order:
        p.lseek(fd, i * PAGE, SEEK_SET)
        p.read(fd, buf, PAGE)
        out.append(p.peek(buf, 4))
    return out


def test_buffer_cache_evicts_the_least_recently_used_and_rereads_go_to_disk():
    """A two-buffer cache reading pages A B A C B: A and B miss, A hits, C evicts B (the
    least recently used), B misses again and evicts A: four disk requests, each charged
    disk_ms_per_request."""
    linux = boot("linux", buffer_cache_pages=2)
    data = b"".join(bytes([i]) * PAGE for i in range(3))
    linux.fs.create("/tmp/f", data)
    A, B, C = linux.fs.lookup("/tmp/f").blocks
    proc = linux.spawn(_read_pages, "/tmp/f", [0, 1, 0, 2, 1])
    linux.run()
    assert proc.result == [bytes([i]) * 4 for i in (0, 1, 0, 2, 1)]
    assert [e.args["block"] for e in events(linux, "disk_read")] == [A, B, C, B]
    assert [e.args["block"] for e in events(linux, "evict")] == [B, A]
    prof = linux.m.profile
    per_request = prof["disk_ms_per_request"] * 1000 * prof["clock_mhz"]
    assert linux.m.by_category()["disk"] == 4 * per_request


def test_written_data_is_read_back_and_written_to_disk_on_eviction():
    """write() goes to the cache (dirty); a reader sees it at once; when the buffer is
    evicted it is written to the disk first."""
    def prog(p):
        fd = p.open("/tmp/new", O_CREAT | O_RDWR)
        buf = p.malloc(2 * PAGE)
        p.store(buf, b"a" * PAGE + b"b" * 100)
        p.write(fd, buf, PAGE + 100)
        fd2 = p.open("/tmp/new")
        back = p.malloc(2 * PAGE)
        n = p.read(fd2, back, 2 * PAGE)
        return n, p.peek(back, n)
    linux = boot("linux", buffer_cache_pages=2)
    proc = linux.spawn(prog)
    linux.run()
    n, got = proc.result
    assert n == PAGE + 100 and got == b"a" * PAGE + b"b" * 100
    assert linux.fs.contents("/tmp/new") == got
    assert events(linux, "disk_write") == []
    linux.fs.create("/tmp/other", b"x" * 2 * PAGE)
    linux.spawn(_read_pages, "/tmp/other", [0, 1])     # evicts both dirty buffers
    linux.run()
    assert len(events(linux, "disk_write")) == 2
    ino = linux.fs.lookup("/tmp/new")
    assert linux.disk.data[ino.blocks[0]] == b"a" * PAGE


def test_path_lookup_charges_one_lookup_per_component():
    """Linux 2.0 has no dentry cache: open() runs one namei_lookup per path component."""
    linux = boot("linux")
    linux.fs.mkdir("/tmp/d")
    linux.fs.create("/tmp/d/f", b"x")
    ran, run_path = [], linux.arch.run_path
    linux.arch.run_path = lambda name: (ran.append(name), run_path(name))[1]

    def prog(p):
        counts = []
        for path in ("/bin/sh", "/tmp/d/f", "/dev/null"):
            del ran[:]
            p.open(path)
            counts.append(ran.count("namei_lookup"))
        return counts
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == [2, 3, 2]


def test_a_partial_page_write_reads_the_rest_of_the_page_first():
    """A write that covers only part of a page inside the file (here its first bytes, the
    file going on beyond them) must read the page from the disk before changing it
    (ext2_file_write's bread): only a write of a whole page, or one that reaches the end of
    the file, may take the buffer without reading it (getblk)."""
    def prog(p):
        fd = p.open("/tmp/f", O_RDWR)
        buf = p.malloc(PAGE)
        p.store(buf, b"NEW")
        p.write(fd, buf, 3)
        p.lseek(fd, 0, SEEK_SET)
        n = p.read(fd, buf, 16)
        return p.peek(buf, n)
    linux = boot("linux")
    linux.fs.create("/tmp/f", b"o" * PAGE + b"p" * 100)     # on the disk, not cached
    proc = linux.spawn(prog)
    linux.run()
    assert proc.result == b"NEW" + b"o" * 13
    assert linux.fs.contents("/tmp/f") == b"NEW" + b"o" * (PAGE - 3) + b"p" * 100
    blk = linux.fs.lookup("/tmp/f").blocks[0]
    assert [e.args["block"] for e in events(linux, "disk_read")] == [blk]


def test_sync_writes_dirty_buffers_once_and_leaves_them_clean():
    """sync (the buffer cache's sys_sync) writes every dirty buffer to the disk and marks
    it clean: a buffer not written since is dropped on eviction without a second disk
    write (only dirty buffers are written back)."""
    def prog(p):
        fd = p.open("/tmp/new", O_CREAT | O_RDWR)
        buf = p.malloc(PAGE)
        p.store(buf, b"s" * PAGE)
        p.write(fd, buf, PAGE)
    linux = boot("linux", buffer_cache_pages=2)
    linux.spawn(prog)
    linux.run()
    blk = linux.fs.lookup("/tmp/new").blocks[0]
    linux.bcache.sync()
    assert [e.args["block"] for e in events(linux, "disk_write")] == [blk]
    assert linux.disk.data[blk] == b"s" * PAGE
    linux.fs.create("/tmp/other", b"x" * 2 * PAGE)
    linux.spawn(_read_pages, "/tmp/other", [0, 1])     # evicts the synced buffer
    linux.run()
    assert blk in [e.args["block"] for e in events(linux, "evict")]
    assert [e.args["block"] for e in events(linux, "disk_write")] == [blk]
