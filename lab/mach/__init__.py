"""Mach 3.0 on the simulated machine: tasks, threads, ports, messages, virtual memory and
external memory management (Young et al. 1987; Rashid et al. 1987; the lecture's interface).

Public names
------------
kernel      MachKernel                                       the kernel (every call runs on the engine)
tasks       Task, Thread, TaskState, ThreadState
ports       Right, PortState, PortStatus, PORT_NULL, PORT_BACKLOG_DEFAULT, PORT_BACKLOG_MAX
messages    Message, PortItem, OOLItem, Disposition, MsgOption, MSG_SIZE_MAX, NOTIFY_SEND_ONCE
memory      VMProt, VMInherit, VMRegion, VMStatistics, VM_MIN_ADDRESS, VM_MAX_ADDRESS
pagers      Pager (subclass it), DefaultPager, SimDisk, protocol (message ids)
examples    FileServer, fs_read_file, fs_write_file, SharedMemoryPager (lab.mach.examples)
figures     python -m lab.mach.breakdown: null RPC and MkLinux getpid by cycle category
errors      MachError and the return codes: KernInvalidAddress, KernProtectionFailure,
            KernNoSpace, KernInvalidArgument, KernResourceShortage, KernInvalidName,
            KernInvalidRight, KernInvalidTask, KernMemoryError, SendInvalidPort,
            SendInvalidReply, SendInvalidRight, PortDead, SendTimedOut, SendInvalidMemory,
            SendMsgTooLarge, RcvInvalidPort, RcvTimedOut, RcvPortChanged, RcvTooLarge,
            PagerTimedOut, MigServerDied, Deadlock, PagerDeadlock
"""
from . import protocol
from .default_pager import DefaultPager
from .disk import SimDisk
from .errors import (MachError, KernInvalidAddress, KernProtectionFailure, KernNoSpace,
                     KernInvalidArgument, KernResourceShortage, KernInvalidName, KernInvalidRight,
                     KernInvalidTask, KernMemoryError, SendInvalidPort, SendInvalidReply,
                     SendInvalidRight, PortDead, SendTimedOut, SendInvalidMemory,
                     SendMsgTooLarge, RcvInvalidPort, RcvTimedOut, RcvPortChanged, RcvTooLarge,
                     PagerTimedOut, MigServerDied, Deadlock, PagerDeadlock)
from .ipc import MsgOption, MSG_SIZE_MAX
from .kernel import MachKernel
from .message import Message, PortItem, OOLItem, Disposition, NOTIFY_SEND_ONCE
from .pager import Pager
from .port import Right, PortState, PORT_NULL, PORT_BACKLOG_DEFAULT, PORT_BACKLOG_MAX
from .port_calls import PortStatus
from .task import Task, Thread, TaskState, ThreadState
from .vm import VMStatistics
from .vm_map import VMProt, VMInherit, VMRegion, VM_MIN_ADDRESS, VM_MAX_ADDRESS

__all__ = ["MachKernel", "Task", "Thread", "TaskState", "ThreadState", "Right", "PortState",
           "PortStatus", "PORT_NULL", "PORT_BACKLOG_DEFAULT", "PORT_BACKLOG_MAX", "Message",
           "PortItem", "OOLItem", "Disposition", "MsgOption", "MSG_SIZE_MAX", "NOTIFY_SEND_ONCE",
           "VMProt", "VMInherit", "VMRegion", "VMStatistics", "VM_MIN_ADDRESS", "VM_MAX_ADDRESS",
           "Pager", "DefaultPager", "SimDisk", "protocol", "MachError", "KernInvalidAddress",
           "KernProtectionFailure", "KernNoSpace", "KernInvalidArgument", "KernResourceShortage",
           "KernInvalidName", "KernInvalidRight", "KernInvalidTask", "KernMemoryError",
           "SendInvalidPort", "SendInvalidReply", "SendInvalidRight", "PortDead", "SendTimedOut",
           "SendInvalidMemory", "SendMsgTooLarge",
           "RcvInvalidPort", "RcvTimedOut", "RcvPortChanged", "RcvTooLarge", "PagerTimedOut",
           "MigServerDied", "Deadlock", "PagerDeadlock"]
