"""Tasks and threads (Rashid et al. 1987): a task is the unit of resource allocation (an
address space and a port name space), a thread the unit of computation.

A thread is driven either by the caller (a client: the test or workload calls the kernel
with it) or by the kernel's scheduler: a *server thread* has a handler and sits in
msg_receive; the scheduler hands it a message when one is queued on its ports and it is
idle, then it runs the handler (which may send, receive, fault and wait in turn).
"""
from enum import Enum

from .port import IPCSpace


class TaskState(Enum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class ThreadState(Enum):
    RUNNING = "running"          # executing (possibly suspended under a nested wait)
    RECEIVING = "receiving"      # server thread blocked in msg_receive on its ports
    WAITING = "waiting"          # blocked in the kernel: reply, page, backlog
    HALTED = "halted"


class Task:
    def __init__(self, kernel, tid, name, space, vmmap, kernel_task=False):
        self.kernel = kernel
        self.id = tid
        self.name = name
        self.space = space              # engine address-space id
        self.map = vmmap
        self.ipc = IPCSpace(self)
        self.threads = []
        self.enabled = []               # default group: ports, in the order enabled
        self.state = TaskState.ACTIVE
        self.kernel_task = kernel_task  # lives in the kernel's space (co-located server)
        self.category = "user"          # cycle category of its own work ("server" for servers)
        self.vm_privileged = False      # may take frames from the reserve (the default pager)
        self.stats = {"faults": 0, "cow_faults": 0, "zero_fill": 0, "pageins": 0,
                      "lookups": 0, "hits": 0}

    @property
    def alive(self):
        return self.state is TaskState.ACTIVE

    @property
    def thread(self):
        """The task's first live thread (the caller for calls made 'by the task')."""
        for t in self.threads:
            if t.state is not ThreadState.HALTED:
                return t
        return None

    # conveniences: calls made by this task's first thread on itself
    def read(self, va, n):
        return self.kernel.user_read(self.thread, va, n)

    def write(self, va, data):
        return self.kernel.user_write(self.thread, va, data)

    def touch(self, kind, vaddrs):
        return self.kernel.user_access(self.thread, kind, vaddrs)

    def __repr__(self):
        return f"<Task {self.name} #{self.id} {self.state.value}>"


class Thread:
    def __init__(self, task, thid, handler=None, ports=None, name=""):
        self.task = task
        self.id = thid
        self.name = name or f"{task.name}.{thid}"
        self.handler = handler          # server thread: handler(Message) -> reply Message|None
        self.ports = ports              # names it receives on; None: the task's default group
        self.state = ThreadState.RECEIVING if handler else ThreadState.RUNNING
        self.msg_buf = None             # va of its message buffer (allocated on first use)
        self.waiting_for = None         # (what, port) while blocked: for deadlock reports
        self.exception_port = None      # Port that receives its exception messages
        self.reply_port = None          # name of its reply port for rpc() (made on first use)

    @property
    def is_server(self):
        return self.handler is not None

    def __repr__(self):
        return f"<Thread {self.name} {self.state.value}>"
