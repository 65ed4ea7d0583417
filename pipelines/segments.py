"""Customer segments that metrics are broken down by: loyalty tier, new vs returning, country group.

Every segment is known at the cutoff: the tier is the RFM tier of the customer's feature snapshot
at or before the cutoff, lifecycle and country come from purchases before it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipelines import schema as s
from pipelines.features.history import EVENT_TS

UNKNOWN = "unknown"
OTHER = "other"


def latest_country(history: pd.DataFrame) -> pd.Series:
    """Each customer's country on their latest purchase with a known country (index: customer id)."""
    with_country = history[history[s.COUNTRY].notna()].reset_index(drop=True) if s.COUNTRY in history else history[:0]
    latest = with_country.groupby(s.CUSTOMER)[s.TS].idxmax()
    return with_country.loc[latest.to_numpy(), s.COUNTRY].set_axis(latest.index)


def latest_snapshot(customer_features: pd.DataFrame, customers: pd.Index, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Each customer's latest feature snapshot stamped at or before `cutoff` (rows of `customers`, NaN where none)."""
    stamps = pd.to_datetime(customer_features[EVENT_TS]).dt.tz_localize(None)
    known = customer_features[stamps <= cutoff].sort_values(EVENT_TS, kind="stable")
    return known.groupby(s.CUSTOMER).last().reindex(customers)


def loyalty_tier(customer_features: pd.DataFrame, customers: pd.Index, cutoff: pd.Timestamp) -> pd.Series:
    """The RFM tier of each customer's latest snapshot at or before `cutoff` (`unknown` without one)."""
    return latest_snapshot(customer_features, customers, cutoff)["rfm_tier"].fillna(UNKNOWN)


def customer_segments(
    history: pd.DataFrame,
    customers: pd.Index,
    cutoff: pd.Timestamp,
    customer_features: pd.DataFrame | None,
    params: dict[str, Any],
) -> pd.DataFrame:
    """One row per customer: `tier`, `lifecycle` (new: first purchase within `new_customer_days` of
    the cutoff) and `country` (the `countries` largest among `customers`, the rest `other`)."""
    first = history.groupby(s.CUSTOMER)[s.TS].min().reindex(customers)
    new = first >= cutoff - pd.Timedelta(days=int(params.get("new_customer_days", 90)))
    country = latest_country(history).reindex(customers)
    counts = country.value_counts().sort_index().sort_values(ascending=False, kind="stable")  # ties: by name
    largest = counts.index[: int(params.get("countries", 3))]
    group = country.where(country.isin(largest), OTHER).where(country.notna(), UNKNOWN)
    tier = (
        loyalty_tier(customer_features, customers, cutoff)
        if customer_features is not None
        else pd.Series(UNKNOWN, index=customers)
    )
    return pd.DataFrame(
        {"tier": tier.to_numpy(), "lifecycle": new.map({True: "new", False: "returning"}).to_numpy(), "country": group},
        index=customers,
    )
