"""Mach return codes as exceptions (Mach 2.5/3.0 vocabulary; the lecture's interface).

Each is a `lab.errors.KernelError` whose `code` is the manual's name.  The message says
which call, which value and what was allowed.  Two codes are the simulator's own, because
real Mach has no answer there (it hangs): `DEADLOCK_DETECTED` and `MIG_SERVER_DIED` (the
latter is MIG's name for "the reply was a send-once notification: the server died").
"""
from lab.errors import KernelError


class MachError(KernelError):
    code = "KERN_FAILURE"


# -- kern_return_t ------------------------------------------------------------------------
class KernInvalidAddress(MachError):
    code = "KERN_INVALID_ADDRESS"


class KernProtectionFailure(MachError):
    code = "KERN_PROTECTION_FAILURE"


class KernNoSpace(MachError):
    code = "KERN_NO_SPACE"


class KernInvalidArgument(MachError):
    code = "KERN_INVALID_ARGUMENT"


class KernResourceShortage(MachError):
    code = "KERN_RESOURCE_SHORTAGE"


class KernInvalidName(MachError):
    """The name denotes no right in the task's name space."""
    code = "KERN_INVALID_NAME"


class KernInvalidRight(MachError):
    """The name denotes a right of the wrong kind for the operation."""
    code = "KERN_INVALID_RIGHT"


class KernInvalidTask(MachError):
    code = "KERN_INVALID_TASK"


class KernMemoryError(MachError):
    """A fault could not be resolved: the memory object's manager failed (died, or
    reported an error) -- how an external pager's failure reaches the faulting thread."""
    code = "KERN_MEMORY_ERROR"


# -- msg_send -------------------------------------------------------------------------------
class SendInvalidPort(MachError):
    code = "SEND_INVALID_PORT"


class SendInvalidReply(SendInvalidPort):
    """The message's reply port (local_port) names no right, or not one its disposition
    needs (Mach 3 MACH_SEND_INVALID_REPLY; Mach 2.5 said SEND_INVALID_PORT)."""
    code = "SEND_INVALID_REPLY"


class SendInvalidRight(SendInvalidPort):
    """A port right the message carries names no right, or not one its disposition needs
    -- also when an earlier right of the same message took it (Mach 3
    MACH_SEND_INVALID_RIGHT; Mach 2.5 said SEND_INVALID_PORT)."""
    code = "SEND_INVALID_RIGHT"


class PortDead(SendInvalidPort):
    """The destination name is a dead name: its port's receive right was destroyed."""
    code = "PORT_DEAD"


class SendTimedOut(MachError):
    code = "SEND_TIMED_OUT"


class SendInvalidMemory(MachError):
    """The message is not in memory the sender can read: out-of-line data names memory it has
    not allocated, or the argument given as the message is not a Message at all."""
    code = "SEND_INVALID_MEMORY"


class SendMsgTooLarge(MachError):
    code = "SEND_MSG_TOO_LARGE"


# -- msg_receive ----------------------------------------------------------------------------
class RcvInvalidPort(MachError):
    code = "RCV_INVALID_PORT"


class RcvTimedOut(MachError):
    code = "RCV_TIMED_OUT"


class RcvPortChanged(MachError):
    """The port being received on was moved away or died during the receive."""
    code = "RCV_PORT_CHANGED"


class RcvTooLarge(MachError):
    code = "RCV_TOO_LARGE"


class PagerTimedOut(RcvTimedOut):
    """A data manager did not answer pager_data_request/unlock in time: as the lecture puts
    it, external data manager failure looks like communication failure."""
    code = "RCV_TIMED_OUT"


class MigServerDied(MachError):
    """An RPC's reply was the send-once notification: the server destroyed the reply right
    unanswered (it died)."""
    code = "MIG_SERVER_DIED"


# -- the simulator's diagnosis ----------------------------------------------------------------
class Deadlock(MachError):
    """No thread can ever satisfy a wait (a cycle of waits, or nothing runnable and no
    timeout).  Mach would hang; the simulator reports it.  `.chain` names the waits."""
    code = "DEADLOCK_DETECTED"

    def __init__(self, message="", chain=()):
        self.chain = tuple(chain)
        super().__init__(message)


class PagerDeadlock(Deadlock):
    """A data manager waits, directly or through others, for data only it can provide."""
    code = "DEADLOCK_DETECTED"
