"""Drift benchmark: does monitoring stay quiet on a stationary shop, and catch each planted drift on its first day?

    .venv/bin/python bench/drift.py [--rows 40000] [--days 30] [--out /tmp/shoprec-drift]

The shop is the synthetic generator with its yearly season switched off (`seasonality: 0`): the
weekly rhythm stays, and new customers and items keep arriving at a steady rate. A weekly run
(train, gate, publish) at `--start`, then `--days` consecutive daily runs: the daily DAG's stages up
to `report`, each its dvc.yaml command in the run's directory, through the same `run_stage` the
Airflow tasks call (the stages after `report` do not change what monitoring says). A day is a
false alarm when its first screen (`metrics/drift.json` -> first_screen) flags anything: an input
check's alarm or a drifted ranker feature. Then each planted drift, one at a time, in the raw rows
of the last day before one daily run's as-of date (its first day), in a project of its own with the
same published model; it is detected when that run's first screen names the expected input check.

The gate's `beat_sources_on` check is off here (as in tests/e2e/test_airflow.py): on a small shop,
whether the weekly model beats buy-again hangs on a few customers, and this is about monitoring.
Prints JSON, then its figures last: `false_alarm_days=<n>/<days> detected=<n>/<planted>`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipelines.core.config import load_params
from pipelines.data.synthetic import generate
from pipelines.orchestration.runs import prepare, run_stage
from pipelines.orchestration.tasks import dag_stages

CHECKOUT = Path(__file__).resolve().parents[1]
DAILY, WEEKLY = "shoprec_daily", "shoprec_weekly_retrain"
DAY_COL = "InvoiceDate"


def day_rows(raw: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    stamp = pd.to_datetime(raw[DAY_COL])
    return (stamp >= day) & (stamp < day + pd.Timedelta(days=1))


def price_change(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Every item of the day's most bought category costs 40% more."""
    on = day_rows(raw, day)
    category = raw.loc[on, "Category"].value_counts().index[0]
    out = raw.copy()
    out.loc[on & (raw["Category"] == category), "UnitPrice"] *= 1.4
    return out


