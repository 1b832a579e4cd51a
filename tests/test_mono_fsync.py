"""sync and fsync (Linux 2.0 fs/buffer.c, ext2_sync_file): what reaches the disk and when,
on every platform the same.  A write-back is a `bwrite` path and one disk request."""
import pytest

from lab.mono.abi import AF_INET, SOCK_DGRAM, O_CREAT, O_RDWR, O_WRONLY
from lab.mono.errors import EBADF, EINVAL
from mono_helpers import run_program, events
from lab.linux import boot

PLATFORMS = ["linux", "l4linux", "l4linux_trampoline", "mklinux_in_kernel", "mklinux_user"]
PAGE = 4096


def _write(p, path, data):
    fd = p.open(path, O_CREAT | O_RDWR)
    buf = p.malloc(len(data))
    p.store(buf, data)
    p.write(fd, buf, len(data))
    return fd


def _recording(linux):
    """Record the names of the kernel paths run from now on."""
    ran, run = [], linux.arch.run_path

    def run_path(name):
        ran.append(name)
        return run(name)
    linux.arch.run_path = run_path
    return ran


def _written(linux):
    return [e.args["block"] for e in events(linux, "disk_write")]


@pytest.mark.parametrize("system", PLATFORMS)
def test_fsync_writes_the_files_dirty_blocks_in_order_and_only_those(system):
    """fsync puts one file's dirty pages on the disk, each once, in file order: another
    file's dirty page stays in the cache; a second fsync finds nothing dirty."""
    def prog(p):
        fd = _write(p, "/tmp/a", b"a" * PAGE + b"b" * PAGE + b"c" * 10)
        _write(p, "/tmp/other", b"o" * 100)
        first = len(events(p.k, "disk_write"))
        p.fsync(fd)
        after = len(events(p.k, "disk_write"))
        p.fsync(fd)
        return first, after, len(events(p.k, "disk_write"))
    linux, proc = run_program(prog, system=system)
    blocks = linux.fs.lookup("/tmp/a").blocks
    assert proc.result == (0, 3, 3)
    assert _written(linux) == blocks
    assert [linux.disk.data[b] for b in blocks] == [b"a" * PAGE, b"b" * PAGE,
                                                    b"c" * 10 + bytes(PAGE - 10)]
    other = linux.fs.lookup("/tmp/other").blocks[0]
    assert other not in linux.disk.data and linux.bcache.lru[other].dirty


@pytest.mark.parametrize("system", ["linux", "l4linux"])
def test_sync_writes_every_dirty_buffer_least_recently_used_first(system):
    """sync writes each dirty buffer once, in the LRU list's order (/tmp/a's page was used
    last: it goes last); their bytes are on the disk; a second sync writes nothing."""
    def prog(p):
        _write(p, "/tmp/a", b"a" * PAGE)
        _write(p, "/tmp/b", b"b" * 2 * PAGE)
        _write(p, "/tmp/a", b"A" * 10)          # touches /tmp/a's buffer again
        return p.sync(), p.sync()
    linux, proc = run_program(prog, system=system)
    a, b = linux.fs.lookup("/tmp/a").blocks, linux.fs.lookup("/tmp/b").blocks
    assert proc.result == (0, 0)
    assert _written(linux) == b + a
    assert linux.disk.data[a[0]] == b"A" * 10 + b"a" * (PAGE - 10)
    assert [linux.disk.data[x] for x in b] == [b"b" * PAGE] * 2
    assert not any(buf.dirty for buf in linux.bcache.lru.values())


def test_fsync_of_a_directory_is_file_fsync_every_dirty_buffer():
    """ext2's directories use file_fsync = fsync_dev(inode->i_dev): fsync of an open
    directory writes back every dirty buffer of the disk, not just the directory's."""
    def prog(p):
        _write(p, "/tmp/h", b"h" * 100)
        return p.fsync(p.open("/tmp"))
    linux, proc = run_program(prog)
    assert proc.result == 0
    assert _written(linux) == linux.fs.lookup("/tmp/h").blocks


def test_each_write_back_is_one_bwrite_path_and_one_disk_request():
    """fsync of n dirty pages runs sys_fsync once, a buffer lookup (get_hash_table) per block
    and bwrite n times, with n disk requests charged to "disk"; an eviction of a dirty
    buffer is a bwrite too."""
    linux = boot("linux", buffer_cache_pages=2)

    def prog(p):
        fd = _write(p, "/tmp/a", b"x" * 2 * PAGE)
        ran = _recording(p.k)
        disk = p.k.m.by_category().get("disk", 0)
        p.fsync(fd)
        return ran, p.k.m.by_category().get("disk", 0) - disk
    proc = linux.spawn(prog)
    linux.run()
    ran, disk = proc.result
    per_request = linux.m.profile["disk_ms_per_request"] * 1000 * linux.m.profile["clock_mhz"]
    assert ran.count("sys_fsync") == 1 and ran.count("bwrite") == 2
    assert ran.count("get_hash_table") == 2         # a lookup per block of the file
    assert disk == pytest.approx(2 * per_request)

    def dirty_then_evict(p):
        _write(p, "/tmp/b", b"y" * 100)
        ran = _recording(p.k)
        _write(p, "/tmp/c", b"z" * 2 * PAGE)         # two new buffers: /tmp/b's is evicted
        return ran
    proc = linux.spawn(dirty_then_evict)
    linux.run()
    b = linux.fs.lookup("/tmp/b").blocks[0]
    assert b in [e.args["block"] for e in events(linux, "evict")]
    assert linux.disk.data[b] == b"y" * 100 + bytes(PAGE - 100)
    assert proc.result.count("bwrite") == 1


@pytest.mark.parametrize("system", PLATFORMS)
def test_fsync_of_a_pipe_socket_or_device_is_einval_of_a_directory_nothing(system):
    def prog(p):
        out = []
        rfd, _wfd = p.pipe()
        for fd in (rfd, p.socket(AF_INET, SOCK_DGRAM), p.open("/dev/null", O_WRONLY)):
            try:
                p.fsync(fd)
                out.append("ok")
            except EINVAL as e:
                out.append(str(e))
        out.append(p.fsync(p.open("/tmp")))
        try:
            p.fsync(99)
        except EBADF as e:
            out.append(e.code)
        return out
    linux, proc = run_program(prog, system=system)
    pipe, sock, dev, d, bad = proc.result
    assert "a pipe" in pipe and "a socket" in sock and "a character device" in dev
    assert all("only regular files and directories" in m for m in (pipe, sock, dev))
    assert d == 0 and bad == "EBADF"
    assert not events(linux, "disk_write")          # (nothing was dirty)
