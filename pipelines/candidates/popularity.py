"""Popularity: the items most customers bought recently; the cold-start answer too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import schema as s
from pipelines.candidates.base import SCORE, CandidateSource, register


@register("popularity")
class Popularity(CandidateSource):
    """score = distinct buyers in the last `window_days`, ties broken by all-time distinct buyers."""

    def __init__(self, n: int, window_days: int = 30) -> None:
        super().__init__(n, window_days=window_days)
        self.window_days = int(window_days)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> Popularity:
        buyers = history.groupby(s.ITEM)[s.CUSTOMER].nunique()
        recent = history[history[s.TS] >= as_of - pd.Timedelta(days=self.window_days)]
        recent_buyers = recent.groupby(s.ITEM)[s.CUSTOMER].nunique().reindex(buyers.index, fill_value=0)
        score = recent_buyers + buyers / (buyers.max() + 1.0)  # the fraction only breaks ties
        self.top_ = score.sort_values(ascending=False, kind="stable").head(self.n).rename(SCORE).reset_index()
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        n_items = len(self.top_)
        return pd.DataFrame(
            {
                s.CUSTOMER: np.repeat(np.asarray(customers, dtype=object), n_items),
                s.ITEM: np.tile(self.top_[s.ITEM].to_numpy(), len(customers)),
                SCORE: np.tile(self.top_[SCORE].to_numpy(), len(customers)),
            }
        )
