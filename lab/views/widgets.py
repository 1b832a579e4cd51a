"""bqplot views: build scales, marks and axes once; `update()` only assigns arrays to traits."""
import ipywidgets as W
import numpy as np
from bqplot import Axis, Bars, ColorScale, Figure, GridHeatMap, LinearScale, OrdinalScale

from .data import cycle_breakdown, tlb_grid, walk_table


class TLBView(W.VBox):
    """Sets x ways of a TLB; each valid entry coloured by its owning address space."""

    def __init__(self, machine, tlb=0, **kw):
        self.m, self.tlb = machine, tlb
        g = tlb_grid(machine, tlb)
        self.heat = GridHeatMap(color=g["owner"].astype(float),
                                scales={"row": OrdinalScale(), "column": OrdinalScale(),
                                        "color": ColorScale(scheme="Set1", min=-1, max=8)})
        self.fig = Figure(marks=[self.heat], title=f"{g['name']}: {g['sets']} sets x {g['ways']} ways",
                          fig_margin={"top": 40, "bottom": 20, "left": 40, "right": 20},
                          layout=W.Layout(width="420px", height="360px"))
        self.caption = W.HTML()
        super().__init__([self.fig, self.caption], **kw)
        self.update()

    def update(self):
        g = tlb_grid(self.m, self.tlb)
        self.heat.color = g["owner"].astype(float)
        n = int((g["owner"] >= 0).sum())
        self.caption.value = (f"{n} valid entries, {int(g['global'].sum())} global; "
                              f"colour = owning space (-1 invalid)")


class CycleBreakdownView(W.VBox):
    """Cycles by category as bars; `update(by_category)` after each measurement."""

    def __init__(self, by_category=None, title="cycles by category", **kw):
        self.x, self.y = OrdinalScale(), LinearScale(min=0)
        self.bars = Bars(x=[], y=[], scales={"x": self.x, "y": self.y})
        self.fig = Figure(marks=[self.bars], title=title,
                          axes=[Axis(scale=self.x, tick_rotate=-30),
                                Axis(scale=self.y, orientation="vertical", label="cycles")],
                          layout=W.Layout(width="560px", height="320px"))
        super().__init__([self.fig], **kw)
        if by_category:
            self.update(by_category)

    def update(self, by_category):
        names, vals = cycle_breakdown(by_category)
        self.bars.x, self.bars.y = names, vals


class WalkView(W.VBox):
    """Step through translations one access at a time: the walk, the TLB and the cost."""

    def __init__(self, machine, space, accesses, **kw):
        self.m, self.space, self.accesses = machine, space, list(accesses)
        self.i = 0
        self.button = W.Button(description="step")
        self.button.on_click(lambda _b: self.step())
        self.out = W.HTML()
        self.tlb = TLBView(machine)
        super().__init__([W.HBox([self.button]), self.out, self.tlb], **kw)

    def step(self):
        if self.i >= len(self.accesses):
            self.out.value = "<i>trace finished</i>"
            return None
        kind, va = self.accesses[self.i]
        self.i += 1
        self.m.switch(self.space)
        rows = walk_table(self.m, self.space, va)
        r = self.m.step(kind, va)
        head = (f"<b>{kind} 0x{va:x}</b>: TLB {r.tlb}, "
                + (f"fault ({r.fault})" if r.fault else f"paddr 0x{r.paddr:x}")
                + f", {r.walk_refs} walk refs, {r.cycles} cycles")
        table = "".join(f"<tr><td>{x['level']}</td><td>{x['index']}</td><td>{x['entry_addr']}</td>"
                        f"<td>{x['entry']}</td><td>{x['present']}</td></tr>" for x in rows) \
            if r.tlb == "miss" else ""
        self.out.value = head + (("<table><tr><th>level</th><th>index</th><th>entry at</th>"
                                  "<th>entry</th><th>present</th></tr>" + table + "</table>")
                                 if table else "")
        self.tlb.update()
        return r


class ComparisonView(W.VBox):
    """Paper vs simulation as grouped bars, one group per row label."""

    def __init__(self, labels, paper, simulated, title="paper vs simulation", unit="",
                 series=("paper", "simulated"), **kw):
        self.x, self.y = OrdinalScale(), LinearScale(min=0)
        self.bars = Bars(x=list(labels), y=[list(paper), list(simulated)], type="grouped",
                         labels=list(series), display_legend=True,
                         colors=["#999999", "#1f77b4"], scales={"x": self.x, "y": self.y})
        self.fig = Figure(marks=[self.bars], title=title,
                          axes=[Axis(scale=self.x, tick_rotate=-20),
                                Axis(scale=self.y, orientation="vertical", label=unit)],
                          layout=W.Layout(width="640px", height="340px"))
        super().__init__([self.fig], **kw)

    def update(self, paper, simulated):
        self.bars.y = [list(paper), list(simulated)]
