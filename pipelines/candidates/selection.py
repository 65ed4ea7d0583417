"""Candidate selection: keep a per-customer budget of the union, best first.

Heavy buyers buy many distinct items in a window and light buyers few, so budgets grow with
the customer's history: budget ~ (distinct items bought + 1) ** activity_power, scaled so
the mean is `mean_per_customer`. Within the budget, candidates are ordered by a weighted
reciprocal-rank vote of the sources, sum_s w_s / (rrf_k + rank_s); the weights are tuned on
the validation window for recall, so the data decides which sources deserve the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipelines.candidates.tuning import coordinate_ascent
from pipelines.core import schema as s
from pipelines.core.topk import best_in_groups

KEYS = [s.CUSTOMER, s.ITEM]


def budgets(history: pd.DataFrame, customers: pd.Index, p: dict[str, Any]) -> pd.Series:
    """Candidates allowed per customer, growing with the number of distinct items they bought."""
    distinct = history[history[s.CUSTOMER].isin(customers)].groupby(s.CUSTOMER)[s.ITEM].nunique()
    raw = (distinct.reindex(customers, fill_value=0).astype(float) + 1.0) ** float(p["activity_power"])
    lo, hi, target = float(p["min_per_customer"]), float(p["max_per_customer"]), float(p["mean_per_customer"])
    scale = target / raw.mean() if len(raw) else 1.0
    for _ in range(50):  # clipping moves the mean: rescale until it holds
        scale *= target / np.clip(raw * scale, lo, hi).mean()
    return np.floor(np.clip(raw * scale, lo, hi)).astype(int).rename("budget")


def votes(columns: Mapping[str, Any], names: list[str], rrf_k: float) -> list[np.ndarray]:
    """Each named source's reciprocal-rank vote for each row, 1 / (rrf_k + rank), 0 if it did not propose
    it; `columns` (a frame or a mapping of arrays) holds `<source>_score` and `<source>_rank`."""
    return [
        np.where(np.asarray(columns[f"{n}_score"]) > 0, 1.0 / (rrf_k + np.asarray(columns[f"{n}_rank"])), 0.0)
        for n in names
    ]


class Selector:
    """Precomputed arrays for selecting within budgets quickly under many weight vectors (`codes`: each
    row's customer, 0 .. len(budget) - 1; `budget`: candidates allowed per customer code, NaN = none)."""

    def __init__(
        self, codes: np.ndarray, columns: Mapping[str, Any], names: list[str], budget: np.ndarray, rrf_k: float
    ) -> None:
        self.names, self.codes = names, codes
        self.votes = votes(columns, names, rrf_k)
        self.budget = np.nan_to_num(np.asarray(budget, dtype=float))

    def keep(self, weights: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows within their customer's budget under `weights` (ties by row order)."""
        priority = np.zeros(len(self.codes))
        for weight, vote in zip(weights, self.votes, strict=True):  # sources in order: the same sums every time
            priority += weight * vote
        return best_in_groups(self.codes, priority, self.budget)


def fit_weights(
    cands: pd.DataFrame, truth: pd.DataFrame, names: list[str], budget: pd.Series, p: dict[str, Any]
) -> tuple[dict[str, float], float]:
    """Source weights that maximise the recall of the budgeted selection of `cands` (its customers' purchases)."""
    pairs = truth.loc[truth[s.CUSTOMER].isin(cands[s.CUSTOMER].unique()), KEYS].drop_duplicates()
    hits = (cands[KEYS].merge(pairs, on=KEYS, how="left", indicator=True)["_merge"] == "both").to_numpy()
    codes, customers = pd.factorize(cands[s.CUSTOMER])
    selector = Selector(codes, cands, names, budget.reindex(customers).to_numpy(), float(p["rrf_k"]))
    n_pairs = max(len(pairs), 1)
    weights, recall = coordinate_ascent(
        lambda w: hits[selector.keep(w)].sum() / n_pairs, len(names), p["grid"], int(p["rounds"])
    )
    return dict(zip(names, weights.tolist(), strict=True)), float(recall)


def select(
    codes: np.ndarray, columns: Mapping[str, Any], weights: dict[str, float], budget: np.ndarray, rrf_k: float
) -> np.ndarray:
    """Mask of the candidates within each customer's budget under the given source weights (`codes`
    and `budget` as `Selector` takes them)."""
    names = [n for n, w in weights.items() if w > 0]  # a zero weight casts no vote: skip its column
    return Selector(codes, columns, names, budget, rrf_k).keep(np.array([weights[n] for n in names]))
