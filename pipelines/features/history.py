"""Purchase history in the shapes the feature builders share, and the dates features are stamped at.

Every feature row is stamped at a midnight T and computed from events strictly before T, so a
point-in-time join at T (which takes rows stamped <= T) sees only what was known at T.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.core import schema as s

DAY = pd.Timedelta(days=1)
DAY_COL = "day"
REVENUE = "revenue"
EVENT_TS = "event_timestamp"  # the timestamp column of every feature source
SNAPSHOT_VIEWS = ("customer", "product")  # the sources stamped at snapshot dates, and their feature views
SNAPSHOT_TTL = pd.Timedelta(days=35)  # their views' TTL at most (feature_repo/features.py; `store.apply` checks)
_WORD = re.compile(r"[A-Za-z]{3,}")
COLUMNS = (s.CUSTOMER, s.ITEM, s.TS, s.ORDER, s.QUANTITY, s.PRICE, s.DESCRIPTION, s.CATEGORY)  # what History reads


def item_category(lines: pd.DataFrame) -> pd.Series:
    """The item's category; without a category column, the last word of its description (UCI: HOLDER, BAG, MUG).

    None where neither is known.
    """
    if s.CATEGORY in lines and lines[s.CATEGORY].notna().any():
        return lines[s.CATEGORY]
    if s.DESCRIPTION not in lines:
        return pd.Series(None, index=lines.index, dtype=object)
    words = lines[s.DESCRIPTION].fillna("").str.upper().str.findall(_WORD)
    return words.str[-1].where(words.str.len() > 0, None)


@dataclass(frozen=True)
class History:
    """Clean interactions reduced once, then filtered per date by the builders.

    Customer, item and category columns hold integer codes into `customers`, `items` and
    `categories` (grouping on integers is several times faster than on strings).
    lines: one row per order line with its day, revenue (NaN without a price), description and category.
    orders: one row per order: customer, day, revenue, lines.
    pair_days: one row per customer, item and purchase day, with the units bought that day.
    pairs: one row per customer and item: first and second distinct purchase day (NaT if none).
    """

    lines: pd.DataFrame
    orders: pd.DataFrame
    pair_days: pd.DataFrame
    pairs: pd.DataFrame
    customers: pd.Index
    items: pd.Index
    categories: pd.Index

    @classmethod
    def of(cls, clean: pd.DataFrame) -> History:
        customer_codes, customers = pd.factorize(clean[s.CUSTOMER], sort=True)
        item_codes, items = pd.factorize(clean[s.ITEM], sort=True)
        category_codes, categories = pd.factorize(item_category(clean), sort=True)  # None -> -1
        lines = pd.DataFrame(
            {
                s.CUSTOMER: customer_codes.astype(np.int32),
                s.ITEM: item_codes.astype(np.int32),
                s.TS: clean[s.TS].to_numpy(),
                DAY_COL: clean[s.TS].dt.normalize().to_numpy(),
                s.ORDER: clean[s.ORDER].to_numpy() if s.ORDER in clean else None,
                s.QUANTITY: clean[s.QUANTITY].to_numpy() if s.QUANTITY in clean else 1.0,
                s.PRICE: clean[s.PRICE].to_numpy() if s.PRICE in clean else np.nan,
                s.DESCRIPTION: clean[s.DESCRIPTION].to_numpy() if s.DESCRIPTION in clean else None,
            }
        )
        if s.ORDER not in clean:  # a basket = one customer at one moment
            lines[s.ORDER] = lines[s.CUSTOMER].astype(str) + "@" + lines[s.TS].astype("int64").astype(str)
        lines[s.ORDER] = pd.factorize(lines[s.ORDER])[0]
        lines[REVENUE] = lines[s.QUANTITY] * lines[s.PRICE]
        lines[s.CATEGORY] = category_codes.astype(np.int32)
        by_order = lines.groupby([s.CUSTOMER, s.ORDER], sort=False)
        orders = pd.DataFrame(
            {DAY_COL: by_order[DAY_COL].min(), REVENUE: by_order[REVENUE].sum(min_count=1), "lines": by_order.size()}
        ).reset_index()
        pair_days = lines.groupby([s.CUSTOMER, s.ITEM, DAY_COL], sort=True)[s.QUANTITY].sum().reset_index()
        nth = pair_days.groupby([s.CUSTOMER, s.ITEM], sort=False).cumcount()
        first = pair_days.loc[nth == 0, [s.CUSTOMER, s.ITEM, DAY_COL]].rename(columns={DAY_COL: "first_day"})
        second = pair_days.loc[nth == 1, [s.CUSTOMER, s.ITEM, DAY_COL]].rename(columns={DAY_COL: "second_day"})
        pairs = first.merge(second, on=[s.CUSTOMER, s.ITEM], how="left")
        return cls(lines, orders, pair_days, pairs, pd.Index(customers), pd.Index(items), pd.Index(categories))

    def before(self, table: str, end: pd.Timestamp, days: int | None = None) -> pd.DataFrame:
        """Rows of `table` on days in [end - days, end) (all days before `end` when days is None)."""
        frame: pd.DataFrame = getattr(self, table)
        day = frame[DAY_COL]
        start = None if days is None else end - pd.Timedelta(days=days)
        if day.is_monotonic_increasing:  # lines and orders come in time order: a slice, not a mask and a copy
            return frame.iloc[0 if start is None else day.searchsorted(start) : day.searchsorted(end)]
        return frame.loc[(day < end) if start is None else (day < end) & (day >= start)]


def snapshot_dates(
    first_event: pd.Timestamp, last_date: pd.Timestamp, every_days: int, extra: Iterable[pd.Timestamp] = ()
) -> list[pd.Timestamp]:
    """Midnights from `last_date` back to just after the first event, every `every_days`, plus `extra` ones.

    `last_date` is the newest date features are needed for (the day after the last event, or
    as_of); `extra` holds dates a join must hit exactly (e.g. training cutoffs).
    """
    last = pd.Timestamp(last_date).normalize()
    start = pd.Timestamp(first_event).normalize() + DAY
    steps = (last - start).days // int(every_days) + 1 if last >= start else 0
    grid = {last - pd.Timedelta(days=int(every_days) * i) for i in range(steps)}
    dates = grid | {pd.Timestamp(d).normalize() for d in extra}
    return sorted(d for d in dates if start <= d <= last)


def within_reach(dates: Iterable[pd.Timestamp], joins: Iterable[pd.Timestamp]) -> list[pd.Timestamp]:
    """The `dates` a point-in-time join at one of `joins` can read: at most `SNAPSHOT_TTL` before it."""
    joins = [pd.Timestamp(t) for t in joins]
    return [d for d in dates if any(t - SNAPSHOT_TTL <= d <= t for t in joins)]
