"""Ranking metrics over whole result sets, vectorised (no loop per customer).

`recs` has columns customer_id, item_id, rank (1 = best); `truth` has customer_id, item_id
(the distinct items each customer bought in the window). Metrics are averaged over the
customers in `truth`; a customer with no recommendations scores 0. Gains are binary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import schema as s

KEYS = [s.CUSTOMER, s.ITEM]


def _hits(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.Series]:
    top = recs.loc[recs["rank"] <= k, KEYS + ["rank"]].sort_values("rank").drop_duplicates(KEYS)  # best rank wins
    rel = truth[KEYS].drop_duplicates().assign(relevant=True)
    hits = top.merge(rel, on=KEYS, how="inner")
    n_rel = rel.groupby(s.CUSTOMER).size()
    return hits, n_rel


def ranking_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> dict[str, float]:
    """NDCG, recall, precision, hit rate, MAP and MRR at `k`, averaged over the customers in `truth`."""
    hits, n_rel = _hits(recs, truth, k)
    if n_rel.empty:
        return {f"{m}@{k}": 0.0 for m in ("ndcg", "recall", "precision", "hitrate", "map", "mrr")}
    customers = n_rel.index
    hits = hits[hits[s.CUSTOMER].isin(customers)].sort_values([s.CUSTOMER, "rank"])
    discount = 1.0 / np.log2(hits["rank"].to_numpy() + 1.0)
    dcg = pd.Series(discount, index=hits[s.CUSTOMER].to_numpy()).groupby(level=0).sum()
    ideal_cum = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = pd.Series(ideal_cum[np.minimum(n_rel.to_numpy(), k) - 1], index=customers)
    n_hits = hits.groupby(s.CUSTOMER).size().reindex(customers, fill_value=0)
    # average precision: mean over hits of (hits so far / rank), normalised by min(|rel|, k)
    hits_so_far = hits.groupby(s.CUSTOMER).cumcount().to_numpy() + 1.0
    ap = pd.Series(hits_so_far / hits["rank"].to_numpy(), index=hits[s.CUSTOMER].to_numpy()).groupby(
        level=0
    ).sum().reindex(customers, fill_value=0.0) / np.minimum(n_rel, k)
    first = hits.groupby(s.CUSTOMER)["rank"].min().reindex(customers)
    n = float(len(customers))
    return {
        f"ndcg@{k}": float((dcg.reindex(customers, fill_value=0.0) / idcg).sum() / n),
        f"recall@{k}": float((n_hits / n_rel).sum() / n),
        f"precision@{k}": float(n_hits.sum() / (k * n)),
        f"hitrate@{k}": float((n_hits > 0).sum() / n),
        f"map@{k}": float(ap.sum() / n),
        f"mrr@{k}": float((1.0 / first).fillna(0.0).sum() / n),
    }


def catalogue_coverage(recs: pd.DataFrame, k: int, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    return float(recs.loc[recs["rank"] <= k, s.ITEM].nunique() / n_items) if n_items else 0.0
