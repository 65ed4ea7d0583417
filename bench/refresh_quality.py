"""What keeping lists costs: a daily run's kept lists against the same customers' lists ranked afresh.

    .venv/bin/python bench/refresh_quality.py --run /tmp/shoprec-scale/rows-1000000/runs/shoprec_daily/2011-12-02

In a daily run's directory left by bench/daily.py (its score ranked the due customers and kept the other
published lists, `publish.reuse_lists`), score again with every customer ranked (`reuse_lists: null`) into
`data/serving-full`, timed, then measure both sets of lists on the purchases of the `--days` after the
run's as-of date (rows of the raw export after it: the run was dated before the data's end):
NDCG@10, hit rate@10 and recall@20 of the kept customers who bought, and of every customer who bought,
with the top-10 overlap of kept and fresh lists. Appended to bench/results/refresh_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import head  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def fresh_score(run: Path) -> float:
    """The run's score stage with every customer ranked, into data/serving-full; its wall time."""
    from pipelines.core.config import load_params
    from pipelines.serving.score import score_stage

    params = load_params(run / "params.yaml")
    params["publish"]["reuse_lists"] = None
    os.chdir(run)
    started = time.perf_counter()
    score_stage(
        "data/split", "data/candidates", "data/features/customer.parquet", "models", "data/serving-full", params
    )
    return time.perf_counter() - started


def compare(run: Path, days: int) -> dict:
    """Both sets of lists on the purchases of the `days` after the run's as-of date."""
    from pipelines.core import schema as s
    from pipelines.evaluation.metrics import ranking_metrics
    from pipelines.serving.refresh import SCORED

    as_of = pd.Timestamp(json.loads((run / "data/split/windows.json").read_text())["as_of"])
    clean = pd.read_parquet(run / "data/clean/interactions.parquet", columns=[s.CUSTOMER, s.ITEM, s.TS])
    future = clean[(clean[s.TS] >= as_of) & (clean[s.TS] < as_of + pd.Timedelta(days=days))]
    daily = pd.read_parquet(run / "data/serving/recommendations.parquet")
    full = pd.read_parquet(run / "data/serving-full/recommendations.parquet")
    kept = pd.Index(daily.loc[daily[SCORED] < as_of, s.CUSTOMER].unique())
    out: dict = {"as_of": str(as_of.date()), "days": days, "customers": int(daily[s.CUSTOMER].nunique())}
    out["kept_customers"] = len(kept)
    for group, members in (("kept", kept), ("all", pd.Index(daily[s.CUSTOMER].unique()))):
        truth = future[future[s.CUSTOMER].isin(members)]
        out[group] = {"purchasers": int(truth[s.CUSTOMER].nunique())}
        for name, recs in (("daily", daily), ("fresh", full)):
            m = ranking_metrics(recs, truth, 10) | ranking_metrics(recs, truth, 20)
            out[group][name] = {key: round(m[key], 4) for key in ("ndcg@10", "hitrate@10", "recall@20")}
    top = {
        name: recs[(recs["rank"] <= 10) & recs[s.CUSTOMER].isin(kept)][[s.CUSTOMER, s.ITEM]]
        for name, recs in (("daily", daily), ("fresh", full))
    }
    shared = top["daily"].merge(top["fresh"], on=[s.CUSTOMER, s.ITEM])
    out["kept_top10_overlap"] = round(len(shared) / max(len(top["fresh"]), 1), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a daily run's directory left by bench/daily.py")
    ap.add_argument("--days", type=int, default=7, help="the purchases of this many days after the as-of date")
    ap.add_argument("--results", type=Path, default=ROOT / "bench/results/refresh_quality.json")
    args = ap.parse_args()
    run = args.run.resolve()
    result = {"run": str(run), "commit": head(), "fresh_score_seconds": round(fresh_score(run), 1)}
    result |= compare(run, args.days)
    print(json.dumps(result, indent=1))
    earlier = json.loads(args.results.read_text()) if args.results.is_file() else []
    args.results.write_text(json.dumps([*earlier, result], indent=1) + "\n")


if __name__ == "__main__":
    main()
