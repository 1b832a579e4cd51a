"""Untagged vs tagged TLBs and small address spaces (S95 §4.1, S97 §3 and §5, H97).

The lecture: "With a µ-kernel, protection-boundary crossing forces us to change memory-map
[and] flush TLB (unless tagged)"; "A Pentium CPU can emulate a tagged TLB for small address
spaces".  Three measurements, all executed on the engine:

    full_reload(cpu_profile)            refill every 4 KB TLB entry after a CR3 load, with the
                                        page tables in DRAM (cold) and in the cache (warm);
                                        S95: at least (32 + 64) x 9 = 864 cycles on the Pentium
    switch_costs(cpu_profile)           one address-space switch: CR3 load, segment reload
                                        (large <-> small space), tag change
    RoundTrip(config, pages).measure(n) L4 RPCs between a client and a server that each touch
                                        `pages` pages between messages: cycles and TLB misses
                                        per round trip (two large spaces, a small server space,
                                        a tagged TLB)
    linux_op(bench, system, ...)        getpid and pipe on native Linux and on L4Linux with its
                                        processes in large spaces, in small spaces, or on a
                                        tagged TLB: how much of L4Linux's cost is TLB refill

Working-set characteristics come from lab/profiles/tlbtag.json (`characteristic`).  Every
number is measured; nothing here is fitted.
"""
from dataclasses import dataclass

import numpy as np

from engine import Machine, ops as O
from engine.profile import load_profile

from lab.kprofile import load_kernel_profile
from lab.mono.examples import lat_pipe

CODE_BASE = 0x08000000          # full_reload's code pages (a large space)
DATA_BASE = 0x10000000          # ... and its data pages
CLIENT_BASE = 0x00600000        # the client's working set (sigma0 maps page X at X)
SERVER_BASE = 0x00100000        # the server's: inside a 4 MB small space
LINUX_BENCHMARKS = ("getpid", "getpid, loop in text", "pipe")


def characteristic(name):
    """A workload characteristic of this experiment (lab/profiles/tlbtag.json)."""
    return load_kernel_profile("tlbtag")[name]


def small_tlbs(machine):
    """Indices of the TLBs holding base-size pages (the ones a CR3 load empties)."""
    ps = machine.fmt.page_size
    return [i for i, t in enumerate(machine.tlb_config) if t["page_size"] == ps]


def data_tlb(machine):
    """Index of the base-page data TLB (the one the working sets fill)."""
    for i in small_tlbs(machine):
        if machine.tlb_config[i]["kind"] in ("data", "unified"):
            return i
    raise ValueError(f"profile {machine.profile.name} has no data TLB for "
                     f"{machine.fmt.page_size}-byte pages")


def _l1_line(machine):
    return min((c["line"] for c in machine.cache_config), default=32)


def spread(base, npages, page, line, first=0, stride=1):
    """One address in each of `npages` pages from `base`, `stride` pages apart, each at a
    different cache-line offset (`first` lines in), so that the lines share no L1 set while
    the pages' TLB entries are what is measured."""
    i = np.arange(npages, dtype=np.int64)
    return base + i * stride * page + ((i + first) * line) % page


# ---------------------------------------------------------------------------- (a) reload
@dataclass(frozen=True)
class Reload:
    """One refill of every base-page TLB entry after a CR3 load."""
    cpu_profile: str
    ptes: str              # "DRAM" (page tables never read: cold) or the cache level that holds them
    stride: int            # pages between two touched pages
    entries: int           # TLB entries refilled (code + data)
    misses: int
    walk_refs: int         # page-table entries read
    cycles: int            # cycles of the refill (category tlb_walk)
    base_cycles: int       # the profile's fixed cost per miss (tlb_miss_base_cycles)
    refs_l1: int           # PTE reads served by L1 (never on the Pentium: its walker bypasses L1)
    refs_l2: int           # ... by L2
    refs_dram: int         # ... by DRAM
    l2_latency: int
    dram_latency: int

    @property
    def per_miss(self):
        return self.cycles / self.misses

    def explained(self):
        """The refill rebuilt from the profile: misses x base + PTE reads x their latency."""
        return (self.misses * self.base_cycles + self.refs_l2 * self.l2_latency
                + self.refs_dram * self.dram_latency)


def _cache_counts(machine):
    out = {}
    for i, c in enumerate(machine.cache_config):
        out[c.get("name", f"cache{i}")] = (int(machine.cstat[i, 0]), int(machine.cstat[i, 1]))
    return out


