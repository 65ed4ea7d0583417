"""Ranking metrics over whole result sets, vectorised (no loop per customer).

`recs` has columns customer_id, item_id, rank (1 = best); `truth` has customer_id, item_id
(the distinct items each customer bought in the window). Metrics are averaged over the
customers in `truth`; a customer with no recommendations scores 0. Gains are binary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.core import schema as s

KEYS = [s.CUSTOMER, s.ITEM]


def _hits(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.Series]:
    top = recs.loc[recs["rank"] <= k, KEYS + ["rank"]].sort_values("rank").drop_duplicates(KEYS)  # best rank wins
    rel = truth[KEYS].drop_duplicates().assign(relevant=True)
    hits = top.merge(rel, on=KEYS, how="inner")
    n_rel = rel.groupby(s.CUSTOMER).size()
    return hits, n_rel


def per_customer(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG, recall, precision, hit rate, average precision and reciprocal rank at `k` of each customer
    in `truth` (index: customer id; a customer with no recommendations scores 0)."""
    return per_customer_at(recs, truth, [k])[k]


def per_customer_at(recs: pd.DataFrame, truth: pd.DataFrame, ks: list[int]) -> dict[int, pd.DataFrame]:
    """`per_customer` at each of `ks`, the hits found once, at the largest (a pair's best rank is the
    same at every k that keeps it)."""
    hits, n_rel = _hits(recs, truth, max(ks))
    return {k: _at(hits[hits["rank"] <= k], n_rel, k) for k in ks}


def _at(hits: pd.DataFrame, n_rel: pd.Series, k: int) -> pd.DataFrame:
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
    return pd.DataFrame(
        {
            f"ndcg@{k}": dcg.reindex(customers, fill_value=0.0) / idcg,
            f"recall@{k}": n_hits / n_rel,
            f"precision@{k}": n_hits / k,  # a short list still counts k slots
            f"hitrate@{k}": (n_hits > 0).astype(float),
            f"map@{k}": ap,
            f"mrr@{k}": (1.0 / first).fillna(0.0),
        },
        index=customers,
    )


def ranking_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> dict[str, float]:
    """NDCG, recall, precision, hit rate, MAP and MRR at `k`, averaged over the customers in `truth`."""
    return ranking_metrics_at(recs, truth, [k])


def ranking_metrics_at(recs: pd.DataFrame, truth: pd.DataFrame, ks: list[int]) -> dict[str, float]:
    """`ranking_metrics` at each of `ks` (`per_customer_at`)."""
    out: dict[str, float] = {}
    for k, table in per_customer_at(recs, truth, ks).items():
        if table.empty:
            out.update({f"{m}@{k}": 0.0 for m in ("ndcg", "recall", "precision", "hitrate", "map", "mrr")})
        else:
            out.update({name: float(value) for name, value in table.mean().items()})
    return out


