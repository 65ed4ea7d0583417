"""Customer segments that metrics are broken down by: loyalty tier, new vs returning, country group.

Every segment is known at the cutoff: the tier is the RFM tier of the customer's feature snapshot
at or before the cutoff, lifecycle and country come from purchases before it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.files import run_starts
from pipelines.features.history import EVENT_TS, SNAPSHOT_TTL

if TYPE_CHECKING:
    import pyarrow as pa

UNKNOWN = "unknown"
OTHER = "other"


def latest_country(history: pd.DataFrame) -> pd.Series:
    """Each customer's country on their latest purchase with a known country (index: customer id)."""
    if s.COUNTRY not in history:
        return pd.Series(dtype=object, index=pd.Index([], name=s.CUSTOMER))
    lines = history[[s.CUSTOMER, s.TS, s.COUNTRY]]  # these columns only: the others are not copied by the filter
    with_country = lines[lines[s.COUNTRY].notna()].reset_index(drop=True)
    latest = with_country.groupby(s.CUSTOMER)[s.TS].idxmax()
    return with_country.loc[latest.to_numpy(), s.COUNTRY].set_axis(latest.index)


def latest_snapshot(
    customer_features: str | Path | pd.DataFrame, customers: pd.Index, cutoff: pd.Timestamp, columns: list[str]
) -> pd.DataFrame:
    """`columns` of each customer's latest feature snapshot stamped at or before `cutoff` and at most
    `SNAPSHOT_TTL` before it, as the ranker's point-in-time join reads it (the row as a whole: a null is
    not filled from an earlier snapshot), one row per customer of `customers`, NaN where none.

    `customer_features` is the customer feature source, a file (only those columns and the row groups
    within its reach are read, and the work is done in Arrow: it holds every snapshot) or a frame.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = [s.CUSTOMER, EVENT_TS, *columns]
    if isinstance(customer_features, pd.DataFrame):
        frame = customer_features[wanted].assign(**{EVENT_TS: pd.to_datetime(customer_features[EVENT_TS])})
        held = pa.Table.from_pandas(frame, preserve_index=False)
        stamp = held.schema.field(EVENT_TS).type
    else:
        held, stamp = None, pq.read_schema(customer_features).field(EVENT_TS).type
    reach = (pc.field(EVENT_TS) <= _stamp(cutoff, stamp)) & (pc.field(EVENT_TS) >= _stamp(cutoff - SNAPSHOT_TTL, stamp))
    table = held.filter(reach) if held is not None else pq.read_table(customer_features, columns=wanted, filters=reach)
    wanted_ids = pa.array(list(customers), type=table.schema.field(s.CUSTOMER).type)
    table = table.filter(pc.is_in(table.column(s.CUSTOMER), wanted_ids))
    table = table.take(pc.sort_indices(table, [(s.CUSTOMER, "ascending"), (EVENT_TS, "ascending")]))
    last = np.r_[run_starts(table.column(s.CUSTOMER))[1:] - 1, table.num_rows - 1] if table.num_rows else []
    latest = table.take(pa.array(last, type=pa.int64())).to_pandas().set_index(s.CUSTOMER)
    return latest[columns].reindex(customers)


def _stamp(cutoff: pd.Timestamp, stamp: pa.DataType) -> pa.Scalar:
    """`cutoff` as a scalar of the timestamp column's type (naive cutoffs are UTC)."""
    import pyarrow as pa

    ts = pd.Timestamp(cutoff)
    if stamp.tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    elif stamp.tz is None and ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return pa.scalar(ts, type=stamp)


def loyalty_tier(customer_features: str | Path | pd.DataFrame, customers: pd.Index, cutoff: pd.Timestamp) -> pd.Series:
    """The RFM tier of each customer's latest snapshot at or before `cutoff` (`unknown` without one)."""
    return latest_snapshot(customer_features, customers, cutoff, ["rfm_tier"])["rfm_tier"].fillna(UNKNOWN)


def customer_segments(
    history: pd.DataFrame,
    customers: pd.Index,
    cutoff: pd.Timestamp,
    customer_features: str | Path | pd.DataFrame | None,
    params: dict[str, Any],
) -> pd.DataFrame:
    """One row per customer: `tier`, `lifecycle` (new: first purchase within `new_customer_days` of
    the cutoff) and `country` (the `countries` largest among `customers`, the rest `other`)."""
    first = history.groupby(s.CUSTOMER)[s.TS].min().reindex(customers)
    new = first >= cutoff - pd.Timedelta(days=int(params["new_customer_days"]))
    country = latest_country(history).reindex(customers)
    counts = country.value_counts().sort_index().sort_values(ascending=False, kind="stable")  # ties: by name
    largest = counts.index[: int(params["countries"])]
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
