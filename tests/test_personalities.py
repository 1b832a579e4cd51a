"""The same Linux on five platforms (S97 §4): one workload, unchanged, gives the same results
on native Linux, L4Linux (C library or trampoline) and MkLinux (in-kernel or user), and
getpid costs grow in the order of Table 2."""
import pytest

from lab.linux import SYSTEMS, boot
from lab.mono.abi import O_WRONLY, WEXITSTATUS


def _child_exit(c, code):
    return code


def _echo(c, r, w, rounds):
    buf = c.malloc(8)
    for _ in range(rounds):
        n = c.read(r, buf, 8)
        c.store(buf, bytes(x + 1 for x in c.peek(buf, n)))
        c.write(w, buf, n)


def workload(p):
    """getpid, write /dev/null, fork+exit, pipe ping-pong, a page-fault-heavy loop."""
    out = {"getpid": p.getpid() == p.pid}
    fd = p.open("/dev/null", O_WRONLY)
    buf = p.malloc(64)
    p.store(buf, b"x" * 64)
    out["write"] = p.write(fd, buf, 64)
    out["fork"] = [WEXITSTATUS(p.wait4(p.fork(_child_exit, i))[1]) for i in (3, 4)]
    down, up = p.pipe(), p.pipe()
    pid = p.fork(_echo, down[0], up[1], 3)
    tok = p.malloc(8)
    p.store(tok, b"\x01\x02\x03")
    seen = []
    for _ in range(3):
        p.write(down[1], tok, 3)
        n = p.read(up[0], tok, 8)
        seen.append(p.peek(tok, n))
    out["pipe"] = seen
    out["echo_exit"] = p.wait4(pid)[1]
    heap = p.malloc(24 * 4096)
    for i in range(24):
        p.store(heap + i * 4096 + i, bytes([i + 1]))
    out["faults"] = sum(p.load(heap + i * 4096 + i, 1)[0] for i in range(24))
    p.getpid()
    with p.measure() as r:
        p.getpid()
    out["getpid_cycles"] = r.cycles
    return out


EXPECTED = {"getpid": True, "write": 64, "fork": [3, 4],
            "pipe": [b"\x02\x03\x04", b"\x03\x04\x05", b"\x04\x05\x06"], "echo_exit": 0,
            "faults": sum(range(1, 25))}


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_same_workload_gives_the_same_results_on_every_platform(system):
    """Linux's architecture-independent part runs unchanged on each platform: the same
    program sees the same pids, bytes, exit statuses and memory contents."""
    linux = boot(system)            # a platform that is missing fails here, loudly
    p = linux.spawn(workload)
    linux.run()
    result = dict(p.result)
    assert result.pop("getpid_cycles") > 0
    assert result == EXPECTED
    assert p.exit_status == 0


def test_getpid_cost_follows_table_2_order():
    """S97 Table 2 on the Pentium: getpid costs native Linux < L4Linux < L4Linux with the
    trampoline < MkLinux in-kernel < MkLinux user."""
    costs = {}
    for system in SYSTEMS:
        linux = boot(system)
        p = linux.spawn(workload)
        linux.run()
        costs[system] = p.result["getpid_cycles"]
    chain = [costs[s] for s in SYSTEMS]
    assert chain == sorted(chain) and len(set(chain)) == len(chain), costs


def test_an_unknown_system_is_refused_with_the_allowed_names():
    """boot() names what it accepts instead of guessing."""
    with pytest.raises(ValueError, match="allowed: linux, l4linux, l4linux_trampoline"):
        boot("hurd")
    with pytest.raises(ValueError, match="unknown option"):
        boot("linux", warp_speed=True)


def test_breakdown_reports_a_failed_platform_in_one_line(monkeypatch, capsys):
    """The getpid breakdown prints one line for a platform that fails (here: cannot be
    imported) instead of crashing, exits 1 so that nothing is silently missing, and prints
    the paper's Table 2 beside the simulated totals."""
    from lab.linux.breakdown import format_table, paper_getpid
    paper = paper_getpid()
    table = format_table({"linux": ("ok", {"entry/exit": 82, "IPC": 0, "switch": 0,
                                           "TLB walk": 0, "cache miss": 0, "emulation": 0,
                                           "work": 141, "other": 0, "total": 223}),
                          "l4linux": ("failed", "ModuleNotFoundError: No module named 'x'")},
                         paper)
    lines = table.splitlines()
    assert "paper" in lines[0] and "simulated" in lines[0]
    assert lines[1].split()[-3:] == ["223", str(paper.get("linux", "-")), "1.00" if paper else "-"]
    assert lines[2] == "l4linux: failed: ModuleNotFoundError: No module named 'x'"
    from lab.linux import breakdown
    real = breakdown.measure

    def measure(system, *a):
        if system == "l4linux":
            raise ModuleNotFoundError("No module named 'x'")
        return real(system, *a)
    monkeypatch.setattr(breakdown, "measure", measure)
    assert breakdown.main([]) == 1
    out = capsys.readouterr().out
    assert "l4linux: failed: ModuleNotFoundError: No module named 'x'" in out
