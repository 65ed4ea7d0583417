"""Benchmark: the Feast feature store on real or synthetic data.

    .venv/bin/python bench/features.py --data ../shared/data/online_retail.parquet
    .venv/bin/python bench/features.py --synthetic-rows 5400000     # 10x Online Retail
    .venv/bin/python bench/features.py --data ... --store production  # Redis + PostgreSQL registry

Runs the pipeline's own functions in a scratch project: ingest, the `features` step, apply,
materialisation into an empty online store, a point-in-time retrieval of a training set shaped
like the ranker's (every customer warm at the validation cutoff x 300 candidates: the items they
bought, then the most popular ones), and online reads: one customer's profile and 100 customer x
product pairs (with the request-time view), `--requests` times each after a warm-up.
Prints and writes (--out) a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core.config import load_params
from pipelines.data.ingest import ingest
from pipelines.data.split import make_windows, warm_customers, window
from pipelines.data.synthetic import generate
from pipelines.features.build import features_stage
from pipelines.features.store import apply, historical_features, materialize, online_features, open_store

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES_PER_CUSTOMER = 300


def training_entities(clean: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Warm customers at `cutoff` x 300 items: their own past items first, then the most popular."""
    history, future = window(clean, None, cutoff), window(clean, cutoff, end)
    customers = warm_customers(history, future)
    popular = history["item_id"].value_counts().index[:CANDIDATES_PER_CUSTOMER].to_numpy()
    own = history.loc[history["customer_id"].isin(customers)].drop_duplicates(["customer_id", "item_id"])
    own = own.groupby("customer_id").head(CANDIDATES_PER_CUSTOMER)[["customer_id", "item_id"]]
    fill = pd.DataFrame(
        {"customer_id": np.repeat(customers.to_numpy(), len(popular)), "item_id": np.tile(popular, len(customers))}
    )
    rows = pd.concat([own, fill], ignore_index=True).drop_duplicates(["customer_id", "item_id"])
    rows = rows.groupby("customer_id").head(CANDIDATES_PER_CUSTOMER).reset_index(drop=True)
    return rows.assign(event_timestamp=cutoff)


def latencies(call, requests: int) -> dict[str, float]:
    for _ in range(10):
        call()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2)}


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - start, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="Raw export (Online Retail layout); default: synthetic")
    ap.add_argument("--synthetic-rows", type=int, default=5_400_000)
    ap.add_argument("--store", choices=["local", "production"], default="local")
    ap.add_argument("--batch-size", type=int, help="online_write_batch_size (default: params.yaml)")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--workdir", type=Path, help="Scratch project directory (default: a temporary one)")
    ap.add_argument("--out", type=Path, help="Write the JSON report here")
    args = ap.parse_args()

    os.environ.setdefault("SHOPREC_FEAST_PROJECT", "shoprec_bench")  # production: keep off the real project
    work = Path(args.workdir or tempfile.mkdtemp(prefix="shoprec-features-"))
    shutil.rmtree(work / "feature_repo", ignore_errors=True)
    shutil.copytree(ROOT / "feature_repo", work / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(work / "data" / "feast", ignore_errors=True)
    params = load_params(ROOT / "params.yaml")
    report: dict = {"store": args.store}

    raw = args.data
    if raw is None:
        raw = work / "raw.parquet"
        _, report["generate_s"] = timed(generate, raw, {**params["synthetic"], "rows": args.synthetic_rows})
    quality, report["ingest_s"] = timed(ingest, raw, work / "clean", params, work / "quality.json")
    report.update(source=str(args.data or f"synthetic {args.synthetic_rows:,} rows"), clean_rows=quality["rows_out"])
    clean = pd.read_parquet(work / "clean" / "interactions.parquet")
    windows = make_windows(clean["timestamp"], params["split"])

    fparams = {**params["features"], "repo": str(work / "feature_repo"), "store": args.store}
    if args.batch_size:
        fparams["online_write_batch_size"] = args.batch_size
    clean_path, sources = work / "clean" / "interactions.parquet", work / "data" / "features"
    report["sources"], report["features_build_s"] = timed(
        features_stage, clean_path, windows, sources, fparams, work / "features.json"
    )
    store = open_store(fparams)
    _, report["apply_s"] = timed(apply, store, int(fparams["every_days"]))
    report["materialize"], report["materialize_s"] = timed(materialize, store, windows.as_of)
    rows = sum(v["rows"] for v in report["materialize"].values())
    report["materialize_rows_per_s"] = round(rows / report["materialize_s"])
    save(report, args.out)

    entities = training_entities(clean, windows.valid_start, windows.test_start)
    joined, seconds = timed(historical_features, store, entities)
    report["historical"] = {
        "entity_rows": len(entities),
        "customers": int(entities["customer_id"].nunique()),
        "seconds": seconds,
        "rows_per_s": round(len(entities) / seconds),
        "feature_columns": len(joined.columns) - 3,
    }
    del joined
    save(report, args.out)

    customers = pd.read_parquet(work / "data" / "features" / "customer.parquet", columns=["customer_id"])
    rng = np.random.default_rng(0)
    ids = rng.choice(customers["customer_id"].unique(), args.requests + 10)
    pairs = pd.read_parquet(work / "data" / "features" / "customer_product.parquet", columns=["customer_id", "item_id"])
    ids_iter, pair_batches = iter(ids), iter(range(10**9))

    def one_customer():
        return online_features(store, pd.DataFrame({"customer_id": [next(ids_iter)]}), "customer_profile")

    def hundred_pairs():
        start = next(pair_batches) * 100 % max(len(pairs) - 100, 1)
        return online_features(store, pairs.iloc[start : start + 100], "ranker", windows.as_of)

    report["online_one_customer"] = latencies(one_customer, args.requests)
    report["online_100_pairs"] = latencies(hundred_pairs, min(args.requests, 200))
    save(report, args.out)
    print(json.dumps(report, indent=2, default=str))


def save(report: dict, out: Path | None) -> None:
    """Write what is measured so far (a run that dies late keeps its earlier figures)."""
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if out:
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
