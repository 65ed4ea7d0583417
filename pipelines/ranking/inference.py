"""Ranking with a saved model: features joined per partition of whole customers, scores, the top k
with the sources and reasons behind each item, and the drift sample of the scored rows."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.compute import LOCAL, Backend
from pipelines.monitoring.samples import monitoring_sample
from pipelines.ranking.dataset import feature_table
from pipelines.ranking.explain import DEFAULT_METHOD, explain
from pipelines.ranking.lists import top_k
from pipelines.ranking.model import load, predict

if TYPE_CHECKING:
    import lightgbm as lgb


def recommend(
    booster: lgb.Booster,
    cands: pd.DataFrame,
    x: pd.DataFrame,
    source_names: list[str],
    k: int,
    scores: np.ndarray | None = None,
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:
    """Top k per customer with score, the sources that proposed each item and why it ranks there
    (`method`: the feature contributions, see `explain`)."""
    recs = top_k(cands, predict(booster, x) if scores is None else scores, k, positive_only=False)
    rows = recs.index.to_numpy()
    why = explain(booster, x.iloc[rows], cands.iloc[rows], source_names, method)
    return pd.concat([recs.reset_index(drop=True), why.reset_index(drop=True)], axis=1)


def rank_part(
    part: tuple[int, pd.DataFrame],
    booster: lgb.Booster,
    source_names: list[str],
    cutoff: pd.Timestamp,
    store: dict[str, Any],
    k: int,
    sample_share: float = 0.0,
    seed: int = 0,
    reasons: str | None = DEFAULT_METHOD,
    keep: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """One partition (index, candidates of whole customers): Feast features at `cutoff` (`store`: a
    `store_spec`), scores, the top k per customer (with sources and reasons from the `reasons`
    contributions, none if None), a seeded `sample_share` of the scored rows (the drift sample), and
    with `keep` > 0 each customer's best `keep` candidates with their model inputs (request-time
    re-ranking, pipelines/serving/rerank.py; else None)."""
    from pipelines.features.store import process_store

    index, cands = part
    x = feature_table(cands, cutoff, source_names, process_store(store), snapshot=True)  # one cutoff, many parts
    scores = predict(booster, x)
    if reasons is not None:
        recs = recommend(booster, cands, x, source_names, k, scores, reasons)
    else:
        recs = top_k(cands, scores, k, positive_only=False).reset_index(drop=True)
    sample = monitoring_sample(cands, x, scores, cutoff, round(sample_share * len(cands)), seed + index)
    kept = None
    if keep > 0:
        best = top_k(cands, scores, keep, positive_only=False)
        inputs = x.iloc[best.index.to_numpy()][booster.feature_name()].reset_index(drop=True)
        kept = pd.concat([best[[s.CUSTOMER, s.ITEM]].reset_index(drop=True), inputs], axis=1)
    return recs, sample, kept


def ranking_args(model_dir: str | Path, feature_params: dict[str, Any], cutoff: pd.Timestamp, k: int) -> dict:
    """What every partition of `rank_part` shares: the model, its sources, the cutoff, the store, k.
    Applies the feature repo once, here: the partitions only read the registry."""
    from pipelines.features.store import applied_store, store_spec

    booster, info = load(model_dir)
    applied_store(feature_params)
    return {
        "booster": booster,
        "source_names": info["sources"],
        "cutoff": cutoff,
        "store": store_spec(feature_params),
        "k": k,
    }


def rank(
    model_dir: str | Path,
    parts: Iterable[pd.DataFrame],
    rows: int,
    cutoff: pd.Timestamp,
    feature_params: dict[str, Any],
    k: int,
    backend: Backend = LOCAL,
    sample_rows: int = 0,
    seed: int = 0,
    reasons: str | None = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank candidates with a saved model, partition by partition on `backend` (`rows` in all): the top k
    per customer (with reasons from the `reasons` contributions, none if None), and a seeded sample of
    about `sample_rows` scored rows (each partition contributes its share, rounded).

    Each partition joins its own features, so memory holds one partition's feature table, not all.
    """
    shared = ranking_args(model_dir, feature_params, cutoff, k)
    share = min(1.0, sample_rows / rows) if rows else 0.0
    results = list(backend.map(rank_part, enumerate(parts), sample_share=share, seed=seed, reasons=reasons, **shared))
    recs, samples, _ = zip(*results, strict=True)
    return pd.concat(recs, ignore_index=True), pd.concat(samples, ignore_index=True)
