"""Top-k lists from scores, and each candidate source's own order as ranker inputs (1 / (rrf_k + rank))."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s

RRF_K = 60.0


def source_sizes(source_params: dict[str, Any]) -> dict[str, int]:
    """Candidates per customer of each configured source (what its ranks are relative to)."""
    return {name: int(settings["n"]) for name, settings in source_params.items()}


def rank_features(cands: pd.DataFrame, sizes: dict[str, int], rrf_k: float = RRF_K) -> np.ndarray:
    """One column per source: 1 / (rrf_k + rank) for its proposals, 0 otherwise (a source's own order)."""
    cols = [
        np.where(cands[f"{name}_rank"].to_numpy() <= n, 1.0 / (rrf_k + cands[f"{name}_rank"].to_numpy()), 0.0)
        for name, n in sizes.items()
    ]
    return np.column_stack(cols) if cols else np.zeros((len(cands), 0))


def top_k(cands: pd.DataFrame, scores: np.ndarray, k: int, positive_only: bool = True) -> pd.DataFrame:
    """The k best-scored candidates per customer, ties broken by item id (only score > 0 if positive_only).

    The index of the result holds the row positions in `cands`.
    """
    frame = pd.DataFrame({s.CUSTOMER: cands[s.CUSTOMER].to_numpy(), s.ITEM: cands[s.ITEM].to_numpy(), "score": scores})
    if positive_only:
        frame = frame[frame["score"] > 0]
    frame = frame.sort_values([s.CUSTOMER, "score", s.ITEM], ascending=[True, False, True], kind="stable")
    frame["rank"] = frame.groupby(s.CUSTOMER, sort=False).cumcount() + 1
    return frame[frame["rank"] <= k][[s.CUSTOMER, s.ITEM, "rank", "score"]]
