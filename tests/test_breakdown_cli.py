"""The breakdown tools (`python -m lab.mach.breakdown`, `python -m lab.linux.breakdown`) check
what the user typed before any work: a bad value is one line naming it and what is allowed,
exit status 2, no traceback (the project's rule for every command line)."""
import pytest

from lab.linux import breakdown as linux_breakdown
from lab.mach import breakdown as mach_breakdown


def _usage_error(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return e.value.code, out, err.strip().splitlines()


@pytest.mark.parametrize("main, prog", [(mach_breakdown.main, "lab.mach.breakdown"),
                                        (linux_breakdown.main, "lab.linux.breakdown")])
@pytest.mark.parametrize("argv, says", [
    (["--profile", "foo"], "argument --profile: CPU profile 'foo' unknown; available: "),
    (["--seed", "-3"], "argument --seed: -3 is not allowed: must be an integer >= 0"),
    (["--seed", "x"], "argument --seed: 'x' is not an integer"),
    (["foo"], "unrecognized arguments: foo"),
])
def test_a_bad_option_is_one_line_and_exit_2_before_any_work(main, prog, argv, says, capsys):
    """An unknown CPU profile, a negative or non-integer seed, or a stray argument: one line on
    stderr naming the value (and, for the profile, the ones available), exit 2, nothing on
    stdout -- no header, no per-system failure repeated five times."""
    code, out, err = _usage_error(main, argv, capsys)
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith(f"python -m {prog}: error: {says}")
    if "--profile" in argv:
        assert "pentium-133" in err[0]


def test_mach_breakdown_takes_profile_and_seed_and_prints_each_cache(capsys):
    """`--profile` chooses the CPU; the rows list the misses of the caches that CPU has (the
    VAX profile has one cache, named `cache`, and no l1i/l1d/l2)."""
    assert mach_breakdown.main(["--profile", "vax-8200", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[::2]] == ["null", "mklinux_in_kernel", "mklinux_user"]
    assert all("cache misses" in ln and "l1i" not in ln for ln in lines[1::2])


def test_the_paper_column_stands_only_beside_the_papers_machine(capsys):
    """S97's getpid cycles were measured on a 133 MHz Pentium: on another CPU profile the
    breakdown leaves the paper and ratio columns empty and says why."""
    assert linux_breakdown.main(["--profile", "x86-64-modern"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "no paper column" in lines[0]
    assert all(ln.split()[-2:] == ["-", "-"] for ln in lines[2:])
    assert linux_breakdown.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[-2:] == ["223", "1.00"]


def test_a_reader_that_stops_early_gets_no_traceback():
    """`python -m lab.linux.breakdown | head -1`: the tool's output ends quietly when the
    reader closes the pipe (no BrokenPipeError traceback on stderr)."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-m", "lab.linux.breakdown"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()             # the reader has had enough before the tool writes a line
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Traceback" not in err, err


def test_the_paper_column_comes_from_the_package_copy_without_the_shared_folder(monkeypatch):
    """A clone or an installed package without ../shared still has the paper's Table 2 (the
    package's copy of published.json), like every other tool."""
    from lab import results
    monkeypatch.setattr(results, "shared_published_path", lambda: None)
    assert linux_breakdown.paper_getpid() == {"linux": 223, "l4linux": 526,
                                              "l4linux_trampoline": 753,
                                              "mklinux_in_kernel": 2050, "mklinux_user": 14710}
