"""Backtest: train on everything before the last N days, recommend, score on those days.

A stable contract for benchmarks and outside checks: `DIR/recommendations.parquet` with
user_id, item_id, rank (1 = best) and score, ids as in the input file, for every customer
with purchases both before and inside the test window; `DIR/metrics.json` and
`DIR/explanations.parquet` (why each item is recommended) beside it.
It composes the same step functions as the DVC pipeline, in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.candidates.union import candidates_at_cutoffs, customer_samples
from pipelines.core import schema as s
from pipelines.core.files import write_json, write_parquet
from pipelines.data.ingest import clean, load_canonical
from pipelines.data.split import Windows, make_windows, window
from pipelines.evaluation.evaluate import Catalogue, evaluate, model_lists
from pipelines.features.build import build_features
from pipelines.features.store import scratch_store
from pipelines.ranking.dataset import labelled_windows, training_windows
from pipelines.ranking.explain import contribution_method
from pipelines.ranking.inference import recommend
from pipelines.ranking.lists import source_sizes
from pipelines.ranking.model import fit, importance


@dataclass
class Prepared:
    """What the backtest's ranker trains and scores on: the cleaned rows, windows, candidates and labelled rows."""

    cleaned: pd.DataFrame
    windows: Windows
    candidates: dict[str, Any]
    inputs: dict[str, Any]
    numeric_ids: set[str]
    timings: dict[str, float]


def prepare(
    data_path: str | Path, test_days: int, out_dir: Path, params: dict[str, Any], as_of: str | None = None
) -> Prepared:
    """Clean the export (cut at `as_of`, default: keep it all), split it, generate candidates, build the
    features into a scratch Feast store under `out_dir` and label every cutoff's candidates."""
    started = time.perf_counter()
    raw, _, numeric_ids = load_canonical(data_path, params["data"])
    cleaned = clean(raw, params["ingest"]).frame
    cleaned = s.validate_clean(cleaned, str(data_path))
    if as_of is not None:
        cleaned = window(cleaned, None, pd.Timestamp(as_of))
    w = make_windows(cleaned[s.TS], {**params["split"], "as_of": as_of, "test_days": test_days})
    timings = {}
    cands = candidates_at_cutoffs(cleaned, w, params["candidates"], **customer_samples(params))
    timings["candidates"] = round(time.perf_counter() - started, 2)
    local = {**params["features"], "store": "local"}
    store = scratch_store(out_dir / "_feast", build_features(cleaned, w, local), local)
    timings["features"] = round(time.perf_counter() - started - sum(timings.values()), 2)
    names = list(params["candidates"]["sources"])
    inputs = labelled_windows({n: cands[n] for n in w.label_windows()}, cleaned, w, names, store)
    return Prepared(cleaned, w, cands, inputs, numeric_ids, timings)


def backtest(
    data_path: str | Path,
    test_days: int,
    k: int,
    out_dir: str | Path,
    params: dict[str, Any],
    as_of: str | None = None,
) -> dict[str, Any]:
    """Run the backtest and write its two files; returns the metrics. `as_of` cuts the data there first
    (e.g. at the real test window's start, to measure on a validation window)."""
    started, out_dir = time.perf_counter(), Path(out_dir)
    method = contribution_method(params)  # a bad setting fails now, not after training
    prep = prepare(data_path, test_days, out_dir, params, as_of)
    cleaned, w, cands, inputs, timings = prep.cleaned, prep.windows, prep.candidates, prep.inputs, prep.timings
    names = list(params["candidates"]["sources"])
    train = training_windows(inputs)
    booster, model = fit(train, inputs["valid"], params["ranker"])
    timings["ranker_fit"] = model["seconds"]

    test = window(cleaned, w.test_start, w.as_of)
    test_cands, x_test, _ = inputs["test"]
    customers = test_cands[s.CUSTOMER].unique()
    ks = sorted({*params["evaluate"]["ks"], k})
    recs = recommend(booster, test_cands, x_test, names, max(ks), method=method)  # every k; the file keeps k
    lists = model_lists(recs, [test_cands], source_sizes(params["candidates"]["sources"]), max(ks))
    catalogue = Catalogue.of(window(cleaned, None, w.test_start), cleaned[s.ITEM].nunique())
    metrics = evaluate(lists, test[test[s.CUSTOMER].isin(customers)], ks, catalogue)
    recs = recs[recs["rank"] <= k]
    metrics.update(
        {
            "windows": w.as_dict(),
            "model": model,
            "feature_importance": importance(booster).head(15).to_dict("records"),
            "candidates": cands["metrics"],
            "selection": cands["selection"],
            "timings": timings,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )

    out = recs.rename(columns={s.CUSTOMER: "user_id", s.ITEM: "item_id"})
    for col, name in ((s.CUSTOMER, "user_id"), (s.ITEM, "item_id")):
        if col in prep.numeric_ids:  # give numeric ids back as numbers, e.g. CustomerID 17850.0 -> 17850
            out[name] = pd.to_numeric(out[name])
    write_parquet(out[["user_id", "item_id", "rank", "score"]], out_dir / "recommendations.parquet")
    write_parquet(out[["user_id", "item_id", "sources", "reasons", "contributions"]], out_dir / "explanations.parquet")
    write_json(metrics, out_dir / "metrics.json")
    return metrics
