"""One view per concept.  `data` holds pure functions (machine state -> arrays), testable without
a browser; `widgets` builds bqplot figures once and only assigns new arrays on update.

    from lab.views import TLBView, CycleBreakdownView, WalkView
"""
from .data import tlb_grid, cycle_breakdown, walk_table

__all__ = ["tlb_grid", "cycle_breakdown", "walk_table", "TLBView", "CycleBreakdownView", "WalkView",
           "ComparisonView"]


def __getattr__(name):          # widgets import bqplot: only when a view is asked for
    if name in ("TLBView", "CycleBreakdownView", "WalkView", "ComparisonView"):
        from . import widgets
        return getattr(widgets, name)
    raise AttributeError(name)
