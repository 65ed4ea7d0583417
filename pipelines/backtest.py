"""Backtest: train on everything before the last N days, recommend, score on those days.

A stable contract for benchmarks and outside checks: `DIR/recommendations.parquet` with
user_id, item_id, rank (1 = best) and score, ids as in the input file, for every customer
with purchases both before and inside the test window; `DIR/metrics.json` beside it.
It composes the same step functions as the DVC pipeline, in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import ranker
from pipelines import schema as s
from pipelines.candidates.union import candidates_at_cutoffs
from pipelines.evaluate import evaluate
from pipelines.files import write_json, write_parquet
from pipelines.ingest import clean, load_canonical
from pipelines.split import make_windows, window


def backtest(
    data_path: str | Path, test_days: int, k: int, out_dir: str | Path, params: dict[str, Any]
) -> dict[str, Any]:
    """Run the backtest and write its two files; returns the metrics."""
    started = time.perf_counter()
    raw, _, numeric_ids = load_canonical(data_path, params.get("data", {}))
    cleaned = clean(raw, params.get("ingest", {})).frame
    cleaned = s.validate_clean(cleaned, str(data_path))
    w = make_windows(cleaned[s.TS], {**params["split"], "as_of": None, "test_days": test_days})
    sizes = ranker.source_sizes(params["candidates"]["sources"])
    cands = candidates_at_cutoffs(cleaned, w, params["candidates"])

    valid = window(cleaned, w.valid_start, w.test_start)
    model = ranker.fit(cands["valid"], valid, sizes, params["ranker"])
    test = window(cleaned, w.test_start, w.as_of)
    customers = cands["test"][s.CUSTOMER].unique()

    ks = sorted({*params["evaluate"]["ks"], k})
    recs = ranker.top_k(cands["test"], ranker.score(model, cands["test"]), max(ks))  # metrics at all k; file keeps k
    metrics = evaluate(
        recs, cands["test"], test[test[s.CUSTOMER].isin(customers)], sizes, ks, cleaned[s.ITEM].nunique()
    )
    recs = recs[recs["rank"] <= k]
    metrics.update(
        {
            "windows": w.as_dict(),
            "model": model,
            "candidates": cands["metrics"],
            "selection": cands["selection"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    )

    out = recs.rename(columns={s.CUSTOMER: "user_id", s.ITEM: "item_id"})
    for col, name in ((s.CUSTOMER, "user_id"), (s.ITEM, "item_id")):
        if col in numeric_ids:  # give numeric ids back as numbers, e.g. CustomerID 17850.0 -> 17850
            out[name] = pd.to_numeric(out[name])
    out_dir = Path(out_dir)
    write_parquet(out[["user_id", "item_id", "rank", "score"]], out_dir / "recommendations.parquet")
    write_json(metrics, out_dir / "metrics.json")
    return metrics
