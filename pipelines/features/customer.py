"""Customer features at a date: RFM over 30/90/365 days, basket, tenure, category affinity,
repurchase rate, loyalty segments (RFM tier, behavioural cluster) and profile keywords.

Each snapshot uses only events before its date; the k-means cluster and the RFM quintiles are
fitted on that snapshot's customers alone, so no later behaviour shapes an earlier segment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import CountVectorizer

from pipelines.core import schema as s
from pipelines.core.topk import top_entries
from pipelines.features.history import DAY_COL, EVENT_TS, REVENUE, History

WINDOWS = (30, 90, 365)
# Classic RFM grid on the recency score R and the mean of the frequency and monetary scores FM (1..5).
TIERS = ("champion", "loyal", "promising", "at_risk", "hibernating")
CLUSTER_INPUTS = ("recency_days", "orders_365d", "spend_365d", "basket_size", "repurchase_rate", "tenure_days")


def rfm_scores(recency: pd.Series, frequency: pd.Series, monetary: pd.Series) -> pd.DataFrame:
    """Quintile scores 1..5 among the given customers (5 = most recent / frequent / valuable), ties equal."""

    def score(x: pd.Series) -> pd.Series:
        return np.clip(np.ceil(x.rank(pct=True, method="average") * 5), 1, 5).astype("int64")

    out = pd.DataFrame({"r": score(-recency), "f": score(frequency), "m": score(monetary.fillna(0))})
    out["rfm_score"] = out["r"] + out["f"] + out["m"]
    out["rfm_tier"] = rfm_tier(out["r"], (out["f"] + out["m"]) / 2)
    return out


def rfm_tier(r: pd.Series, fm: pd.Series) -> pd.Series:
    """champion R>=4,FM>=4; loyal R>=3,FM>=3; at_risk R<=2,FM>=3; promising R>=3,FM<3; hibernating the rest."""
    tier = np.select(
        [(r >= 4) & (fm >= 4), (r >= 3) & (fm >= 3), (r <= 2) & (fm >= 3), r >= 3],
        ["champion", "loyal", "at_risk", "promising"],
        default="hibernating",
    )
    return pd.Series(tier, index=r.index)


class Keywords:
    """Top TF-IDF terms of what each customer bought: documents are customers, terms come from item text."""

    def __init__(self, lines: pd.DataFrame, top: int = 3) -> None:
        self.top = top
        text = lines.drop_duplicates(s.ITEM, keep="last").set_index(s.ITEM)[s.DESCRIPTION].fillna("").astype(str)
        self.items = pd.Index(text.index)
        vec = CountVectorizer(token_pattern=r"(?u)\b[a-zA-Z]{3,}\b", stop_words="english", binary=True)
        try:
            self.item_terms = vec.fit_transform(text.to_numpy()).tocsr().astype(np.float32)
            self.terms = np.asarray(vec.get_feature_names_out())
        except ValueError:  # no text at all
            self.item_terms, self.terms = None, np.array([], dtype=object)

    def of(self, pairs: pd.DataFrame, customers: pd.Index) -> pd.Series:
        """Space-separated top terms per customer ('' when nothing bought has text)."""
        out = pd.Series("", index=customers, dtype=object)
        if self.item_terms is None or pairs.empty or self.top == 0:
            return out
        rows = customers.get_indexer(pairs[s.CUSTOMER])
        keep = rows >= 0
        cols = self.items.get_indexer(pairs[s.ITEM].to_numpy()[keep])
        bought = sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols)), (len(customers), len(self.items)))
        tf = (bought @ self.item_terms).tocsr()
        idf = np.log((1 + tf.shape[0]) / (1 + np.bincount(tf.indices, minlength=tf.shape[1]))) + 1
        tf.data = (tf.data * idf[tf.indices]).astype(np.float32)  # tf-idf, in place
        best = top_entries(tf, self.top)  # best first, ties alphabetical (the terms are sorted)
        counts = np.diff(best.indptr)
        rows = np.flatnonzero(counts)
        if not len(rows):
            return out
        rank = np.arange(best.nnz) - np.repeat(best.indptr[:-1], counts)
        words = np.full((len(rows), self.top), "", dtype=object)  # a customer's terms, best first, "" after
        words[np.repeat(np.arange(len(rows)), counts[rows]), rank] = self.terms[best.indices]
        joined = words[:, 0]
        for j in range(1, self.top):  # column by column: one vectorised concatenation per rank, not per customer
            joined = joined + np.where(words[:, j] == "", "", " " + words[:, j])
        out.iloc[rows] = joined
        return out


def customer_snapshot(h: History, date: pd.Timestamp, active_days: int, keywords: Keywords) -> pd.DataFrame:
    """Features at `date` of customers who bought within `active_days` before it (index: customer id)."""
    orders = h.before("orders", date)
    last = orders.groupby(s.CUSTOMER)[DAY_COL].max()
    customers = last.index[last >= date - pd.Timedelta(days=active_days)]
    if customers.empty:
        return pd.DataFrame()
    orders = orders.loc[orders[s.CUSTOMER].isin(customers)]
    by = orders.groupby(s.CUSTOMER)
    f = pd.DataFrame(index=customers.rename(s.CUSTOMER))
    f["recency_days"] = (date - last.reindex(customers)).dt.days.astype("float64")
    f["tenure_days"] = (date - by[DAY_COL].min().reindex(customers)).dt.days.astype("float64")
    for w in WINDOWS:
        recent = orders.loc[orders[DAY_COL] >= date - pd.Timedelta(days=w)].groupby(s.CUSTOMER)
        f[f"orders_{w}d"] = recent.size().reindex(customers, fill_value=0).astype("int64")
        f[f"spend_{w}d"] = recent[REVENUE].sum().reindex(customers, fill_value=0.0)
    year = orders.loc[orders[DAY_COL] >= date - pd.Timedelta(days=365)].groupby(s.CUSTOMER)
    f["basket_size"] = year["lines"].mean().reindex(customers)
    f["basket_value"] = year[REVENUE].mean().reindex(customers)

    pairs = h.pairs.loc[(h.pairs["first_day"] < date) & h.pairs[s.CUSTOMER].isin(customers)]
    repeated = pairs["second_day"] < date
    f["distinct_items"] = pairs.groupby(s.CUSTOMER).size().reindex(customers, fill_value=0).astype("int64")
    f["repurchase_rate"] = repeated.groupby(pairs[s.CUSTOMER]).mean().reindex(customers)

    lines = h.before("lines", date, 365)
    lines = lines.loc[lines[s.CUSTOMER].isin(customers) & (lines[s.CATEGORY] >= 0)]
    weight = lines[REVENUE].fillna(lines[s.QUANTITY]).rename("w")
    spend = weight.groupby([lines[s.CUSTOMER], lines[s.CATEGORY]]).sum().reset_index()
    by_customer = spend.groupby(s.CUSTOMER)["w"]
    best = spend.loc[by_customer.idxmax()].set_index(s.CUSTOMER)  # ties: the first category code
    f["top_category"] = pd.Series(h.categories.take(best[s.CATEGORY]), index=best.index).reindex(customers)
    f["top_category_share"] = (best["w"] / by_customer.sum()).reindex(customers)
    f["categories"] = by_customer.size().reindex(customers, fill_value=0).astype("int64")

    f = f.join(rfm_scores(f["recency_days"], f["orders_365d"], f["spend_365d"])[["rfm_score", "rfm_tier"]])
    f["profile_keywords"] = keywords.of(pairs, customers).to_numpy()
    return f


def behaviour_clusters(f: pd.DataFrame, k: int, seed: int) -> pd.Series:
    """k-means over the snapshot's log behaviour, numbered by mean spend (0 = lowest), so a number keeps
    its meaning over time; -1 for all when there are fewer than 5 customers per cluster.

    The centres start at the means of k equal groups of customers ordered by spend: a snapshot's
    clusters depend on its own customers only, not on the snapshots built before it, so a run that
    builds only its latest snapshots (`features.snapshots: latest`) gets the same clusters.
    """
    x = np.log1p(f[list(CLUSTER_INPUTS)].fillna(0).clip(lower=0).to_numpy(dtype=np.float64))
    if len(x) < k * 5:
        return pd.Series(-1, index=f.index, dtype="int64")
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1)
    spend = CLUSTER_INPUTS.index("spend_365d")
    groups = np.array_split(np.argsort(x[:, spend], kind="stable"), k)
    km = KMeans(k, init=np.stack([x[g].mean(axis=0) for g in groups]), n_init=1, random_state=seed)
    labels = km.fit_predict(x)
    order = np.argsort(km.cluster_centers_[:, spend], kind="stable")
    return pd.Series(np.argsort(order)[labels], index=f.index, dtype="int64")


def customer_features(h: History, dates: list[pd.Timestamp], params: dict) -> pd.DataFrame:
    """One row per customer and snapshot date: the Feast source of the `customer` feature view."""
    keywords = Keywords(h.lines, top=int(params["keywords"]))
    frames = []
    for date in dates:
        f = customer_snapshot(h, date, int(params["active_days"]), keywords)
        if f.empty:
            continue
        f["behaviour_cluster"] = behaviour_clusters(f, int(params["clusters"]), int(params["seed"]))
        f[EVENT_TS] = date
        frames.append(f.reset_index())
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out[s.CUSTOMER] = h.customers.take(out[s.CUSTOMER])
    return out
