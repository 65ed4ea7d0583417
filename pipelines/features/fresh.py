"""Fresh online features: purchases posted to the API (`POST /events`) update the Feast online store
at once, so online reads see a purchase made at 10:00 before the nightly run.

What a purchase changes, on top of the online row (the last materialised snapshot or an earlier
update): the customer's `recency_days` (0, stamped at the purchase), orders and spend over 30/90/365
days and distinct items; the customer x product row's times and units bought, first and last
purchase, and the mean interval between its purchases. Everything else in the rows stays as the
snapshot has it until the next run rebuilds the features from the event log and the export.
An order counts once per batch (its lines in one request); events without an order id count as an
order each, as ingest makes them (pipelines/data/events.py::as_interactions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.features.history import EVENT_TS

if TYPE_CHECKING:
    from feast import FeatureStore

    from pipelines.data.events import Event

CUSTOMER_VIEW, PAIR_VIEW = "customer", "customer_product"
WINDOWS = ("30d", "90d", "365d")  # a fresh purchase falls in every window


def purchases(events: list[Event]) -> pd.DataFrame:
    """The batch's purchases: customer, item, timestamp (UTC), order (own id where none), units, spend."""
    rows = [
        (e.customer_id, e.item_id, e.timestamp, e.order_id or f"event-{n}", e.quantity or 1.0, e.unit_price)
        for n, e in enumerate(events)
        if e.type == "purchase"
    ]
    frame = pd.DataFrame(rows, columns=[s.CUSTOMER, s.ITEM, s.TS, s.ORDER, s.QUANTITY, s.PRICE])
    frame[s.TS] = pd.to_datetime(frame[s.TS], utc=True)
    frame["spend"] = (frame[s.QUANTITY] * frame[s.PRICE].astype(float)).fillna(0.0)
    return frame


def fresh_rows(customers: pd.DataFrame, pairs: pd.DataFrame, bought: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customer and customer x product rows to write, from the current online rows (`customers`
    by customer, `pairs` by customer and item; nulls where the store has none) and the purchases."""
    per_pair = bought.groupby([s.CUSTOMER, s.ITEM]).agg(
        orders=(s.ORDER, "nunique"), units=(s.QUANTITY, "sum"), first=(s.TS, "min"), last=(s.TS, "max")
    )
    p = pairs.set_index([s.CUSTOMER, s.ITEM]).reindex(per_pair.index)
    new_item = p["times_bought"].isna()
    times = p["times_bought"].fillna(0) + per_pair["orders"]
    first = pd.to_datetime(p["first_purchase"], utc=True).fillna(per_pair["first"])
    p["times_bought"] = times.astype("int64")
    p["units_bought"] = p["units_bought"].fillna(0.0) + per_pair["units"]
    p["first_purchase"], p["last_purchase"] = first, per_pair["last"]
    span_days = (per_pair["last"] - first).dt.total_seconds() / 86400.0
    p["mean_repurchase_interval_days"] = np.where(times >= 2, span_days / (times - 1), np.nan)
    p[EVENT_TS] = per_pair["last"]

    per_customer = bought.groupby(s.CUSTOMER).agg(
        orders=(s.ORDER, "nunique"), spend=("spend", "sum"), last=(s.TS, "max")
    )
    c = customers.set_index(s.CUSTOMER).reindex(per_customer.index)
    c["recency_days"] = 0.0
    for window in WINDOWS:
        c[f"orders_{window}"] = (c[f"orders_{window}"].fillna(0) + per_customer["orders"]).astype("int64")
        c[f"spend_{window}"] = c[f"spend_{window}"].fillna(0.0) + per_customer["spend"]
    added = new_item.groupby(level=s.CUSTOMER).sum().reindex(per_customer.index, fill_value=0)
    c["distinct_items"] = (c["distinct_items"].fillna(0) + added).astype("int64")
    c[EVENT_TS] = per_customer["last"]
    return c.reset_index(), p.reset_index()


def _online_rows(store: FeatureStore, view: str, keys: pd.DataFrame) -> pd.DataFrame:
    names = [f.name for f in store.get_feature_view(view).features]
    response = store.get_online_features(
        features=[f"{view}:{n}" for n in names], entity_rows=keys.to_dict("records")
    ).to_df()
    return response[[*keys.columns, *names]]


def update_online(store: FeatureStore, events: list[Event]) -> dict[str, Any]:
    """Write the batch's purchases into the online store (read the rows they change, update, write
    them back whole: Feast writes a view's full rows). Returns how many rows of each view it wrote."""
    bought = purchases(events)
    if bought.empty:
        return {CUSTOMER_VIEW: 0, PAIR_VIEW: 0}
    pair_keys = bought[[s.CUSTOMER, s.ITEM]].drop_duplicates().reset_index(drop=True)
    customer_keys = pair_keys[[s.CUSTOMER]].drop_duplicates().reset_index(drop=True)
    customers, pairs = fresh_rows(
        _online_rows(store, CUSTOMER_VIEW, customer_keys), _online_rows(store, PAIR_VIEW, pair_keys), bought
    )
    store.write_to_online_store(CUSTOMER_VIEW, customers)
    store.write_to_online_store(PAIR_VIEW, pairs)
    return {CUSTOMER_VIEW: len(customers), PAIR_VIEW: len(pairs)}
