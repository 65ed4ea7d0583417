"""Why an item is recommended: the sources that proposed it and the features that pushed it up
(each feature's part of the ranker's score along the trees' decision paths), in words a person can read.

Only features that differ between a customer's candidates explain an order among them, so the
customer-level features (recency, spend, RFM, ...) are left out of the reasons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit

from pipelines.core.errors import InputError

if TYPE_CHECKING:
    import lightgbm as lgb

TOP = 3
DEFAULT_METHOD = "path"  # recommend.contributions when unset: see path_contributions
SOURCE_WORDS = {
    "buy_again": "you bought it before",
    "popularity": "a best seller right now",
    "trending": "trending in the last two weeks",
    "country_popularity": "popular in your country",
    "item_cf": "often bought by people who buy what you buy",
    "user_cf": "bought by customers like you",
    "als": "matches your taste profile",
    "content": "similar to items you bought",
    "co_purchase": "often bought together with your items",
}
FEATURE_WORDS = {
    "times_bought": "you bought it {:.0f} times",
    "units_bought": "you bought {:.0f} units so far",
    "days_since_last_purchase": "last bought {:.0f} days ago",
    "repurchase_due_ratio": "due for a re-order",
    "mean_repurchase_interval_days": "you re-order it every {:.0f} days or so",
    "units_7d": "selling fast this week",
    "buyers_7d": "many buyers this week",
    "units_30d": "selling well this month",
    "buyers_30d": "many buyers this month",
    "units_90d": "a steady seller",
    "buyers_90d": "a steady seller",
    "trend_7_30": "sales rising",
    "trend_30_90": "sales rising",
    "units_next4w_last_year": "sells well at this time of year",
    "buyers_next4w_last_year": "sells well at this time of year",
    "repeat_rate": "customers come back for it",
    "age_days": "new in the catalogue",
    "price": "its price suits you",
    "in_top_category": "in your favourite category",
    "n_sources": "proposed by several sources",
}
CUSTOMER_LEVEL = {
    "recency_days", "tenure_days", "orders_30d", "spend_30d", "orders_90d", "spend_90d", "orders_365d", "spend_365d",
    "basket_size", "basket_value", "distinct_items", "repurchase_rate", "top_category_share", "categories",
    "rfm_score", "rfm_tier", "behaviour_cluster",
}  # fmt: skip


# A phrase is said only when the feature's value makes it true (a positive contribution alone does not).
HOLDS = {
    "times_bought": lambda v: v >= 1,
    "units_bought": lambda v: v > 0,
    "days_since_last_purchase": np.isfinite,
    "repurchase_due_ratio": lambda v: v >= 0.8,
    "mean_repurchase_interval_days": np.isfinite,
    "trend_7_30": lambda v: v > 1.1,
    "trend_30_90": lambda v: v > 1.1,
    "age_days": lambda v: v <= 60,
    "in_top_category": lambda v: v == 1,
    "n_sources": lambda v: v >= 2,
    "repeat_rate": lambda v: v >= 0.2,
    "units_next4w_last_year": lambda v: v > 0,
    "buyers_next4w_last_year": lambda v: v > 0,
}


def _source(feature: str) -> str | None:
    """The source whose score or rank column this is, if any."""
    source = feature.rsplit("_", 1)[0]
    return source if feature.endswith(("_score", "_rank")) and source in SOURCE_WORDS else None


def holds(feature: str, values: np.ndarray, proposed: Mapping[str, np.ndarray | bool]) -> np.ndarray:
    """Per value: whether the feature's words are true of it (a source's words: whether it proposed the item)."""
    source = _source(feature)
    if source is not None:
        return np.broadcast_to(np.asarray(proposed.get(source, False)), values.shape)
    test = HOLDS.get(feature)
    if test is None:
        return np.ones(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & test(values)


def words(feature: str, value: float) -> str:
    """The feature's words, with its value where the words take one."""
    source = _source(feature)
    if source is not None:
        return SOURCE_WORDS[source]
    template = FEATURE_WORDS.get(feature, feature.replace("_", " "))
    return template.format(value) if "{" in template and np.isfinite(value) else template.split(" {")[0]


def phrase(feature: str, value: float, proposed_by: set[str] = frozenset()) -> str | None:
    """Words for a feature pushing an item up, or None when its value does not bear the words out."""
    proposed = {source: source in proposed_by for source in SOURCE_WORDS}
    return words(feature, value) if holds(feature, np.array([value], dtype=np.float64), proposed)[0] else None


def explain(
    booster: lgb.Booster, x: pd.DataFrame, cands: pd.DataFrame, source_names: list[str], method: str = DEFAULT_METHOD
) -> pd.DataFrame:
    """Per row: `sources` (comma-separated), `reasons` (readable, best first), `contributions` (JSON).

    The reasons are the TOP largest positive contributions (`method`: "path" or "shap") whose words
    hold, found for all rows at once.
    """
    names = booster.feature_name()
    contrib = CONTRIBUTIONS[method](booster, x[names])
    values = x[names].to_numpy(dtype=np.float64)
    proposed = {n: cands[f"{n}_score"].to_numpy() > 0 for n in source_names}
    sayable = contrib >= 0.00005  # what round(c, 4) > 0 says of each contribution c
    for i, name in enumerate(names):
        sayable[:, i] &= holds(name, values[:, i], proposed) if name not in CUSTOMER_LEVEL else False
    order = np.argsort(np.where(sayable, -contrib, np.inf), axis=1, kind="stable")[:, :TOP]
    picked = np.take_along_axis(sayable, order, axis=1)
    said_as = lru_cache(maxsize=None)(lambda i, value: words(names[i], value))  # values repeat across rows
    quoted = [json.dumps(name) for name in names]
    reasons, details = [], []
    for row, (columns, keep) in enumerate(zip(order.tolist(), picked.tolist(), strict=True)):
        said = [i for i, k in zip(columns, keep, strict=True) if k]
        reasons.append("; ".join(dict.fromkeys(said_as(i, float(values[row, i])) for i in said)))
        # the JSON object json.dumps writes for {name: round(c, 4)}, without a dict and an encoder per row
        details.append("{" + ", ".join(f"{quoted[i]}: {round(float(contrib[row, i]), 4)!r}" for i in said) + "}")
    return pd.DataFrame(
        {"sources": _sources(proposed, source_names, len(x)), "reasons": reasons, "contributions": details}
    )


