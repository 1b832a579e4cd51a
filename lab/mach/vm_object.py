"""Memory objects as the kernel caches them (Young et al. 1987 §3-4).

A `VMObject` is the kernel's cache of one memory object: the resident pages it holds, the
pager (the port of the data manager that backs it, if any) and the kernel-owned
`pager_request` port through which that manager controls the cache.  Copy-on-write is built
from objects too:

  * a *shadow* object holds the pages an entry changed; the pages it lacks are read from the
    object it shadows (symmetric copy-on-write, for private memory);
  * a *copy* object (`obj.copy`) keeps the old contents of a shared or pager-backed object:
    before a page of `obj` is changed, its old contents are pushed into `obj.copy`
    (Mach's delayed copy, so that a copy never sees later writes to its source).
"""
from dataclasses import dataclass, field
from enum import Enum


class ObjectState(Enum):
    ACTIVE = "active"
    CACHED = "cached"            # no references left, kept because the pager allowed it
    TERMINATED = "terminated"


class RequestState(Enum):
    """A pager_data_request/unlock the kernel is waiting on."""
    PENDING = "pending"
    UNAVAILABLE = "unavailable"  # pager_data_unavailable: zero-fill
    FAILED = "failed"            # the pager died


@dataclass
class VMPage:
    offset: int
    pa: int
    dirty: bool = False
    lock: int = 0                # VMProt bits the manager has locked (denied)
    owned: bool = True           # False: a physical object's frame (not the kernel's to free)


@dataclass
class VMObject:
    id: int
    size: int
    internal: bool = True        # temporary memory: the default pager backs it when paged out
    pager: object = None         # Port of the memory object (its manager holds receive)
    pager_request: object = None # kernel-owned Port the manager sends pager_* calls to
    pager_name: object = None    # kernel-owned Port naming the object (vm_regions)
    shadow: object = None
    shadow_offset: int = 0
    copy: object = None
    physical: bool = False       # the manager supplies frames it owns (MkLinux user memory)
    ref_count: int = 1
    can_persist: bool = False    # pager_cache: keep pages after the last reference
    initialized: bool = False    # pager_init sent
    pageable: bool = True        # False while its pages travel in a message (pageout data)
    wired: bool = False          # memory of a VM-privileged task (the default pager): never evicted
    state: ObjectState = ObjectState.ACTIVE
    pages: dict = field(default_factory=dict)          # offset -> VMPage
    paged_out: set = field(default_factory=set)        # offsets the default pager holds
    requests: dict = field(default_factory=dict)       # offset -> RequestState (data)
    unlocks: dict = field(default_factory=dict)        # offset -> RequestState (unlock)

    @property
    def external(self):
        return not self.internal

    def has_pager_data(self, off):
        """Whether the manager (not the shadow chain) must supply page `off`."""
        if self.pager is None:
            return False
        return self.external or off in self.paged_out

    def __repr__(self):
        return (f"<VMObject {self.id} {'ext' if self.external else 'int'} size=0x{self.size:x}"
                f" pages={len(self.pages)} refs={self.ref_count} {self.state.value}>")
