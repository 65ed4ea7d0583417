"""LightGBM LambdaRank ranker: orders each customer's candidates from the sources' scores and
ranks, the Feast features and context (pipelines/ranking/dataset.py).

Trained on the candidates of the training cutoffs (labels: purchases in the window after each),
with early stopping on the validation cutoff; with `ranker.refit_factor`, then trained again on the
training and validation cutoffs together with that many times the trees early stopping chose (the
validation window is the newest before the test: its labels are the most like the test's).
Customers with no positive among their candidates are left out of training and early stopping:
LambdaRank has nothing to learn from a list with no relevant item (they are still scored and
evaluated). Deterministic for a given seed on the local backend; on dask (lightgbm.dask,
data-parallel, pipelines/ranking/dask_training.py) the trees also depend on how rows fall on workers.
Nothing is assumed about which source wins: the model learns it from the data at hand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.compute import LOCAL, Backend, DaskBackend
from pipelines.core.errors import InputError
from pipelines.core.params import Ranker
from pipelines.ranking.dask_training import ValidationCurve, boost_dask
from pipelines.ranking.dataset import groups

if TYPE_CHECKING:
    import lightgbm as lgb

KIND = "lightgbm_lambdarank"


TRAINING_KEYS = tuple(Ranker.model_fields)  # shoprec's keys; the rest of `ranker` goes to LightGBM


MODEL_FILE = "ranker.lgb"  # in the model directory, beside INFO_FILE (features, sources, best iteration)

INFO_FILE = "ranker.json"


def lgb_params(ranker_params: dict[str, Any]) -> dict[str, Any]:
    """LightGBM settings from `ranker` params (everything but our own keys), made deterministic."""
    params = {k: v for k, v in ranker_params.items() if k not in TRAINING_KEYS}
    k = int(ranker_params["k"])
    params.update(
        objective="lambdarank",
        metric="ndcg",
        eval_at=[k],
        seed=int(ranker_params["seed"]),
        deterministic=True,
        force_row_wise=True,
        verbosity=-1,
    )
    return params


def _with_positives(x: pd.DataFrame, y: np.ndarray, cands: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    keep = pd.Series(y, index=cands.index).groupby(cands[s.CUSTOMER].to_numpy()).transform("max").to_numpy() > 0
    return x[keep].reset_index(drop=True), y[keep], groups(cands[keep])


def fit(
    train: list[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]],
    valid: tuple[pd.DataFrame, pd.DataFrame, np.ndarray],
    ranker_params: dict[str, Any],
    backend: Backend = LOCAL,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Fit on (candidates, features, labels) of the training cutoffs; stop early on the validation one;
    with `refit_factor`, fit again on both with round(best iteration x factor) trees.

    On the dask backend, `lightgbm.dask` trains data-parallel on the workers (the training rows split
    at customer boundaries), and each worker applies LightGBM's early-stopping rule to the validation
    curve tree by tree (`dask_training.StopEarly`).
    """
    parts = [_with_positives(x, y, c) for c, x, y in train]
    x_train = pd.concat([p[0] for p in parts], ignore_index=True)
    y_train, g_train = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
    x_valid, y_valid, g_valid = _with_positives(valid[1], valid[2], valid[0])
    params = lgb_params(ranker_params)
    k = int(ranker_params["k"])
    rounds, patience = int(ranker_params["n_estimators"]), int(ranker_params["early_stopping_rounds"])
    if rounds < 1:
        raise InputError(f"params: ranker.n_estimators must be at least 1, not {rounds}")
    started = time.perf_counter()
    if isinstance(backend, DaskBackend):
        curve = ValidationCurve(x_valid, y_valid, g_valid, k, patience)
        booster = boost_dask(backend, params, (x_train, y_train, g_train), rounds, curve)
    else:
        booster = boost_local(params, (x_train, y_train, g_train), (x_valid, y_valid, g_valid), rounds, patience)
    best_score = float(booster.best_score["valid"][f"ndcg@{k}"])
    stopped_at = int(booster.best_iteration) or booster.num_trees()  # LightGBM leaves 0 without early stopping
    factor = ranker_params["refit_factor"]
    if factor:  # the newest labels matter most: learn from the validation cutoff too, with as many trees as it chose
        trees = max(1, round(stopped_at * float(factor)))
        rows = (
            pd.concat([x_train, x_valid], ignore_index=True),
            np.concatenate([y_train, y_valid]),
            np.concatenate([g_train, g_valid]),
        )
        if isinstance(backend, DaskBackend):
            booster = boost_dask(backend, params, rows, trees)
        else:
            booster = boost_local(params, rows, None, trees, 0)
        booster.best_iteration = trees
    info = {
        "kind": KIND,
        "features": list(x_train.columns),
        "best_iteration": int(booster.best_iteration),
        "early_stopping_iteration": stopped_at,
        "refit_on_valid": bool(factor),
        f"valid_ndcg@{k}_positive_lists": best_score,
        "train_rows": len(x_train),
        "train_customers": len(g_train),
        "train_positive_rate": float(y_train.mean()) if len(y_train) else 0.0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return booster, info


def boost_local(params: dict[str, Any], train: tuple, valid: tuple | None, rounds: int, patience: int) -> lgb.Booster:
    """lightgbm.train in this process, early stopping on NDCG@k of the validation lists (`rounds` trees without)."""
    import lightgbm as lgb

    dtrain = lgb.Dataset(train[0], train[1], group=train[2], free_raw_data=False)
    if valid is None:
        return lgb.train({k: v for k, v in params.items() if k not in ("metric", "eval_at")}, dtrain, rounds)
    dvalid = lgb.Dataset(valid[0], valid[1], group=valid[2], reference=dtrain)
    return lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def importance(booster: lgb.Booster) -> pd.DataFrame:
    """Total gain per feature, largest first (a DVC bar plot)."""
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    frame = pd.DataFrame({"feature": booster.feature_name(), "gain": np.round(gain, 3)})
    return frame.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def predict(booster: lgb.Booster, x: pd.DataFrame) -> np.ndarray:
    return booster.predict(x[booster.feature_name()], num_iteration=booster.best_iteration)


def load(model_dir: str | Path) -> tuple[lgb.Booster, dict[str, Any]]:
    import lightgbm as lgb

    model_dir = Path(model_dir)
    return lgb.Booster(model_file=str(model_dir / MODEL_FILE)), json.loads((model_dir / INFO_FILE).read_text())
