"""Bad arguments to the Linux personality get the errno a C program would see, naming the call,
the argument and the value.

A value no register can carry (None, a string, a float, True, a Mach task where an int is
expected) is refused by the C library's stub before the trap -- EBADF for a file descriptor,
EFAULT for a pointer, EINVAL for any other int -- with no event and no cycle.  A value that is
merely wrong (a closed fd, a negative count, an unmapped buffer, a port outside 0..65535) goes
to the kernel, which answers as Linux does, before it changes anything.  The C library's own
helpers (malloc, string, store, load, peek, touch, compute, run) check theirs the same way;
a user access outside user space is the SIGSEGV the hardware would raise.  Never a Python
TypeError/AttributeError from deep inside, never a hang, never True taken for 1."""
import re

import numpy as np
import pytest

from engine import Machine
from lab.errors import KernelError
from lab.linux import boot
from lab.mach import MachKernel
from lab.mono.abi import (AF_INET, MAP_ANONYMOUS, MAP_PRIVATE, O_RDONLY, O_WRONLY, PROT_READ,
                          SOCK_DGRAM, TASK_SIZE)
from lab.mono.errors import (EBADF, EFAULT, EINVAL, ENOSYS, ESRCH, Deadlock,
                             SegmentationFault)

MACH_TASK = MachKernel(Machine("pentium-133")).task_create(name="m")   # another kind of object
NOT_INT = [None, "x", 1.5, True, MACH_TASK]


def R(x):
    """A value as the error names it, as a pattern."""
    return re.escape(repr(x))


def attempt(call, system="linux"):
    """Run `call(p, env)` in a fresh process (env: an open fd, a written buffer, a closed fd,
    a UDP socket).  Returns (the KernelError raised or None, the value, [operations logged by
    the call], cycles the call cost)."""
    out = {}

    def prog(p):
        env = {"fd": p.open("/dev/null", O_WRONLY), "buf": p.malloc(64)}
        p.store(env["buf"], b"x" * 64)
        env["closed"] = p.open("/dev/null", O_RDONLY)
        p.close(env["closed"])
        env["udp"] = p.socket(AF_INET, SOCK_DGRAM)
        n0, c0 = len(p.m.events), p.clock()
        try:
            out["value"] = call(p, env)
        except KernelError as e:
            out["error"] = e
        out["ops"] = [e.operation for e in list(p.m.events)[n0:]]
        out["cycles"] = p.clock() - c0
        return 0
    linux = boot(system)
    linux.spawn(prog)
    linux.run()
    return out.get("error"), out.get("value"), out["ops"], out["cycles"]


