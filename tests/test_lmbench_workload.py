"""The lmbench programs measure steady state, the same way on every system."""
import pytest

from engine.profile import load_profile
from lab.linux import SYSTEMS, boot
from lab.workloads import lmbench as L


def _run(fn, *args, system="linux"):
    k = boot(system, log_syscalls=False)
    p = k.spawn(lambda c: fn(c, *args))
    k.run()
    return p.result


@pytest.mark.parametrize("fn,args", [(L.lat_pipe, ()), (L.lat_net, ("udp",)), (L.lat_net, ("tcp", True))])
def test_latency_does_not_depend_on_the_iteration_count(fn, args):
    """The partner process exits after an untimed round, so no exit lands in a timed round."""
    a, b = _run(fn, 3, *args), _run(fn, 12, *args)
    assert a == pytest.approx(b, rel=0.01)


def test_every_benchmark_runs_on_every_system_and_microkernels_cost_more():
    """The same program runs unchanged on all five systems; a null system call is slower on
    every microkernel personality than natively."""
    vals = {s: L.measure("write /dev/null@lmbench", s, quick=True) for s in SYSTEMS}
    assert all(vals[s] > vals["linux"] for s in SYSTEMS[1:])
    assert vals["mklinux_user"] > vals["mklinux_in_kernel"] > vals["l4linux"]


def test_bandwidth_is_bytes_over_simulated_time():
    """A bandwidth is the bytes moved divided by the simulated time: positive and finite, and
    smaller when the copy has to cross an address space more often (MkLinux user)."""
    native = L.measure("pipe@lmbench_bw", "linux", quick=True)
    mk = L.measure("pipe@lmbench_bw", "mklinux_user", quick=True)
    assert 0 < mk < native < 1e4


@pytest.mark.parametrize("system", ["linux", "l4linux"])
def test_ctx_parts_take_apart_what_lat_ctx_reports(system):
    """ctx_parts is lat_ctx taken apart: hop minus overhead is the reported number, and the
    categories add up to it.  Native Linux's switch changes the address space, which a
    system call does not, so space-switch cycles are left in its ctx; on L4Linux every system
    call switches to the server and back, so they cancel."""
    c = L.ctx_parts(system, quick=True)
    assert c["ctx"] == pytest.approx(L.measure("2-proc ctxsw@lmbench", system, quick=True),
                                     rel=1e-9)
    assert c["hop"] - c["overhead"] == pytest.approx(c["ctx"], rel=1e-9)
    mhz = load_profile("pentium-133")["clock_mhz"]
    assert sum(c["by_category"].values()) / mhz == pytest.approx(c["ctx"], rel=1e-6)
    left = c["by_category"].get("space_switch", 0)
    assert (left > 0) if system == "linux" else (left == 0)


def test_the_mono_examples_run_unchanged_on_each_platform(capsys):
    """`python -m lab.mono.examples` runs the same two programs on the platforms asked for
    and prints one line each, the microkernel's slower than native."""
    from lab.mono import examples
    examples.main(["--system", "linux", "--system", "l4linux"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "CPU profile pentium-133, seed 1"
    assert [line.split()[0] for line in out[2:]] == ["linux", "l4linux"]
    native, l4 = (float(line.split()[1]) for line in out[2:])
    assert 0 < native < l4


@pytest.mark.parametrize("argv, says", [
    (["--system", "foo"], "argument --system: invalid choice: 'foo'"),
    (["--profile", "foo"], "argument --profile: CPU profile 'foo' unknown"),
    (["--seed", "-1"], "argument --seed: -1 is not allowed"),
])
def test_the_mono_examples_refuse_bad_options_in_one_line(argv, says, capsys):
    """`python -m lab.mono.examples` with a bad option: one line naming it, exit status 2."""
    from lab.mono import examples
    with pytest.raises(SystemExit) as e:
        examples.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and says in err[0]