def full_reload(cpu_profile="pentium-133", seed=1, stride=1, placement_seed=None):
    """Map as many code and data pages as the base-page TLBs hold (S95: 32 + 64 on the
    Pentium), `stride` pages apart (1: contiguous, so 8 PTEs share a 32-byte line; 8: every
    PTE in a line of its own), make their data lines cache-resident through physical references, then touch
    every page twice: cold (no page-table line was ever read: PTEs in DRAM) and again after a
    switch away and back (the CR3 load flushed the TLB; the walker's PTE lines are cached).
    Returns (cold, warm) Reloads.  The data references hit L1, so every cycle of category
    tlb_walk is the refill.  `placement_seed`: the Machine's frame order (None: lowest
    first), here and in every function of this module that takes it."""
    m = Machine(cpu_profile, tagged=False, small_spaces=False, seed=seed,
                placement_seed=placement_seed)
    ps, line = m.fmt.page_size, _l1_line(m)
    a, b = m.new_space(), m.new_space()
    refs = []
    for t in small_tlbs(m):
        cfg = m.tlb_config[t]
        kind = "x" if cfg["kind"] == "instr" else "r"
        base = CODE_BASE if kind == "x" else DATA_BASE
        vas = spread(base, cfg["entries"], ps, line, stride=stride)
        for va in vas:
            pa = m.alloc_page()
            m.map(a, int(va) - int(va) % ps, pa, "rx" if kind == "x" else "rw")
        refs.append((kind, vas))
    entries = sum(len(v) for _k, v in refs)
    touch = O.concat(*(O.access(k, v) for k, v in refs))
    pas = O.concat(*(O.physical(k, [m.translate(a, int(va))[0] for va in v]) for k, v in refs))
    m.switch(a)
    m.run(pas, check=False)                 # data lines into the caches, page tables untouched
    cold = _reload(m, touch, entries, "DRAM", stride)
    m.switch(b)
    m.switch(a)                             # CR3 load: every non-global entry is gone
    warm = _reload(m, touch, entries, None, stride)
    return cold, warm


def _reload(m, touch, entries, label, stride):
    p = m.profile
    l2 = [i for i, c in enumerate(m.cache_config) if c.get("level") == 2]
    l2_name = m.cache_config[l2[0]]["name"] if l2 else None
    c0 = _cache_counts(m)
    with m.measure() as r:
        m.run(touch, check=False)
    c1 = _cache_counts(m)
    refs = r.stats["walk.refs"]
    # the data references hit L1 (made resident before): L2 sees only walker reads
    l2_hits = c1[l2_name][0] - c0[l2_name][0] if l2_name else 0
    l2_miss = c1[l2_name][1] - c0[l2_name][1] if l2_name else refs
    l2_lat = m.cache_config[l2[0]]["latency"] if l2 else 0
    where = label or ("L2" if not p["walk_through_l1"] else "cache")
    return Reload(p.name, where, stride, entries, r.stats["tlb.misses"], refs, r.by_category["tlb_walk"],
                  int(p["tlb_miss_base_cycles"]), refs - l2_hits - l2_miss, l2_hits, l2_miss,
                  int(l2_lat), int(p["memory_latency_cycles"]))


def switch_costs(cpu_profile="pentium-133", seed=1, placement_seed=None):
    """Cycles of one address-space switch, by kind: 'cr3' (large -> large, untagged TLB),
    'segment' (large -> small, where the CPU has segments), 'tag' (tagged TLB)."""
    def one(tagged, small):
        m = Machine(cpu_profile, tagged=tagged, small_spaces=small, seed=seed,
                    placement_seed=placement_seed)
        a, b = m.new_space(), m.new_space(small=small)
        m.switch(a)
        with m.measure() as r:
            m.switch(b)
        return r.by_category["space_switch"], r.stats["cr3.loads"], r.stats["tlb.flushes"]
    out = {"cr3": one(False, False)}
    if load_profile(cpu_profile)["small_spaces"]:
        out["segment"] = one(False, True)
    out["tag"] = one(True, False)
    return out


# ---------------------------------------------------------------------------- (b) L4 RPC
@dataclass(frozen=True)
class Config:
    """A TLB configuration for L4 round trips."""
    label: str
    cpu_profile: str
    tagged: bool
    small_server: bool


