"""Item pages: each item's similar items (published with the version) and a cart's completion.

Similar items come from the fitted item_cf source (items bought by the same customers, kNN over
buyers); an item with fewer than k such neighbours (too new to have co-purchases) is filled up with
its nearest items by product text (the content source's TF-IDF vectors, cosine). A basket's
completion fuses its items' lists by reciprocal rank, leaving out what is already in the basket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.core import schema as s

if TYPE_CHECKING:
    from pipelines.candidates.base import CandidateSource

COLUMNS = [s.ITEM, "rank", s.SIMILAR, "score", "source"]
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al. 2009): a rank r counts 1 / (RRF_K + r)
CHUNK_ROWS = 1024  # content similarities are computed this many items at a time (dense rows)


def _positive(matrix: sp.csr_matrix | np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(row, columns, values) of each row's positive entries."""
    dense = not sp.issparse(matrix)
    for row in range(matrix.shape[0]):
        if dense:
            values = np.asarray(matrix[row], dtype=np.float64)
            cols = np.flatnonzero(values > 0)
            values = values[cols]
        else:
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            cols, values = matrix.indices[start:end], matrix.data[start:end].astype(np.float64)
            keep = values > 0
            cols, values = cols[keep], values[keep]
        yield row, cols, values


def _best(cols: np.ndarray, values: np.ndarray, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest, best first, the item itself (`row`) left out."""
    keep = cols != row
    cols, values = cols[keep], values[keep]
    order = np.lexsort((cols, -values))[:k]  # ties: the lower column first, so the lists are deterministic
    return cols[order], values[order]


def similar_items(sources: list[CandidateSource], k: int) -> pd.DataFrame:
    """Up to `k` similar items per item known to the fitted `sources` (item_cf, then content to fill up).

    Empty when neither source is configured. Scores are the sources' own similarities.
    """
    by_name = {src.name: src for src in sources}
    item_cf, content = by_name.get("item_cf"), by_name.get("content")
    frames: list[pd.DataFrame] = []
    lists: dict[int, tuple[np.ndarray, np.ndarray, list[str]]] = {}
    items = None
    if item_cf is not None:
        items = item_cf.ui_.items
        similarity = item_cf.similarity_.tocsr()
        for row, cols, values in _positive(similarity):
            cols, values = _best(cols, values, row, k)
            if len(cols):
                lists[row] = (cols, values, ["item_cf"] * len(cols))
    if content is not None and getattr(content, "has_text_", False) and hasattr(content, "item_vectors_"):
        vectors = content.item_vectors_
        content_items = content.ui_.items
        items = content_items if items is None else items
        position = pd.Index(content_items).get_indexer(items)  # content's row of each item (-1: none)
        item_rows = pd.Index(items)
        needy = [row for row in range(len(items)) if len(lists.get(row, ((), (), []))[0]) < k and position[row] >= 0]
        for start in range(0, len(needy), CHUNK_ROWS):
            rows = needy[start : start + CHUNK_ROWS]
            block = (vectors[position[rows]] @ vectors.T).toarray()
            for offset, (_, cols, values) in enumerate(_positive(block)):
                row = rows[offset]
                mapped = item_rows.get_indexer(content_items[cols])  # content columns -> item rows
                ok = mapped >= 0
                mapped, values = mapped[ok], values[ok]
                have = lists.get(row, (np.zeros(0, int), np.zeros(0), []))
                fresh = ~np.isin(mapped, have[0])
                extra_cols, extra_vals = _best(mapped[fresh], values[fresh], row, k - len(have[0]))
                lists[row] = (
                    np.concatenate([have[0], extra_cols]),
                    np.concatenate([have[1], extra_vals]),
                    [*have[2], *["content"] * len(extra_cols)],
                )
    if items is None:
        return pd.DataFrame(columns=COLUMNS)
    for row, (cols, values, names) in sorted(lists.items()):
        frames.append(
            pd.DataFrame(
                {
                    s.ITEM: items[row],
                    "rank": np.arange(1, len(cols) + 1),
                    s.SIMILAR: items[cols],
                    "score": values,
                    "source": names,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def complete_basket(lists: list[tuple[str, list[dict[str, Any]] | None]], k: int) -> list[dict[str, Any]]:
    """The top `k` items to add to a basket from its items' similar lists (`(item, list or None)`):
    reciprocal rank fusion, the basket's own items left out; each answer names the basket items behind it."""
    basket = {item for item, _ in lists}
    fused: dict[str, float] = {}
    because: dict[str, list[str]] = {}
    for item, similar in lists:
        for rank, entry in enumerate(similar or [], start=1):
            other = entry["item_id"]
            if other in basket:
                continue
            fused[other] = fused.get(other, 0.0) + 1.0 / (RRF_K + rank)
            because.setdefault(other, []).append(item)
    best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    return [{"item_id": i, "score": round(fused[i], 6), "because": because[i]} for i in best]
