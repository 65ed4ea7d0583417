"""Why an item is recommended: the sources that proposed it and the features that pushed it up
(LightGBM's per-prediction contributions, SHAP values), in words a person can read.

Only features that differ between a customer's candidates explain an order among them, so the
customer-level features (recency, spend, RFM, ...) are left out of the reasons.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb

TOP = 3
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


def phrase(feature: str, value: float, proposed_by: set[str] = frozenset()) -> str | None:
    """Words for a feature pushing an item up, or None when its value does not bear the words out."""
    source = feature.rsplit("_", 1)[0]
    if feature.endswith(("_score", "_rank")) and source in SOURCE_WORDS:
        return SOURCE_WORDS[source] if source in proposed_by else None
    holds = HOLDS.get(feature)
    if holds is not None and not (np.isfinite(value) and holds(value)):
        return None
    template = FEATURE_WORDS.get(feature, feature.replace("_", " "))
    return template.format(value) if "{" in template and np.isfinite(value) else template.split(" {")[0]


def explain(booster: lgb.Booster, x: pd.DataFrame, cands: pd.DataFrame, source_names: list[str]) -> pd.DataFrame:
    """Per row: `sources` (comma-separated), `reasons` (readable, best first), `contributions` (JSON)."""
    names = booster.feature_name()
    contrib = booster.predict(x[names], num_iteration=booster.best_iteration, pred_contrib=True)[:, :-1]
    usable = np.array([n not in CUSTOMER_LEVEL for n in names])
    values = x[names].to_numpy(dtype=np.float64)
    proposed = np.column_stack([cands[f"{n}_score"].to_numpy() > 0 for n in source_names])
    sources, reasons, details = [], [], []
    for row in range(len(x)):
        by = {n for n, p in zip(source_names, proposed[row], strict=True) if p}
        c = np.where(usable, contrib[row], -np.inf)
        said = [
            (i, words)
            for i in np.argsort(-c, kind="stable")
            if round(float(c[i]), 4) > 0 and (words := phrase(names[i], values[row, i], by))
        ][:TOP]
        sources.append(",".join(n for n in source_names if n in by))
        reasons.append("; ".join(dict.fromkeys(words for _, words in said)))
        details.append(json.dumps({names[i]: round(float(contrib[row, i]), 4) for i, _ in said}))
    return pd.DataFrame({"sources": sources, "reasons": reasons, "contributions": details})
