"""Union of all sources: one row per customer x item, each source's score and rank as columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines import schema as s
from pipelines.candidates.base import SCORE, CandidateSource, build_sources
from pipelines.candidates.selection import budgets, fit_weights, select
from pipelines.files import write_json, write_parquet
from pipelines.split import Windows, read_windows, warm_customers, window

KEYS = [s.CUSTOMER, s.ITEM]


def union(sources: list[CandidateSource], customers: pd.Index) -> pd.DataFrame:
    """Ask every fitted source for `customers`; outer-join on customer x item.

    Columns `<source>_score` (0 when the source did not propose the item) and `<source>_rank`
    (1 = its best; n + 1 when it did not propose the item). Rows sorted by customer, item.
    The join works on integer keys (customer code x item code), not on pandas merges.
    """
    parts = [src.recommend(customers) for src in sources]
    items = pd.Index(pd.unique(np.concatenate([p[s.ITEM].to_numpy(dtype=object) for p in parts] + [[]]))).sort_values()
    cust_index = pd.Index(np.sort(np.asarray(customers, dtype=object).astype(str)))
    keys = [
        cust_index.get_indexer(p[s.CUSTOMER]).astype(np.int64) * len(items) + items.get_indexer(p[s.ITEM])
        for p in parts
    ]
    all_keys = np.unique(np.concatenate(keys + [np.array([], dtype=np.int64)]))
    out = pd.DataFrame(
        {
            s.CUSTOMER: cust_index.to_numpy()[all_keys // max(len(items), 1)],
            s.ITEM: items.to_numpy()[all_keys % max(len(items), 1)],
        }
    )
    for src, part, key in zip(sources, parts, keys, strict=True):
        pos = np.searchsorted(all_keys, key)
        score = np.zeros(len(all_keys))
        rank = np.full(len(all_keys), src.n + 1, dtype=np.int32)
        score[pos] = part[SCORE].to_numpy()
        rank[pos] = part.groupby(s.CUSTOMER, sort=False).cumcount().to_numpy() + 1
        out[f"{src.name}_score"], out[f"{src.name}_rank"] = score, rank
    return out


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


def candidates_at_cutoffs(df: pd.DataFrame, w: Windows, cand_params: dict[str, Any]) -> dict[str, Any]:
    """Candidates for the validation window (fitted on train) and the test window (fitted on train + valid).

    Each window's customers are its warm ones (history before it, purchases inside it). With a
    `selection` section, the union is cut to per-customer budgets, with source weights tuned
    for recall on the validation window and applied unchanged to the test window.
    Returns {"valid": frame, "test": frame, "selection": weights or None, "metrics": recall per window}.
    """
    source_params, sel = cand_params["sources"], cand_params.get("selection")
    names = list(source_params)
    out: dict[str, Any] = {"selection": None, "metrics": {}}
    for name, start, end in (("valid", w.valid_start, w.test_start), ("test", w.test_start, w.as_of)):
        history, future = window(df, None, start), window(df, start, end)
        customers = warm_customers(history, future)
        future = future[future[s.CUSTOMER].isin(customers)]
        cands = generate_candidates(history, start, customers, source_params)
        metrics = candidate_recall(cands, future, names)
        if sel:
            budget = budgets(history, customers, sel)
            if out["selection"] is None:  # tuned once, on the validation window
                weights, tuned_recall = fit_weights(cands, future, names, budget, sel)
                out["selection"] = {"weights": weights, "valid_recall_tuning_sample": tuned_recall}
            metrics["recall_union_before_selection"] = metrics["recall_union"]
            cands = select(cands, out["selection"]["weights"], budget, float(sel["rrf_k"]))
            selected = candidate_recall(cands, future, names)
            metrics.update(
                recall_union=selected["recall_union"], candidates_per_customer=selected["candidates_per_customer"]
            )
        metrics["customers"] = len(customers)
        out[name], out["metrics"][name] = cands, metrics
    return out


def candidates_stage(
    split_dir: str | Path, out_dir: str | Path, cand_params: dict[str, Any], metrics_path: str | Path
) -> dict[str, Any]:
    """The candidates step: validation- and test-window candidates, selection weights and recall metrics."""
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    w = read_windows(split_dir / "windows.json")
    df = pd.concat([pd.read_parquet(split_dir / f"{n}.parquet") for n in ("train", "valid", "test")])
    result = candidates_at_cutoffs(df, w, cand_params)
    for name in ("valid", "test"):
        write_parquet(result[name], out_dir / f"{name}.parquet")
    write_json({"selection": result["selection"]}, out_dir / "selection.json")
    write_json(result["metrics"], metrics_path)
    return result["metrics"]
