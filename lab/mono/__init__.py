"""The monolithic kernel: Linux 2.0's architecture-independent part, and its user side.

Public names
------------
LinuxKernel                       the kernel (`kernel`): spawn, run, syscall, page_fault, panic
Libc                              what a program sees: system calls and user work (`user`)
Process, ProcState, MM, VMA, PTE  processes and Linux's logical page table (`process`)
ProgramImage                      executables (`programs`): /bin/simple, /bin/sh, /lib/libc.so.5
errors                            errno classes (EBADF, EFAULT, EPIPE, ...), the fatal signals
                                  SegmentationFault, BusError, BrokenPipe, OutOfMemoryKill;
                                  Deadlock; Panic
                                  (lab.errors)
abi                               O_*, PROT_*, MAP_*, AF_INET, SOCK_*, signals, WEXITSTATUS...
examples                          lmbench-like programs: lat_syscall, lat_pipe

    from lab.linux import boot
    linux = boot("linux")
    p = linux.spawn(lab.mono.examples.lat_syscall, 1000)
    linux.run(); p.result        # cycles per call
"""
from . import abi, errors
from .kernel import LinuxKernel
from .process import MM, PTE, VMA, Process, ProcState
from .programs import ProgramImage
from .user import Libc

__all__ = ["LinuxKernel", "Libc", "Process", "ProcState", "MM", "VMA", "PTE", "ProgramImage",
           "abi", "errors"]
