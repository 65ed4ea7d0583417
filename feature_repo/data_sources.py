"""Offline sources: the Parquet files the `features` stage writes (pipelines/features/build.py).

Paths are relative to this directory. Every row is stamped at a midnight and built from
events strictly before it, so point-in-time joins never see the future.
"""

from feast import Field, FileSource, RequestSource
from feast.types import UnixTimestamp

customer_source = FileSource(
    name="customer_snapshots",
    path="../data/features/customer.parquet",
    timestamp_field="event_timestamp",
    description="Weekly customer snapshots (plus the split's cutoffs).",
)

product_source = FileSource(
    name="product_snapshots",
    path="../data/features/product.parquet",
    timestamp_field="event_timestamp",
    description="Weekly product snapshots (plus the split's cutoffs).",
)

customer_product_source = FileSource(
    name="customer_product_events",
    path="../data/features/customer_product.parquet",
    timestamp_field="event_timestamp",
    description="One row per customer, item and purchase day, stamped at the next midnight.",
)

request_time = RequestSource(
    name="request_time",
    schema=[Field(name="as_of", dtype=UnixTimestamp)],
    description="When the features are asked for: the training cutoff offline, now online.",
)
