"""A simulated disk: blocks of one page, each request charged the profile's disk time."""
import math


class SimDisk:
    def __init__(self, machine, block_size=None):
        self.m = machine
        self.block = block_size or machine.fmt.page_size
        self.blocks = {}
        self.reads = self.writes = 0

    def _wait(self):
        ms = self.m.profile["disk_ms_per_request"]
        self.m.charge("disk", math.ceil(ms * 1000 * self.m.profile["clock_mhz"]))

    def read(self, block):
        """The block's bytes (zeros if never written)."""
        self._wait()
        self.reads += 1
        return self.blocks.get(block, bytes(self.block))

    def write(self, block, data):
        if len(data) > self.block:
            raise ValueError(f"disk write: {len(data)} bytes exceed the block size {self.block}")
        self._wait()
        self.writes += 1
        self.blocks[block] = bytes(data).ljust(self.block, b"\0")