def paired_bootstrap(ours: pd.Series, theirs: pd.Series, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% interval of mean(ours) / mean(theirs) over `draws` resamples of the customers (paired: both
    are indexed by customer and resampled together; a customer missing from one counts 0 there).
    Resamples where theirs averages 0 have no ratio and are left out."""
    index = ours.index.union(theirs.index)
    a, b = (x.reindex(index, fill_value=0.0).to_numpy(dtype=float) for x in (ours, theirs))
    rng = np.random.default_rng(seed)
    ratios = []
    for lo in range(0, draws, 100):  # 100 resamples at a time: memory holds 100 x customers indices
        idx = rng.integers(0, len(index), size=(min(100, draws - lo), len(index)))
        mean_b = b[idx].mean(axis=1)
        ratios.append(a[idx].mean(axis=1) / np.where(mean_b > 0, mean_b, np.nan))
    low, high = np.nanpercentile(np.concatenate(ratios), [2.5, 97.5])
    return float(low), float(high)


def catalogue_coverage(recs: pd.DataFrame, k: int, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    return float(recs.loc[recs["rank"] <= k, s.ITEM].nunique() / n_items) if n_items else 0.0


# Beyond accuracy: what merchandisers ask of the lists themselves (no purchases needed).
# `popularity` is the share of the training customers who bought each item; an item it does not
# know counts as rare as its rarest item (with no popularity at all, as bought by everyone).


def _lists(recs: pd.DataFrame, k: int) -> pd.DataFrame:
    return recs.loc[recs["rank"] <= k, KEYS].drop_duplicates()


def item_popularity(history: pd.DataFrame) -> pd.Series:
    """Share of the history's customers who bought each item (index: item id)."""
    n = history[s.CUSTOMER].nunique()
    return history.groupby(s.ITEM)[s.CUSTOMER].nunique() / n if n else pd.Series(dtype=float)


def _popularity_of(items: pd.Series, popularity: pd.Series) -> np.ndarray:
    floor = popularity[popularity > 0].min() if (popularity > 0).any() else 1.0
    return items.map(popularity).fillna(floor).clip(lower=floor).to_numpy(dtype=float)


def _per_customer_mean(customers: pd.Series, values: np.ndarray) -> float:
    if not len(values):
        return 0.0
    return float(pd.Series(values, index=customers.to_numpy()).groupby(level=0).mean().mean())


def novelty(recs: pd.DataFrame, k: int, popularity: pd.Series) -> float:
    """Mean self-information -log2(popularity) of the recommended items, per customer then overall."""
    top = _lists(recs, k)
    return _per_customer_mean(top[s.CUSTOMER], -np.log2(_popularity_of(top[s.ITEM], popularity)))


def average_popularity(recs: pd.DataFrame, k: int, popularity: pd.Series) -> float:
    """ARP: the mean popularity (share of customers who bought it) of the recommended items."""
    top = _lists(recs, k)
    return _per_customer_mean(top[s.CUSTOMER], _popularity_of(top[s.ITEM], popularity))


def exposure_gini(recs: pd.DataFrame, k: int, n_items: int) -> float:
    """Gini index of how often each catalogue item is recommended: 0 = even exposure, -> 1 = a few items."""
    counts = _lists(recs, k)[s.ITEM].value_counts().to_numpy(dtype=float)
    if n_items <= 1 or counts.sum() == 0:
        return 0.0
    x = np.sort(np.concatenate([np.zeros(max(n_items - len(counts), 0)), counts]))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def personalisation(recs: pd.DataFrame, k: int) -> float:
    """1 - (items shared by two customers' top-k lists) / (length of the shorter list), over all pairs
    of customers (pooled): 0 when everyone gets the same list, 1 when no two lists share an item.

    Exact without forming the pairs: c_i lists holding item i share it in c_i (c_i - 1) / 2 pairs, and
    with lengths sorted ascending, l_(j) is the shorter list of the U - j pairs it forms with longer ones.
    """
    top = _lists(recs, k)
    lengths = np.sort(top.groupby(s.CUSTOMER).size().to_numpy(dtype=float))
    u = len(lengths)
    if u < 2:
        return 0.0
    c = top[s.ITEM].value_counts().to_numpy(dtype=float)
    shared = (c * (c - 1)).sum() / 2
    shorter = (lengths * (u - np.arange(1, u + 1))).sum()
    return float(1.0 - shared / shorter)


@dataclass(frozen=True)
class ItemVectors:
    """L2-normalised TF-IDF vectors of item texts: `rows` maps item id -> row of `matrix`."""

    rows: pd.Series
    matrix: sp.csr_matrix

    @classmethod
    def of_texts(cls, texts: pd.Series) -> ItemVectors:
        """Vectors of the items whose text (index: item id) has a usable word; the others get none."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = texts[texts.fillna("").str.strip() != ""]
        try:
            matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts).tocsr()
        except ValueError:  # empty vocabulary: no text has a usable word
            return cls(pd.Series(dtype="int64"), sp.csr_matrix((0, 0)))
        has_words = np.diff(matrix.indptr) > 0
        return cls(pd.Series(np.arange(has_words.sum()), index=texts.index[has_words]), matrix[has_words])


def intra_list_diversity(recs: pd.DataFrame, k: int, vectors: ItemVectors) -> float:
    """Mean over customers of 1 - mean pairwise cosine similarity of the items in their top-k list.

    Items without a vector are left out; lists with fewer than 2 such items are not scored.
    For unit vectors the pairs need not be formed: sum over pairs i != j of cos = |sum v|^2 - n.
    """
    top = _lists(recs, k)
    rows = top[s.ITEM].map(vectors.rows)
    top, rows = top[rows.notna()], rows[rows.notna()].to_numpy(dtype=np.int64)
    cust_codes, customers = pd.factorize(top[s.CUSTOMER])
    n = np.bincount(cust_codes, minlength=len(customers)).astype(float)
    scored = n >= 2
    if not scored.any():
        return 0.0
    pick = sp.csr_matrix((np.ones(len(rows)), (cust_codes, rows)), shape=(len(customers), vectors.matrix.shape[0]))
    sums = pick @ vectors.matrix
    sq = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()
    mean_sim = (sq[scored] - n[scored]) / (n[scored] * (n[scored] - 1))
    return float(np.mean(1.0 - mean_sim))
