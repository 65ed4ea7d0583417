"""Evaluate step: ranking metrics of the fused recommendations and of each source alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import schema as s
from pipelines.files import write_csv, write_json
from pipelines.metrics import catalogue_coverage, ranking_metrics
from pipelines.ranker import rank_features, source_sizes, top_k
from pipelines.split import warm_customers


def metric_table(recs: pd.DataFrame, truth: pd.DataFrame, ks: list[int], n_items: int) -> dict[str, float]:
    """All ranking metrics at every k, plus catalogue coverage of the top-k lists."""
    out: dict[str, float] = {}
    for k in ks:
        out.update(ranking_metrics(recs, truth, k))
        out[f"coverage@{k}"] = catalogue_coverage(recs, k, n_items)
    return out


def evaluate(
    recs: pd.DataFrame, cands: pd.DataFrame, truth: pd.DataFrame, sizes: dict[str, int], ks: list[int], n_items: int
) -> dict[str, Any]:
    """Metrics of the ranker's lists and of every source's own lists on the same customers."""
    feats = rank_features(cands, sizes)
    per_source = {
        name: metric_table(top_k(cands, feats[:, i], max(ks)), truth, ks, n_items) for i, name in enumerate(sizes)
    }
    return {
        "customers": int(truth[s.CUSTOMER].nunique()),
        "ranker": metric_table(recs, truth, ks, n_items),
        "sources": per_source,
    }


def metric_curves(result: dict[str, Any], ks: list[int]) -> dict[str, pd.DataFrame]:
    """Per metric, a table: one row per k, one column for the ranker and each source (DVC plots)."""
    models = {"ranker": result["ranker"], **result["sources"]}
    return {
        metric: pd.DataFrame({"k": ks, **{name: [m[f"{metric}@{k}"] for k in ks] for name, m in models.items()}})
        for metric in ("ndcg", "recall")
    }


def evaluate_stage(
    recs_path: str | Path,
    cands_path: str | Path,
    split_dir: str | Path,
    metrics_path: str | Path,
    plots_dir: str | Path,
    source_params: dict[str, Any],
    ks: list[int],
) -> dict[str, Any]:
    """Read the test window's recommendations, candidates and purchases; write metrics and curves."""
    split_dir = Path(split_dir)
    history = pd.concat([pd.read_parquet(split_dir / f"{n}.parquet") for n in ("train", "valid")])
    test = pd.read_parquet(split_dir / "test.parquet")
    truth = test[test[s.CUSTOMER].isin(warm_customers(history, test))]
    n_items = pd.concat([history[s.ITEM], test[s.ITEM]]).nunique()
    result = evaluate(
        pd.read_parquet(recs_path), pd.read_parquet(cands_path), truth, source_sizes(source_params), ks, n_items
    )
    write_json(result, metrics_path)
    for metric, table in metric_curves(result, ks).items():
        write_csv(table, Path(plots_dir) / f"{metric}_at_k.csv")
    return result
