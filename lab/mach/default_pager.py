"""The default pager: backing store for temporary memory (Young et al. 1987 §4).

The kernel gives it, with pager_create, the receive right of a memory object it made for
temporary memory that must leave physical memory; the pager enables that port, keeps the
pages it is sent (pager_data_write) on a simulated disk, and returns them on
pager_data_request (or pager_data_unavailable for a page it never got).
"""
from .disk import SimDisk
from .pager import Pager


class DefaultPager(Pager):
    def __init__(self, kernel, disk=None):
        super().__init__(kernel, name="default_pager")
        self.task.vm_privileged = True     # it must receive pages to free pages
        self.disk = disk or SimDisk(kernel.m)
        name = kernel._port_allocate(self.task, "default_pager")
        self.task.enabled.append(self.task.ipc.entries[name].port)
        self.service = name
        self.service_port = self.task.ipc.entries[name].port
        self.blocks = {}             # (memory object name, offset) -> disk block
        self._next_block = 0

    def pager_create(self, old_memory_object, new_memory_object, new_request_port, new_name):
        self.k.port_enable(self.task, new_memory_object, caller=self.current)

    def pager_data_write(self, memory_object, offset, data):
        key = (memory_object, offset)
        if key not in self.blocks:
            self.blocks[key] = self._next_block
            self._next_block += 1
        self.disk.write(self.blocks[key], data)

    def pager_data_request(self, memory_object, pager_request, offset, length, desired_access):
        block = self.blocks.get((memory_object, offset))
        if block is None:
            self.pager_data_unavailable(pager_request, offset, length)
        else:
            self.pager_data_provided(pager_request, offset, self.disk.read(block))

    def pager_terminate(self, memory_object):
        for key in [k for k in self.blocks if k[0] == memory_object]:
            del self.blocks[key]
        self.k.port_deallocate(self.task, memory_object, caller=self.current)
