"""Physical placement (engine/memory.py): frames lowest first by default, as after boot; with a
`placement_seed`, in a seeded scattered order, so that a measurement can be repeated over
placements (S97 §6.1: with a direct-mapped L2, placement decides which lines conflict)."""
import json

import numpy as np
import pytest

from engine import Machine
from engine.errors import ConfigError, OutOfFrames
from lab.linux import boot
from lab.mono.abi import O_CREAT, O_RDWR

MEM = 1 << 20               # 256 frames of 4 KB
PAGE = 4096


def _frames(m, n):
    return [m.alloc_page() // PAGE for _ in range(n)]


def test_by_default_frames_come_lowest_first():
    assert _frames(Machine("pentium-133", memory_bytes=MEM), 4) == [1, 2, 3, 4]


def test_a_placement_seed_hands_out_every_frame_once_in_a_fixed_scattered_order():
    m = Machine("pentium-133", memory_bytes=MEM, placement_seed=5)
    frames = _frames(m, 255)
    assert sorted(frames) == list(range(1, 256))          # frame 0 never; each once
    assert frames[:8] != sorted(frames[:8])
    with pytest.raises(OutOfFrames):
        m.alloc_page()
    again = _frames(Machine("pentium-133", memory_bytes=MEM, placement_seed=5), 255)
    other = _frames(Machine("pentium-133", memory_bytes=MEM, placement_seed=6), 255)
    assert again == frames and other != frames


def test_a_freed_frame_comes_back_before_the_later_ones_in_the_order():
    """As lowest-first reuses the lowest free frame, a seeded order reuses the earliest free
    one in its order: a machine's free list does not depend on the history of frees."""
    m = Machine("pentium-133", memory_bytes=MEM, placement_seed=2)
    first = _frames(m, 6)
    m.free_page(first[4] * PAGE)
    m.free_page(first[1] * PAGE)
    assert _frames(m, 2) == [first[1], first[4]]
    fresh = _frames(Machine("pentium-133", memory_bytes=MEM, placement_seed=2), 7)
    assert _frames(m, 1) == [fresh[6]]


def test_coloured_frames_ignore_the_seed():
    """A pager asking for a colour (S97 §6.3) gets the lowest free frame of that colour."""
    m = Machine("pentium-133", memory_bytes=MEM, placement_seed=9)
    assert m.alloc_page(colour=3, colours=64) == 3 * PAGE


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", 2 ** 64])
def test_a_bad_placement_seed_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match=r"placement_seed .* must be None"):
        Machine("pentium-133", placement_seed=bad)


def test_a_numpy_placement_seed_is_kept_as_a_plain_int():
    """The configuration is dumped beside results as JSON."""
    m = Machine("pentium-133", memory_bytes=MEM, placement_seed=np.int64(3))
    assert json.loads(json.dumps(m.config()))["placement_seed"] == 3


@pytest.mark.parametrize("system", ["linux", "l4linux", "mklinux_user"])
def test_placement_changes_the_cycles_not_what_a_program_sees(system):
    """Same program, three placements: the same results, other cycle counts (the placement
    moves cache conflicts, nothing else); the machine's configuration records the seed."""
    def prog(p):
        fd = p.open("/tmp/f", O_CREAT | O_RDWR)
        buf = p.malloc(3 * PAGE)
        p.store(buf, bytes(range(256)) * 48)
        p.write(fd, buf, 3 * PAGE)
        p.lseek(fd, 0, 0)
        p.read(fd, buf, 3 * PAGE)
        child = p.fork(lambda c: c.getpid() and 0)
        return p.load(buf, 3 * PAGE), p.wait4(child)
    seen, cycles = set(), set()
    for seed in (None, 1, 2):
        k = boot(system, placement_seed=seed)
        proc = k.spawn(prog)
        k.run()
        assert k.m.config()["placement_seed"] == seed
        seen.add(repr(proc.result))
        cycles.add(k.m.cycles)
    assert len(seen) == 1 and len(cycles) == 3
