# %% [markdown]
# # A tour of microkernel-lab
#
# This lab runs kernels on a simulated machine whose costs *emerge* from mechanism: every
# cycle a system call costs comes from a trap, an IPC path, an address-space switch, a TLB
# miss with its page walk, or a cache miss.  This tour shows the machine first, then the
# question the lecture asks of it: *"With a µ-kernel, protection-boundary crossing forces us to
# change memory-map [and] flush TLB (unless tagged)."*  Then the kernels that answer it: an
# L4 IPC, a Mach RPC, and one Linux system call on five platforms.  The experiments
# (`microlab list`) take each of these further.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %% [markdown]
# ## The machine
# A CPU profile is data: every value has a unit, a description and a source.

# %%
from engine import Machine, ops, load_profile
profile = load_profile(cpu_profile)
place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
for key in ("clock_mhz", "kernel_entry_exit_cycles", "tlb_miss_base_cycles",
            "memory_latency_cycles", "page_table_switch_cycles", "segment_switch_cycles"):
    e = profile.meta(key)
    print(f"{key:28} {e['value']!s:>8} {e['unit']:8} {e['source']}")

# %% [markdown]
# ## One translation, step by step
# An address space is a page table stored in simulated physical memory.  The first access to a
# page misses the TLB; the walker reads one entry per level, each read going through the caches.

# %%
from lab.views import walk_table
m = Machine(cpu_profile, seed=seed, placement_seed=place)
a = m.new_space()
m.map(a, 0x1000, m.alloc_page(), "rw")
m.switch(a)
for row in walk_table(m, a, 0x1234):
    print(row)
r = m.step("w", 0x1234)
print(r.tlb, hex(r.paddr), r.walk_refs, "walk refs,", r.cycles, "cycles")
print(m.step("r", 0x1238).tlb, "— the second access hits")

# %% [markdown]
# A read-only page gives a *protection* fault on a write; an unmapped page a *not-present* one.

# %%
m.map(a, 0x2000, m.alloc_page(), "r")
print(m.step("w", 0x2000).fault, "|", m.step("r", 0x9000).fault)

# %% [markdown]
# ## Crossing a protection boundary
# Two address spaces ping-pong, each touching a working set of pages between switches.  On the
# Pentium the TLB is untagged: each switch reloads CR3 and flushes it, and the refills are paid
# as misses.  A tagged TLB (today's PCIDs) or Liedtke's *small address spaces* (segments instead
# of a CR3 load) avoid the refills.

# %%
import numpy as np

def ping_pong(tagged, small, pages, rounds):
    mm = Machine(cpu_profile, seed=seed, tagged=tagged,
                 small_spaces=small and profile["small_spaces"], placement_seed=place)
    big = mm.new_space()
    other = mm.new_space(small=small and profile["small_spaces"])
    for s in (big, other):
        for p in range(pages):
            mm.map(s, 0x100000 + p * 4096, mm.alloc_page(), "rw")
    work = ops.access("r", 0x100000 + np.arange(pages) * 4096)
    batch = ops.concat(*[ops.concat(ops.switch(big), work, ops.switch(other), work)
                         for _ in range(rounds)])
    mm.run(batch)
    with mm.measure() as r:
        mm.run(batch)
    return r.cycles / (2 * rounds), r.stats["tlb.misses"] / (2 * rounds)

rounds = 20 if quick else 200
rows = []
for pages in (1, 4, 16, 32):
    for label, tagged, small in (("untagged", False, False), ("small spaces", False, True),
                                 ("tagged", True, False)):
        if small and not profile["small_spaces"]:
            continue
        cyc, miss = ping_pong(tagged, small, pages, rounds)
        rows.append((pages, label, cyc, miss))
        print(f"{pages:3} pages  {label:13} {cyc:8.1f} cycles/switch  {miss:5.1f} TLB misses/switch")

# %% [markdown]
# The TLB misses per switch grow with the working set only when the TLB is flushed: that is
# the refill the lecture warns about, and it comes out of the TLB model, not out of a
# constant.  The cycles grow in the other two rows as well, for another reason.  The work
# touches the first line of each page, and lines at the same offset of different pages share
# one set of the Pentium's 2-way L1.  Beyond two pages they evict each other in every round.
# These are cache misses, and the untagged TLB pays them on top of its refills.

# %%
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 3.2))
for label in dict.fromkeys(r[1] for r in rows):
    xs = [r[0] for r in rows if r[1] == label]
    ax.plot(xs, [r[2] for r in rows if r[1] == label], marker="o", label=label)
ax.set_xlabel("pages touched per space between switches")
ax.set_ylabel("cycles per switch")
ax.set_title(f"Switch cost on {profile.name}")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The kernels on this machine
# The same crossing, now made by kernels.  **L4** (Liedtke): a server task waits for a
# message, a client calls it; the message travels in registers, and every cycle of the round
# trip is the trap, L4's IPC path, the two address-space switches and the refills they cause.

# %%
from lab.l4 import L4Kernel, Message, ipc_call, ipc_wait, ipc_reply_and_wait


def echo(t):
    """An L4 server loop: wait, then answer each request and wait again."""
    msg = yield ipc_wait()
    while True:
        msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1))


l4 = L4Kernel(Machine(cpu_profile, seed=seed, placement_seed=place))
server, client = l4.task_new("server", program=echo), l4.task_new("client")
for _ in range(3):                                   # warm the caches
    l4.ipc(client.thread, ipc_call(server.thread, Message(0)))
with l4.m.measure() as r:
    reply = l4.ipc(client.thread, ipc_call(server.thread, Message(41)))
print("reply:", reply.words, "from", reply.sender.name)
print(f"L4 round trip: {r.cycles:.0f} cycles =",
      ", ".join(f"{c} {v:.0f}" for c, v in r.by_category.items() if v))
for e in l4.m.events.find("ipc", kernel="l4")[-2:]:
    print("  event:", e.args["sender"], "->", e.args["receiver"], "short" if e.args["short"] else "long")

# %% [markdown]
# **Mach** (Rashid, Young et al.): the client sends to a port; the kernel queues the
# message, a server thread receives it and replies to the reply port.  The same null round
# trip takes the path of a general message system.

# %%
from lab.mach.breakdown import null_rpc
rm = null_rpc(cpu_profile, seed=seed, placement_seed=place)
print(f"Mach null RPC: {rm.cycles:.0f} cycles =",
      ", ".join(f"{c} {v:.0f}" for c, v in rm.by_category.items() if v))
print(f"-> {rm.cycles / r.cycles:.1f} times L4's round trip")

# %% [markdown]
# **Linux on five platforms**: the same getpid, natively (a trap), on L4Linux (an IPC to the
# Linux server and back), and on MkLinux (a Mach RPC to the server in the kernel or in a
# user task).  This is S97 Table 2; the `getpid` experiment compares it with the paper.

# %%
from lab.linux import SYSTEMS
from lab.linux.breakdown import measure as getpid_cycles
for system in SYSTEMS:
    cats = getpid_cycles(system, cpu_profile, seed, place)
    print(f"{system:20} {sum(cats.values()):6} cycles: " +
          ", ".join(f"{c} {v}" for c, v in cats.items() if v))

# %% [markdown]
# ## Live views
# In JupyterLab, step through accesses and watch the TLB fill, coloured by address space.

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import WalkView
WalkView(m, a, [("r", 0x1000), ("w", 0x2000), ("r", 0x9000)])
