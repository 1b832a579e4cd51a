"""Processes: fork with copy-on-write, exec from the file system, exit, wait4, SIGSEGV."""
from lab.mono.abi import (WEXITSTATUS, WTERMSIG, WIFEXITED, SIGSEGV, PROT_READ, MAP_PRIVATE,
                          MAP_ANONYMOUS)
from lab.mono.errors import ECHILD
from lab.mono.process import ProcState
from mono_helpers import run_program, events


def test_fork_shares_frames_copy_on_write_and_writes_stay_private():
    """fork copies the page table, not the pages: parent and child map the same frame
    read-only; the first write takes a copy-on-write fault in the writer, who gets a private
    frame; the other keeps the old contents."""
    seen = {}

    def child(c, va):
        seen["child_before"] = c.peek(va, 5)
        seen["shared"] = c.kernel.mm.refs[c.proc.mm.pte(va).pa]
        seen["same_frame"] = c.proc.mm.pte(va).pa == c.proc.parent.mm.pte(va).pa
        c.store(va, b"child")
        seen["child_after"] = c.peek(va, 5)
        seen["child_frame"] = c.proc.mm.pte(va).pa
        return 7

    def parent(p):
        va = p.malloc(4096)
        p.store(va, b"paren")
        pid = p.fork(child, va)
        _pid, status = p.wait4(pid)
        return p.peek(va, 5), p.proc.mm.pte(va).pa, WEXITSTATUS(status)

    linux, proc = run_program(parent)
    parent_bytes, parent_frame, code = proc.result
    assert seen["same_frame"] and seen["shared"] == 2
    assert seen["child_before"] == b"paren" and seen["child_after"] == b"child"
    assert parent_bytes == b"paren" and code == 7
    assert seen["child_frame"] != parent_frame
    cow = [e.args for e in events(linux, "page_fault", type="cow")]
    assert [a["kind"] for a in cow] == ["w"] and cow[0]["pid"] != proc.pid


def test_exit_releases_frames_and_wait4_reaps_the_zombie():
    """do_exit gives back the child's frames and page tables; the zombie keeps only its
    kernel stack until wait4 reaps it; then every frame is back."""
    obs = {}

    def child(c, va):
        c.store(va, b"dirty")                   # a copy-on-write copy to give back
        c.touch(c.malloc(3 * 4096), 3 * 4096, write=True)   # and fresh heap pages

    def parent(p):
        va = p.malloc(4096)
        p.store(va, b"x")
        p.touch(p.kernel.task_size - 4096, 4096, write=True)   # the argument page wait4 writes into
        mem = p.kernel.m.memory
        obs["before"] = mem.free_frames
        pid = p.fork(child, va)
        p.sched_yield()                         # the child runs and exits
        kid = p.kernel.procs.get(pid)
        obs["zombie"] = kid.state
        obs["while_zombie"] = mem.free_frames
        obs["wait"] = p.wait4(pid)
        obs["after"] = mem.free_frames
        try:
            p.wait4(-1)
        except ECHILD:
            obs["again"] = "ECHILD"
        return pid

    linux, proc = run_program(parent)
    assert obs["zombie"] is ProcState.ZOMBIE
    assert obs["while_zombie"] == obs["before"] - 1          # the kernel stack
    assert obs["after"] == obs["before"]
    assert obs["wait"] == (proc.result, 0) and obs["again"] == "ECHILD"
    assert [e.args["pid"] for e in events(linux, "reap")] == [proc.result, proc.pid]


def test_execve_passes_argv_as_given_even_empty():
    """execve(path, argv) hands the new image exactly argv -- an empty one is argc 0, as in
    C; without argv the C library passes [path], as a shell would."""
    def run(p):
        for argv in ([], None, ["x", "y"]):
            _pid, status = p.wait4(p.fork(lambda c, a=argv: c.execve("/bin/simple", a)))
            assert WIFEXITED(status) and WEXITSTATUS(status) == 0
        return True
    linux, _proc = run_program(run)
    assert [e.args["argv"] for e in events(linux, "exec")] == [(), ("/bin/simple",), ("x", "y")]


def test_exec_replaces_the_image_and_its_pages_fault_in_from_the_file_system():
    """execve drops the old memory map and maps the new image; its text and data come in
    by page faults served from the buffer cache, read from the disk the first time only."""
    def run_simple(p):
        def child(c):
            c.execve("/bin/simple", ["simple", "arg"])
        for _ in range(2):
            _pid, status = p.wait4(p.fork(child))
            assert WIFEXITED(status) and WEXITSTATUS(status) == 0
        return True
    linux, proc = run_program(run_simple)
    execs = events(linux, "exec")
    assert [e.args["argv"] for e in execs] == [("simple", "arg")] * 2
    first, second = (e.args["pid"] for e in execs)
    lay = linux.layout(linux.images["/bin/simple"])
    for pid in (first, second):
        faults = [e.args for e in events(linux, "page_fault", pid=pid)]
        text = [f for f in faults if lay["text"][0] <= f["va"] < lay["text"][1]]
        assert text and all(f["type"] == "file" and f["kind"] == "x" for f in text)
        assert any(f["type"] == "file-copy" for f in faults)      # a data page written
    reads = events(linux, "disk_read")
    t_exec2 = execs[1].cycle
    assert reads and all(e.cycle < t_exec2 for e in reads)


def test_sh_dash_c_forks_and_execs_the_command():
    """lat_proc's /bin/sh process: sh maps libc.so.5 (ld.so), then forks and execs the
    command, waits for it and exits with its status."""
    def prog(p):
        def child(c):
            c.execve("/bin/sh", ["sh", "-c", "/bin/simple"])
        return p.wait4(p.fork(child))[1]
    linux, proc = run_program(prog)
    assert WIFEXITED(proc.result) and WEXITSTATUS(proc.result) == 0
    assert [e.args["path"] for e in events(linux, "exec")] == ["/bin/sh", "/bin/simple"]
    assert len(events(linux, "fork")) == 2


def test_access_after_munmap_is_sigsegv():
    """A user access where no VMA is (after munmap) is a segmentation fault: the process
    is killed by SIGSEGV and its parent's wait4 says so."""
    def victim(c):
        va = c.mmap(0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
        c.load(va, 4)
        c.munmap(va, 8192)
        c.load(va, 4)
        return 0                               # never reached

    def parent(p):
        return p.wait4(p.fork(victim))[1]
    linux, proc = run_program(parent)
    assert not WIFEXITED(proc.result) and WTERMSIG(proc.result) == SIGSEGV
    seg = events(linux, "segfault")
    assert len(seg) == 1 and seg[0].args["reason"] == "no mapping"


def test_user_access_to_the_kernel_is_sigsegv():
    """The kernel is mapped in every process (global 4 MB pages) but not for the user: a
    user access at or above TASK_SIZE is a protection fault, and the process dies of it."""
    def victim(c):
        c.load(c.kernel.task_size, 4)

    def parent(p):
        return p.wait4(p.fork(victim))[1]
    linux, proc = run_program(parent)
    assert WTERMSIG(proc.result) == SIGSEGV
    assert events(linux, "segfault")[0].args["va"] == linux.task_size