# -- what the stub refuses: call, the argument, its errno -------------------------------------
STUBS = {
    "write: fd": (lambda p, e, x: p.write(x, e["buf"], 1), EBADF, "a file descriptor"),
    "write: buf": (lambda p, e, x: p.write(e["fd"], x, 1), EFAULT, "a user address"),
    "write: count": (lambda p, e, x: p.write(e["fd"], e["buf"], x), EINVAL, "an int"),
    "read: fd": (lambda p, e, x: p.read(x, e["buf"], 1), EBADF, "a file descriptor"),
    "read: buf": (lambda p, e, x: p.read(0, x, 1), EFAULT, "a user address"),
    "read: count": (lambda p, e, x: p.read(0, e["buf"], x), EINVAL, "an int"),
    "open: flags": (lambda p, e, x: p.open("/dev/null", x), EINVAL, "an int"),
    "open: mode": (lambda p, e, x: p.open("/tmp/f", 0o102, x), EINVAL, "an int"),
    "close: fd": (lambda p, e, x: p.close(x), EBADF, "a file descriptor"),
    "dup: fd": (lambda p, e, x: p.dup(x), EBADF, "a file descriptor"),
    "fstat: fd": (lambda p, e, x: p.fstat(x), EBADF, "a file descriptor"),
    "lseek: offset": (lambda p, e, x: p.lseek(e["fd"], x), EINVAL, "an int"),
    "lseek: whence": (lambda p, e, x: p.lseek(e["fd"], 0, x), EINVAL, "an int"),
    "exit: status": (lambda p, e, x: p.exit(x), EINVAL, "an int"),
    "wait4: pid": (lambda p, e, x: p.wait4(x), EINVAL, "an int"),
    "wait4: options": (lambda p, e, x: p.wait4(-1, x), EINVAL, "an int"),
    "mmap: addr": (lambda p, e, x: p.mmap(x, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
                   EINVAL, "an int"),
    "mmap: length": (lambda p, e, x: p.mmap(0, x, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
                     EINVAL, "an int"),
    "mmap: prot": (lambda p, e, x: p.mmap(0, 4096, x, MAP_PRIVATE | MAP_ANONYMOUS),
                   EINVAL, "an int"),
    "mmap: flags": (lambda p, e, x: p.mmap(0, 4096, PROT_READ, x), EINVAL, "an int"),
    "mmap: fd": (lambda p, e, x: p.mmap(0, 4096, PROT_READ, MAP_PRIVATE, x), EBADF,
                 "a file descriptor"),
    "munmap: addr": (lambda p, e, x: p.munmap(x, 4096), EINVAL, "an int"),
    "munmap: length": (lambda p, e, x: p.munmap(0x40000000, x), EINVAL, "an int"),
    "brk: addr": (lambda p, e, x: p.brk(x), EINVAL, "an int"),
    "socket: domain": (lambda p, e, x: p.socket(x), EINVAL, "an int"),
    "socket: type": (lambda p, e, x: p.socket(AF_INET, x), EINVAL, "an int"),
    "bind: fd": (lambda p, e, x: p.bind(x, 80), EBADF, "a file descriptor"),
    "bind: port": (lambda p, e, x: p.bind(e["udp"], x), EINVAL, "an int"),
    "listen: backlog": (lambda p, e, x: p.listen(e["udp"], x), EINVAL, "an int"),
    "accept: fd": (lambda p, e, x: p.accept(x), EBADF, "a file descriptor"),
    "connect: port": (lambda p, e, x: p.connect(e["udp"], x), EINVAL, "an int"),
    "sendto: buf": (lambda p, e, x: p.sendto(e["udp"], x, 1, 9), EFAULT, "a user address"),
    "sendto: len": (lambda p, e, x: p.sendto(e["udp"], e["buf"], x, 9), EINVAL, "an int"),
    "sendto: port": (lambda p, e, x: p.sendto(e["udp"], e["buf"], 1, x), EINVAL, "a port"),
    "recvfrom: buf": (lambda p, e, x: p.recvfrom(e["udp"], x, 1), EFAULT, "a user address"),
    "recvfrom: len": (lambda p, e, x: p.recvfrom(e["udp"], e["buf"], x), EINVAL, "an int"),
    "fork: child": (lambda p, e, x: p.fork(x), EINVAL, "a function"),
}


@pytest.mark.parametrize("where, bad", [(w, b) for w in sorted(STUBS) for b in NOT_INT
                                        if (w, b) != ("sendto: port", None)],   # None: the peer
                         ids=lambda x: x if isinstance(x, str) else repr(x))
def test_the_stub_refuses_what_no_register_can_carry(where, bad):
    """Where a system call takes an int (a pointer, a count, flags, a file descriptor), a value
    that is not one is refused by the stub: the errno of that argument's kind naming the call,
    the argument and the value -- before the trap (no event, no cycle, nothing done).  True is
    not fd 1 (close(True) does not close stdout)."""
    call, errno, allowed = STUBS[where]
    err, _value, ops, cycles = attempt(lambda p, e: call(p, e, bad))
    assert type(err) is errno, (where, err)
    assert str(err).startswith(f"{errno.code}: {where} {bad!r} is not {allowed}"), err
    assert ops == [] and cycles == 0


TOO_WIDE = (1 << 32, -(1 << 31) - 1, 1 << 40)


@pytest.mark.parametrize("where, bad", [(w, b) for w in sorted(STUBS) for b in TOO_WIDE
                                        if w != "fork: child"],
                         ids=lambda x: x if isinstance(x, str) else repr(x))
def test_the_stub_refuses_an_int_no_32_bit_register_holds(where, bad):
    """An int argument must fit an i386 register (-2**31 .. 2**32-1, signed or unsigned):
    a wider one is refused by the stub with that argument's errno, before the trap -- not
    passed on as a number Linux 2.0 could never see (an lseek offset past 4 GB)."""
    call, errno, _allowed = STUBS[where]
    err, _value, ops, cycles = attempt(lambda p, e: call(p, e, bad))
    assert type(err) is errno, (where, err)
    assert str(err).startswith(f"{errno.code}: {where} {bad} does not fit a 32-bit "
                               "register"), err
    assert ops == [] and cycles == 0


@pytest.mark.parametrize("system", ["l4linux", "mklinux_user"])
def test_the_stub_refuses_them_on_every_platform(system):
    """The check is the C library's, so it is the same on L4Linux and MkLinux: no IPC, no
    message, no cycle for a value the stub cannot pass."""
    for where in ("write: buf", "close: fd", "mmap: length"):
        call, errno, _allowed = STUBS[where]
        err, _v, ops, cycles = attempt(lambda p, e: call(p, e, 1.5), system)
        assert type(err) is errno and (ops, cycles) == ([], 0), (system, where)


def test_numpy_integers_are_ints():
    """Any integer type is an int (a buffer address computed with numpy is one)."""
    err, value, _ops, _c = attempt(lambda p, e: p.write(np.int64(e["fd"]),
                                                        np.int64(e["buf"]), np.int32(3)))
    assert err is None and value == 3 and type(value) is int


def _kernel_and_process():
    linux = boot("linux")
    proc = linux.spawn(lambda p: p.sched_yield())
    return linux, proc


def test_a_direct_system_call_checks_its_caller_name_and_arguments():
    """LinuxKernel.syscall (what the stubs call) takes a live Process, a call's name and as
    many arguments as the call has: ESRCH for a caller that is not a live process, ENOSYS for
    a name that is not a string, EINVAL naming the prototype for a wrong number -- before the
    trap, without an event."""
    linux, proc = _kernel_and_process()
    n = len(linux.m.events)
    for bad in NOT_INT:
        with pytest.raises(ESRCH, match=rf"getpid: caller {R(bad)} is not a live process"):
            linux.syscall(bad, "getpid")
    with pytest.raises(ENOSYS, match=r"system call \['write'\] is not a name"):
        linux.syscall(proc, ["write"], 1, 0, 1)
    with pytest.raises(EINVAL, match=r"write takes 3 argument\(s\) \(fd, buf, count\); got 1"):
        linux.syscall(proc, "write", 1)
    with pytest.raises(EINVAL, match=r"getpid takes 0 argument\(s\) \(none\); got 2"):
        linux.syscall(proc, "getpid", 1, 2)
    assert len(linux.m.events) == n


@pytest.mark.parametrize("system", ["linux", "l4linux"])
def test_the_c_library_of_a_process_that_has_exited_is_esrch(system):
    """A program that keeps another's C library after that process exited gets ESRCH for its
    system calls (the pid is gone), not a crash in the platform's context switch."""
    kept, got = {}, {}

    def first(p):
        kept["p"] = p

    def second(p):
        p.sched_yield()
        try:
            kept["p"].getpid()
        except KernelError as e:
            got["e"] = e
    linux = boot(system)
    a = linux.spawn(first)
    linux.spawn(second)
    linux.run()
    assert type(got["e"]) is ESRCH and f"caller {a!r} is not a live process" in str(got["e"])


# -- what the kernel answers as Linux does -----------------------------------------------------
def test_munmap_of_a_negative_address_is_einval():
    """Linux's do_munmap: the address is unsigned, so -4096 is above TASK_SIZE: EINVAL (not a
    successful unmap of nothing)."""
    err, _v, ops, _c = attempt(lambda p, e: p.munmap(-4096, 4096))
    assert type(err) is EINVAL and "munmap: address -0x1000" in str(err)


@pytest.mark.parametrize("port", [-1, 65536, 1 << 40])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_connect_to_a_port_outside_16_bits_is_einval_before_any_packet(proto, port):
    """sin_port has 16 bits: connect to a port outside 0..65535 is EINVAL, before a SYN is
    sent (not a refused handshake, not a UDP peer no packet can reach); 2**40 does not even
    fit the register that carries it (the stub refuses it)."""
    def call(p, e):
        s = p.socket(AF_INET, SOCK_DGRAM if proto == "udp" else 1)
        return p.connect(s, port)
    err, _v, ops, _c = attempt(call)
    why = "does not fit a 32-bit register" if port >= 1 << 32 else "outside 0..65535"
    assert type(err) is EINVAL and f"connect: port {port} {why}" in str(err)
    assert "packet" not in ops


@pytest.mark.parametrize("port", [-1, 65536])
def test_sendto_a_port_outside_16_bits_is_einval_and_sends_nothing(port):
    """A UDP datagram to a port outside 0..65535 is EINVAL, not sent and silently dropped."""
    err, _v, ops, _c = attempt(lambda p, e: p.sendto(e["udp"], e["buf"], 8, port))
    assert type(err) is EINVAL and f"sendto: port {port} outside 0..65535" in str(err)
    assert "packet" not in ops and "udp_drop" not in ops


def test_wait4_checks_the_status_pointer_before_it_waits():
    """Linux 2.0's sys_wait4 verifies the status word first: a bad pointer is EFAULT at once,
    not after sleeping until a child exits (here: never -- a deadlock)."""
    def call(p, e):
        r, w = p.pipe()
        p.fork(lambda c: (c.close(w), c.read(r, c.malloc(4), 4)))  # waits for the parent
        return p.kernel.syscall(p.proc, "wait4", -1, 4, 0)
    try:
        err, _v, ops, _c = attempt(call)
    except Deadlock:                                    # (the old behaviour)
        pytest.fail("wait4 slept before checking its status pointer")
    assert type(err) is EFAULT and "0x4" in str(err)


# -- the C library's own helpers ---------------------------------------------------------------
@pytest.mark.parametrize("call, errno, pattern", [
    (lambda p, e: p.malloc(None), EINVAL, r"malloc: size None is not an int"),
    (lambda p, e: p.malloc(1.5), EINVAL, r"malloc: size 1.5 is not an int"),
    (lambda p, e: p.malloc(True), EINVAL, r"malloc: size True is not an int"),
    (lambda p, e: p.malloc(8, 1.5), EINVAL, r"malloc: align 1.5 is not an int"),
    (lambda p, e: p.malloc(8, -1), EINVAL, r"malloc: align -1 must be >= 1"),
    (lambda p, e: p.malloc(8, 12), EINVAL, r"malloc: align 12 must be a power of two"),
    (lambda p, e: p.open(None), EFAULT, r"open: path None is not a string"),
    (lambda p, e: p.open(5), EFAULT, r"open: path 5 is not a string"),
    (lambda p, e: p.stat(True), EFAULT, r"stat: path True is not a string"),
    (lambda p, e: p.execve(None), EFAULT, r"execve: path None is not a string"),
    (lambda p, e: p.execve("/bin/simple", "abc"), EFAULT, r"execve: argv 'abc' is not a list"),
    (lambda p, e: p.string(1 << 40), EFAULT, r"string: argument 1099511627776 is not a str"),
    (lambda p, e: p.store(e["buf"], None), EINVAL, r"store: data None is not bytes"),
    (lambda p, e: p.store(e["buf"], 5), EINVAL, r"store: data 5 is not bytes"),
    (lambda p, e: p.store(e["buf"], "text"), EINVAL, r"store: data 'text' is not bytes"),
    (lambda p, e: p.store(None, b"x"), EFAULT, r"store: address None is not an int"),
    (lambda p, e: p.store(1.5, b"x"), EFAULT, r"store: address 1.5 is not an int"),
    (lambda p, e: p.load(True, 1), EFAULT, r"load: address True is not an int"),
    (lambda p, e: p.load(e["buf"], -1), EINVAL, r"load: size -1 must be >= 0"),
    (lambda p, e: p.load(e["buf"], 1.5), EINVAL, r"load: size 1.5 is not an int"),
    (lambda p, e: p.peek(e["buf"], -1), EINVAL, r"peek: size -1 must be >= 0"),
    (lambda p, e: p.peek(None, 1), EFAULT, r"peek: address None is not an int"),
    (lambda p, e: p.peek(-1, 1), EFAULT, r"peek: \[-0x1, \+1\) is outside user space"),
    (lambda p, e: p.touch(e["buf"], -1), EINVAL, r"touch: size -1 must be >= 0"),
    (lambda p, e: p.touch(e["buf"], 8, stride=0), EINVAL, r"touch: stride 0 must be >= 1"),
    (lambda p, e: p.touch(e["buf"], 8, stride=1.5), EINVAL, r"touch: stride 1.5 is not an"),
    (lambda p, e: p.compute(None), EINVAL, r"compute: instructions None must be a number"),
    (lambda p, e: p.compute(-1), EINVAL, r"compute: instructions -1 must be a number"),
    (lambda p, e: p.compute(10, True), EINVAL, r"compute: code_bytes True is not an int"),
    (lambda p, e: p.compute(10, 1 << 40), SegmentationFault, r"compute of 1099511627776 bytes"),
    (lambda p, e: p.run(None), EINVAL, r"run: ops None is not an op batch"),
    (lambda p, e: p.run(1.5), EINVAL, r"run: ops 1.5 is not an op batch"),
    (lambda p, e: p.run(np.array([0.5])), EINVAL, r"run: ops .* is not an op batch"),
])
def test_the_c_librarys_helpers_name_bad_values(call, errno, pattern):
    """malloc, string, store, load, peek, touch, compute and run check their arguments before
    they touch memory: no event but the one a SIGSEGV logs, no cycle."""
    err, _v, ops, cycles = attempt(call)
    assert type(err) is errno and re.search(pattern, str(err)), err
    assert ops in ([], ["segfault"]) and cycles == 0


@pytest.mark.parametrize("call, what", [
    (lambda p, e: p.store(-1, b"x"), "store of 1 bytes at -0x1"),
    (lambda p, e: p.load(TASK_SIZE - 2, 4), "load of 4 bytes at 0xbffffffe"),
    (lambda p, e: p.touch(0, 1 << 40), "touch of 1099511627776 bytes at 0x0"),
])
def test_a_user_access_outside_user_space_is_sigsegv(call, what):
    """A load or store the program makes outside user space (a negative address, past
    TASK_SIZE, 2**40 bytes) is the SIGSEGV the MMU would raise -- not an engine AddressError
    or a MemoryError -- before any of it is touched; the process dies of it."""
    got = {}

    def prog(p):
        try:
            call(p, {})
        except SegmentationFault as e:
            got["e"] = e
        return 0
    linux = boot("linux")
    proc = linux.spawn(prog)
    linux.run()
    assert what in str(got["e"]) and proc.exit_status == 11          # killed by SIGSEGV
    assert linux.m.events.find("segfault", kernel="linux", pid=proc.pid)


def test_fork_of_something_not_callable_makes_no_process():
    """fork(child): a function; anything else is EINVAL and no child process is created (no
    half-made process that fails when it first runs)."""
    linux = boot("linux")
    got = {}

    def prog(p):
        try:
            p.fork("not a function")
        except EINVAL as e:
            got["e"] = e
    proc = linux.spawn(prog)
    linux.run()
    assert "fork: child 'not a function' is not a function" in str(got["e"])
    assert not linux.m.events.find("fork", kernel="linux") and proc.exit_status == 0


def test_touch_of_a_large_range_runs_in_bounded_batches(monkeypatch):
    """touch() of a range larger than one batch makes the same references, in order, in
    several engine calls (a huge range never builds one huge op array); nbytes 0 touches
    nothing."""
    from engine import ops as O
    from lab.mono import user
    from mono_helpers import run_program
    monkeypatch.setattr(user, "TOUCH_BATCH", 4)
    seen = []

    def prog(p):
        buf = p.malloc(8192)
        real = p.run
        p.run = lambda ops: (seen.append(ops.copy()), real(ops))[1]
        p.touch(buf + 8, 10 * 32)          # 10 lines plus the first one's start: 11 references
        p.touch(buf + 8, 0)
        return buf
    _k, proc = run_program(prog)
    vas = [int(v) >> O.S for batch in seen for v in batch]
    assert [len(b) for b in seen] == [4, 4, 3]
    assert vas == list(range(proc.result, proc.result + 11 * 32, 32))
