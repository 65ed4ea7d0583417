"""The ranker's table: one row per candidate (customer x item at a cutoff) with the sources' scores
and ranks, Feast features joined point-in-time at the cutoff, context, and the label.

Labels: 1 when the customer bought the item in the window that follows the cutoff.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.data.split import Windows
from pipelines.features.history import EVENT_TS

if TYPE_CHECKING:
    from feast import FeatureStore


def source_columns(source_names: list[str]) -> list[str]:
    return [f"{name}_{kind}" for name in source_names for kind in ("score", "rank")]


def feature_table(
    cands: pd.DataFrame,
    cutoff: pd.Timestamp,
    source_names: list[str],
    store: FeatureStore | None,
    snapshot: bool = False,
) -> pd.DataFrame:
    """Model inputs for `cands` (row for row): source columns and the Feast `ranker` features
    (`snapshot`: for partition after partition at one cutoff, see `historical_features`).

    No calendar context: with a few training cutoffs a date feature only identifies the cutoff,
    and the test cutoff's value is never seen in training.
    """
    from pipelines.features.customer import TIERS  # here, not at import: it loads scikit-learn
    from pipelines.features.store import historical_features

    x = cands[source_columns(source_names)].astype("float32").reset_index(drop=True)
    # float32 like every column: LightGBM then makes its copy of the table in float32, not float64
    x["n_sources"] = (cands[[f"{n}_score" for n in source_names]].to_numpy() > 0).sum(axis=1, dtype=np.float32)
    if store is not None:
        entities = cands[[s.CUSTOMER, s.ITEM]].reset_index(drop=True).assign(**{EVENT_TS: cutoff})
        feats = historical_features(store, entities, snapshot=snapshot).drop(columns=[s.CUSTOMER, s.ITEM, EVENT_TS])
        tier = pd.Categorical(feats.pop("rfm_tier"), categories=list(TIERS))
        feats["rfm_tier"] = np.where(tier.codes >= 0, tier.codes, np.nan)  # 0 = champion ... 4 = hibernating
        top, category = feats.pop("top_category"), feats.pop("category")
        feats["in_top_category"] = np.where(top.notna() & category.notna(), (top == category).astype(float), np.nan)
        x = pd.concat([x, feats.apply(pd.to_numeric, errors="coerce").astype("float32")], axis=1)
    return x


def labels(cands: pd.DataFrame, future: pd.DataFrame) -> np.ndarray:
    """1 where the customer bought the item in `future`, else 0 (aligned with `cands`)."""
    bought = pd.MultiIndex.from_frame(future[[s.CUSTOMER, s.ITEM]].drop_duplicates())
    return pd.MultiIndex.from_frame(cands[[s.CUSTOMER, s.ITEM]]).isin(bought).astype(np.int8)


def labelled_windows(
    cands: dict[str, pd.DataFrame | str | Path],
    frame: pd.DataFrame,
    w: Windows,
    source_names: list[str],
    store: FeatureStore | None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, np.ndarray]]:
    """(candidates, features, labels) of every window in `cands` (frames or files), each at its own cutoff
    (the learning windows hold the ranker's sample of customers already: `candidates_at_cutoffs`)."""
    out = {}
    for name, (start, end) in w.label_windows().items():
        if name in cands:
            window_cands = cands[name] if isinstance(cands[name], pd.DataFrame) else pd.read_parquet(cands[name])
            future = frame[(frame[s.TS] >= start) & (frame[s.TS] < end)]
            out[name] = (
                window_cands,
                feature_table(window_cands, start, source_names, store),
                labels(window_cands, future),
            )
    return out


def training_windows(labelled: dict[str, tuple]) -> list[tuple]:
    """The training cutoffs' tables (all but valid and test); at least one is required."""
    train = [v for name, v in labelled.items() if name.startswith("train_")]
    if not train:
        raise InputError("ranker: no training cutoff (set split.train_cutoffs >= 1): validation is for early stopping")
    return train


def groups(cands: pd.DataFrame) -> np.ndarray:
    """Rows per customer, in order (candidates are sorted by customer)."""
    codes = pd.factorize(cands[s.CUSTOMER])[0]
    if len(codes) and (np.diff(codes) < 0).any():
        raise ValueError("candidates must be grouped by customer")
    return np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
