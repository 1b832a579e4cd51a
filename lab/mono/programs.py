"""Executables: program images installed in the file system, and what they do when run.

An image is text + data (+ bss) of given sizes; execve maps text and data from its file
(private, so pages come in through page faults from the buffer cache) and bss, heap and stack
as anonymous memory.  Sizes and startup work are *workload characteristics* (DESIGN §4):
documented estimates in lab/profiles/linux.json ("values": simple_*, sh_*, libc_*), which the
calibration notebook may fit on the native column of Table 3.

    /bin/simple      a small static binary: start up, touch its data, exit
    /bin/hello       the same program dynamically linked (lmbench's "hello" as 1996 Linux
                     built it): ld.so maps and relocates libc.so.5 first
    /bin/sh          a 1996 shell (bash 1.14, dynamically linked against libc.so.5): ld.so maps
                     the C library with mmap, relocates, the shell initialises; with "-c CMD"
                     it forks, the child execs CMD, the shell waits for it (lat_proc's
                     "/bin/sh process")
    /lib/libc.so.5   the shared C library (mapped by /bin/sh, never exec'd)
"""
from dataclasses import dataclass

import numpy as np

from .abi import PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE, WEXITSTATUS


@dataclass(frozen=True)
class ProgramImage:
    path: str
    text_bytes: int
    data_bytes: int
    bss_bytes: int
    text_touched: int           # bytes of text its startup executes
    data_touched: int           # bytes of data its startup writes
    startup_instructions: int
    main: object = None         # main(p, argv) -> exit status

    def file_bytes(self, page):
        return -(-self.text_bytes // page) * page + self.data_bytes


def simple_main(p, argv):
    """A static binary: crt0 and libc initialisation, then exit(0)."""
    img, lay = p.proc.image, p.kernel.layout(p.proc)
    p.compute(img.startup_instructions, code_bytes=img.text_touched)
    p.touch(lay["data"][0], img.data_touched, write=True)
    return 0


def _exec_child(c, argv):
    c.execve(argv[0], argv)


def ld_so(p):
    """What ld.so does before main: map libc.so.5 (text and data, private) and relocate it."""
    k = p.kernel
    lib, page = k.images["/lib/libc.so.5"], k.m.fmt.page_size
    fd = p.open(lib.path)
    text = p.mmap(0, lib.text_bytes, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0)
    data = p.mmap(0, lib.data_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                  -(-lib.text_bytes // page) * page)
    p.close(fd)
    p.compute(lib.startup_instructions, code_va=text, code_bytes=lib.text_touched)
    p.touch(data, lib.data_touched, write=True)          # relocations


def hello_main(p, argv):
    """A dynamically linked hello: ld.so, then the program's own start-up, then exit(0)."""
    ld_so(p)
    return simple_main(p, argv)


def sh_main(p, argv):
    """ld.so maps libc.so.5, the shell starts; `sh -c CMD` forks and execs CMD, then waits."""
    img, lay = p.proc.image, p.kernel.layout(p.proc)
    ld_so(p)
    p.compute(img.startup_instructions, code_bytes=img.text_touched)
    p.touch(lay["data"][0], img.data_touched, write=True)
    if len(argv) >= 3 and argv[1] == "-c":
        cmd = argv[2].split()
        pid = p.fork(_exec_child, cmd)
        _pid, status = p.wait4(pid)
        return WEXITSTATUS(status)
    return 0


MAINS = {"/bin/simple": simple_main, "/bin/hello": hello_main, "/bin/sh": sh_main,
         "/lib/libc.so.5": None}
PREFIX = {"/bin/simple": "simple", "/bin/hello": "hello", "/bin/sh": "sh", "/lib/libc.so.5": "libc"}


def load_images(profile):
    """The images with the sizes of the kernel profile's values."""
    out = {}
    for path, pre in PREFIX.items():
        v = lambda name: int(profile[f"{pre}_{name}"])
        out[path] = ProgramImage(path, v("text_bytes"), v("data_bytes"), v("bss_bytes"),
                                 v("text_touched_bytes"), v("data_touched_bytes"),
                                 v("startup_instructions"), MAINS[path])
    return out


def image_contents(image, page):
    """Deterministic bytes for an image file (text padded to a page, then data)."""
    n = image.file_bytes(page)
    seed = sum(image.path.encode())
    return ((np.arange(n, dtype=np.int64) * 7 + seed) & 0xFF).astype(np.uint8).tobytes()


def install(fs, images):
    page = fs.k.m.fmt.page_size
    for path, img in images.items():
        fs.create(path, image_contents(img, page), image=img if img.main else None)
