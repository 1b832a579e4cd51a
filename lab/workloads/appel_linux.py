"""Appel & Li's benchmarks on native Linux (S97 Table 5): the handler is a SIGSEGV handler and
protection is mprotect, both supplied by lab/workloads/linux_vm.py (`LinuxVM`).  Each driver
is the program of one process (`kernel.spawn(lambda p: linux_trap(p, n, npages))`) and returns
its samples and its LinuxVM.  Fault has no driver: Linux has no user-level pagers.
"""
import random

from lab.mono.abi import PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, SIGSEGV
from lab.workloads.appel_common import _Samples
from lab.workloads.linux_vm import LinuxVM

RW = PROT_READ | PROT_WRITE


def _linux_region(p, vm, npages):
    base = p.mmap(0, npages * vm.page, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.touch(base, npages * vm.page, write=True)
    return base


def linux_trap(p, n, npages):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    invoked = []

    def handler(vm, addr):
        invoked.append(vm.entered)
        vm.handler_work()
        vm.mprotect(addr & ~(vm.page - 1), vm.page, RW)
    vm.sigaction(SIGSEGV, handler)
    s = _Samples(p.m)
    for j in range(n + 1):
        va = base + (j % npages) * vm.page
        vm.mprotect(va, vm.page, PROT_READ)
        t0 = s.mark()
        vm.access(va, "w")
        if j:
            s.add(t0, invoked[-1])
    return s, vm


def linux_appel1(p, n, npages, seed):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    rng = random.Random(seed)
    state = {"last": None}

    def handler(vm, addr):
        vm.handler_work()
        page = addr & ~(vm.page - 1)
        if state["last"] is not None and state["last"] != page:
            vm.mprotect(state["last"], vm.page, PROT_READ)
        vm.mprotect(page, vm.page, RW)
        state["last"] = page
    vm.sigaction(SIGSEGV, handler)
    vm.mprotect(base, npages * vm.page, PROT_READ)
    s = _Samples(p.m)
    for j in range(n + 1):
        choices = [i for i in range(npages) if base + i * vm.page != state["last"]]
        va = base + choices[rng.randrange(len(choices))] * vm.page
        t0 = s.mark()
        vm.access(va, "w")
        if j:
            s.add(t0)
    return s, vm


def linux_appel2(p, rounds, npages, seed):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    rng = random.Random(seed)

    def handler(vm, addr):
        vm.handler_work()
        vm.mprotect(addr & ~(vm.page - 1), vm.page, RW)
    vm.sigaction(SIGSEGV, handler)
    s = _Samples(p.m)
    for r in range(rounds + 1):
        order = list(range(npages))
        rng.shuffle(order)
        t0 = s.mark()
        vm.mprotect(base, npages * vm.page, PROT_READ)
        for i in order:
            vm.access(base + i * vm.page, "w")
        if r:
            s.add(t0, weight=npages)
    return s, vm