def new_country(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Customers of a country never seen before place a tenth of the day's orders."""
    on = raw[day_rows(raw, day) & raw["CustomerID"].notna()]
    orders = on["InvoiceNo"].unique()
    picked = on[on["InvoiceNo"].isin(rng.choice(orders, max(1, len(orders) // 10), replace=False))].copy()
    picked["Country"] = "Japan"
    picked["CustomerID"] = 900_000.0 + pd.factorize(picked["InvoiceNo"])[0]
    picked["InvoiceNo"] = "J" + picked["InvoiceNo"].astype(str)
    return pd.concat([raw, picked], ignore_index=True)


def catalogue_swap(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Half the items sold that day come under new stock codes (a re-coded catalogue)."""
    on = day_rows(raw, day)
    codes = raw.loc[on, "StockCode"].unique()
    swapped = set(rng.choice(codes, len(codes) // 2, replace=False))
    out = raw.copy()
    hit = on & raw["StockCode"].isin(swapped)
    out.loc[hit, "StockCode"] = "N" + raw.loc[hit, "StockCode"].astype(str)
    return out


def popularity_shock(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Three established items (mid-popularity) each bought in 25 extra orders of known customers."""
    before = raw[pd.to_datetime(raw[DAY_COL]) < day]
    counts = before["StockCode"].value_counts()
    items = counts.index[20:23]
    lines = before[before["StockCode"].isin(items)].drop_duplicates("StockCode")
    extra = lines.loc[lines.index.repeat(25)].copy()
    extra[DAY_COL] = (day + pd.Timedelta(hours=12)).strftime("%Y-%m-%d %H:%M:%S")
    extra["CustomerID"] = rng.choice(before["CustomerID"].dropna().unique(), len(extra))
    extra["InvoiceNo"] = [f"S{n}" for n in range(len(extra))]
    return pd.concat([raw, extra], ignore_index=True)


def quantities_one(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Broken ingest: every quantity of the day exported as 1."""
    out = raw.copy()
    out.loc[day_rows(raw, day) & (raw["Quantity"] > 0), "Quantity"] = 1
    return out


def columns_shifted(raw: pd.DataFrame, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Broken ingest: the day's quantity and unit price columns swapped (a shifted export)."""
    out = raw.copy()
    on = day_rows(raw, day)
    out.loc[on, "Quantity"] = np.maximum(1, np.round(raw.loc[on, "UnitPrice"])).astype(raw["Quantity"].dtype)
    out.loc[on, "UnitPrice"] = raw.loc[on, "Quantity"].abs().astype(float)
    return out


# planted drift: (how it is planted, the input checks that name it)
PLANTED: dict[str, tuple[Callable, set[str]]] = {
    "price change in a category": (price_change, {"repriced_share"}),
    "a new country's customers": (new_country, {"new_country_share"}),
    "catalogue swap": (catalogue_swap, {"new_item_share"}),
    "popularity shock on a few items": (popularity_shock, {"demand_shock"}),
    "broken ingest: all quantities 1": (quantities_one, {"quantity"}),
    "broken ingest: quantity and price columns swapped": (columns_shifted, {"quantity", "unit_price"}),
}


def project(root: Path, raw: Path) -> Path:
    """A scratch project: the checkout's params (data.raw = `raw`) and feature repo."""
    root.mkdir(parents=True, exist_ok=True)
    params = load_params(CHECKOUT / "params.yaml")
    params["data"]["raw"] = str(raw)
    params["gate"]["beat_sources_on"] = None
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(root / "feature_repo", ignore_errors=True)
    shutil.copytree(CHECKOUT / "feature_repo", root / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run(root: Path, dag_id: str, as_of: pd.Timestamp, until: str | None = None) -> dict:
    """One scheduled run's stages (up to `until`), as the Airflow tasks run them; its drift summary."""
    run_ = prepare(root, dag_id, as_of.to_pydatetime())
    names = dag_stages(dag_id)
    for name in names[: names.index(until) + 1] if until else names:
        run_stage(run_, name)
    return json.loads((run_ / "metrics/drift.json").read_text())


def flagged(drift: dict) -> list[str]:
    """What the first screen flags: input checks that alarm and drifted features."""
    return [c["input"] for c in drift["inputs"]["checks"] if c["alarm"]] + drift["drifted_features"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--start", default="2011-09-01", help="the weekly run's as-of date; daily runs follow it")
    ap.add_argument("--plant-on", default="2011-09-21", help="the planted runs' as-of (planted on the day before)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("/tmp/shoprec-drift"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    shutil.rmtree(args.out, ignore_errors=True)
    raw_path = args.out / "stationary.parquet"
    generate(raw_path, {"seed": args.seed, "rows": args.rows, "seasonality": 0.0})
    base = project(args.out / "stationary", raw_path)
    start = pd.Timestamp(args.start)
    run(base, WEEKLY, start)
    days = []
    for i in range(1, args.days + 1):
        as_of = start + pd.Timedelta(days=i)
        drift = run(base, DAILY, as_of, until="report")
        days.append({"as_of": str(as_of.date()), "flagged": flagged(drift), **drift["first_screen"]})
        print(f"{as_of.date()}: {drift['first_screen']['headline']}", flush=True)
    raw = pd.read_parquet(raw_path)
    plant_on = pd.Timestamp(args.plant_on)
    planted = []
    for i, (name, (plant, expected)) in enumerate(PLANTED.items()):
        root = args.out / f"planted_{i}"
        variant = plant(raw, plant_on - pd.Timedelta(days=1), np.random.default_rng([args.seed, i]))
        variant.to_parquet(args.out / f"planted_{i}.parquet", index=False)
        shutil.copytree(
            base / "published", project(root, args.out / f"planted_{i}.parquet") / "published", symlinks=True
        )
        drift = run(root, DAILY, plant_on, until="report")
        named = sorted(expected & set(flagged(drift)))
        planted.append({"drift": name, "detected": bool(named), "named": named, **drift["first_screen"]})
        print(f"planted {name}: {drift['first_screen']['headline']}", flush=True)
    false_alarms = sum(bool(d["flagged"]) for d in days)
    detected = sum(p["detected"] for p in planted)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "days": days,
                "planted": planted,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    print(f"false_alarm_days={false_alarms}/{args.days} detected={detected}/{len(planted)}")


if __name__ == "__main__":
    main()
