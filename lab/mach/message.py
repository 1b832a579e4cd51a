"""Messages: a header, inline data, port rights and out-of-line memory.

User form (what a thread builds and gets back), in the lecture's Mach 2.5 terms:

    Message(remote_port=dest, local_port=reply, id=..., data=b"...",
            ports=[PortItem(name, Disposition.MAKE_SEND)], ool=[OOLItem(addr, size)])

On receipt `local_port` is the name of the port it was received on, `remote_port` the
name of the reply right (if any), `ports` the names the carried rights got in the receiver's
space, and `ool` the addresses where the out-of-line regions were mapped, copy-on-write.

Kernel form (`KMsg`): rights in transit hold the ports themselves, out-of-line memory is a
`VMCopy` (object references, no data copied), inline data the bytes copied from the sender.
"""
from dataclasses import dataclass, field
from enum import Enum

from .port import Right


class Disposition(Enum):
    """What msg_send does with a right named in a message (Mach 3.0 MACH_MSG_TYPE_*)."""
    MOVE_RECEIVE = "move-receive"
    MOVE_SEND = "move-send"
    MOVE_SEND_ONCE = "move-send-once"
    COPY_SEND = "copy-send"
    MAKE_SEND = "make-send"
    MAKE_SEND_ONCE = "make-send-once"


# the right the receiver gets for each disposition
CARRIED = {Disposition.MOVE_RECEIVE: Right.RECEIVE, Disposition.MOVE_SEND: Right.SEND,
           Disposition.COPY_SEND: Right.SEND, Disposition.MAKE_SEND: Right.SEND,
           Disposition.MOVE_SEND_ONCE: Right.SEND_ONCE,
           Disposition.MAKE_SEND_ONCE: Right.SEND_ONCE}


@dataclass
class PortItem:
    name: int
    disposition: Disposition = Disposition.COPY_SEND
    right: Right = None          # set on receipt


@dataclass
class OOLItem:
    address: int
    size: int
    deallocate: bool = False     # move: the region leaves the sender's map


@dataclass
class Message:
    remote_port: int = 0
    local_port: int = 0
    id: int = 0
    data: bytes = b""
    ports: list = field(default_factory=list)
    ool: list = field(default_factory=list)
    remote_disposition: Disposition = None     # default: COPY_SEND, or MOVE_SEND_ONCE
    local_disposition: Disposition = None      # default: MAKE_SEND_ONCE (a reply right)
    seqno: int = -1                            # set on receipt
    reply_right: Right = None                  # set on receipt

    @property
    def size(self):
        return len(self.data)


# message ids of kernel-generated notifications (Mach 3.0 <mach/notify.h>)
NOTIFY_SEND_ONCE = 0o107


@dataclass
class KMsg:
    """A message inside the kernel (queued on a port)."""
    id: int
    seqno: int
    dest: object                 # Port
    dest_right: Right
    reply: object = None         # Port or None
    reply_right: Right = None
    data: bytes = b""
    rights: list = field(default_factory=list)     # [(Port, Right)]
    ool: list = field(default_factory=list)        # [VMCopy]
    sender: object = None        # Task (None: the kernel)
    slot: int = 0                # kmsg buffer slot in the kernel's zone
