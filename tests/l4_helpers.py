"""Helpers of the L4 tests: a pager that relays pages down a hierarchy."""
from lab.l4 import Pager

PAGE = 4096


class Relay(Pager):
    """Maps its client's page va from its own page at base + va, faulting that in first
    (from its own pager): each level of the hierarchy adds one mapping."""

    def __init__(self, k, name, base, pager=None):
        super().__init__(k, name, pager=pager)
        self.base = base

    def page_fault(self, thread, va, write):
        mine = self.base + (va & ~(PAGE - 1))
        if not self.has(mine):
            self.acquire(mine)
        return self.map_item(mine, "rw", send_base=va)
