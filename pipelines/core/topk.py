"""Each row's top-n positive scores, selected in compiled code (numba) without a dense scores block.

Scores come as a dense array, a CSR matrix or a `Product` of two CSR matrices, multiplied row by
row into one accumulator per thread (never a batch x items result). Rows are split over the
machine's cores; the kernels release the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

THREADS = max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class Product:
    """left @ right of two CSR matrices, evaluated one row at a time inside the top-n selection."""

    left: sp.csr_matrix
    right: sp.csr_matrix

    @property
    def shape(self) -> tuple[int, int]:
        return self.left.shape[0], self.right.shape[1]


Scores = np.ndarray | sp.spmatrix | Product


@njit(nogil=True, cache=True)
def _select(vals, cols, m, n, out_cols, out_vals):  # pragma: no cover - compiled
    """The n largest of the positive vals[:m], best first, ties by column ascending, into out_*; returns how many.

    One sort of integer keys (value descending, then column) over the entries at or above the n-th
    largest value: a positive float32 orders as its bits."""
    cut = np.partition(vals[:m], m - n)[m - n] if m > n else np.float32(0)
    bits = vals[:m].view(np.uint32)
    keys = np.empty(m, np.uint64)
    k = 0
    for j in range(m):
        if vals[j] >= cut:
            keys[k] = (np.uint64(0xFFFFFFFF - bits[j]) << np.uint64(32)) | np.uint64(cols[j])
            k += 1
    keys = np.sort(keys[:k])
    k = min(k, n)
    for j in range(k):
        out_cols[j] = keys[j] & np.uint64(0xFFFFFFFF)
        out_vals[j : j + 1].view(np.uint32)[0] = np.uint32(0xFFFFFFFF - (keys[j] >> np.uint64(32)))
    return k


BUCKET_SHIFT = 20  # a non-negative float32's bits >> 20: its bucket (exponent and 3 mantissa bits), in value order
BUCKETS = 1 << (31 - BUCKET_SHIFT)  # 2,048: the sign bit is 0


@njit(nogil=True, cache=True)
def _top_of_row(row, banned, n, kept, hist, vals, cols, out_cols, out_vals):  # pragma: no cover - compiled
    """`_select` of the positive, not `banned` entries of a dense `row`, gathering only those about as
    large as the n-th largest: a histogram of their bits' top bits finds the bucket it falls in, and
    only the entries from that bucket up (n and a few more) are selected from, not every positive one."""
    n_cols = row.shape[0]
    bits = kept.view(np.uint32)
    hist[:] = 0
    for c in range(n_cols):
        v = np.float32(row[c])
        kept[c] = v if v > 0 and not banned[c] else np.float32(0)  # NaN is not > 0: no score, no candidate
        hist[bits[c] >> BUCKET_SHIFT] += 1
    bucket, total = len(hist) - 1, 0
    while bucket > 0:  # bucket 0 (the zeros and the tiniest positives) is never counted: reaching it gathers all
        total += hist[bucket]
        if total >= n:
            break
        bucket -= 1
    lower = np.uint32(bucket) << np.uint32(BUCKET_SHIFT)
    m = 0
    for c in range(n_cols):
        if bits[c] >= lower and kept[c] > 0:
            vals[m], cols[m] = kept[c], c
            m += 1
    return _select(vals, cols, m, n, out_cols, out_vals)


@njit(nogil=True, cache=True)
def _top_dense(scores, lo, hi, n, ex_ptr, ex_idx, out_cols, out_vals, counts):  # pragma: no cover - compiled
    n_cols = scores.shape[1]
    banned = np.zeros(n_cols, np.bool_)
    kept, hist = np.empty(n_cols, np.float32), np.empty(BUCKETS, np.int64)
    vals, cols = np.empty(n_cols, np.float32), np.empty(n_cols, np.int64)
    for r in range(lo, hi):
        for j in range(ex_ptr[r], ex_ptr[r + 1]):
            banned[ex_idx[j]] = True
        counts[r] = _top_of_row(scores[r], banned, n, kept, hist, vals, cols, out_cols[r], out_vals[r])
        for j in range(ex_ptr[r], ex_ptr[r + 1]):
            banned[ex_idx[j]] = False


@njit(nogil=True, cache=True)
def _top_product(
    a_ptr, a_idx, a_val, b_ptr, b_idx, b_val, acc, lo, hi, n, ex_ptr, ex_idx, out_cols, out_vals, counts
):  # pragma: no cover - compiled
    n_cols = acc.shape[0]
    banned = np.zeros(n_cols, np.bool_)
    kept, hist = np.empty(n_cols, np.float32), np.empty(BUCKETS, np.int64)
    vals, cols = np.empty(n_cols, np.float32), np.empty(n_cols, np.int64)
    for r in range(lo, hi):
        acc[:] = 0  # a dense row and a scan of it: cheaper than tracking the touched columns (no branch)
        for jj in range(a_ptr[r], a_ptr[r + 1]):  # the same order of sums as scipy's sparse product
            i, w = a_idx[jj], a_val[jj]
            for kk in range(b_ptr[i], b_ptr[i + 1]):
                acc[b_idx[kk]] += w * b_val[kk]
        for j in range(ex_ptr[r], ex_ptr[r + 1]):
            banned[ex_idx[j]] = True
        counts[r] = _top_of_row(acc, banned, n, kept, hist, vals, cols, out_cols[r], out_vals[r])
        for j in range(ex_ptr[r], ex_ptr[r + 1]):
            banned[ex_idx[j]] = False


def top_entries(scores: Scores, n: int, exclude: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Each row's n largest positive scores as a CSR matrix of the same shape, each row's entries best
    first, ties broken by column order; entries in `exclude` (same rows) are skipped, whatever their score."""
    n_rows, n_cols = scores.shape
    n = max(0, min(int(n), n_cols))
    exclude = sp.csr_matrix((n_rows, n_cols), dtype=np.float32) if exclude is None else sp.csr_matrix(exclude)
    out_cols, out_vals = np.zeros((n_rows, n), np.int64), np.zeros((n_rows, n), np.float32)
    counts = np.zeros(n_rows, np.int64)
    if isinstance(scores, Product):
        left, right = sp.csr_matrix(scores.left), sp.csr_matrix(scores.right)
        dtype = np.result_type(left.dtype, right.dtype)
        left, right = left.astype(dtype, copy=False), right.astype(dtype, copy=False)

        def run(lo: int, hi: int) -> None:
            _top_product(
                left.indptr, left.indices, left.data, right.indptr, right.indices, right.data,
                np.zeros(n_cols, dtype), lo, hi, n, exclude.indptr, exclude.indices, out_cols, out_vals, counts,
            )  # fmt: skip
    elif sp.issparse(scores):
        return top_entries(Product(sp.csr_matrix(scores), sp.identity(n_cols, np.float32, format="csr")), n, exclude)
    else:
        dense = np.ascontiguousarray(scores)

        def run(lo: int, hi: int) -> None:
            _top_dense(dense, lo, hi, n, exclude.indptr, exclude.indices, out_cols, out_vals, counts)

    if n and n_rows:
        bounds = np.linspace(0, n_rows, min(THREADS, n_rows) + 1).astype(int)
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    kept = np.arange(n) < counts[:, None]
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((out_vals[kept], out_cols[kept], indptr), shape=(n_rows, n_cols))


@njit(nogil=True, cache=True)
def _best_in_groups(priority, starts, limits, mask):  # pragma: no cover - compiled
    for g in range(len(starts) - 1):
        lo, hi = starts[g], starts[g + 1]
        order = np.argsort(-priority[lo:hi], kind="mergesort")  # stable: ties keep row order
        for j in range(min(limits[g], hi - lo)):
            if priority[lo + order[j]] > 0:
                mask[lo + order[j]] = True


def best_in_groups(groups: np.ndarray, priority: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Boolean mask of each group's `limits[g]` rows of highest positive `priority`, ties by row order
    (`groups`: codes 0..len(limits) - 1, one per row; the rows need not be grouped)."""
    order = np.argsort(groups, kind="stable")  # linear when the rows come grouped
    starts = np.searchsorted(groups[order], np.arange(len(limits) + 1))
    kept = np.zeros(len(groups), np.bool_)
    _best_in_groups(np.ascontiguousarray(priority[order], dtype=np.float64), starts, limits.astype(np.int64), kept)
    mask = np.empty(len(groups), np.bool_)
    mask[order] = kept
    return mask
