"""`Pager`: a data manager (external pager) as a user task.  Subclass it.

The kernel calls the manager with messages on the memory object's port; the pager's server
thread receives them and calls the *override points*, named as in the lecture:

    pager_init(memory_object, pager_request, pager_name)
        the kernel maps the object for the first time; keep `pager_request` to talk back
    pager_data_request(memory_object, pager_request, offset, length, desired_access)
        a thread faulted on data the kernel does not have: answer with pager_data_provided
        or pager_data_unavailable (or not at all: the faulting thread times out)
    pager_data_write(memory_object, offset, data)
        dirty data coming back (pageout or clean): `data` is bytes (the out-of-line region
        was read and deallocated by the base class)
    pager_data_unlock(memory_object, pager_request, offset, length, desired_access)
        a thread wants access the manager has locked: answer with pager_data_lock
    pager_create(old_memory_object, new_memory_object, new_request_port, new_name)
        (default pager) the kernel hands over memory it created
    pager_terminate(memory_object)          the kernel dropped the object
    handle(msg)                             any other message (e.g. a file server's requests);
                                            return a reply Message or None

and its calls on the kernel, also as in the lecture (each a message to pager_request):

    self.pager_data_provided(pager_request, offset, data, lock_value=VMProt.NONE)
    self.pager_data_unavailable(pager_request, offset, size)
    self.pager_data_lock(pager_request, offset, length, lock_value)
    self.pager_flush_request(pager_request, offset, length)
    self.pager_clean_request(pager_request, offset, length)
    self.pager_cache(pager_request, may_cache)

Defaults: data_request answers pager_data_unavailable (zero-fill), data_unlock grants it,
data_write keeps the data in `self.store` -- a minimal memory-backed pager.
"""
from . import protocol as P
from .message import Message
from .vm_map import VMProt


class Pager:
    """A data manager in its own task with one server thread (or `threads` of them, all
    receiving on the default group)."""

    def __init__(self, kernel, name="pager", task=None, threads=1):
        self.k = kernel
        self.task = task or kernel.task_create(name=name, category="server")
        self.threads = [kernel.thread_create(self.task, handler=self._receive,
                                             name=f"{self.task.name}.pager{i}")
                        for i in range(threads)]
        self.thread = self.threads[0]
        self.store = {}              # (memory object name, offset) -> bytes written back
        self.requests = {}           # memory object name -> its pager_request name
        self.current = self.thread   # the thread handling the message now

    @property
    def page(self):
        return self.k.page

    def create_memory_object(self, label=""):
        """A new memory object: a port this pager receives on (in its default group)."""
        name = self.k.port_allocate(self.task, label, caller=self.current)
        self.k.port_enable(self.task, name, caller=self.current)
        return name

    def give(self, memory_object, task):
        """A send right to the object for `task` (as a name server would pass it)."""
        return self.k.port_insert_send(self.task, memory_object, task, caller=self.current)

    # -- dispatch --------------------------------------------------------------------------
    def _receive(self, msg):
        prev = self.current
        self.current = self.k.running if self.k.running in self.threads else self.thread
        try:
            return self._dispatch(msg)
        finally:
            self.current = prev

    def _dispatch(self, msg):
        mo = msg.local_port
        if msg.id == P.PAGER_INIT:
            self.requests[mo] = msg.ports[0].name
            return self.pager_init(mo, msg.ports[0].name, msg.ports[1].name)
        if msg.id == P.PAGER_DATA_REQUEST:
            off, length, access = P.unpack(msg.data)
            return self.pager_data_request(mo, msg.ports[0].name, off, length, VMProt(access))
        if msg.id == P.PAGER_DATA_UNLOCK:
            off, length, access = P.unpack(msg.data)
            return self.pager_data_unlock(mo, msg.ports[0].name, off, length, VMProt(access))
        if msg.id == P.PAGER_DATA_WRITE:
            off, length = P.unpack(msg.data)
            item = msg.ool[0]
            data = self.k.user_read(self.current, item.address, item.size)
            self.k.vm_deallocate(self.task, item.address, item.size, caller=self.current)
            return self.pager_data_write(mo, off, data)
        if msg.id == P.PAGER_CREATE:
            (size,) = P.unpack(msg.data)
            new, req, nm = (p.name for p in msg.ports)
            self.requests[new] = req
            return self.pager_create(None, new, req, nm)
        if msg.id == P.PAGER_TERMINATE:
            return self.pager_terminate(mo)
        return self.handle(msg)

    # -- override points -------------------------------------------------------------------
    def pager_init(self, memory_object, pager_request, pager_name):
        pass

    def pager_data_request(self, memory_object, pager_request, offset, length, desired_access):
        data = self.store.get((memory_object, offset))
        if data is None:
            self.pager_data_unavailable(pager_request, offset, length)
        else:
            self.pager_data_provided(pager_request, offset, data)

    def pager_data_write(self, memory_object, offset, data):
        self.store[(memory_object, offset)] = data

    def pager_data_unlock(self, memory_object, pager_request, offset, length, desired_access):
        self.pager_data_lock(pager_request, offset, length, VMProt.NONE)

    def pager_create(self, old_memory_object, new_memory_object, new_request_port, new_name):
        self.k.port_enable(self.task, new_memory_object, caller=self.current)

    def pager_terminate(self, memory_object):
        pass

    def handle(self, msg):
        return None

    # -- calls on the kernel ---------------------------------------------------------------
    def pager_data_provided(self, pager_request, offset, data, data_count=None,
                            lock_value=VMProt.NONE):
        self.k.pager_data_provided(self.current, pager_request, offset, data, data_count,
                                   lock_value)

    def pager_data_unavailable(self, pager_request, offset, size):
        self.k.pager_data_unavailable(self.current, pager_request, offset, size)

    def pager_data_lock(self, pager_request, offset, length, lock_value):
        self.k.pager_data_lock(self.current, pager_request, offset, length, lock_value)

    def pager_flush_request(self, pager_request, offset, length):
        self.k.pager_flush_request(self.current, pager_request, offset, length)

    def pager_clean_request(self, pager_request, offset, length):
        self.k.pager_clean_request(self.current, pager_request, offset, length)

    def pager_cache(self, pager_request, may_cache):
        self.k.pager_cache(self.current, pager_request, may_cache)

    def reply(self, msg, msg_id=0, data=b"", ports=(), ool=()):
        """A reply Message to `msg` (return it from handle())."""
        return Message(remote_port=msg.remote_port, id=msg_id, data=data, ports=list(ports),
                       ool=list(ool))
