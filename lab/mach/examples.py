"""The lecture's examples of external memory management, as running code.

1. The copy-on-write file system (Young et al. 1987; the lecture's fs_read_file):

    addr, size = fs_read_file(k, client, server_port, "filename")   # maps the file, COW
    ... the client changes its copy at random ...
    fs_write_file(k, client, server_port, "filename", addr, size // 2) # writes back half
    k.vm_deallocate(client, addr, size)                                # throws the copy away

   `FileServer` is both the file server and the pager of its files: it maps each file's
   memory object into its own space (vm_allocate_with_pager: the kernel sends pager_init),
   passes it to clients out of line (no data copied), reads disk blocks when the kernel asks
   (pager_data_request -> pager_data_provided) and writes back what the kernel returns
   (pager_data_write).  Two server threads: one may fault on a file while the other answers
   the kernel's pager_data_request -- with one thread it would deadlock on itself.

2. Consistent network shared memory (the lecture's "each client maps X with shared pager;
   use primitives to tell kernel cache what to do: locking, flushing"):
   `SharedMemoryPager` keeps one segment coherent among hosts, each of which caches it
   through a memory object of its own (each host's kernel cache: here one kernel, one object
   per host).  Readers get pages write-locked; a writer's unlock request makes the pager
   clean the old writer (pager_clean_request -> pager_data_write) and flush every other
   copy (pager_flush_request) before granting write access (pager_data_lock).
"""
import struct

from . import protocol as P
from .disk import SimDisk
from .errors import RcvTimedOut
from .ipc import MsgOption
from .message import OOLItem
from .pager import Pager
from .vm_map import VMProt

FS_READ = 3000
FS_WRITE = 3001
FS_OK = 3100