def path_contributions(booster: lgb.Booster, x: pd.DataFrame) -> np.ndarray:
    """Per row and feature (`x` in the booster's feature order): the feature's part of the raw score.

    Along each tree's decision path every split hands the change in expected value it makes to its
    feature (the Saabas attribution). Like SHAP, a row's parts plus the trees' expected values add
    up to its raw score, but each tree costs one leaf lookup, not TreeSHAP's leaves x depth².
    """
    it = booster.best_iteration
    n_trees, *table = _leaf_tables(booster, it)
    leaves = np.asarray(booster.predict(x, num_iteration=it, pred_leaf=True)).reshape(len(x), n_trees)
    out = np.zeros((len(x), x.shape[1]))
    _add_leaf_parts(out, *table, leaves.astype(np.int64))
    return out


@njit(nogil=True, cache=True)  # the other partition's thread runs meanwhile
def _add_leaf_parts(out, ptr, features, parts, leaves):  # pragma: no cover - compiled
    """out[r, f] += part for every row r and tree t, trees in order: the nonzero parts of leaf
    leaves[r, t] (`_leaf_tables`). Adding only the nonzero ones gives the same sums."""
    n_trees = leaves.shape[1]
    for r in range(leaves.shape[0]):
        for t in range(n_trees):
            at = t + n_trees * leaves[r, t]
            for j in range(ptr[at], ptr[at + 1]):
                out[r, features[j]] += parts[j]


@lru_cache(maxsize=4)  # a booster scores many partitions: its trees are read once
def _leaf_tables(booster: lgb.Booster, iteration: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The first `iteration` trees (all if <= 0): how many, and the nonzero `_leaf_parts` of their
    leaves as CSR arrays (pointers, features, parts), one row per (leaf, tree): leaf * trees + tree."""
    if str(booster.params.get("linear_tree", False)).lower() in ("true", "1"):
        raise InputError("ranker: a linear_tree model has no path contributions; set recommend.contributions: shap")
    trees = booster.dump_model(num_iteration=iteration)["tree_info"]
    tables = np.zeros((max((int(t["num_leaves"]) for t in trees), default=1), len(trees), booster.num_feature()))
    for i, tree in enumerate(trees):
        tables[: int(tree["num_leaves"]), i] = _leaf_parts(
            tree["tree_structure"], int(tree["num_leaves"]), tables.shape[2]
        )
    table = sp.csr_matrix(tables.reshape(-1, tables.shape[2]))
    return len(trees), table.indptr.astype(np.int64), table.indices.astype(np.int64), table.data


def shap_contributions(booster: lgb.Booster, x: pd.DataFrame) -> np.ndarray:
    """LightGBM's TreeSHAP values (`x` in the booster's feature order), without the expected-value column."""
    return booster.predict(x, num_iteration=booster.best_iteration, pred_contrib=True)[:, :-1]


CONTRIBUTIONS = {"path": path_contributions, "shap": shap_contributions}


def contribution_method(params: dict[str, Any]) -> str:
    """`recommend.contributions` of the params (DEFAULT_METHOD if unset), checked: a one-line InputError
    if it names none of CONTRIBUTIONS. Steps call it first, before any work."""
    method = params["recommend"]["contributions"]
    if method not in CONTRIBUTIONS:
        raise InputError(f"params: recommend.contributions must be one of {sorted(CONTRIBUTIONS)}, not {method!r}")
    return method


def _leaf_parts(root: dict, n_leaves: int, n_features: int) -> np.ndarray:
    """(leaf x feature): what each split on the way to the leaf adds to the expected value, per feature.

    A node's expected value is its leaves' values weighted by their training rows (as in TreeSHAP),
    so a leaf's parts add up to its value minus the tree's expected value."""
    parts = np.zeros((n_leaves, n_features))

    def walk(node: dict) -> tuple[float, float, list[int]]:  # (expected value, rows, the leaves below)
        if "split_feature" not in node:  # a leaf (a one-leaf tree has no leaf_index)
            return float(node["leaf_value"]), float(node.get("leaf_count", 0)), [node.get("leaf_index", 0)]
        (lv, lr, left), (rv, rr, right) = walk(node["left_child"]), walk(node["right_child"])
        value = (lv * lr + rv * rr) / (lr + rr) if lr + rr > 0 else (lv + rv) / 2
        parts[left, node["split_feature"]] += lv - value  # the split's change on the way to each leaf
        parts[right, node["split_feature"]] += rv - value
        return value, lr + rr, left + right

    walk(root)
    return parts


def _sources(proposed: dict[str, np.ndarray], source_names: list[str], rows: int) -> np.ndarray:
    """Per row, the sources that proposed it, comma-separated in `source_names` order."""
    code = np.zeros(rows, dtype=np.int64)
    for bit, name in enumerate(source_names):
        code |= proposed[name].astype(np.int64) << bit
    combos, inverse = np.unique(code, return_inverse=True)
    text = [",".join(n for bit, n in enumerate(source_names) if c >> bit & 1) for c in combos.tolist()]
    return np.asarray(text, dtype=object)[inverse]
