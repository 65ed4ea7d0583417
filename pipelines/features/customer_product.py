"""Customer x product features: times bought, units, first and last purchase, mean repurchase interval.

Event-driven rather than snapshotted: a row per customer, item and purchase day, stamped at the
next midnight (the purchase is known once its day is over) and carrying the totals up to that
day. A point-in-time join at T therefore sees exactly the purchases made before T. Days since the
last purchase depend on when one asks, so the on-demand view `customer_product_recency`
computes them at request time from `last_purchase`.
"""

from __future__ import annotations

import pandas as pd

from pipelines.core import schema as s
from pipelines.features.history import DAY, DAY_COL, EVENT_TS, History


def customer_product_features(h: History) -> pd.DataFrame:
    """One row per customer, item and purchase day: the Feast source of the `customer_product` view."""
    pd_ = h.pair_days  # sorted by customer, item, day
    keys = [pd_[s.CUSTOMER], pd_[s.ITEM]]
    first = pd_.groupby(keys, sort=False)[DAY_COL].transform("min")
    times = pd_.groupby(keys, sort=False).cumcount() + 1
    span_days = (pd_[DAY_COL] - first).dt.days
    return pd.DataFrame(
        {
            s.CUSTOMER: h.customers.take(pd_[s.CUSTOMER]),
            s.ITEM: h.items.take(pd_[s.ITEM]),
            EVENT_TS: (pd_[DAY_COL] + DAY).to_numpy(),
            "times_bought": times.astype("int64").to_numpy(),
            "units_bought": pd_.groupby(keys, sort=False)[s.QUANTITY].cumsum().to_numpy(),
            "first_purchase": first.to_numpy(),
            "last_purchase": pd_[DAY_COL].to_numpy(),
            "mean_repurchase_interval_days": (span_days / (times - 1)).where(times > 1).to_numpy(),
        }
    )
