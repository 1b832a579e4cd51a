"""The disk and the buffer cache: a fixed number of page-sized buffers in simulated frames.

Linux 2.0 has a page cache for file data (read, mmap) and a buffer cache for blocks; with
4 KB blocks the two coincide, so one cache of page-sized buffers serves read(), write(),
mmap and exec here.  Lookups hit (`bread_hit` path) or miss (`bread_miss`: the request and
driver work, then the disk: `disk_ms_per_request` of the CPU profile, charged to "disk" as a
synchronous wait).  When the cache is full the least recently used buffer that no process
maps is evicted (a dirty one is written back first).  A write-back (eviction, sync, fsync) is
a `bwrite` path (the write request and the driver) and a disk request.  Every transfer moves
real bytes between the disk's blocks and the frames.  There is no bdflush/update daemon: dirty
buffers stay dirty until evicted or synced.
"""
from collections import OrderedDict

from .errors import ENOMEM, ENOSPC


class Disk:
    """A block device of `nblocks` page-sized blocks; data kept as bytes per block."""

    def __init__(self, kernel, nblocks):
        self.k = kernel
        self.nblocks = nblocks
        self.data = {}
        self.next = 1               # block 0: the boot block, never allocated
        self.free = []
        self.requests = 0

    def alloc(self):
        if self.free:
            return self.free.pop(0)
        if self.next >= self.nblocks:
            raise ENOSPC(f"disk full ({self.nblocks} blocks)")
        b, self.next = self.next, self.next + 1
        return b

    def release(self, block):
        self.data.pop(block, None)
        self.free.append(block)
        self.free.sort()

    def _wait(self, op, block):
        m = self.k.m
        self.requests += 1
        m.charge("disk", m.profile["disk_ms_per_request"] * 1000 * m.profile["clock_mhz"])
        self.k.log(op, block=block)

    def read(self, block, size):
        """One disk request: the block's bytes (zeros where never written)."""
        self._wait("disk_read", block)
        return self.data.get(block, b"").ljust(size, b"\0")

    def write(self, block, data):
        self._wait("disk_write", block)
        self.data[block] = bytes(data)

    def install(self, block, data):
        """mkfs/installation time: put bytes on the disk without charging anything."""
        self.data[block] = bytes(data)


class Buffer:
    __slots__ = ("block", "pa", "dirty")

    def __init__(self, block, pa):
        self.block, self.pa, self.dirty = block, pa, False

    def __repr__(self):
        return f"Buffer(block={self.block}, pa=0x{self.pa:x}{', dirty' if self.dirty else ''})"


class BufferCache:
    def __init__(self, kernel, capacity):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"buffer cache capacity {capacity!r} must be a positive number "
                             "of pages")
        self.k = kernel
        self.capacity = capacity
        self.lru = OrderedDict()        # block -> Buffer, least recently used first
        self.frames = {}                # pa -> Buffer

    def __len__(self):
        return len(self.lru)

    def by_frame(self, pa):
        return self.frames.get(pa)

    def cached(self, block):
        return block in self.lru

    def bread(self, block):
        """The buffer of `block`, read from the disk on a miss."""
        return self._get(block, read=True)

    def getblk(self, block):
        """The buffer of `block` without reading it (the caller overwrites all of it)."""
        return self._get(block, read=False)

    def _get(self, block, read):
        k = self.k
        buf = self.lru.get(block)
        if buf is not None:
            k.arch.run_path("bread_hit")
            self.lru.move_to_end(block)
            return buf
        k.arch.run_path("bread_miss")
        if len(self.lru) >= self.capacity:
            self._evict()
        pa = k.m.alloc_page()
        k.mm.register_cache_frame(pa)
        buf = Buffer(block, pa)
        if read:
            k.m.memory.write(pa, k.disk.read(block, k.m.fmt.page_size))
        self.lru[block] = buf
        self.frames[pa] = buf
        return buf

    def _evict(self):
        k = self.k
        for block, buf in self.lru.items():
            if k.mm.mapcount(buf.pa) == 0:
                break
        else:
            raise ENOMEM(f"buffer cache: all {self.capacity} buffers are mapped by processes")
        k.arch.run_path("buffer_evict")
        if buf.dirty:
            self._write_back(block, buf)
        del self.lru[block], self.frames[buf.pa]
        k.mm.forget_cache_frame(buf.pa)
        k.m.free_page(buf.pa)
        k.log("evict", block=block)

    def invalidate(self, block):
        """Drop a block of a deleted file (no write-back)."""
        buf = self.lru.pop(block, None)
        if buf is not None:
            del self.frames[buf.pa]
            self.k.mm.forget_cache_frame(buf.pa)
            self.k.m.free_page(buf.pa)

    def _write_back(self, block, buf):
        """ll_rw_block(WRITE) of one dirty buffer: the request, then the disk."""
        self.k.arch.run_path("bwrite")
        self.k.disk.write(block, self.k.m.memory.read(buf.pa, self.k.m.fmt.page_size))
        buf.dirty = False

    def sync(self):
        """sync_buffers: walk every buffer (a `sync_buffers_step` each) and write the dirty
        ones back, least recently used first (sys_sync, and fsync of a directory); the
        number written."""
        dirty = []
        for block, buf in self.lru.items():
            self.k.arch.run_path("sync_buffers_step")
            if buf.dirty:
                dirty.append((block, buf))
        for block, buf in dirty:
            self._write_back(block, buf)
        return len(dirty)

    def sync_inode(self, inode):
        """ext2_sync_file's data blocks: look each block of the file up (a `get_hash_table`
        each; a hole has no block) and write the dirty ones back, in file order; the number
        written.  The inode itself lives in memory here: there is no inode block to write."""
        dirty = []
        for b in inode.blocks:
            if b is None:
                continue
            self.k.arch.run_path("get_hash_table")
            buf = self.lru.get(b)
            if buf is not None and buf.dirty:
                dirty.append((b, buf))
        for block, buf in dirty:
            self._write_back(block, buf)
        return len(dirty)

    def file_page(self, inode, index, overwrite=False, create=False):
        """The buffer holding page `index` of `inode`.  With `create` (a write) the file grows
        to the page; the pages it skips are holes (None: no block, as ext2 leaves them).  A
        hole's block is allocated when the page is first written or mapped, zero-filled
        without a disk request (read() copies a hole's zeros without it: `is_hole`)."""
        have = len(inode.blocks)
        if index >= have:
            if not create:
                raise IndexError(f"file_page: page {index} beyond the {have} blocks "
                                 f"of inode {inode.ino}")
            inode.blocks.extend([None] * (index + 1 - have))
        block = inode.blocks[index]
        if block is None:
            try:
                block = inode.blocks[index] = self.k.disk.alloc()
            except ENOSPC:
                if index >= have:
                    del inode.blocks[have:]     # the file did not grow
                raise
            return self.getblk(block)
        return self.getblk(block) if overwrite else self.bread(block)

    @staticmethod
    def is_hole(inode, index):
        """Page `index` of `inode` was never written: it reads as zeros."""
        return index < len(inode.blocks) and inode.blocks[index] is None
