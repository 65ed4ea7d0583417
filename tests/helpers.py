"""Helpers shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.config import load_params
from pipelines.ranking.dataset import feature_table
from tests.conftest import ROOT

SHIPPED = load_params(ROOT / "params.yaml")


def shipped(section: str, **changes: Any) -> dict[str, Any]:
    """A copy of one section of the shipped params.yaml with `changes` set: tests give only what they vary."""
    return {**copy.deepcopy(SHIPPED[section]), **changes}


def source(name: str, **changes: Any) -> dict[str, Any]:
    """A shipped candidate source's settings (every one is written in params.yaml) with `changes` set."""
    return {**copy.deepcopy(SHIPPED["candidates"]["sources"][name]), **changes}


# --- a ranking table with a planted signal (tests of the ranker, local and on dask) ---------------

FAKE = ["a", "b"]  # the synthetic table's two sources
PLANTED = "times_bought"  # the feature the synthetic labels depend on
CUTOFF = pd.Timestamp("2011-09-01")
RANKER_PARAMS = shipped(
    "ranker",
    n_estimators=50,
    early_stopping_rounds=10,
    seed=1,
    learning_rate=0.1,
    num_leaves=7,
    min_data_in_leaf=5,
    num_threads=1,
    refit_factor=None,
)


def synthetic(n_customers: int, seed: int, n_items: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(candidates, features, labels): customers x items sorted by customer, two sources `a` and `b`.

    The label comes from `times_bought` (plus noise, and a little from the customer's recency);
    the sources' scores are pure noise. About a fifth of the customers have no positive.
    """
    rng = np.random.default_rng(seed)
    n = n_customers * n_items
    customer = np.repeat([f"c{seed}_{i:04d}" for i in range(n_customers)], n_items)
    cands = pd.DataFrame(
        {"customer_id": customer, "item_id": np.tile([f"i{j:02d}" for j in range(n_items)], n_customers)}
    )
    for name in FAKE:
        sc = np.where(rng.random(n) < 0.7, rng.random(n), 0.0)
        cands[f"{name}_score"] = sc
        rank = pd.Series(np.where(sc > 0, -sc, np.inf)).groupby(customer).rank(method="first").to_numpy()
        cands[f"{name}_rank"] = np.where(sc > 0, rank, n_items + 1).astype(np.int32)
    x = feature_table(cands, CUTOFF, FAKE, None)
    x[PLANTED] = rng.poisson(1.0, n).astype(np.float32)
    x["recency_days"] = np.repeat(rng.integers(1, 365, n_customers), n_items).astype(np.float32)
    signal = x[PLANTED].to_numpy() + 0.4 * rng.standard_normal(n) - x["recency_days"].to_numpy() / 365
    y = (signal > 2.2).astype(np.int8)
    return cands, x, y


def truth_of(cands: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    return cands.loc[y > 0, ["customer_id", "item_id"]]
