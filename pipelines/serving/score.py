"""Score step: what goes out today. At the as-of date (the end of the data), with the current model:
the top k for every known customer (with sources and reasons), the cold-start lists (per country,
then global), each customer's loyalty tier and segment for the membership side, and each item's
similar items for product and cart pages (pipelines/serving/similar.py).

With `publish.rerank_candidates` > 0, each customer's best candidates with the model's inputs
(`candidates.parquet`) for request-time re-ranking (pipelines/serving/rerank.py).

The same functions as the test window: the sources fitted on everything before as_of, the
budgeted selection with the tuned weights, Feast features joined at as_of, the LightGBM ranker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.candidates.base import SCORE, CandidateSource
from pipelines.candidates.popularity import CountryPopularity
from pipelines.candidates.selection import budgets
from pipelines.candidates.union import KEYS, chunk_candidates, customer_parts, fit_sources, read_selection
from pipelines.core import schema as s
from pipelines.core.compute import LOCAL, Backend, open_backend
from pipelines.core.files import SELECTION_FILE, parquet_parts, write_parquet
from pipelines.data.split import read_split, read_windows
from pipelines.evaluation.segments import UNKNOWN, latest_snapshot
from pipelines.ranking.explain import contribution_method
from pipelines.serving.refresh import SCORED, kept_lists
from pipelines.serving.similar import similar_items

log = logging.getLogger(__name__)
NO_PAIRS = pd.DataFrame(columns=KEYS)  # serving has no future window to measure recall on
PROFILE = ["rfm_tier", "rfm_score", "behaviour_cluster", "profile_keywords", "recency_days", "orders_365d"]


def score_part(
    part: tuple[int, pd.Index, pd.Series | None],
    sources: list[CandidateSource],
    selection: dict | None,
    **ranking: Any,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One partition (index, customers, their budgets): candidates cut to the budgets, then the ranker's
    top k with reasons and the kept candidates with their inputs (`ranking`: `ranking_args` and
    `rank_part`'s `reasons` and `keep`)."""
    from pipelines.ranking.inference import rank_part

    index, customers, budget = part
    cands = chunk_candidates((customers, NO_PAIRS, budget), sources, selection)[0]
    recs, _, kept = rank_part((index, cands), **ranking)
    return recs, kept


def serving_sources(
    history: pd.DataFrame, as_of: pd.Timestamp, customers: pd.Index, params: dict[str, Any], selection: dict | None
) -> tuple[list[CandidateSource], pd.Series | None]:
    """The sources fitted on everything before `as_of`, and the customers' candidate budgets (None
    without a selection)."""
    cand_params = params["candidates"]
    sources = fit_sources(history, as_of, cand_params["sources"])
    sel = cand_params.get("selection")
    return sources, budgets(history, customers, sel) if sel and selection else None


def recommendations(
    sources: list[CandidateSource],
    budget: pd.Series | None,
    customers: pd.Index,
    as_of: pd.Timestamp,
    params: dict[str, Any],
    selection: dict | None,
    model_dir: str | Path,
    reasons: str,
    write: Callable[[pd.DataFrame], None],
    write_candidates: Callable[[pd.DataFrame], None],
    backend: Backend = LOCAL,
) -> dict[str, int]:
    """The top `publish.k` for `customers` (`serving_sources`), stamped with `as_of` (`scored_as_of`):
    candidates, features and the ranker
    with `reasons` (`explain.contribution_method`), partition by partition of customers on `backend`.
    Each partition's lists go to `write` as they come (e.g. a file's `parquet_parts`), so memory holds
    a partition's, not every customer's, and its best `publish.rerank_candidates` candidates with their
    model inputs to `write_candidates` (none if 0); returns how many lists and rows were written."""
    from pipelines.ranking.inference import ranking_args

    counts = {"customers_with_recommendations": 0, "recommendations": 0, "rerank_candidates": 0}
    if customers.empty:  # a daily run where every list is kept
        return counts
    ranking = ranking_args(model_dir, params["features"], as_of, int(params["publish"]["k"]))
    keep = int(params["publish"]["rerank_candidates"])
    parts = ((i, chunk, chunk_budget) for i, (chunk, chunk_budget) in enumerate(customer_parts(customers, budget)))
    mapped = backend.map(score_part, parts, sources=sources, selection=selection, reasons=reasons, keep=keep, **ranking)
    for lists, kept in mapped:
        write(lists.assign(**{SCORED: as_of}))
        if kept is not None:
            write_candidates(kept)
            counts["rerank_candidates"] += len(kept)
        counts["customers_with_recommendations"] += lists[s.CUSTOMER].nunique()  # a customer is in one partition
        counts["recommendations"] += len(lists)
    return counts


