"""L4 threads: an explicit state machine, a TCB slot in the kernel's virtual TCB array, a pager.

A thread is driven either by a *program* (a generator function `program(thread)` that yields
IPC requests and `compute` work, scheduled by the kernel's deterministic scheduler) or, with no
program, by Python code calling the kernel on its behalf (`kernel.ipc(thread, request)`,
`kernel.execute(thread, ops)`): the L4Linux user processes are driven that way by Linux.
"""
from collections import deque
from enum import Enum


class ThreadState(Enum):
    READY = "ready"            # runnable (a program thread in the ready queue, or the one running)
    SENDING = "sending"        # blocked in the send phase: the partner is not receiving (polling)
    RECEIVING = "receiving"    # blocked in the receive phase: waiting for a message
    LOCKED = "locked"          # in a transfer that waits for a page fault (timeouts suspended)
    DEAD = "dead"


BLOCKED = (ThreadState.SENDING, ThreadState.RECEIVING, ThreadState.LOCKED)


class Thread:
    def __init__(self, kernel, tid, task, name, pager, program, slot):
        self.kernel = kernel
        self.tid = tid
        self.task = task
        self.name = name
        self.pager = pager                  # Thread receiving this thread's page faults
        self.exception_handler = None       # user-level handler for traps (the trampoline)
        self.slot = slot                    # TCB slot in the kernel's TCB array
        self.state = ThreadState.READY
        self.partner = None                 # SENDING: destination; RECEIVING: source (None: any)
        self.deadline = None                # cycle at which the blocked phase times out
        self.request = None                 # the IPC in progress
        self.result = None                  # message (or error) waiting to be delivered
        self.senders = deque()              # threads polling to send to this one, FIFO
        self.sync = 0                       # > 0: a Python frame waits for this thread's IPC
        self.generator = program(self) if program is not None else None
        self.started = False
        self.exit_reason = None

    @property
    def alive(self):
        return self.state is not ThreadState.DEAD

    @property
    def blocked(self):
        return self.state in BLOCKED

    @property
    def has_program(self):
        return self.generator is not None

    def __repr__(self):
        return f"<thread {self.tid} {self.name} {self.state.value}>"
