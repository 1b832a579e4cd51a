"""The L4 microkernel (x86, 1997) of Härtig et al. (S97 §3) and Liedtke (S95): address spaces,
threads, synchronous IPC, recursive address spaces built with map/grant/flush from sigma0,
page faults as IPC to user-level pagers, small address spaces.

Public names
------------
L4Kernel                           the kernel (`kernel`): task_new, thread_new, task_delete, ipc,
                                   execute, map_fpage, fpage_unmap, run, load, store
Task, Thread, ThreadState          address spaces and threads (`space`, `thread`)
Message, StringItem, StringBuffer, messages: words in registers, strings, map and grant items
  MapItem, GrantItem                 (`message`)
Fpage                              flexpages (`fpage`)
ipc_send, ipc_receive, ipc_wait,   IPC requests that a program yields or kernel.ipc runs (`ipc`)
  ipc_call, ipc_reply_and_wait,
  compute, NEVER
Pager, Sigma0, ANY_PAGE            user-level pagers and the root pager (`pager`, `sigma0`)
MappingDatabase                    the mapping tree (`mapping`)
RunStatus                          how kernel.run ended (`scheduler`)
L4Error, IpcError, NotExistent,    L4's IPC error codes, L4_IPC_... (`errors`)
  SendTimeout, ReceiveTimeout,
  SendMapFailed, ReceiveMapFailed,
  SendMsgCut, ReceiveMsgCut, ...,
  IpcDeadlock, SchedulerStalled,   the simulator's diagnoses of what would hang
  PageFaultUnresolved              (L4_SIM_...)
"""
from .errors import (L4Error, InvalidArgument, IpcError, NotExistent, ReceiveTimeout,
                     SendTimeout, ReceiveCanceled, SendCanceled, ReceiveMapFailed, SendMapFailed,
                     ReceiveSendPfTimeout, SendReceivePfTimeout, SendSendPfTimeout,
                     ReceiveReceivePfTimeout, ReceiveAborted, SendAborted, ReceiveMsgCut,
                     SendMsgCut, IpcDeadlock, SchedulerStalled, PageFaultUnresolved)
from .fpage import Fpage
from .message import Message, StringItem, StringBuffer, MapItem, GrantItem
from .ipc import (NEVER, Ipc, ipc_send, ipc_receive, ipc_wait, ipc_call, ipc_reply_and_wait,
                  compute, Compute)
from .thread import Thread, ThreadState
from .space import Task
from .mapping import MappingDatabase
from .scheduler import RunStatus
from .kernel import L4Kernel
from .pager import Pager
from .sigma0 import Sigma0, ANY_PAGE

__all__ = ["L4Kernel", "Task", "Thread", "ThreadState", "Message", "StringItem", "StringBuffer",
           "MapItem", "GrantItem", "Fpage", "NEVER", "Ipc", "ipc_send", "ipc_receive",
           "ipc_wait", "ipc_call", "ipc_reply_and_wait", "compute", "Compute", "Pager", "Sigma0",
           "ANY_PAGE", "MappingDatabase", "RunStatus", "L4Error", "InvalidArgument", "IpcError",
           "NotExistent", "ReceiveTimeout", "SendTimeout", "ReceiveCanceled", "SendCanceled",
           "ReceiveMapFailed", "SendMapFailed", "ReceiveSendPfTimeout", "SendReceivePfTimeout",
           "SendSendPfTimeout", "ReceiveReceivePfTimeout", "ReceiveAborted", "SendAborted",
           "ReceiveMsgCut", "SendMsgCut", "IpcDeadlock", "SchedulerStalled",
           "PageFaultUnresolved"]
