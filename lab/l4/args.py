"""Argument checks of the L4 calls: what a register of the x86 L4 ABI can hold.

Exercises and notebooks call the kernel directly, so a bad value must come back as
L4_INVALID_ARGUMENT naming the value and what is allowed, before the call touches anything --
not as a Python TypeError from deep inside.  A word is 32 bits; booleans are not integers here
(True is no address), but any integer type (numpy's too) is, converted to int.
"""
from numbers import Integral, Real

from .errors import InvalidArgument

VA_BITS = 32
WORD_MAX = (1 << VA_BITS) - 1


def is_int(x):
    return type(x) is int or (isinstance(x, Integral) and not isinstance(x, bool))


def check_int(x, what, lo=0, hi=WORD_MAX):
    """`x` as an int in lo..hi, else InvalidArgument naming it."""
    if is_int(x) and lo <= x <= hi:
        return int(x)
    rng = f"{lo:#x}..{hi:#x}" if hi == WORD_MAX else f"{lo}..{hi}"    # addresses in hex
    raise InvalidArgument(f"{what} {x!r}; allowed: an integer in {rng}")


def check_number(x, what):
    """A count of instructions or cycles: a real number >= 0 (not a bool)."""
    if isinstance(x, Real) and not isinstance(x, bool) and x >= 0:
        return x
    raise InvalidArgument(f"{what} {x!r}; allowed: a number >= 0")


def check_flag(x, what):
    if x is True or x is False:
        return x
    raise InvalidArgument(f"{what} {x!r}; allowed: True or False")


def check_name(x, what):
    if isinstance(x, str):
        return x
    raise InvalidArgument(f"{what} {x!r}; allowed: a string")


def check_program(x, what):
    if x is None or callable(x):
        return x
    raise InvalidArgument(f"{what}: program {x!r} is not callable (a generator function "
                          "program(thread), or None)")


def as_tuple(x, what):
    """An iterable argument (strings, items, buffers) as a tuple."""
    if type(x) is tuple:
        return x
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise InvalidArgument(f"{what} {x!r}; allowed: a list or tuple")
    return tuple(x)
