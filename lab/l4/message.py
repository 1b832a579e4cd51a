"""L4 messages (S95 §3, L4 x86 reference manual): a short message is a few words passed in
registers; a long one adds in-memory words, *strings* copied from the sender's space into
buffers the receiver names, and *map* / *grant* items (flexpages) that the kernel enters into
the receiver's address space through the mapping database.

    Message(1, 2)                                         short: two words in registers
    Message(7, strings=[StringItem(0x10000, 100)])        long: 100 bytes copied
    Message(items=[MapItem(Fpage(0x40000, 12, "r"))])     map a page (read-only)
    Message(items=[GrantItem(Fpage(0x40000))])            grant it (the sender loses it)

On delivery the kernel builds the receiver's copy: `sender` set, `strings` replaced by the
delivered `(buffer va, length)` pairs, `mapped` listing the flexpages that arrived.
`error` carries a server's error reply (a return code in a register); `payload` is a Python
object riding along for the simulator only (e.g. which Linux system-call body to run).
"""
from dataclasses import dataclass

from lab.errors import KernelError

from .args import WORD_MAX, as_tuple, check_int, is_int
from .errors import InvalidArgument
from .fpage import Fpage
from .space import KERNEL_BASE


def _check_range(item):
    """A string or buffer lies in the user range 0..KERNEL_BASE (the copy faults there)."""
    va, size = item.va, item.size
    if not (is_int(va) and is_int(size)) or va < 0 or size < 0 or va + size > KERNEL_BASE:
        raise InvalidArgument(f"{type(item).__name__}: va {va!r} and size {size!r} must be "
                              f"integers >= 0 with va + size inside the user range "
                              f"0..{KERNEL_BASE:#x}")
    if type(va) is not int or type(size) is not int:        # numpy integers: plain ints
        object.__setattr__(item, "va", int(va))
        object.__setattr__(item, "size", int(size))


@dataclass(frozen=True)
class StringItem:
    """A string to send: `size` bytes at `va` in the sender's space."""
    va: int
    size: int

    def __post_init__(self):
        _check_range(self)


@dataclass(frozen=True)
class StringBuffer:
    """A receive buffer for one string: `size` bytes at `va` in the receiver's space."""
    va: int
    size: int

    def __post_init__(self):
        _check_range(self)


@dataclass(frozen=True)
class MapItem:
    """Map `fpage` (of the sender's space) to the receiver; `send_base` selects where in the
    receive window it lands (default: the fpage's own base)."""
    fpage: Fpage
    send_base: int = None
    grant = False

    def __post_init__(self):
        if not isinstance(self.fpage, Fpage):
            raise InvalidArgument(f"{type(self).__name__}: {self.fpage!r} is not an Fpage")
        if self.send_base is not None:
            object.__setattr__(self, "send_base", check_int(
                self.send_base, f"{type(self).__name__}: send_base"))

    @property
    def hot_spot(self):
        return self.fpage.base if self.send_base is None else self.send_base


@dataclass(frozen=True)
class GrantItem(MapItem):
    """Like MapItem, but the sender's mapping moves to the receiver (the sender loses it)."""
    grant = True


class Message:
    def __init__(self, *words, strings=(), items=(), error=None, payload=None):
        for w in words:
            if type(w) is not int or not 0 <= w <= WORD_MAX:
                words = tuple(check_int(x, "message word") for x in words)
                break
        if type(strings) is not tuple:
            strings = as_tuple(strings, "message strings")
        for s in strings:
            if not isinstance(s, StringItem):
                raise InvalidArgument(f"message string {s!r} must be a StringItem")
        if type(items) is not tuple:
            items = as_tuple(items, "message items")
        for it in items:
            if not isinstance(it, MapItem):
                raise InvalidArgument(f"message item {it!r} must be a MapItem or GrantItem")
        if error is not None and not isinstance(error, KernelError):
            raise InvalidArgument(f"message error {error!r}; allowed: None or a KernelError "
                                  "(a server's error reply)")
        self.words = words
        self.strings = strings
        self.items = items
        self.error = error
        self.payload = payload
        self.sender = None          # set on delivery
        self.mapped = ()            # (receiver base, Fpage) pairs, set on delivery
        self.pagefault = None       # (va, write) for a page-fault IPC synthesised by the kernel

    @property
    def nbytes_strings(self):
        return sum(s.size for s in self.strings)

    def is_short(self, register_words):
        """Fits the registers: words only (a map item takes two of them, S95: 'short map')."""
        return not self.strings and len(self.words) + 2 * len(self.items) <= register_words

    def __repr__(self):
        parts = [", ".join(map(str, self.words))]
        if self.strings:
            parts.append(f"strings={list(self.strings)}")
        if self.items:
            parts.append(f"items={list(self.items)}")
        if self.error is not None:
            parts.append(f"error={self.error.code}")
        return f"Message({', '.join(p for p in parts if p)})"