def configs(cpu_profile="pentium-133", modern="x86-64-modern"):
    """The configurations compared: untagged with two large spaces, untagged with the server
    in a small space (if the CPU has segments), a tagged TLB on the same profile (for the
    Pentium: a hypothetical Pentium with address-space ids), and the modern profile."""
    p = load_profile(cpu_profile)
    out = [Config(f"{p.name}, untagged, two large spaces", p.name, False, False)]
    if p["small_spaces"]:
        out.append(Config(f"{p.name}, untagged, server in a small space", p.name, False, True))
    hyp = "" if p["tagged_tlb"] else " (hypothetical)"
    out.append(Config(f"{p.name}, tagged TLB{hyp}", p.name, True, False))
    if modern and modern != p.name:
        out.append(Config(f"{modern}, tagged TLB", modern, True, False))
    return out


def _working_set_vas(base, pages, page, line, first):
    n = characteristic("working_set_refs_per_page")
    if pages <= 0:
        return np.zeros(0, np.int64)
    vas = spread(base, pages, page, line, first)
    # refs per page: further lines of the same page (still one TLB entry per page)
    return np.concatenate([vas + k * line for k in range(n)])


def _reads(vas):
    return O.access("r", vas) if len(vas) else vas     # W = 0: nothing to touch


class RoundTrip:
    """An L4 client (large space) and server (large or small space, per `config`) that each
    touch `pages` pages of their own between messages:

        client: ipc_call(server)  ->  server: touch W pages, ipc_reply_and_wait(client)
        client: touch W pages     ->  next call

    Both are paged by sigma0.  `on_phase(name)` (optional) is called at the four phase
    boundaries of a round trip while `self.watch` is true (the live view's snapshots)."""

    PHASES = ("server has the message", "server touched its pages", "client has the reply",
              "client touched its pages")

    def __init__(self, config, pages, seed=1, on_phase=None, placement_seed=None):
        from lab.l4 import L4Kernel, Message, compute, ipc_wait, ipc_reply_and_wait
        if not isinstance(pages, (int, np.integer)) or pages < 0:
            raise ValueError(f"RoundTrip: pages {pages!r} must be an integer >= 0")
        self.config, self.pages = config, int(pages)
        self.m = m = Machine(config.cpu_profile, tagged=config.tagged, seed=seed,
                             placement_seed=placement_seed)
        ps, line = m.fmt.page_size, _l1_line(m)
        client_vas = _working_set_vas(CLIENT_BASE, self.pages, ps, line, 0)
        server_vas = _working_set_vas(SERVER_BASE, self.pages, ps, line, 1)
        # sigma0 maps page X at frame X: keep those frames from the kernel, which at a
        # scattered placement could take one of them (lowest-first never gets that high).
        # Taken here, not by sigma0, they would not go back to the free list on a flush;
        # a round trip never flushes them
        for f in sorted({int(va) // ps for va in np.concatenate([client_vas, server_vas])}):
            m.memory.alloc_frame_at(f)
        self.k = k = L4Kernel(m)
        self.client_ops, server_ops = _reads(client_vas), _reads(server_vas)
        self.on_phase, self.watch = on_phase, False
        self._Message = Message
        phase = self._phase

        def server(t):
            msg = yield ipc_wait()
            while True:
                phase(0)
                if len(server_ops):
                    yield compute(server_ops)
                phase(1)
                msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1))

        self.server = k.task_new("server", program=server, pager=k.sigma0,
                                 small=config.small_server)
        self.client = k.task_new("client", pager=k.sigma0)
        self.n = 0

    def _phase(self, i):
        if self.watch and self.on_phase is not None:
            self.on_phase(self.PHASES[i])

    def once(self):
        """One round trip; returns the reply's word (the server's count)."""
        from lab.l4 import ipc_call
        k = self.k
        r = k.ipc(self.client.thread, ipc_call(self.server.thread, self._Message(self.n)))
        self._phase(2)
        if len(self.client_ops):
            k.execute(self.client.thread, self.client_ops)
        self._phase(3)
        self.n += 1
        return r.words[0]

    def measure(self, n=10, warm=2):
        """Per round trip, after `warm` round trips that fault the pages in: cycles, TLB
        misses, refill cycles, CR3 loads, switches, and cycles by category."""
        if n < 1:
            raise ValueError(f"measure: n {n} must be >= 1")
        for _ in range(warm):
            self.once()
        with self.m.measure() as r:
            for _ in range(n):
                self.once()
        return {"cycles": r.cycles / n, "tlb_misses": r.stats["tlb.misses"] / n,
                "refill_cycles": r.by_category["tlb_walk"] / n,
                "cr3_loads": r.stats["cr3.loads"] / n, "switches": r.stats["switches"] / n,
                "by_category": {c: v / n for c, v in r.by_category.items() if v},
                "us": r.us / n}


