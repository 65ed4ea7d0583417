"""The `features` step: clean interactions -> the timestamped Parquet sources of the Feast repo."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core import schema as s
from pipelines.core.files import write_json, write_parquet
from pipelines.data.split import Windows
from pipelines.features.customer import customer_features
from pipelines.features.customer_product import customer_product_features
from pipelines.features.history import EVENT_TS, History, snapshot_dates
from pipelines.features.product import product_features

log = logging.getLogger(__name__)
SOURCES = ("customer", "product", "customer_product")
UTC_COLUMNS = (EVENT_TS, "first_purchase", "last_purchase")  # DuckDB reads tz-aware timestamps in us, not ns


def build_features(clean: pd.DataFrame, windows: Windows, params: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The three feature sources, snapshots stamped every `every_days` back from as_of and at every cutoff."""
    h = History.of(clean.loc[clean[s.TS] < windows.as_of])
    dates = snapshot_dates(
        clean[s.TS].min(), windows.as_of, int(params["every_days"]), [b[0] for b in windows.label_windows().values()]
    )
    tables = {
        "customer": customer_features(h, dates, params),
        "product": product_features(h, dates, params),
        "customer_product": customer_product_features(h),
    }
    for frame in tables.values():
        for col in UTC_COLUMNS:
            if col in frame:
                frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    return tables


def features_stage(
    clean_path: str | Path, windows: Windows, out_dir: str | Path, params: dict[str, Any], metrics_path: str | Path
) -> dict[str, Any]:
    """Write `customer.parquet`, `product.parquet` and `customer_product.parquet` and their row counts."""
    start = time.perf_counter()
    tables = build_features(pd.read_parquet(clean_path), windows, params)
    summary: dict[str, Any] = {"every_days": int(params["every_days"])}
    for name in SOURCES:
        frame = tables[name]
        write_parquet(frame, Path(out_dir) / f"{name}.parquet")
        summary[name] = {
            "rows": len(frame),
            "snapshots": int(frame[EVENT_TS].nunique()) if len(frame) else 0,
            "columns": len(frame.columns),
        }
    write_json(summary, metrics_path)
    log.info("features: built in %.1f s: %s", time.perf_counter() - start, summary)
    return summary
