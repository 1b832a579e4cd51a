"""Determinism: the same seed and parameters give the same cycles and the same event log."""
from lab.linux import boot
from lab.mono.abi import AF_INET, SOCK_DGRAM
from lab.mono.examples import lat_pipe


def _mixed(p):
    def child(c):
        c.execve("/bin/simple", ["simple"])
    p.wait4(p.fork(child))
    va = p.malloc(5 * 4096)
    p.touch(va, 5 * 4096, write=True)
    s = p.socket(AF_INET, SOCK_DGRAM)
    p.bind(s, 9000)
    p.sendto(s, va, 100, 9000)
    p.recvfrom(s, va, 100)
    return p.clock()


def _run(seed):
    linux = boot("linux", seed=seed)
    a = linux.spawn(_mixed)
    b = linux.spawn(lat_pipe, 3)
    linux.run()
    log = [(e.cycle, e.kernel, e.operation, tuple(sorted(e.args.items()))) for e in linux.m.events]
    return linux.m.cycles, linux.m.by_category(), log, a.result, b.result


def test_two_runs_with_the_same_seed_are_identical():
    """Two boots with the same seed running the same processes give identical cycle counts,
    categories and event logs (cycle stamps included)."""
    first, second = _run(1), _run(1)
    assert first == second
    assert len(first[2]) > 50