def pages_grid(max_pages, step):
    """The working sets of a sweep: 0, step, 2 step, ... and max_pages itself -- the largest W
    asked for is measured even when the step does not divide it."""
    for name, v, lo in (("max_pages", max_pages, 0), ("step", step, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"pages_grid: {name} {v!r} must be an int >= {lo}")
    return sorted(set(range(0, max_pages + 1, step)) | {max_pages})


def sweep(config, pages_list, n=10, seed=1, placement_seed=None):
    """RoundTrip.measure for each working-set size: {pages: result}."""
    return {int(w): RoundTrip(config, int(w), seed, placement_seed=placement_seed).measure(n)
            for w in pages_list}


# ---------------------------------------------------------------------------- the live view
OWNER_NAMES = ("invalid", "kernel (global)", "client", "server")


def tlb_owners(machine, tlb, client_sid, server_sid):
    """The TLB's sets x ways as owner codes: 0 invalid, 1 global (the kernel), 2 client,
    3 server (another space's entry: 0).  Pure: reads the machine, changes nothing."""
    from lab.views import tlb_grid
    g = tlb_grid(machine, tlb)
    out = np.zeros(g["owner"].shape, np.int64)
    out[g["owner"] == client_sid] = 2
    out[g["owner"] == server_sid] = 3
    out[g["global"]] = 1
    return out


def round_trip_snapshots(config, pages, seed=1, warm=2, placement_seed=None):
    """The data TLB at each phase of one steady-state round trip (after `warm` ones):
    [(phase, owners array, TLB misses so far in this round trip)], starting with the state
    before the call."""
    snaps = []
    rt = None

    def grab(name):
        t = data_tlb(rt.m)
        snaps.append((name, tlb_owners(rt.m, t, rt.client.sid, rt.server.sid),
                      int(rt.m.st[_misses_slot()]) - start[0]))

    rt = RoundTrip(config, pages, seed, on_phase=grab, placement_seed=placement_seed)
    for _ in range(warm):
        rt.once()
    start = [int(rt.m.st[_misses_slot()])]
    rt.watch = True
    grab("before the call")
    rt.once()
    rt.watch = False
    return snaps


def _misses_slot():
    from engine import core
    return core.S_MISSES


def round_trip_view(snapshots_by_label):
    """A bqplot view stepping through one round trip per configuration: the data TLB's
    sets x ways coloured by owner.  `snapshots_by_label`: {label: round_trip_snapshots(...)}.
    Built once; the slider and the dropdown only assign a new colour array."""
    import ipywidgets as W
    from bqplot import ColorScale, Figure, GridHeatMap, OrdinalScale
    labels = list(snapshots_by_label)
    first = snapshots_by_label[labels[0]]
    heat = GridHeatMap(color=first[0][1].astype(float),
                       scales={"row": OrdinalScale(), "column": OrdinalScale(),
                               "color": ColorScale(colors=["#eeeeee", "#999999", "#1f77b4",
                                                           "#ff7f0e"], min=0, max=3)})
    fig = Figure(marks=[heat], title="data TLB: sets x ways",
                 fig_margin={"top": 40, "bottom": 20, "left": 40, "right": 20},
                 layout=W.Layout(width="420px", height="380px"))
    pick = W.Dropdown(options=labels, value=labels[0], layout=W.Layout(width="420px"))
    play = W.Play(min=0, max=len(first) - 1, interval=900)
    slider = W.IntSlider(min=0, max=len(first) - 1, description="phase")
    W.jslink((play, "value"), (slider, "value"))
    caption = W.HTML()
    legend = W.HTML(" ".join(f'<span style="color:{c}">&#9632;</span> {n}' for c, n in zip(
        ("#cccccc", "#999999", "#1f77b4", "#ff7f0e"), OWNER_NAMES)))

    def show(_change=None):
        snaps = snapshots_by_label[pick.value]
        name, owners, misses = snaps[min(slider.value, len(snaps) - 1)]
        heat.color = owners.astype(float)
        caption.value = (f"<b>{name}</b>: {int((owners == 2).sum())} client, "
                         f"{int((owners == 3).sum())} server entries; {misses} TLB misses so far "
                         "in this round trip")

    pick.observe(show, "value")
    slider.observe(show, "value")
    show()
    return W.VBox([pick, W.HBox([play, slider]), fig, caption, legend])


# ---------------------------------------------------------------------------- (c) L4Linux
@dataclass(frozen=True)
class LinuxConfig:
    label: str
    system: str            # lab.linux.boot system
    tagged: bool
    small_spaces: bool


def linux_configs(cpu_profile="pentium-133"):
    """Native Linux, and L4Linux with large spaces (untagged), small spaces (if the CPU has
    segments) and a tagged TLB."""
    p = load_profile(cpu_profile)
    out = [LinuxConfig("linux", "linux", bool(p["tagged_tlb"]), False),
           LinuxConfig("l4linux, large spaces, untagged", "l4linux", False, False)]
    if p["small_spaces"]:
        out.append(LinuxConfig("l4linux, small spaces", "l4linux", False, True))
    hyp = "" if p["tagged_tlb"] else " (hypothetical)"
    out.append(LinuxConfig(f"l4linux, tagged TLB{hyp}", "l4linux", True, False))
    return out


def _measured(p, op, n):
    op()                                     # warm-up
    return _counted(p, op, n)


def _counted(p, op, n):
    with p.measure() as r:
        for _ in range(n):
            op()
    return {"cycles": r.cycles / n, "us": r.us / n, "tlb_misses": r.stats["tlb.misses"] / n,
            "refill_cycles": r.by_category["tlb_walk"] / n, "cr3_loads": r.stats["cr3.loads"] / n,
            "by_category": {c: v / n for c, v in r.by_category.items() if v}}


def _getpid(p, n, in_text):
    ins = characteristic("getpid_loop_instructions")
    code = characteristic("getpid_loop_code_bytes")

    def op():
        if in_text:
            p.compute(ins, code_bytes=code)   # the loop's code, fetched from the ELF text
        p.getpid()
    return _measured(p, op, n)


def _pipe(p, n):
    """lmbench lat_pipe, the lab's own program (lab.mono.examples.lat_pipe, as the lmbench
    experiment runs it), with the TLB and CR3 counts of its timed rounds."""
    return lat_pipe(p, n, 4, timed=lambda op, k: _counted(p, op, k))


def linux_op(bench, config, cpu_profile="pentium-133", seed=1, n=10, placement_seed=None):
    """Run `bench` (one of LINUX_BENCHMARKS) on `config` (a LinuxConfig); returns the per-op
    measurement plus what happened to the processes' spaces: `small_created` processes
    created in a small space, `promoted` the ones L4 moved to a large space (S95 §4.1: a small
    space that needs addresses beyond its size), `small_at_end` whether the measured process
    was still small when it finished."""
    from lab.linux import boot
    if bench not in LINUX_BENCHMARKS:
        raise ValueError(f"linux_op: benchmark {bench!r} unknown; allowed: "
                         f"{', '.join(LINUX_BENCHMARKS)}")
    opts = {"tagged": config.tagged, "placement_seed": placement_seed}
    if config.system != "linux":
        opts["arch_options"] = {"small_spaces": config.small_spaces}
    k = boot(config.system, cpu_profile=cpu_profile, seed=seed, log_syscalls=False, **opts)
    if bench == "pipe":
        prog, args = _pipe, (n,)
    else:
        prog, args = _getpid, (n, bench != "getpid")
    proc = k.spawn(prog, *args, name=bench.split(",")[0])
    k.run()
    out = dict(proc.result)
    ev = k.m.events
    out["small_created"] = len(ev.find("create_process", kernel="l4linux", small=True))
    out["promoted"] = len(ev.find("promote", kernel="l4"))
    task = getattr(proc.ctx, "task", None)
    out["small_at_end"] = bool(task is not None and task.small)
    out["promotion_vas"] = _promotion_vas(ev)
    return out


def _promotion_vas(events):
    """The address whose mapping made each promoted task leave its small space: the first
    map into that task logged at the promotion's cycle (or just before)."""
    out = []
    for p in events.find("promote", kernel="l4"):
        maps = [e for e in events.find("map", kernel="l4", dst=p.args["task"])
                if e.cycle >= p.cycle]
        out.append(maps[0].args["dst_va"] if maps else None)
    return out
