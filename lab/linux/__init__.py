"""Linux personalities: the same Linux kernel on bare hardware, on L4 and on Mach (S97 §4)."""
import importlib
import inspect

SYSTEMS = ("linux", "l4linux", "l4linux_trampoline", "mklinux_in_kernel", "mklinux_user")

# system -> (module, class, keyword arguments of the platform)
PLATFORMS = {
    "linux": ("lab.linux.native", "NativeArch", {}),
    "l4linux": ("lab.linux.l4linux", "L4LinuxArch", {"trampoline": False}),
    "l4linux_trampoline": ("lab.linux.l4linux", "L4LinuxArch", {"trampoline": True}),
    "mklinux_in_kernel": ("lab.linux.mklinux", "MkLinuxArch", {"in_kernel": True}),
    "mklinux_user": ("lab.linux.mklinux", "MkLinuxArch", {"in_kernel": False}),
}

KERNEL_OPTIONS = ("profile", "buffer_cache_pages", "disk_blocks", "log_syscalls")


def platform_class(system):
    """The LinuxArch class of `system` (imports its module; ImportError if it is missing)."""
    if system not in PLATFORMS:
        raise ValueError(f"unknown system {system!r}; allowed: {', '.join(SYSTEMS)}")
    mod, cls, _kw = PLATFORMS[system]
    return getattr(importlib.import_module(mod), cls)


def boot(system, cpu_profile="pentium-133", seed=1, **options):
    """A LinuxKernel running on `system`'s platform on a fresh Machine.

    Options: the LinuxKernel's (profile, buffer_cache_pages, disk_blocks, log_syscalls),
    the Machine's (tagged, small_spaces, tlbs, caches, memory_bytes, ...), and
    `arch_options={...}` for the platform's constructor."""
    from engine import Machine
    from lab.mono import LinuxKernel

    cls = platform_class(system)
    arch_kw = dict(PLATFORMS[system][2])
    arch_kw.update(options.pop("arch_options", None) or {})
    kernel_kw = {k: options.pop(k) for k in KERNEL_OPTIONS if k in options}
    machine_params = inspect.signature(Machine).parameters
    bad = [k for k in options if k not in machine_params]
    if bad:
        raise ValueError(f"boot: unknown option(s) {', '.join(bad)}; allowed: "
                         f"{', '.join(KERNEL_OPTIONS)}, arch_options, "
                         f"{', '.join(p for p in machine_params if p != 'profile')}")
    m = Machine(cpu_profile, seed=seed, **options)
    return LinuxKernel(cls(m, **arch_kw), **kernel_kw)
