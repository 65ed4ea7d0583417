"""Honest next-basket peers for bench/quality.py, each with its parameters tuned on the validation window.

A peer is `(history, customers, as_of, params) -> recommendations` (customer_id, item_id, rank 1..K,
score), fitted on the rows of `history` before `as_of`; none is restricted to already bought items.

- buy-again + popularity: the customer's items by distinct orders holding them, ties broken by
  popularity (distinct buyers in the last `window_days`), then the most popular items they have
  not bought, up to K;
- TIFU-KNN (Hu et al., SIGIR 2020) and UP-CF@r (Faggioli et al., UMAP 2020): the `tifu_knn` and
  `up_cf` candidate sources with n = K, bought items allowed.

`tune` fits each combination of a peer's grid (`PEERS`) on the history before the validation
start and keeps the best NDCG@10 on the validation purchases of its warm customers (the first
best in grid order); `tuned_peers` refits the chosen one on the history before the test start.
The test window plays no part in the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates import matrix
from pipelines.candidates.base import SCORE, CandidateSource, decoded, rank_within_groups
from pipelines.candidates.baskets import before
from pipelines.candidates.popularity import recent_buyers
from pipelines.candidates.tifu_knn import TifuKnn
from pipelines.candidates.up_cf import UpCF
from pipelines.core import schema as s
from pipelines.data.split import warm_customers, window
from pipelines.evaluation.metrics import ranking_metrics

K = 20
Peer = Callable[[pd.DataFrame, pd.Index, pd.Timestamp, dict[str, Any]], pd.DataFrame]


def grid(**values: list[Any]) -> list[dict[str, Any]]:
    """Every combination of the values, in order (the last name varies fastest)."""
    return [dict(zip(values, combo, strict=True)) for combo in product(*values.values())]


def ranked(recs: pd.DataFrame) -> pd.DataFrame:
    """Add rank 1, 2, ... to rows grouped by customer, best first."""
    return recs.assign(rank=rank_within_groups(recs[s.CUSTOMER].to_numpy()))


def buy_again_popularity(
    history: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, params: dict[str, Any]
) -> pd.DataFrame:
    """Bought items first (score = distinct orders), then unbought popular ones (score = buyers / (most + 1) < 1)."""
    history = before(history, as_of)
    popular = recent_buyers(history, as_of, int(params["window_days"]))
    mine = history[history[s.CUSTOMER].isin(customers)]
    bought = mine.groupby([s.CUSTOMER, s.ITEM])[s.ORDER].nunique().rename(SCORE).reset_index()
    bought["buyers"] = bought[s.ITEM].map(popular).fillna(0).to_numpy()
    bought = bought.sort_values(
        [s.CUSTOMER, SCORE, "buyers", s.ITEM], ascending=[True, False, False, True], kind="stable"
    )
    items = pd.Index(popular.index).sort_values()
    ids = np.asarray(customers, dtype=object)
    known = bought[bought[s.ITEM].isin(items)]
    seen = sp.csr_matrix(
        (np.ones(len(known)), (pd.Index(ids).get_indexer(known[s.CUSTOMER]), items.get_indexer(known[s.ITEM]))),
        shape=(len(ids), len(items)),
    )
    buyers = popular.reindex(items).to_numpy(dtype=np.float32)
    fill = decoded(matrix.top_n(lambda rows: np.tile(buyers, (len(rows), 1)), np.arange(len(ids)), ids, items, K, seen))
    fill[SCORE] = fill[SCORE] / (buyers.max(initial=0.0) + 1.0)
    recs = pd.concat([bought[[s.CUSTOMER, s.ITEM, SCORE]], fill], ignore_index=True)
    recs = recs.sort_values(s.CUSTOMER, kind="stable")  # bought rows stay ahead of the fill
    return ranked(recs[recs.groupby(s.CUSTOMER).cumcount() < K].reset_index(drop=True))


def source_peer(cls: type[CandidateSource]) -> Peer:
    """A candidate source as a peer: n = K, already bought items allowed."""

    def peer(history: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, params: dict[str, Any]) -> pd.DataFrame:
        return ranked(cls(n=K, exclude_bought=False, **params).fit(history, as_of).recommend(customers))

    return peer


PEERS: dict[str, tuple[Peer, list[dict[str, Any]]]] = {
    "buy-again + popularity": (buy_again_popularity, grid(window_days=[7, 14, 30, 60, 90])),
    "TIFU-KNN": (
        source_peer(TifuKnn),
        grid(group_size=[3, 7], within_decay=[0.9, 1.0], group_decay=[0.7], neighbours=[100, 300], alpha=[0.5, 0.7]),
    ),
    "UP-CF@r": (source_peer(UpCF), grid(recency=[1, 5, None], asymmetry=[0.25, 0.75], locality=[1, 5, 10])),
}  # 5, 16 and 18 combinations; a TIFU-KNN or UP-CF fit and its lists take about a second on UCI Online Retail


def tune(
    peer: Peer,
    params_grid: list[dict[str, Any]],
    history: pd.DataFrame,
    valid_start: pd.Timestamp,
    test_start: pd.Timestamp,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The grid's best parameters by NDCG@10 on [valid_start, test_start), fitted before valid_start,
    and their validation metrics at 10 and 20."""
    fit_on, valid = window(history, None, valid_start), window(history, valid_start, test_start)
    customers = warm_customers(fit_on, valid)
    truth = valid[valid[s.CUSTOMER].isin(customers)]
    scored = []
    for params in params_grid:
        recs = peer(fit_on, customers, valid_start, params)
        scored.append({**ranking_metrics(recs, truth, 10), **ranking_metrics(recs, truth, 20)})
    best = int(np.argmax([m["ndcg@10"] for m in scored]))
    return params_grid[best], scored[best]


def label(name: str, params: dict[str, Any]) -> str:
    return f"{name} ({', '.join(f'{k}={v}' for k, v in params.items())}, tuned on validation)"


def tuned_peers(
    history: pd.DataFrame, customers: pd.Index, valid_start: pd.Timestamp, test_start: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    """Every peer of `PEERS`, tuned on the validation window and refitted before `test_start`, for `customers`."""
    out = {}
    for name, (peer, params_grid) in PEERS.items():
        params, _ = tune(peer, params_grid, history, valid_start, test_start)
        out[label(name, params)] = peer(history, customers, test_start, params)
    return out
