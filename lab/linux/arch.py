"""The contract between Linux's architecture-independent part and the platform it runs on.

Härtig et al. (S97 §4): "L4Linux changes only the architecture-dependent part of Linux."
So does this lab.  `lab.mono.LinuxKernel` is the architecture-independent Linux (processes,
system calls, file system with buffer cache, pipes, sockets, mmap, scheduler); it reaches the
machine *only* through a `LinuxArch`:

    native               lab.linux.native.NativeArch        Linux in supervisor mode (the monolithic kernel)
    l4linux              lab.linux.l4linux.L4LinuxArch      Linux server = one L4 task; syscalls as IPC
    l4linux_trampoline   same, trampoline=True              unmodified binary: trap bounced to the emulation library
    mklinux_in_kernel    lab.linux.mklinux.MkLinuxArch      server co-located in Mach's kernel space
    mklinux_user         same, in_kernel=False              server a Mach user task

Every method charges the engine through what it does: traps, IPC, switches, walks, copies.
The same workloads run unchanged on all five (`lab.linux.boot(system)` builds one).

Beyond the abstract methods, platforms rely on (and may offer) the following; the full list is
in `lab.mono.kernel`'s docstring:
  * System-call bodies may sleep (pipe_read, wait4, accept): keep per-call state per process.
  * `exit`'s body never returns: after `destroy_process(ctx)` it raises `ProcessExited` (a
    BaseException) to unwind the process.
  * `switch_process(prev, nxt)`: `prev` is None when coming from idle or an exited process.
  * `linux.copy_kernel_pa`: the physical address of Linux's side of a copy while `copy_user` runs.
  * Optional attributes: `hardware_page_tables` (fork copies PTEs at once), `task_size` (end of
    user space, default 0xC0000000), `map_region`/`unmap_region(ctx, start, length)` after
    mmap/munmap change the VMAs.

Cost categories: user work "user", Linux's own work "kernel" (native) or "server" (on a
microkernel), the C-library stub or trampoline "emulation", microkernel IPC "ipc",
trap/iret "entry_exit".
"""
from abc import ABC, abstractmethod


class ProcessContext:
    """What the platform keeps per Linux process: at least its address space id.
    Platforms subclass it (an L4 task and thread, a Mach task and thread)."""

    def __init__(self, pid, space):
        self.pid = pid
        self.space = space


class LinuxArch(ABC):
    """Implemented by each platform.  `linux` is the LinuxKernel using it (set by `attach`)."""

    name = "abstract"          # the system key of published.json

    def __init__(self, machine):
        self.m = machine
        self.linux = None

    def attach(self, linux):
        """Called once by LinuxKernel: boot the platform (create the kernel/server spaces, place
        and map Linux's image `linux.image_profile`), then return."""
        self.linux = linux
        self.boot()

    @abstractmethod
    def boot(self):
        """Create the spaces Linux runs in and map its text and data (KernelImage)."""

    @abstractmethod
    def run_path(self, path):
        """Execute one of Linux's own kernel paths (a name in lab/profiles/linux.json) where Linux
        runs on this platform (the kernel, or the server's space), charged to "kernel"/"server"."""

    @abstractmethod
    def syscall(self, ctx, name, body):
        """A system call `name` from process `ctx`: the entry path (trap, or emulation library +
        IPC, or trampoline) and the platform's dispatch (entry.S's on native Linux, the
        server's own on L4Linux and MkLinux), then `body()` (Linux's work, which calls
        run_path, copy_user...), then the way back.  Returns body()'s result; KernelErrors
        propagate after the exit path."""

    @abstractmethod
    def create_process(self, pid, parent=None):
        """A new process context with an empty user address space (fork's child, or init)."""

    @abstractmethod
    def destroy_process(self, ctx):
        """Tear down the context: its address space, its mappings, its threads."""

    @abstractmethod
    def switch_process(self, prev, nxt):
        """Linux's scheduler switches from process `prev` to `nxt` (both contexts)."""

    @abstractmethod
    def map_user(self, ctx, va, pa, perms):
        """Make page `pa` visible at `va` in the process with `perms` ("r", "rw", "rx"):
        a PTE write (native), an L4 map from the server (l4linux), a Mach VM operation (mklinux)."""

    @abstractmethod
    def unmap_user(self, ctx, va):
        """Remove the page at `va` from the process (flush / vm_deallocate / PTE clear + invlpg)."""

    @abstractmethod
    def protect_user(self, ctx, va, perms):
        """Change the process's access to the page at `va`."""

    @abstractmethod
    def copy_user(self, ctx, va, nbytes, to_user):
        """Copy between Linux's buffers and the process's memory at `va` (copy_to/from_user)."""

    @abstractmethod
    def touch_kernel_data(self, pa, nbytes, kind="r"):
        """Linux references its own data at physical `pa`, where Linux runs on this platform:
        kind "r" for read-modify-write (the next task's kernel stack and task_struct on a
        switch: each line's first reference is a read), "w" for stores only (clearing or
        filling a page frame: on a write-no-allocate L1 they miss every time)."""

    @abstractmethod
    def run_user(self, ctx, ops):
        """Run user-level work (an engine op batch) in the process; page faults go to Linux's
        `linux.page_fault(ctx, va, kind)` via this platform's fault path, then the access retries."""
