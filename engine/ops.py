"""Builders of op batches for `Machine.run`: each op is one int64 `(payload << 8) | code`.

Build with NumPy (vectorised), concatenate, run once: one jitted call per batch, not per access.
"""
import numpy as np

from . import core
from .cycles import category_index
from .errors import AddressError, ConfigError

_KIND = {"r": core.OP_R, "w": core.OP_W, "x": core.OP_X}
_PKIND = {"r": core.OP_PR, "w": core.OP_PW, "x": core.OP_PX}
S = core.OP_SHIFT


def access(kind, vaddrs):
    """Accesses of one kind ('r', 'w', 'x') to each virtual address."""
    if kind not in _KIND:
        raise ConfigError(f"access kind {kind!r}; allowed: r, w, x")
    va = np.asarray(vaddrs, dtype=np.int64).ravel()
    return (va << S) | _KIND[kind]


def accesses(kinds, vaddrs):
    """Per-address kinds: `kinds` an array of 0 (r), 1 (w), 2 (x)."""
    va = np.asarray(vaddrs, dtype=np.int64).ravel()
    k = np.asarray(kinds, dtype=np.int64).ravel()
    if k.size and (k.min() < core.OP_R or k.max() > core.OP_X):
        bad = int(k[(k < core.OP_R) | (k > core.OP_X)][0])
        raise ConfigError(f"access kind {bad}; allowed: 0 (r), 1 (w), 2 (x)")
    return (va << S) | k


def physical(kind, paddrs):
    """Untranslated references (through the caches only)."""
    if kind not in _PKIND:
        raise ConfigError(f"access kind {kind!r}; allowed: r, w, x")
    pa = np.asarray(paddrs, dtype=np.int64).ravel()
    return (pa << S) | _PKIND[kind]


def touch(vaddrs, kind="r"):
    return access(kind, vaddrs)


def lines(start, nbytes, line=32):
    """The addresses of every cache line in [start, start + nbytes)."""
    first = start - start % line
    return np.arange(first, start + nbytes, line, dtype=np.int64)


def switch(sid):
    return np.array([(int(sid) << S) | core.OP_SWITCH], np.int64)


def flush(sid=None):
    if sid is None:
        return np.array([core.OP_FLUSH_ALL], np.int64)
    return np.array([(int(sid) << S) | core.OP_FLUSH_SPACE], np.int64)


def demap(sid, va):
    """Drop the entries translating `va`'s page in space `sid` (invlpg)."""
    if not 0 <= int(va) < 1 << (core.DEMAP_SID_SHIFT + 8):
        raise AddressError(f"demap: va {int(va):#x} outside 0..{(1 << (core.DEMAP_SID_SHIFT + 8)) - 1:#x}")
    return np.array([(((int(sid) << core.DEMAP_SID_SHIFT) | (int(va) >> 8)) << S) | core.OP_DEMAP],
                    np.int64)


def mode(category):
    return np.array([(category_index(category) << S) | core.OP_MODE], np.int64)


def charge(category, cycles):
    c = int(round(cycles))
    if c < 0:
        raise ConfigError(f"charge: cycles {cycles} must be >= 0")
    return np.array([(((c << 8) | category_index(category)) << S) | core.OP_CHARGE], np.int64)


def concat(*parts):
    return np.concatenate([np.asarray(p, np.int64).ravel() for p in parts]) if parts \
        else np.zeros(0, np.int64)


def check(ops, fmt):
    """Reject, before the jitted loop runs, virtual addresses outside the format's range,
    unknown op codes and cycle categories out of range (one jitted pass: cheap for one op)."""
    ops = np.ascontiguousarray(ops, dtype=np.int64)
    j = core.check_ops(ops, fmt.va_bits)
    if j < 0:
        return
    w = int(ops[j])
    code, arg = w & 0xFF, w >> S
    if code <= core.OP_X:
        raise AddressError(f"va {arg:#x} outside the {fmt.va_bits}-bit {fmt.name} address space")
    if code in (core.OP_MODE, core.OP_CHARGE):
        cat = arg if code == core.OP_MODE else arg & 0xFF
        raise ConfigError(f"op {j}: cycle category {cat} out of range 0..{core.NCAT - 1}")
    raise ConfigError(f"op {j}: unknown op code {code}; allowed 0..{core.OP_PX}")
