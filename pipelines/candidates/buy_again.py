"""Buy-again: what the customer bought before, scored by recency-weighted frequency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.candidates.base import SCORE, CandidateSource, register, top_n
from pipelines.core import schema as s


@register("buy_again")
class BuyAgain(CandidateSource):
    """score = sum over the customer's orders of the item of 0.5 ** (age_days / half_life_days)."""

    def __init__(self, n: int, half_life_days: float = 60.0) -> None:
        super().__init__(n)
        self.half_life = float(half_life_days)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> BuyAgain:
        age_days = (as_of - history[s.TS]).dt.total_seconds().to_numpy() / 86400.0
        # sorted integer codes stand in for the ids (grouping and sorting them is several times faster), same order
        customer, customers = pd.factorize(history[s.CUSTOMER], sort=True)
        item, items = pd.factorize(history[s.ITEM], sort=True)
        lines = pd.DataFrame(
            {
                s.CUSTOMER: customer,
                s.ITEM: item,
                s.ORDER: pd.factorize(history[s.ORDER])[0],
                "w": np.power(0.5, age_days / self.half_life),
            }
        )
        per_order = lines.drop_duplicates([s.CUSTOMER, s.ITEM, s.ORDER])  # an order counts once per item
        scores = per_order.groupby([s.CUSTOMER, s.ITEM], sort=False)["w"].sum().rename(SCORE).reset_index()
        top = top_n(scores, self.n)  # sorted by customer: `recommend` slices it
        self.top_ = pd.DataFrame(
            {s.CUSTOMER: customers.take(top[s.CUSTOMER]), s.ITEM: items.take(top[s.ITEM]), SCORE: top[SCORE]}
        )
        self.customer_of_ = self.top_[s.CUSTOMER].to_numpy()
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        wanted = np.sort(np.asarray(customers, dtype=object))
        lo = np.searchsorted(self.customer_of_, wanted, "left")
        hi = np.searchsorted(self.customer_of_, wanted, "right")
        rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True) if b > a] + [np.zeros(0, int)])
        return self.top_.iloc[rows].reset_index(drop=True)
