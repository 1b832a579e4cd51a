"""Base class of kernel errors.  Each kernel defines its own, named after its return codes
(Mach: KERN_INVALID_ADDRESS, SEND_INVALID_PORT, RCV_TIMED_OUT...; L4: IPC error codes;
Linux: errno names), each subclassing KernelError so that the CLI and views catch one type."""


class KernelError(Exception):
    """An error a kernel returns to its caller (never a bug of the simulator)."""
    code = "KERN_FAILURE"

    def __init__(self, message=""):
        super().__init__(f"{self.code}: {message}" if message else self.code)


class Panic(KernelError):
    """The whole (simulated) system is down: a fault inside a monolithic kernel."""
    code = "PANIC"
