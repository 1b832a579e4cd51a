"""A small in-memory file system: inodes, directories, regular files on the disk, /dev/null.

Inodes and directories are kernel objects (no on-disk metadata); file *data* lives in disk
blocks and is reached through the buffer cache (`bcache`); a page never written (past the
end, skipped by a seek) is a hole without a block, read as zeros.  Path lookup charges one
`namei_lookup` per component (Linux 2.0 has no dentry cache: each component is looked up in
its directory).  Open files (`File`, struct file) are shared by descriptors after dup and fork;
their `ops` say what read/write mean (regular file, device, pipe end, socket).

`FileSystem.create/mkdir/contents` are the installation and inspection tools of experiments
(mkfs time, charged nothing); everything a process does goes through system calls.
"""
from enum import Enum

from .abi import O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND
from .errors import ENOENT, ENOTDIR, EISDIR, EEXIST, EINVAL, ENAMETOOLONG, ENOSPC, ESPIPE

SEEK_WHENCE = (0, 1, 2)         # SEEK_SET, SEEK_CUR, SEEK_END

NAME_MAX = 255


class InodeType(Enum):
    REG = "regular file"
    DIR = "directory"
    CHR = "character device"
    FIFO = "pipe"
    SOCK = "socket"


class Inode:
    def __init__(self, ino, itype, device=None, image=None):
        self.ino = ino
        self.type = itype
        self.size = 0
        self.blocks = []            # disk block of each page of the file
        self.entries = {}           # name -> Inode (directories)
        self.device = device        # FileOps of a character device
        self.image = image          # a programs.ProgramImage for executables
        self.nlink = 1

    def __repr__(self):
        return f"<Inode {self.ino} {self.type.value} {self.size} bytes>"


class File:
    """An open file (struct file): position, access mode, operations, reference count."""

    def __init__(self, ops, inode=None, flags=O_RDONLY, obj=None):
        self.ops, self.inode, self.flags, self.obj = ops, inode, flags, obj
        self.pos = 0
        self.count = 1

    @property
    def readable(self):
        return self.flags & O_ACCMODE in (O_RDONLY, O_RDWR)

    @property
    def writable(self):
        return self.flags & O_ACCMODE in (O_WRONLY, O_RDWR)


class FileOps:
    """What a kind of file does on read/write/lseek/release/fsync (struct file_operations)."""
    seekable = False
    kind = "special file"       # for messages: an InodeType's value

    def read(self, k, proc, f, va, n):
        raise EINVAL("read: not supported on this file")

    def write(self, k, proc, f, va, n):
        raise EINVAL("write: not supported on this file")

    def release(self, k, f):
        pass

    def fsync(self, k, f):
        """f_op->fsync; pipes, sockets and character devices have none: EINVAL."""
        raise EINVAL(f"fsync: the file is a {self.kind}, which has no fsync (only regular "
                     "files and directories have one)")

    def lseek(self, f, offset, whence):
        """sys_lseek's default handler (the syscall has checked `whence`)."""
        if not self.seekable:
            raise ESPIPE("lseek on a pipe or socket")
        size = f.inode.size if f.inode is not None else 0
        base = (0, f.pos, size)[whence]
        if base + offset < 0:
            raise EINVAL(f"lseek: resulting offset {base + offset} < 0")
        f.pos = base + offset
        return f.pos


class DirectoryOps(FileOps):
    """An open directory: seekable (the default lseek), but read() is EISDIR
    (ext2_dir_read: directories are read with readdir)."""
    seekable = True

    def read(self, k, proc, f, va, n):
        raise EISDIR("read: the file is a directory (use readdir)")

    def fsync(self, k, f):
        """ext2's directories use file_fsync, which is fsync_dev(inode->i_dev): every dirty
        buffer of the device (this lab has one disk)."""
        return k.bcache.sync()


class NullDevice(FileOps):
    """/dev/null: reads see end of file, writes are accepted and dropped, every lseek puts
    the offset at 0 (null_lseek of drivers/char/mem.c)."""
    seekable = True
    kind = InodeType.CHR.value

    def read(self, k, proc, f, va, n):
        k.arch.run_path("null_read")
        return 0

    def lseek(self, f, offset, whence):
        f.pos = 0
        return 0

    def write(self, k, proc, f, va, n):
        k.arch.run_path("null_write")
        return n


