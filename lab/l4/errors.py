"""L4's IPC error codes as `KernelError` subclasses.

The names and numbers are those of the L4 reference manual (x86, version 2), the error field of
the message dope returned by every IPC.  An IPC has a send phase and a receive phase; each error
says in which one it happened (`phase`), and the code says it too: L4_IPC_SE... in the send
phase (nothing was sent), L4_IPC_RE... in the receive phase.

A few conditions are not L4 return codes but the simulator's diagnosis of a state in which real
L4 would hang forever (deadlock, a page fault nobody resolves); they are named L4_SIM_....
"""
from lab.errors import KernelError


class L4Error(KernelError):
    """Base of every error the L4 model returns."""
    code = "L4_ERROR"


class InvalidArgument(L4Error, ValueError):
    """A bad argument to an L4 operation (unaligned flexpage, bad timeout, unknown thread...)."""
    code = "L4_INVALID_ARGUMENT"


class IpcError(L4Error):
    """An IPC failed.  `phase` is "send" or "receive"; `number` the v2 dope error code."""
    code = "L4_IPC_ERROR"
    phase = None
    number = None


class NotExistent(IpcError):
    """The destination (send) or source (receive) thread does not exist (any more)."""
    code = "L4_IPC_ENOT_EXISTENT"
    number = 0x10

    def __init__(self, message="", phase="send"):
        self.phase = phase
        super().__init__(message)


class ReceiveTimeout(IpcError):
    code, phase, number = "L4_IPC_RETIMEOUT", "receive", 0x20


class SendTimeout(IpcError):
    code, phase, number = "L4_IPC_SETIMEOUT", "send", 0x30


class ReceiveCanceled(IpcError):
    code, phase, number = "L4_IPC_RECANCELED", "receive", 0x40


class SendCanceled(IpcError):
    code, phase, number = "L4_IPC_SECANCELED", "send", 0x50


class ReceiveMapFailed(IpcError):
    code, phase, number = "L4_IPC_REMAPFAILED", "receive", 0x60


class SendMapFailed(IpcError):
    """A map or grant item names a page the sender does not have (nothing was mapped)."""
    code, phase, number = "L4_IPC_SEMAPFAILED", "send", 0x70


class ReceiveSendPfTimeout(IpcError):
    """Receiver's view: a page fault in the sender's space during the string copy timed out."""
    code, phase, number = "L4_IPC_RESNDPFTO", "receive", 0x80


class SendReceivePfTimeout(IpcError):
    """Sender's view: a page fault in the receiver's buffer during the string copy timed out."""
    code, phase, number = "L4_IPC_SERCVPFTO", "send", 0x90


class SendSendPfTimeout(IpcError):
    """Sender's view: a page fault in its own string timed out."""
    code, phase = "L4_IPC_SESNDPFTO", "send"


class ReceiveReceivePfTimeout(IpcError):
    """Receiver's view: a page fault in its own buffer timed out."""
    code, phase = "L4_IPC_RERCVPFTO", "receive"


class ReceiveAborted(IpcError):
    code, phase, number = "L4_IPC_REABORTED", "receive", 0xA0


class SendAborted(IpcError):
    code, phase, number = "L4_IPC_SEABORTED", "send", 0xB0


class ReceiveMsgCut(IpcError):
    """The receiver's buffers are too small for the message (nothing was delivered)."""
    code, phase, number = "L4_IPC_REMSGCUT", "receive", 0xE0


class SendMsgCut(IpcError):
    code, phase, number = "L4_IPC_SEMSGCUT", "send", 0xF0


class IpcDeadlock(L4Error):
    """Simulator diagnosis: threads wait for each other with infinite timeouts (or a thread
    waits for something that can no longer happen).  Real L4 would block them forever.
    `cycle` lists the threads of the wait-for cycle (empty if the chain ends elsewhere)."""
    code = "L4_SIM_DEADLOCK"

    def __init__(self, message="", cycle=()):
        self.cycle = tuple(cycle)
        super().__init__(message)


class SchedulerStalled(L4Error):
    """Simulator diagnosis: a synchronous caller waits while program threads run on without
    end (a program that never blocks), or simulated time can no longer advance (a deadline
    that has passed but did not expire).  Real L4 would run -- or hang -- forever."""
    code = "L4_SIM_STALLED"


class PageFaultUnresolved(L4Error):
    """Simulator diagnosis: the pager replied but the page is still not accessible; real L4
    would raise the same fault again forever."""
    code = "L4_SIM_PF_UNRESOLVED"


SEND_PHASE_PF = {"sender": SendSendPfTimeout, "receiver": SendReceivePfTimeout}
RECEIVE_PHASE_PF = {"sender": ReceiveSendPfTimeout, "receiver": ReceiveReceivePfTimeout}
