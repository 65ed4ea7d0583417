"""Fusion ranker: orders each customer's candidates from the sources' ranks.

The model here is a weighted reciprocal-rank fusion: each source contributes
w / (rrf_k + rank) for the items it proposed, and the weights are tuned by coordinate ascent on NDCG@k of
the validation window. It learns which sources matter on the data at hand; nothing
assumes that one source wins. (The LightGBM LambdaRank ranker replaces it in issue 5.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines import schema as s
from pipelines.files import write_json, write_parquet
from pipelines.metrics import ranking_metrics
from pipelines.tuning import coordinate_ascent

KIND = "rank_fusion"
FILL = 1e-3  # every source's vote counts a little, so lists fill up even when a weight is 0
RRF_K = 60.0  # default: rank r of a source votes 1 / (rrf_k + r), whatever the source's list length


def source_sizes(source_params: dict[str, Any]) -> dict[str, int]:
    """Candidates per customer of each configured source (what its ranks are relative to)."""
    return {name: int(settings["n"]) for name, settings in source_params.items()}


def rank_features(cands: pd.DataFrame, sizes: dict[str, int], rrf_k: float = RRF_K) -> np.ndarray:
    """One column per source: 1 / (rrf_k + rank) for its proposals, 0 otherwise (reciprocal-rank votes)."""
    cols = [
        np.where(cands[f"{name}_rank"].to_numpy() <= n, 1.0 / (rrf_k + cands[f"{name}_rank"].to_numpy()), 0.0)
        for name, n in sizes.items()
    ]
    return np.column_stack(cols) if cols else np.zeros((len(cands), 0))


def top_k(cands: pd.DataFrame, scores: np.ndarray, k: int) -> pd.DataFrame:
    """The k best-scored candidates per customer (score > 0), ties broken by item id."""
    frame = pd.DataFrame({s.CUSTOMER: cands[s.CUSTOMER].to_numpy(), s.ITEM: cands[s.ITEM].to_numpy(), "score": scores})
    frame = frame[frame["score"] > 0]
    frame = frame.sort_values([s.CUSTOMER, "score", s.ITEM], ascending=[True, False, True], kind="stable")
    frame["rank"] = frame.groupby(s.CUSTOMER, sort=False).cumcount() + 1
    return frame[frame["rank"] <= k][[s.CUSTOMER, s.ITEM, "rank", "score"]].reset_index(drop=True)


def fit(
    cands: pd.DataFrame, truth: pd.DataFrame, sizes: dict[str, int], ranker_params: dict[str, Any]
) -> dict[str, Any]:
    """Tune the fusion weights on a labelled window (its purchases by the candidates' customers)."""
    truth = truth[truth[s.CUSTOMER].isin(cands[s.CUSTOMER].unique())]
    k = int(ranker_params.get("k", 10))
    grid = np.linspace(0.0, 1.0, int(ranker_params.get("grid", 11)))
    rrf_k = float(ranker_params.get("rrf_k", RRF_K))
    feats = rank_features(cands, sizes, rrf_k)
    names = list(sizes)

    def quality(w: np.ndarray) -> float:
        return ranking_metrics(top_k(cands, fuse(feats, w), k), truth, k)[f"ndcg@{k}"]

    weights, best = coordinate_ascent(quality, len(names), grid, int(ranker_params.get("rounds", 2)))
    return {
        "kind": KIND,
        "weights": dict(zip(names, weights.round(6).tolist(), strict=True)),
        "sizes": sizes,
        "rrf_k": rrf_k,
        "k": k,
        f"valid_ndcg@{k}": best,
    }


def fuse(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum of the sources' rank features, plus a small equal-weight vote as fill."""
    return feats @ weights + FILL * feats.sum(axis=1)


def score(model: dict[str, Any], cands: pd.DataFrame) -> np.ndarray:
    """Fusion scores of candidates under a fitted model."""
    w = np.array([model["weights"][name] for name in model["sizes"]])
    return fuse(rank_features(cands, model["sizes"], model["rrf_k"]), w)


def train_stage(
    cands_path: str | Path,
    valid_path: str | Path,
    model_path: str | Path,
    source_params: dict[str, Any],
    ranker_params: dict[str, Any],
) -> dict[str, Any]:
    """The train step: fit on validation-window candidates and purchases; write the model."""
    cands = pd.read_parquet(cands_path)
    valid = pd.read_parquet(valid_path)
    model = fit(cands, valid, source_sizes(source_params), ranker_params)
    write_json(model, model_path)
    return model


def recommend_stage(cands_path: str | Path, model_path: str | Path, out_path: str | Path, k: int) -> pd.DataFrame:
    """The recommend step: score candidates with the model; write the top k per customer."""
    cands = pd.read_parquet(cands_path)
    model = json.loads(Path(model_path).read_text())
    recs = top_k(cands, score(model, cands), k)
    write_parquet(recs, out_path)
    return recs