def cold_start(history: pd.DataFrame, as_of: pd.Timestamp, k: int, params: dict[str, Any]) -> pd.DataFrame:
    """Best sellers of each country with enough recent buyers, and the global list (country `*`)."""
    src = CountryPopularity(k, int(params["window_days"]), int(params["min_customers"])).fit(history, as_of)
    frames = [src.global_.assign(country=s.GLOBAL, reason="a best seller right now")]
    for country, top in src.per_country_.items():
        frames.append(top.assign(country=country, reason=f"popular in {country} right now"))
    out = pd.concat(frames, ignore_index=True)
    out["rank"] = out.groupby("country").cumcount() + 1
    return out[["country", "rank", s.ITEM, SCORE, "reason"]]


def customer_profiles(
    customer_features: str | Path | pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Each customer's loyalty tier, RFM score, behavioural segment and keywords in their latest snapshot."""
    latest = latest_snapshot(customer_features, customers, as_of, PROFILE)
    out = latest.rename(columns={"rfm_tier": "tier", "behaviour_cluster": "segment"})
    out["tier"] = out["tier"].fillna(UNKNOWN)
    return out.rename_axis(s.CUSTOMER).reset_index()


def score_stage(
    split_dir: str | Path,
    cands_dir: str | Path,
    customer_features_path: str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The score step: `recommendations.parquet`, `cold_start.parquet`, `segments.parquet` and
    `similar.parquet` (each item's similar items, for item and basket pages) in `out_dir`. With
    `publish.reuse_lists` (the daily run), only the customers whose lists are due are ranked again
    (pipelines/serving/refresh.py)."""
    reasons = contribution_method(params)  # a bad setting fails now, not after the sources are fitted
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    w = read_windows(split_dir / "windows.json")
    history = read_split(split_dir)
    customers = pd.Index(sorted(history[s.CUSTOMER].unique()), name=s.CUSTOMER)
    selection = read_selection(Path(cands_dir) / SELECTION_FILE)
    cold = cold_start(history, w.as_of, int(params["publish"]["k"]), params["publish"]["cold_start"])
    sources, budget = serving_sources(history, w.as_of, customers, params, selection)
    kept = kept_lists(history, customers, w.as_of, model_dir, params)
    ranked = customers if kept is None else customers.difference(kept.customers)
    del history  # the partitions need only the fitted sources: free the interactions before they run
    with (
        open_backend(params["compute"]) as backend,
        parquet_parts(out_dir / "recommendations.parquet") as write,
        parquet_parts(out_dir / "candidates.parquet") as write_candidates,
    ):
        counts = recommendations(
            sources, budget, ranked, w.as_of, params, selection, model_dir, reasons, write, write_candidates, backend
        )
        counts["kept_customers"] = 0 if kept is None else len(kept.customers)  # their lists, as published
        for key, rows in (kept.copy(write, write_candidates) if kept else {}).items():
            counts[key] += rows
        counts["customers_with_recommendations"] += counts["kept_customers"]
    write_parquet(cold, out_dir / "cold_start.parquet")
    similar = similar_items(sources, int(params["publish"]["k"]))
    write_parquet(similar, out_dir / "similar.parquet")
    profiles = customer_profiles(customer_features_path, customers, w.as_of)
    write_parquet(profiles, out_dir / "segments.parquet")
    summary = {
        "as_of": w.as_of.isoformat(),
        "customers": len(customers),
        **counts,
        "cold_start_countries": sorted(c for c in cold["country"].unique() if c != s.GLOBAL),
        "tiers": profiles["tier"].value_counts().to_dict(),
        "items_with_similar": int(similar[s.ITEM].nunique()),
    }
    log.info("score: %s", summary)
    return summary
