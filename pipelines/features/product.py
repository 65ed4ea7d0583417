"""Product features at a date: buyers and units over 7/30/90 days and their trend, price,
repeat-purchase rate, age in the catalogue, category, and sales in the same weeks a year earlier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.features.history import DAY_COL, EVENT_TS, History

WINDOWS = (7, 30, 90)
SEASON_LAG_DAYS = 364  # 52 weeks: the same weekdays one year earlier
SEASON_SPAN_DAYS = 28  # the four weeks that follow the date, a year earlier


def _rate_ratio(short: pd.Series, short_days: int, long: pd.Series, long_days: int) -> pd.Series:
    """Daily rate over the short window / daily rate over the long one (NaN when the long one is 0)."""
    return (short / short_days) / (long / long_days).where(long > 0)


def product_snapshot(h: History, date: pd.Timestamp, active_days: int) -> pd.DataFrame:
    """Features at `date` of items sold within `active_days` before it (index: item id)."""
    lines = h.before("lines", date)
    by_item = lines.groupby(s.ITEM)
    last = by_item[DAY_COL].max()
    items = last.index[last >= date - pd.Timedelta(days=active_days)]
    if items.empty:
        return pd.DataFrame()
    f = pd.DataFrame(index=items.rename(s.ITEM))
    f["age_days"] = (date - by_item[DAY_COL].min().reindex(items)).dt.days.astype("float64")
    pair_days = h.before("pair_days", date, max(WINDOWS))
    for w in WINDOWS:
        recent = pair_days.loc[pair_days[DAY_COL] >= date - pd.Timedelta(days=w)]
        f[f"units_{w}d"] = recent.groupby(s.ITEM)[s.QUANTITY].sum().reindex(items, fill_value=0.0)
        f[f"buyers_{w}d"] = recent.groupby(s.ITEM)[s.CUSTOMER].nunique().reindex(items, fill_value=0).astype("int64")
    f["trend_7_30"] = _rate_ratio(f["units_7d"], 7, f["units_30d"], 30)
    f["trend_30_90"] = _rate_ratio(f["units_30d"], 30, f["units_90d"], 90)

    priced = lines.loc[lines[s.PRICE].notna()]
    recent_price = priced.loc[priced[DAY_COL] >= date - pd.Timedelta(days=90)].groupby(s.ITEM)[s.PRICE].median()
    f["price"] = recent_price.reindex(items).fillna(priced.groupby(s.ITEM)[s.PRICE].median().reindex(items))

    pairs = h.pairs.loc[h.pairs["first_day"] < date]
    f["repeat_rate"] = (pairs["second_day"] < date).groupby(pairs[s.ITEM]).mean().reindex(items)

    start = date - pd.Timedelta(days=SEASON_LAG_DAYS)
    season = h.before("pair_days", start + pd.Timedelta(days=SEASON_SPAN_DAYS), SEASON_SPAN_DAYS)
    covered = start >= h.lines[DAY_COL].min()  # a year earlier must lie inside the data, else unknown (NaN)
    units = season.groupby(s.ITEM)[s.QUANTITY].sum().reindex(items, fill_value=0.0)
    buyers = season.groupby(s.ITEM)[s.CUSTOMER].nunique().reindex(items, fill_value=0)
    f["units_next4w_last_year"] = units if covered else np.nan
    f["buyers_next4w_last_year"] = buyers.astype("float64") if covered else np.nan
    codes = lines.loc[lines[s.CATEGORY] >= 0].groupby(s.ITEM)[s.CATEGORY].last().reindex(items)
    names, known = np.full(len(items), None, dtype=object), codes.notna().to_numpy()
    names[known] = h.categories.take(codes[known].astype(int))
    f["category"] = names
    return f


def product_features(h: History, dates: list[pd.Timestamp], params: dict) -> pd.DataFrame:
    """One row per item and snapshot date: the Feast source of the `product` feature view."""
    frames = []
    for date in dates:
        f = product_snapshot(h, date, int(params["active_days"]))
        if not f.empty:
            f[EVENT_TS] = date
            frames.append(f.reset_index())
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True).replace([np.inf, -np.inf], np.nan)
    out[s.ITEM] = h.items.take(out[s.ITEM])
    return out
