"""Offline check of request-time re-ranking: are lists re-ranked after a week of purchases better than
the nightly lists of that week's start?

    make run                       # or dvc repro: a project with data/split, data/candidates, models
    .venv/bin/python bench/replay.py [--project .] [--days 7] [--keep 100]

At the test window's start, the ranker scores the test candidates (as `evaluate` does) and keeps each
customer's best `--keep` with their model inputs, as `score` keeps them for serving. The first
`--days` of the window's purchases are replayed, customer by customer, through the serving path's
`patch` and the model (pipelines/serving/rerank.py); both lists are scored, NDCG@10 and recall@20,
on the purchases of the rest of the window, over the warm customers who buy then (all of them, and
those who bought in the replayed days: the only ones whose lists differ). Prints JSON and a Markdown
row last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.config import load_params
from pipelines.data.events import Purchase
from pipelines.evaluation.evaluate import holdout
from pipelines.evaluation.metrics import ranking_metrics
from pipelines.features.store import applied_store
from pipelines.ranking.dataset import feature_table
from pipelines.ranking.lists import top_k
from pipelines.ranking.model import load, predict
from pipelines.serving.rerank import patch

LONGEST = 20


def lists(cands: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    return top_k(cands, scores, LONGEST, positive_only=False)


def replay(project: Path, days: int, keep: int) -> dict:
    os.chdir(project)
    params = load_params(project / "params.yaml")
    booster, info = load(project / "models")
    _, truth, _ = holdout(project / "data/split", params["evaluate"].get("max_customers"))
    start = pd.Timestamp(json.loads((project / "data/split/windows.json").read_text())["test_start"])
    cands = pd.read_parquet(project / "data/candidates/test.parquet")
    cands = cands[cands[s.CUSTOMER].isin(truth[s.CUSTOMER].unique())].reset_index(drop=True)
    x = feature_table(cands, start, info["sources"], applied_store(params["features"]))
    scores = predict(booster, x)
    best = top_k(cands, scores, keep, positive_only=False)
    kept = cands.iloc[best.index.to_numpy()].reset_index(drop=True)
    features = booster.feature_name()
    kx = x.iloc[best.index.to_numpy()][features].to_numpy(np.float64)
    nightly = lists(kept, predict(booster, pd.DataFrame(kx, columns=features)))

    replayed_until = start + pd.Timedelta(days=days)
    week = truth[truth[s.TS] < replayed_until]
    later = truth[truth[s.TS] >= replayed_until]
    as_of = start.tz_localize("UTC").to_pydatetime()
    rescored = kx.copy()
    rows = pd.Series(np.arange(len(kept))).groupby(kept[s.CUSTOMER].to_numpy()).agg(list)
    for customer, g in week.groupby(s.CUSTOMER):
        bought = [
            Purchase(
                str(r.item_id),
                pd.Timestamp(r.timestamp).tz_localize("UTC").to_pydatetime(),
                str(r.order_id),
                float(r.quantity),
                float(r.unit_price),
            )
            for r in g.itertuples(index=False)
        ]
        r = rows.get(customer)
        if r is not None:
            rescored[r] = patch(kx[r], features, kept[s.ITEM].iloc[r].tolist(), bought, as_of)
    fresh = lists(kept, predict(booster, pd.DataFrame(rescored, columns=features)))

    def scored(recs: pd.DataFrame, who: pd.Index) -> dict:
        t = later[later[s.CUSTOMER].isin(who)]
        return {**ranking_metrics(recs, t, 10), **ranking_metrics(recs, t, 20)} | {
            "customers": int(t[s.CUSTOMER].nunique())
        }

    everyone = pd.Index(later[s.CUSTOMER].unique())
    bought_early = everyone.intersection(week[s.CUSTOMER].unique())
    out = {"days_replayed": days, "candidates_kept": keep, "purchases_replayed": len(week)}
    for name, who in (("all", everyone), ("bought_in_replayed_days", bought_early)):
        n, f = scored(nightly, who), scored(fresh, who)
        out[name] = {
            "customers": n["customers"],
            "nightly": {m: round(n[m], 4) for m in ("ndcg@10", "recall@20")},
            "re_ranked": {m: round(f[m], 4) for m in ("ndcg@10", "recall@20")},
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", type=Path, default=Path.cwd())
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--keep", type=int, default=100)
    args = ap.parse_args()
    out = replay(args.project.resolve(), args.days, args.keep)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(out, indent=2))
    for name in ("all", "bought_in_replayed_days"):
        r = out[name]
        print(
            f"| {name} | {r['customers']} | {r['nightly']['ndcg@10']:.4f} | {r['re_ranked']['ndcg@10']:.4f} | "
            f"{r['nightly']['recall@20']:.4f} | {r['re_ranked']['recall@20']:.4f} | {commit} |"
        )


if __name__ == "__main__":
    main()
