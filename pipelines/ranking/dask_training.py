"""Ranker training on the dask backend: lightgbm.dask, with LightGBM's early-stopping rule applied by a
callback on every worker (lightgbm.dask has no early stopping of its own)."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core.compute import DaskBackend

if TYPE_CHECKING:
    import lightgbm as lgb


def boost_dask(
    backend: DaskBackend, params: dict[str, Any], train: tuple, rounds: int, curve: ValidationCurve | None = None
) -> lgb.Booster:
    """lightgbm.dask on the cluster: one partition per worker, each a whole number of customers' lists.

    With a validation `curve`, every worker follows it tree by tree (`StopEarly`) and training ends
    where LightGBM's rule fires, or after `rounds` trees; the booster's best_iteration and
    best_score["valid"]["ndcg@k"] are the curve's. Without one, `rounds` trees.
    """
    import dask.array as da
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMRanker

    x, y, g = train
    bounds = np.searchsorted(np.cumsum(g), np.linspace(0, len(y), backend.workers + 1)[1:-1], side="right")
    group_parts = [part for part in np.split(g, bounds) if len(part)]
    ends = np.cumsum([part.sum() for part in group_parts])
    rows = list(zip(np.r_[0, ends[:-1]], ends, strict=True))
    # The parts go to the workers directly, not through the task graph, under keys of their own (hash=False):
    # content-hashed keys would be the previous fit's for the same rows, and the release of those futures
    # can reach a worker after the new data (lost dependencies: cancelled futures or a hang in lightgbm.dask).
    scatter = functools.partial(backend.client.scatter, hash=False)
    x_dask = dd.from_delayed(scatter([x.iloc[a:b] for a, b in rows]), meta=x.iloc[:0], verify_meta=False)
    y_parts, g_parts = scatter([y[a:b] for a, b in rows]), scatter(group_parts)
    y_dask = da.concatenate([da.from_delayed(f, (b - a,), y.dtype) for f, (a, b) in zip(y_parts, rows, strict=True)])
    g_dask = da.concatenate([da.from_delayed(f, (len(p),), g.dtype) for f, p in zip(g_parts, group_parts, strict=True)])
    settings = {key: v for key, v in params.items() if key not in ("num_threads", "eval_at", "metric", "seed")}
    # each worker's own copy of the curve (its state changes tree by tree), sent once, not in the task graph
    callbacks = scatter([StopEarly(curve.prepared(list(x.columns)))], broadcast=True) if curve else None
    model = DaskLGBMRanker(client=backend.client, n_estimators=rounds, seed=int(params["seed"]), **settings)
    with warnings.catch_warnings():  # each worker's threads replace num_threads; lightgbm.dask says so for n_jobs
        warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
        model.fit(x_dask, y_dask, group=g_dask, callbacks=callbacks)
    if callbacks:
        backend.client.cancel(callbacks)
    return model.booster_


class StopEarly:
    """A LightGBM callback run by every worker of lightgbm.dask: the validation curve tree by tree, and
    LightGBM's early stop when its rule fires, at the last round, or when a round adds no tree (nothing
    left to split). The booster keeps the best tree, as LightGBM's early stopping does; without
    patience, every tree. Data-parallel workers build the same trees and hold the same validation
    lists, so each computes the same curve and all stop after the same tree (one stopping alone
    would leave the others waiting)."""

    def __init__(self, curve: ValidationCurve) -> None:
        self.curve = curve
        self.order = 30  # after LightGBM's own callbacks, like its early stopping (read from the instance)

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        from lightgbm.callback import EarlyStopException

        curve = self.curve
        end = env.iteration + 1 >= env.end_iteration or env.model.current_iteration() <= env.iteration
        if curve.patience <= 0 and not end:
            return  # without patience only the last tree's score is reported: the curve is followed once, at the end
        curve.extend(env.model)
        if curve.stopped or end:
            best, score = (curve.best, curve.best_score) if curve.patience > 0 else (curve.trees, curve.score)
            raise EarlyStopException(best - 1, [("valid", f"ndcg@{curve.ndcg.k}", float(score), True)])


class ListNdcg:
    """LightGBM's ndcg@k of lists (labels y, list sizes g) for any scores: gains 2**label - 1, ties in
    score kept in row order, a list without gain scores 1.

    What does not depend on the scores (ideal DCG, discounts) is computed once. Each call sorts by
    score, then stably by list (a radix sort for up to 65,536 lists), the order a lexsort gives.
    """

    def __init__(self, y: np.ndarray, g: np.ndarray, k: int) -> None:
        g = np.asarray(g, dtype=np.int64)
        self.lists, self.k = len(g), k
        self.gain = np.power(2.0, np.asarray(y, dtype=np.float64)) - 1.0
        self.qid = np.repeat(np.arange(len(g)), g).astype(np.min_scalar_type(max(len(g) - 1, 0)))
        position = np.arange(len(self.gain)) - np.repeat(np.cumsum(g) - g, g)
        self.discount = np.where(position < k, 1.0 / np.log2(position + 2.0), 0.0)
        self.idcg = self._dcg(np.lexsort((-self.gain, self.qid)))

    def _dcg(self, order: np.ndarray) -> np.ndarray:
        """Per list, the DCG of the rows in `order` (grouped by list)."""
        return np.bincount(self.qid, weights=self.gain[order] * self.discount, minlength=self.lists)

    def __call__(self, scores: np.ndarray) -> float:
        if self.lists == 0:
            return 0.0
        order = np.argsort(-scores, kind="stable")
        dcg = self._dcg(order[np.argsort(self.qid[order], kind="stable")])
        found = self.idcg > 0
        return float(np.mean(np.where(found, dcg / np.where(found, self.idcg, 1.0), 1.0)))


class ValidationCurve:
    """NDCG@k of validation lists (x, y, g) tree by tree, under LightGBM's early-stopping rule: the best
    iteration so far, until `patience` trees in a row bring no improvement (never with patience <= 0)."""

    def __init__(self, x: pd.DataFrame, y: np.ndarray, g: np.ndarray, k: int, patience: int) -> None:
        self.x, self.ndcg, self.patience = x, ListNdcg(y, g, k), patience
        self.values: np.ndarray | None = None  # x as the booster reads it, built once
        self.raw = np.zeros(len(y))
        self.trees, self.best, self.best_score, self.stopped = 0, 0, -np.inf, False
        self.score = -np.inf  # at the last tree seen

    def prepared(self, features: list[str]) -> ValidationCurve:
        """This curve with x as a booster of `features` reads it, built now and without the frame (to send it)."""
        self.values, self.x = self.x[features].to_numpy(dtype=np.float64), None
        return self

    def extend(self, booster: lgb.Booster) -> None:
        """Add the booster's trees after the ones already seen (the booster continues the earlier ones)."""
        if self.values is None:
            self.values = self.x[booster.feature_name()].to_numpy(dtype=np.float64)
        for i in range(self.trees, booster.num_trees()):
            self.raw += booster.predict(self.values, start_iteration=i, num_iteration=1, raw_score=True)
            self.trees = i + 1
            current = self.score = self.ndcg(self.raw)
            if current > self.best_score:
                self.best, self.best_score = i + 1, current
            elif self.patience > 0 and i + 1 - self.best >= self.patience:
                self.stopped = True
                return
