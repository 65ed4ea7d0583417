"""Feature views over the sources, and the request-time view of days since the last purchase.

TTLs: customer and product snapshots are rewritten every `features.every_days` (< 35), so a row
older than 35 days belongs to a customer or item gone quiet for a year and is not served.
A customer x product row holds running totals and stays valid for two years.
"""

from datetime import timedelta

import pandas as pd
from data_sources import customer_product_source, customer_source, product_source, request_time
from entities import customer, product
from feast import FeatureView, Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String, UnixTimestamp

customer_features = FeatureView(
    name="customer",
    entities=[customer],
    ttl=timedelta(days=35),
    source=customer_source,
    online=True,
    schema=[
        Field(name="recency_days", dtype=Float64),
        Field(name="tenure_days", dtype=Float64),
        Field(name="orders_30d", dtype=Int64),
        Field(name="spend_30d", dtype=Float64),
        Field(name="orders_90d", dtype=Int64),
        Field(name="spend_90d", dtype=Float64),
        Field(name="orders_365d", dtype=Int64),
        Field(name="spend_365d", dtype=Float64),
        Field(name="basket_size", dtype=Float64),
        Field(name="basket_value", dtype=Float64),
        Field(name="distinct_items", dtype=Int64),
        Field(name="repurchase_rate", dtype=Float64),
        Field(name="top_category", dtype=String),
        Field(name="top_category_share", dtype=Float64),
        Field(name="categories", dtype=Int64),
        Field(name="rfm_score", dtype=Int64),
        Field(name="rfm_tier", dtype=String),
        Field(name="behaviour_cluster", dtype=Int64),
        Field(name="profile_keywords", dtype=String),
    ],
    description="RFM over 30/90/365 days, basket, tenure, category affinity, loyalty segments, keywords.",
)

product_features = FeatureView(
    name="product",
    entities=[product],
    ttl=timedelta(days=35),
    source=product_source,
    online=True,
    schema=[
        Field(name="age_days", dtype=Float64),
        Field(name="units_7d", dtype=Float64),
        Field(name="buyers_7d", dtype=Int64),
        Field(name="units_30d", dtype=Float64),
        Field(name="buyers_30d", dtype=Int64),
        Field(name="units_90d", dtype=Float64),
        Field(name="buyers_90d", dtype=Int64),
        Field(name="trend_7_30", dtype=Float64),
        Field(name="trend_30_90", dtype=Float64),
        Field(name="price", dtype=Float64),
        Field(name="repeat_rate", dtype=Float64),
        Field(name="units_next4w_last_year", dtype=Float64),
        Field(name="buyers_next4w_last_year", dtype=Float64),
        Field(name="category", dtype=String),
    ],
    description="Demand over 7/30/90 days and its trend, price, repeat rate, age, last year's season.",
)

customer_product_features = FeatureView(
    name="customer_product",
    entities=[customer, product],
    ttl=timedelta(days=730),
    source=customer_product_source,
    online=True,
    schema=[
        Field(name="times_bought", dtype=Int64),
        Field(name="units_bought", dtype=Float64),
        Field(name="first_purchase", dtype=UnixTimestamp),
        Field(name="last_purchase", dtype=UnixTimestamp),
        Field(name="mean_repurchase_interval_days", dtype=Float64),
    ],
    description="What the customer has bought of this item so far.",
)


@on_demand_feature_view(
    sources=[customer_product_features, request_time],
    schema=[
        Field(name="days_since_last_purchase", dtype=Float64),
        Field(name="repurchase_due_ratio", dtype=Float64),
    ],
    description="Days since the customer last bought the item, at request time, and that over their usual interval.",
)
def customer_product_recency(inputs: pd.DataFrame) -> pd.DataFrame:
    as_of = pd.to_datetime(inputs["as_of"], utc=True)
    last = pd.to_datetime(inputs["last_purchase"], utc=True)
    days = (as_of - last).dt.total_seconds() / 86400.0
    out = pd.DataFrame(index=inputs.index)
    out["days_since_last_purchase"] = days.astype("float64")
    out["repurchase_due_ratio"] = (days / inputs["mean_repurchase_interval_days"]).astype("float64")
    return out
