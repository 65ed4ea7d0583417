"""Popularity sources: best sellers, trending items, best sellers of the customer's country.

They need no history of the customer, so they are also the cold-start answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.candidates.base import SCORE, CandidateSource, register
from pipelines.core import schema as s
from pipelines.evaluation.segments import latest_country


def recent_buyers(history: pd.DataFrame, as_of: pd.Timestamp, days: int) -> pd.Series:
    """Distinct buyers per item in the `days` before `as_of` ([as_of - days, as_of))."""
    ts = history[s.TS]
    recent = history[(ts >= as_of - pd.Timedelta(days=days)) & (ts < as_of)]
    return recent.groupby(s.ITEM)[s.CUSTOMER].nunique()


def same_list_for_all(top: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """Give every customer the same ranked list (item_id, score)."""
    n_items = len(top)
    return pd.DataFrame(
        {
            s.CUSTOMER: np.repeat(np.asarray(customers, dtype=object), n_items),
            s.ITEM: np.tile(top[s.ITEM].to_numpy(), len(customers)),
            SCORE: np.tile(top[SCORE].to_numpy(), len(customers)),
        }
    )


def ranked(score: pd.Series, n: int) -> pd.DataFrame:
    """The n best items of a score series indexed by item, ties broken by item id."""
    frame = score.rename(SCORE).rename_axis(s.ITEM).reset_index()
    frame = frame[frame[SCORE] > 0].sort_values([SCORE, s.ITEM], ascending=[False, True], kind="stable")
    return frame.head(n).reset_index(drop=True)


@register("popularity")
class Popularity(CandidateSource):
    """score = distinct buyers in the last `window_days`, ties broken by all-time distinct buyers."""

    def __init__(self, n: int, window_days: int = 30) -> None:
        super().__init__(n)
        self.window_days = int(window_days)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> Popularity:
        buyers = history.groupby(s.ITEM)[s.CUSTOMER].nunique()
        recent = recent_buyers(history, as_of, self.window_days).reindex(buyers.index, fill_value=0)
        self.top_ = ranked(recent + buyers / (buyers.max() + 1.0), self.n)  # the fraction only breaks ties
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        return same_list_for_all(self.top_, customers)


@register("trending")
class Trending(CandidateSource):
    """score = recent buyers x (recent + 1) / (buyers in the window before + 1): popular and rising.

    Items with fewer than `min_buyers` recent buyers are left out, so noise does not trend.
    """

    def __init__(self, n: int, window_days: int = 14, min_buyers: int = 3) -> None:
        super().__init__(n)
        self.window_days, self.min_buyers = int(window_days), int(min_buyers)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> Trending:
        recent = recent_buyers(history, as_of, self.window_days)
        before = recent_buyers(history, as_of - pd.Timedelta(days=self.window_days), self.window_days)
        previous = before.reindex(recent.index, fill_value=0)
        score = recent * (recent + 1.0) / (previous + 1.0)
        self.top_ = ranked(score[recent >= self.min_buyers], self.n)
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        return same_list_for_all(self.top_, customers)


@register("country_popularity")
class CountryPopularity(CandidateSource):
    """Best sellers (distinct buyers in `window_days`) among customers of the customer's latest country.

    Countries with fewer than `min_customers` recent buyers, customers without a known country
    and data without countries get the global list.
    """

    def __init__(self, n: int, window_days: int = 90, min_customers: int = 20) -> None:
        super().__init__(n)
        self.window_days, self.min_customers = int(window_days), int(min_customers)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> CountryPopularity:
        self.global_ = ranked(recent_buyers(history, as_of, self.window_days), self.n)
        self.country_of_ = latest_country(history)
        lines = history[[s.CUSTOMER, s.ITEM, s.TS, s.COUNTRY]]  # these columns only: the filter copies no others
        recent = lines[lines[s.COUNTRY].notna() & (lines[s.TS] >= as_of - pd.Timedelta(days=self.window_days))]
        big = recent.groupby(s.COUNTRY)[s.CUSTOMER].nunique()
        big = big[big >= self.min_customers].index
        counts = recent[recent[s.COUNTRY].isin(big)].groupby([s.COUNTRY, s.ITEM])[s.CUSTOMER].nunique()
        self.per_country_ = {c: ranked(counts.loc[c], self.n) for c in big}
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        """Each customer's country list (the global one without a big country), customers in id order."""
        lists = [*self.per_country_.values(), self.global_]
        ids = np.sort(np.asarray(customers, dtype=object))
        which = pd.Index(list(self.per_country_), dtype=object).get_indexer(self.country_of_.reindex(ids))
        which[which < 0] = len(lists) - 1
        lengths = np.array([len(top) for top in lists])
        sizes, starts = lengths[which], (np.cumsum(lengths) - lengths)[which]
        rows = np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(sizes.sum())  # each list in order
        items = np.concatenate([top[s.ITEM].to_numpy(dtype=object) for top in lists])
        scores = np.concatenate([top[SCORE].to_numpy(dtype=float) for top in lists])
        return pd.DataFrame({s.CUSTOMER: np.repeat(ids, sizes), s.ITEM: items[rows], SCORE: scores[rows]})
