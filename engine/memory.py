"""Physical memory and the frame allocator.

Memory is one NumPy uint32 array (page tables are read from it by the walker); `.bytes` is a
uint8 view of the same storage for data.  Frames are allocated lowest-first, deterministically,
as on a freshly booted machine; with a `placement_seed` they come in a fixed pseudo-random order
instead, as from the free list of a machine that has run for a while: which frames share a
colour of a physically indexed cache then changes with the seed, so running a measurement over
a few seeds shows how much of it is placement.  A frame may be asked for by *colour* (its
index modulo the number of colours), which is how a pager partitions a physically indexed
cache (S97 §6.3).
"""
import numpy as np

from .errors import ConfigError, OutOfFrames, AddressError


def scattered_order(nframes, seed):
    """Frames 1 .. nframes-1 in the order of a keyed hash (splitmix64 of seed and frame):
    a permutation fixed by the seed, the same on every platform and NumPy version."""
    with np.errstate(over="ignore"):
        z = np.arange(1, nframes, dtype=np.uint64) \
            + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return np.argsort(z, kind="stable").astype(np.int64) + 1


class PhysicalMemory:
    def __init__(self, size_bytes, frame_size, placement_seed=None):
        if frame_size <= 0 or frame_size & (frame_size - 1):
            raise ConfigError(f"frame size {frame_size} must be a power of two")
        if size_bytes < 2 * frame_size or size_bytes % frame_size:
            raise ConfigError(f"memory size {size_bytes} must be a multiple of the frame size "
                              f"{frame_size} and hold at least two frames")
        self.size = int(size_bytes)
        self.frame_size = int(frame_size)
        self.words = np.zeros(self.size // 4, np.uint32)
        self.bytes = self.words.view(np.uint8)
        self.nframes = self.size // self.frame_size
        self._free = np.ones(self.nframes, bool)
        self._free[0] = False          # frame 0 stays unused: a null physical address is a bug
        self._low = 1
        if placement_seed is not None and (isinstance(placement_seed, bool) or not isinstance(
                placement_seed, (int, np.integer)) or not 0 <= placement_seed < 2 ** 64):
            raise ConfigError(f"placement_seed {placement_seed!r} must be None (lowest frame "
                              "first) or an integer 0 .. 2**64-1")
        self.placement_seed = None if placement_seed is None else int(placement_seed)
        if placement_seed is not None:  # frames by rank 1.. in the seed's order; _low a rank
            self._order = scattered_order(self.nframes, int(placement_seed))
            self._rank = np.empty(self.nframes, np.int64)
            self._rank[self._order] = np.arange(1, self.nframes)

    # -- frames --
    @property
    def free_frames(self):
        return int(self._free.sum())

    def alloc(self, colour=None, colours=1):
        """Allocate a frame and return its index: the lowest free one, or with a placement seed
        the first free one in the seed's order; with `colour`, the lowest free frame of that
        colour (mod `colours`), seed or not."""
        if colour is None:
            # _low: a position (a frame number, or a rank in the seed's order) before which
            # no frame is free
            order = self._free[self._low:] if self.placement_seed is None \
                else self._free[self._order[self._low - 1:]]
            idx = np.flatnonzero(order)
            if idx.size == 0:
                raise OutOfFrames(f"alloc: no free frame among {self.nframes}")
            pos = self._low + int(idx[0])
            f = pos if self.placement_seed is None else int(self._order[pos - 1])
            self._low = pos + 1
        else:
            if not isinstance(colours, (int, np.integer)) or colours < 1:
                raise ConfigError(f"alloc: colours {colours!r} must be a positive integer")
            if not 0 <= colour < colours:
                raise ConfigError(f"alloc: colour {colour} out of range 0..{colours - 1}")
            idx = np.flatnonzero(self._free[colour::colours])
            if idx.size == 0:
                raise OutOfFrames(f"alloc: no free frame of colour {colour} (of {colours})")
            f = colour + int(idx[0]) * colours
        self._free[f] = False
        return f

    def alloc_frame_at(self, f):
        if not 0 < f < self.nframes or not self._free[f]:
            raise OutOfFrames(f"alloc_frame_at: frame {f} is not free (0 < frame < {self.nframes})")
        self._free[f] = False
        return f

    def free(self, f):
        if not 0 < f < self.nframes or self._free[f]:
            raise AddressError(f"free: frame {f} is not allocated")
        self._free[f] = True
        self.zero(f)
        self._low = min(self._low, f if self.placement_seed is None else int(self._rank[f]))

    def is_allocated(self, f):
        return 0 < f < self.nframes and not self._free[f]

    # -- contents --
    def zero(self, f):
        fs = self.frame_size
        self.bytes[f * fs:(f + 1) * fs] = 0

    def check(self, paddr, n=1):
        if paddr < 0 or paddr + n > self.size:
            raise AddressError(f"physical address 0x{paddr:x} (+{n}) outside memory of {self.size} bytes")

    def read(self, paddr, n):
        self.check(paddr, n)
        return bytes(self.bytes[paddr:paddr + n])

    def write(self, paddr, data):
        data = np.frombuffer(bytes(data), np.uint8)
        self.check(paddr, len(data))
        self.bytes[paddr:paddr + len(data)] = data
