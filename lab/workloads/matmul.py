"""A 64x64 matrix multiplication as a reference stream (S97 §6.3's real-time task).

C += A x B over doubles in the cache-friendly loop order i, k, j (the paper does not give its
code; this is how the kernel is usually written): A[i][k] is read once per (i, k) block and
kept in a register, the inner loop reads B[k][j] and C[i][j] and writes C[i][j], all three
sequential.  (The i, j, k order walks B by columns at a stride of 512 bytes, which on the
Pentium's 2-way 8 KB L1 maps 64 lines onto 8 sets and thrashes: try it.)
The stream is built with NumPy and run through the engine in slices, so that the task can be
interrupted at simulated-time boundaries like a real-time task on a timer.
"""
import numpy as np

from engine import ops as O

DOUBLE = 8


def layout(n, base, page):
    """Virtual addresses of A, B, C: consecutive, each page-aligned.  Returns (a, b, c, bytes)."""
    size = n * n * DOUBLE
    step = -(-size // page) * page
    return base, base + step, base + 2 * step, 3 * step


def reference_stream(n, a, b, c, order="ikj"):
    """The ops of one multiplication as blocks: one row per outer pair, `block_len(n)` ops each.
    order "ikj": per (i, k): read A[i][k], then per j: read B[k][j], read C[i][j], write C[i][j].
    order "ijk": per (i, j): per k: read A[i][k], read B[k][j]; then write C[i][j]."""
    r = np.arange(n)
    if order == "ikj":
        i, k = np.meshgrid(r, r, indexing="ij")
        ra = O.access("r", (a + (i * n + k) * DOUBLE).ravel())[:, None]
        j = r[None, :]
        rb = O.access("r", (b + (k.ravel()[:, None] * n + j) * DOUBLE).ravel()).reshape(n * n, n)
        cc = (c + (i.ravel()[:, None] * n + j) * DOUBLE).ravel()
        rc = O.access("r", cc).reshape(n * n, n)
        wc = O.access("w", cc).reshape(n * n, n)
        inner = np.stack([rb, rc, wc], axis=-1).reshape(n * n, 3 * n)
        return np.concatenate([ra, inner], axis=1)
    if order == "ijk":
        i, j, k = np.meshgrid(r, r, r, indexing="ij")
        reads = np.stack([a + (i * n + k) * DOUBLE, b + (k * n + j) * DOUBLE], axis=-1)
        reads_ops = O.access("r", reads.ravel()).reshape(n * n, 2 * n)
        wc = O.access("w", (c + (i[..., 0] * n + j[..., 0]) * DOUBLE).ravel())[:, None]
        return np.concatenate([reads_ops, wc], axis=1)
    raise ValueError(f"loop order {order!r}; allowed: ikj, ijk")


def inner_iterations(n):
    return n ** 3