class RegularFile(FileOps):
    """generic_file_read / ext2_file_write through the buffer cache, a page at a time."""
    seekable = True

    def read(self, k, proc, f, va, n):
        k.component("fs")
        ino, page, total = f.inode, k.m.fmt.page_size, 0
        n = min(n, max(0, ino.size - f.pos))
        while n > 0:
            idx, off = divmod(f.pos, page)
            c = min(n, page - off)
            k.arch.run_path("file_read_page")
            if k.bcache.is_hole(ino, idx):      # never written: zeros, no block, no disk
                k.copy_to_user(proc, va, bytes(c))
            else:
                buf = k.bcache.file_page(ino, idx)
                k.copy_to_user(proc, va, k.m.memory.read(buf.pa + off, c), kpa=buf.pa + off)
            f.pos, va, n, total = f.pos + c, va + c, n - c, total + c
        return total

    def write(self, k, proc, f, va, n):
        k.component("fs")
        ino, page, total = f.inode, k.m.fmt.page_size, 0
        if f.flags & O_APPEND:
            f.pos = ino.size
        while n > 0:
            idx, off = divmod(f.pos, page)
            c = min(n, page - off)
            k.arch.run_path("file_write_page")
            whole = off == 0 and (c == page or f.pos + c >= ino.size)
            try:
                buf = k.bcache.file_page(ino, idx, overwrite=whole and idx < len(ino.blocks),
                                         create=True)
            except ENOSPC:
                if total:
                    return total        # ext2_file_write: what was written, else the error
                raise
            data = k.copy_from_user(proc, va, c, kpa=buf.pa + off)
            k.m.memory.write(buf.pa + off, data)
            buf.dirty = True
            f.pos, va, n, total = f.pos + c, va + c, n - c, total + c
            ino.size = max(ino.size, f.pos)
        return total

    def fsync(self, k, f):
        """ext2_sync_file: the file's dirty data blocks, each a disk write."""
        return k.bcache.sync_inode(f.inode)


