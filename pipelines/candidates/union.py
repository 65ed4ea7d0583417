"""Union of all sources: one row per customer x item, each source's score and rank as columns."""

from __future__ import annotations

from functools import reduce
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import schema as s
from pipelines.candidates.base import SCORE, CandidateSource, build_sources
from pipelines.files import write_json, write_parquet
from pipelines.split import read_windows, warm_customers

KEYS = [s.CUSTOMER, s.ITEM]


def union(sources: list[CandidateSource], customers: pd.Index) -> pd.DataFrame:
    """Ask every fitted source for `customers`; outer-join on customer x item.

    Columns `<source>_score` (0 when the source did not propose the item) and `<source>_rank`
    (1 = its best; n + 1 when it did not propose the item).
    """
    parts = []
    for src in sources:
        recs = src.recommend(customers)
        recs = recs.assign(rank=recs.groupby(s.CUSTOMER, sort=False).cumcount() + 1)
        parts.append(recs.rename(columns={SCORE: f"{src.name}_score", "rank": f"{src.name}_rank"}))
    merged = reduce(lambda a, b: a.merge(b, on=KEYS, how="outer"), parts)
    for src in sources:
        merged[f"{src.name}_score"] = merged[f"{src.name}_score"].fillna(0.0)
        merged[f"{src.name}_rank"] = merged[f"{src.name}_rank"].fillna(src.n + 1).astype("int32")
    return merged.sort_values(KEYS, kind="stable").reset_index(drop=True)


def generate_candidates(
    history: pd.DataFrame, as_of: pd.Timestamp, customers: pd.Index, source_params: dict[str, Any]
) -> pd.DataFrame:
    """Fit every configured source on `history` before `as_of` and return their union for `customers`."""
    history = history[history[s.TS] < as_of]  # sources never see the future, whatever they are given
    sources = [src.fit(history, as_of) for src in build_sources(source_params)]
    return union(sources, customers)


def candidate_recall(candidates: pd.DataFrame, future: pd.DataFrame, source_names: list[str]) -> dict[str, Any]:
    """Share of the future's distinct customer x item purchases covered, per source and in total."""
    truth = future[KEYS].drop_duplicates()
    hit = truth.merge(candidates, on=KEYS, how="left")
    out: dict[str, Any] = {"pairs": len(truth)}
    for name in source_names:
        out[f"recall_{name}"] = float((hit[f"{name}_score"] > 0).mean()) if len(truth) else 0.0
    out["recall_union"] = float(hit[f"{source_names[0]}_rank"].notna().mean()) if len(truth) else 0.0
    out["candidates_per_customer"] = float(candidates.groupby(s.CUSTOMER).size().mean()) if len(candidates) else 0.0
    return out


def candidates_stage(
    split_dir: str | Path, out_dir: str | Path, source_params: dict[str, Any], metrics_path: str | Path
) -> dict[str, Any]:
    """The candidates step, at two cutoffs: the validation start (to fit the ranker) and the test start.

    Candidates are generated for the customers evaluated in each window: those with history
    before the cutoff and purchases inside the window.
    """
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    w = read_windows(split_dir / "windows.json")
    frames = {name: pd.read_parquet(split_dir / f"{name}.parquet") for name in ("train", "valid", "test")}
    metrics: dict[str, Any] = {}
    for name, history in (("valid", frames["train"]), ("test", pd.concat([frames["train"], frames["valid"]]))):
        start, _ = w.bounds(name)
        future = frames[name]
        customers = warm_customers(history, future)
        cands = generate_candidates(history, start, customers, source_params)
        write_parquet(cands, out_dir / f"{name}.parquet")
        metrics[name] = candidate_recall(cands, future[future[s.CUSTOMER].isin(customers)], list(source_params))
        metrics[name]["customers"] = len(customers)
    write_json(metrics, metrics_path)
    return metrics
