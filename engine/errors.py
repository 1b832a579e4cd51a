"""Typed errors of the engine.  Every message names the bad value and what is allowed.

Kernels (in `lab`) raise their own errors named after Mach/L4 return codes; these
are the machine's: bad geometry, bad mappings, bad profiles, bad traces.
"""


class EngineError(Exception):
    """Base class of every error the engine raises."""


class ConfigError(EngineError, ValueError):
    """A hardware parameter is out of range (geometry, policy, format)."""


class ProfileError(EngineError, ValueError):
    """A CPU profile is unknown or malformed."""


class MappingError(EngineError, ValueError):
    """A map/unmap/protect request is invalid (unaligned, already mapped, out of range)."""


class OutOfFrames(EngineError, MemoryError):
    """The frame allocator has no free physical frame left."""


class AddressError(EngineError, ValueError):
    """A virtual or physical address lies outside what the format or memory allows."""


class TraceError(EngineError, ValueError):
    """A trace line is malformed; carries the line number."""

    def __init__(self, lineno, message):
        self.lineno = lineno
        super().__init__(f"line {lineno}: {message}")