class FileSystem:
    def __init__(self, kernel):
        self.k = kernel
        self.next_ino = 1
        self.root = self._inode(InodeType.DIR)
        for d in ("/dev", "/bin", "/lib", "/tmp", "/etc"):
            self.mkdir(d)
        self.mknod("/dev/null", NullDevice())

    def _inode(self, itype, **kw):
        ino = Inode(self.next_ino, itype, **kw)
        self.next_ino += 1
        return ino

    # -- installation and inspection (not system calls: charge nothing) --
    def _split(self, path):
        if path == "":
            raise ENOENT("empty path (getname: no such file)")
        if not isinstance(path, str) or not path.startswith("/"):
            raise EINVAL(f"path {path!r} must be absolute")
        parts = [c for c in path.split("/") if c]
        for c in parts:
            if len(c) > NAME_MAX:
                raise ENAMETOOLONG(f"component {c[:20]!r}... longer than {NAME_MAX}")
        return parts

    def _walk(self, parts, charge):
        ino = self.root
        for c in parts:
            if ino.type is not InodeType.DIR:
                raise ENOTDIR(f"{c!r}: a component of the path is not a directory")
            if charge:
                self.k.arch.run_path("namei_lookup")
            nxt = ino.entries.get(c)
            if nxt is None:
                raise ENOENT(f"no such file or directory: {c!r}")
            ino = nxt
        return ino

    def lookup(self, path):
        """The inode of `path` (no charge)."""
        return self._walk(self._split(path), charge=False)

    def _parent(self, path, charge=False):
        parts = self._split(path)
        if not parts:
            raise EEXIST("/ exists")
        d = self._walk(parts[:-1], charge)
        if d.type is not InodeType.DIR:
            raise ENOTDIR(f"{path}: parent is not a directory")
        return d, parts[-1]

    def mkdir(self, path):
        d, name = self._parent(path)
        if name in d.entries:
            raise EEXIST(f"{path} exists")
        d.entries[name] = self._inode(InodeType.DIR)
        return d.entries[name]

    def mknod(self, path, device):
        d, name = self._parent(path)
        d.entries[name] = self._inode(InodeType.CHR, device=device)
        return d.entries[name]

    def create(self, path, data=b"", image=None):
        """Install a file with `data` on the disk (replacing an existing one)."""
        d, name = self._parent(path)
        old = d.entries.get(name)
        if old is not None:
            self._truncate(old)
        ino = self._inode(InodeType.REG, image=image)
        page = self.k.m.fmt.page_size
        for off in range(0, len(data), page):
            b = self.k.disk.alloc()
            self.k.disk.install(b, data[off:off + page])
            ino.blocks.append(b)
        ino.size = len(data)
        d.entries[name] = ino
        return ino

    def contents(self, path):
        """The bytes of a file as a reader would see them (cache first, else disk; free)."""
        ino = self.lookup(path)
        page, out = self.k.m.fmt.page_size, bytearray()
        for b in ino.blocks:
            buf = self.k.bcache.lru.get(b) if b is not None else None     # None: a hole
            out += self.k.m.memory.read(buf.pa, page) if buf else \
                self.k.disk.data.get(b, b"").ljust(page, b"\0")
        return bytes(out[:ino.size])

    def _truncate(self, ino):
        self.k.mm.vmtruncate(ino, 0)        # mapped pages go first: the cache drops them
        for b in ino.blocks:
            if b is not None:                   # (a hole has no block)
                self.k.bcache.invalidate(b)
                self.k.disk.release(b)
        ino.blocks, ino.size = [], 0

    # -- what system calls use (charged) --
    @staticmethod
    def _from_cwd(path):
        """A relative path starts at the process's working directory: the root (this lab has
        no chdir)."""
        return path if path.startswith("/") or path == "" else "/" + path

    def namei(self, path):
        self.k.component("fs")
        path = self._from_cwd(path)
        ino = self._walk(self._split(path), charge=True)
        if path.endswith("/") and ino.type is not InodeType.DIR:
            # dir_namei: a name followed by "/" must be a directory
            raise ENOTDIR(f"{path}: a name followed by '/' is not a directory")
        return ino

    def open(self, path, flags):
        """open_namei + the file's open: a new File.  As do_open does, O_CREAT and O_TRUNC
        ask for write access to an existing file: a directory is then EISDIR, and O_TRUNC
        empties a regular file whatever the access mode (a device ignores it)."""
        self.k.component("fs")
        path = self._from_cwd(path)
        acc = flags & O_ACCMODE
        if acc not in (O_RDONLY, O_WRONLY, O_RDWR):
            raise EINVAL(f"open: access mode {acc} (flags 0o{flags:o})")
        try:
            ino = self.namei(path)
        except ENOENT:
            if not flags & O_CREAT or path.endswith("/"):
                raise                           # ("new/": dir_namei looks "new" up first)
            d, name = self._parent(path, charge=True)
            ino = d.entries[name] = self._inode(InodeType.REG)
        if ino.type is InodeType.DIR and (acc != O_RDONLY or flags & (O_CREAT | O_TRUNC)):
            raise EISDIR(f"{path} is a directory (open with write access, O_CREAT or O_TRUNC)")
        if ino.type is InodeType.REG and flags & O_TRUNC:
            self._truncate(ino)
        if ino.type is InodeType.CHR:
            return File(ino.device, ino, flags)
        if ino.type is InodeType.REG:
            return File(REGULAR, ino, flags)
        if ino.type is InodeType.DIR:
            return File(DIRECTORY, ino, flags)
        return File(FileOps(), ino, flags)


REGULAR = RegularFile()
DIRECTORY = DirectoryOps()


def lseek(f, offset, whence):
    """sys_lseek's checks (the syscall charges its path): a whence other than SEEK_SET/CUR/END
    is EINVAL before the file's own lseek runs (a pipe's is ESPIPE, /dev/null's answers 0)."""
    if whence not in SEEK_WHENCE:
        raise EINVAL(f"lseek: whence {whence}; allowed SEEK_SET, SEEK_CUR, SEEK_END")
    return f.ops.lseek(f, offset, whence)
