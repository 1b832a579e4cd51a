"""The external memory management protocol's message ids and their inline data.

Kernel -> data manager (sent to the memory object port, which the manager receives on):
    PAGER_INIT            rights: [pager_request, pager_name]
    PAGER_DATA_REQUEST    (offset, length, desired_access); rights: [pager_request]
    PAGER_DATA_UNLOCK     (offset, length, desired_access); rights: [pager_request]
    PAGER_DATA_WRITE      (offset, length); out-of-line: the page(s)
    PAGER_CREATE          (size,); rights: [new memory object (receive), request, name]
                          -- to the default pager, for memory the kernel created
    PAGER_TERMINATE       the object is gone (the kernel drops its rights)
Data manager -> kernel (sent to the kernel-owned pager_request port):
    PAGER_DATA_PROVIDED   (offset, lock_value); out-of-line: the data
    PAGER_DATA_UNAVAILABLE (offset, size)
    PAGER_DATA_LOCK       (offset, length, lock_value)
    PAGER_FLUSH_REQUEST   (offset, length)
    PAGER_CLEAN_REQUEST   (offset, length)
    PAGER_CACHE           (may_cache,)
    PAGER_DATA_PROVIDED_PHYSICAL (offset, frame, lock_value) -- a frame the manager owns is
                          mapped as is (how a device pager, or MkLinux's server, supplies memory)
    PAGER_DATA_ERROR      (offset, size) -- no data will come: the fault fails
                          (Mach 3.0 memory_object_data_error)
Ids follow Mach 3.0's numbering of memory_object (2200...) and memory_object_control (2000...).
"""
import struct

PAGER_INIT = 2200
PAGER_TERMINATE = 2201
PAGER_DATA_REQUEST = 2202
PAGER_DATA_UNLOCK = 2203
PAGER_DATA_WRITE = 2204
PAGER_CREATE = 2205

PAGER_DATA_PROVIDED = 2000
PAGER_DATA_UNAVAILABLE = 2001
PAGER_DATA_LOCK = 2002
PAGER_FLUSH_REQUEST = 2003
PAGER_CLEAN_REQUEST = 2004
PAGER_CACHE = 2005
PAGER_DATA_PROVIDED_PHYSICAL = 2006
PAGER_DATA_ERROR = 2007

NAMES = {v: k.lower() for k, v in dict(globals()).items()
         if k.startswith("PAGER_") and isinstance(v, int)}


def pack(*values):
    return struct.pack(f"<{len(values)}q", *(int(v) for v in values))


def unpack(data):
    return struct.unpack(f"<{len(data) // 8}q", data)