class FileServer(Pager):
    """A file server that is the pager of its files (two threads)."""

    def __init__(self, kernel, disk=None, name="file_server"):
        super().__init__(kernel, name=name, threads=2)
        self.disk = disk or SimDisk(kernel.m)
        self.service = self.create_memory_object("fs_service")   # its request port
        self.files = {}          # name -> {"size", "blocks", "object", "address"}
        self.by_object = {}      # memory object name -> file name
        self.written = []        # (file, offset) of every pager_data_write received
        self._next_block = 1000

    def create_file(self, name, data, first_block=None):
        """Put a file on the disk (set-up: the disk writes are charged)."""
        nb = -(-len(data) // self.page)
        # a running block counter: files never share disk blocks, whatever their sizes
        base = first_block if first_block is not None else self._next_block
        self._next_block = max(self._next_block, base + nb)
        for i in range(nb):
            self.disk.write(base + i, data[i * self.page:(i + 1) * self.page])
        self.files[name] = {"size": len(data), "blocks": [base + i for i in range(nb)],
                            "object": None, "address": None}

    def adopt(self, other):
        """A restarted server takes over the files of a dead one (same disk)."""
        for name, f in other.files.items():
            self.files[name] = {"size": f["size"], "blocks": list(f["blocks"]),
                                "object": None, "address": None}

    # -- fs_read_file / fs_write_file, server side ------------------------------------------
    def _map_file(self, name):
        f = self.files[name]
        if f["object"] is None:
            # the lecture's fs_read_file: allocate a memory object (a port) and accept
            # requests on it, then map it into our own space; the kernel issues pager_init
            mo = self.create_memory_object(f"file:{name}")
            f["object"] = mo
            self.by_object[mo] = name
            f["address"] = self.k.vm_allocate_with_pager(self.task, 0, f["size"], True, mo, 0,
                                                         caller=self.current)
        return f

    def handle(self, msg):
        if msg.id == FS_READ:
            name = msg.data.decode()
            f = self._map_file(name)
            return self.reply(msg, FS_OK, struct.pack("<q", f["size"]),
                              ool=[OOLItem(f["address"], f["size"])])
        if msg.id == FS_WRITE:
            (count,) = struct.unpack("<q", msg.data[:8])
            name = msg.data[8:].decode()
            f = self._map_file(name)
            src = msg.ool[0]
            data = self.k.user_read(self.current, src.address, count)
            self.k.user_write(self.current, f["address"], data)
            self.k.vm_deallocate(self.task, src.address, src.size, caller=self.current)
            req = self.requests[f["object"]]
            self.pager_clean_request(req, 0, count)        # dirty pages back to us, to disk
            return self.reply(msg, FS_OK, struct.pack("<q", count))
        return None

    # -- the pager side ---------------------------------------------------------------------
    def pager_data_request(self, memory_object, pager_request, offset, length, desired_access):
        f = self.files[self.by_object[memory_object]]
        block = f["blocks"][offset // self.page]
        self.pager_data_provided(pager_request, offset, self.disk.read(block))

    def pager_data_write(self, memory_object, offset, data):
        name = self.by_object[memory_object]
        f = self.files[name]
        self.disk.write(f["blocks"][offset // self.page], data)
        self.written.append((name, offset))


def fs_read_file(k, client, server, name, timeout=None):
    """Read file `name` from the file server (port name `server` in the client): the file
    appears in the client's memory copy-on-write.  Returns (address, size)."""
    r = k.rpc(client, server, FS_READ, name.encode(), timeout=timeout)
    (size,) = struct.unpack("<q", r.data)
    return r.ool[0].address, size


def fs_write_file(k, client, server, name, address, size, timeout=None):
    """Write `size` bytes at `address` back to file `name` (sent out of line)."""
    r = k.rpc(client, server, FS_WRITE, struct.pack("<q", size) + name.encode(),
              ool=[OOLItem(address, size)], timeout=timeout)
    return struct.unpack("<q", r.data)[0]


class SharedMemoryPager(Pager):
    """Keeps one segment of `size` bytes coherent among hosts (single writer, many readers)."""

    def __init__(self, kernel, size, name="shm_pager"):
        super().__init__(kernel, name=name)
        self.size = size
        self.master = {}             # offset -> bytes (the pager's copy)
        self.hosts = {}              # host name -> memory object name
        self.host_of = {}            # memory object name -> host name
        self.writer = {}             # offset -> host holding write access
        self.holders = {}            # offset -> [hosts caching the page]

    def memory_object_for(self, host):
        mo = self.create_memory_object(f"shm:{host}")
        self.hosts[host] = mo
        self.host_of[mo] = host
        return mo

    def _req(self, host):
        return self.requests[self.hosts[host]]

    def _clean_writer(self, off):
        """Get the writer's data back (clean) and leave it a read-only copy."""
        w = self.writer.pop(off, None)
        if w is None:
            return
        mo = self.hosts[w]
        self.pager_clean_request(self._req(w), off, self.page)
        try:       # the kernel queued the data on our port during that call: take it now
            msg = self.k.msg_receive(self.current, mo, MsgOption.RCV_TIMEOUT, 0)
            if msg.id == P.PAGER_DATA_WRITE:
                self._dispatch(msg)
        except RcvTimedOut:
            pass                     # the writer never wrote: nothing to get back
        self.pager_data_lock(self._req(w), off, self.page, VMProt.WRITE)

    def _flush_others(self, off, keep):
        for h in list(self.holders.get(off, [])):
            if h != keep:
                self.pager_flush_request(self._req(h), off, self.page)
                self.holders[off].remove(h)

    def pager_data_request(self, memory_object, pager_request, offset, length, desired_access):
        h = self.host_of[memory_object]
        if self.writer.get(offset) not in (None, h):
            self._clean_writer(offset)
        if desired_access & VMProt.WRITE:
            self._flush_others(offset, h)
            self.writer[offset] = h
            lock = VMProt.NONE
        else:
            lock = VMProt.WRITE
        holders = self.holders.setdefault(offset, [])
        if h not in holders:
            holders.append(h)
        self.pager_data_provided(pager_request, offset,
                                 self.master.get(offset, bytes(self.page)), lock_value=lock)

    def pager_data_unlock(self, memory_object, pager_request, offset, length, desired_access):
        h = self.host_of[memory_object]
        if self.writer.get(offset) not in (None, h):
            self._clean_writer(offset)
        self._flush_others(offset, h)
        self.writer[offset] = h
        self.pager_data_lock(pager_request, offset, length, VMProt.NONE)

    def pager_data_write(self, memory_object, offset, data):
        self.master[offset] = data
