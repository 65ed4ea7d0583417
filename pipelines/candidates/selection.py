"""Candidate selection: keep a per-customer budget of the union, best first.

Heavy buyers buy many distinct items in a window and light buyers few, so budgets grow with
the customer's history: budget ~ (distinct items bought + 1) ** activity_power, scaled so
the mean is `mean_per_customer`. Within the budget, candidates are ordered by a weighted
reciprocal-rank vote of the sources, sum_s w_s / (rrf_k + rank_s); the weights are tuned on
the validation window for recall, so the data decides which sources deserve the budget.
"""

from __future__ import annotations

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


def votes(cands: pd.DataFrame, names: list[str], rrf_k: float) -> np.ndarray:
    """Each row's reciprocal-rank vote from each named source, 1 / (rrf_k + rank) (0 if not proposed)."""
    out = np.zeros((len(cands), len(names)))
    for j, n in enumerate(names):
        proposed = cands[f"{n}_score"].to_numpy() > 0
        out[proposed, j] = 1.0 / (rrf_k + cands[f"{n}_rank"].to_numpy()[proposed])
    return out


class Selector:
    """Precomputed arrays for selecting within budgets quickly under many weight vectors."""

    def __init__(self, cands: pd.DataFrame, names: list[str], budget: pd.Series, rrf_k: float) -> None:
        self.names = names
        self.codes, customers = pd.factorize(cands[s.CUSTOMER])
        self.votes = votes(cands, names, rrf_k)
        self.budget = budget.reindex(customers).fillna(0).to_numpy()  # per customer (code)

    def keep(self, weights: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows within their customer's budget under `weights` (ties by row order)."""
        return best_in_groups(self.codes, self.votes @ weights, self.budget)


def fit_weights(
    cands: pd.DataFrame, truth: pd.DataFrame, names: list[str], budget: pd.Series, p: dict[str, Any]
) -> tuple[dict[str, float], float]:
    """Source weights that maximise the recall of the budgeted selection of `cands` (its customers' purchases)."""
    pairs = truth.loc[truth[s.CUSTOMER].isin(cands[s.CUSTOMER].unique()), KEYS].drop_duplicates()
    hits = (cands[KEYS].merge(pairs, on=KEYS, how="left", indicator=True)["_merge"] == "both").to_numpy()
    selector = Selector(cands, names, budget, float(p["rrf_k"]))
    n_pairs = max(len(pairs), 1)
    weights, recall = coordinate_ascent(
        lambda w: hits[selector.keep(w)].sum() / n_pairs, len(names), p["grid"], int(p["rounds"])
    )
    return dict(zip(names, weights.tolist(), strict=True)), float(recall)


def select(cands: pd.DataFrame, weights: dict[str, float], budget: pd.Series, rrf_k: float) -> pd.DataFrame:
    """The candidates within each customer's budget under the given source weights."""
    names = [n for n, w in weights.items() if w > 0]  # a zero weight casts no vote: skip its column
    mask = Selector(cands, names, budget, rrf_k).keep(np.array([weights[n] for n in names]))
    return cands[mask].reset_index(drop=True)
