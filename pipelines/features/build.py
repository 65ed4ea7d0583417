"""The `features` step: clean interactions -> the timestamped Parquet sources of the Feast repo."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core import schema as s
from pipelines.core.files import write_json, write_parquet
from pipelines.data.split import Windows
from pipelines.features.customer import customer_features
from pipelines.features.customer_product import customer_product_features
from pipelines.features.history import COLUMNS as HISTORY_COLUMNS
from pipelines.features.history import EVENT_TS, History, snapshot_dates, within_reach
from pipelines.features.product import product_features

log = logging.getLogger(__name__)
UTC_COLUMNS = (EVENT_TS, "first_purchase", "last_purchase")  # DuckDB reads tz-aware timestamps in us, not ns


def feature_tables(clean: pd.DataFrame, windows: Windows, params: dict[str, Any]) -> Iterator[tuple[str, pd.DataFrame]]:
    """The three feature sources (name, frame) one at a time, snapshots stamped every `every_days` back
    from as_of and at every cutoff (with `snapshots: latest`, only those the test cutoff's and the
    as-of's joins reach). Pass `clean` without keeping a reference (as `features_stage`
    does) and it is freed once reduced; drop each table once used and memory holds one at a time."""
    dates = snapshot_dates(
        clean[s.TS].min(), windows.as_of, int(params["every_days"]), [b[0] for b in windows.label_windows().values()]
    )
    if params["snapshots"] == "latest":  # a run that trains nothing joins at the test cutoff and the as-of only
        dates = within_reach(dates, [windows.test_start, windows.as_of])
    h = History.of(clean.loc[clean[s.TS] < windows.as_of])
    del clean  # the largest frame: the snapshots need only the History
    builders: dict[str, Callable[[], pd.DataFrame]] = {
        "customer": lambda: customer_features(h, dates, params),
        "product": lambda: product_features(h, dates, params),
        "customer_product": lambda: customer_product_features(h),
    }
    for name, build in builders.items():
        frame = build()
        for col in UTC_COLUMNS:
            if col in frame:
                frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        yield name, frame


def build_features(clean: pd.DataFrame, windows: Windows, params: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The three feature sources by name (`feature_tables`, all in memory)."""
    return dict(feature_tables(clean, windows, params))


def read_history_columns(path: str | Path) -> pd.DataFrame:
    """The clean interactions' columns a `History` reads (the optional ones where present)."""
    present = set(pq.read_schema(path).names)
    clean = pd.read_parquet(path, columns=[c for c in HISTORY_COLUMNS if c in present])
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps the read's buffers (~1.3 GiB at 10M) otherwise
    return clean


def features_stage(
    clean_path: str | Path, windows: Windows, out_dir: str | Path, params: dict[str, Any], metrics_path: str | Path
) -> dict[str, Any]:
    """Write `customer.parquet`, `product.parquet` and `customer_product.parquet` and their row counts."""
    start = time.perf_counter()
    summary: dict[str, Any] = {"every_days": int(params["every_days"])}
    for name, frame in feature_tables(read_history_columns(clean_path), windows, params):  # no reference kept to clean
        write_parquet(frame, Path(out_dir) / f"{name}.parquet")
        summary[name] = {
            "rows": len(frame),
            "snapshots": int(frame[EVENT_TS].nunique()) if len(frame) else 0,
            "columns": len(frame.columns),
        }
    write_json(summary, metrics_path)
    log.info("features: built in %.1f s: %s", time.perf_counter() - start, summary)
    return summary
