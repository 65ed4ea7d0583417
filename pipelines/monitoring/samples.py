"""The drift samples: scored ranker inputs of the training cutoffs (the reference, saved with the model)
and of the rows scored now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.ranking.model import predict

if TYPE_CHECKING:
    import lightgbm as lgb


def reference_sample(
    booster: lgb.Booster,
    train: list[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]],
    cutoffs: list[pd.Timestamp],
    rows: int,
    seed: int,
) -> pd.DataFrame:
    """The drift reference: a seeded sample of the training cutoffs' rows (`cutoffs`: each table's), scored,
    with labels and their cutoff (only the sampled rows are gathered and scored)."""
    sizes = np.array([len(c) for c, _, _ in train])
    picked = np.sort(np.random.default_rng(seed).choice(sizes.sum(), min(rows, sizes.sum()), replace=False))
    window = np.searchsorted(np.cumsum(sizes), picked, side="right")
    offset = picked - (np.cumsum(sizes) - sizes)[window]
    parts = [
        (c.iloc[offset[window == i]], x.iloc[offset[window == i]], y[offset[window == i]])
        for i, (c, x, y) in enumerate(train)
    ]
    cands, x = (pd.concat(p, ignore_index=True) for p in zip(*[(c, x) for c, x, _ in parts], strict=True))
    y = np.concatenate([y for *_, y in parts])
    return scored_rows(cands, x, predict(booster, x), pd.DatetimeIndex(cutoffs)[window], y)


def scored_rows(
    cands: pd.DataFrame,
    x: pd.DataFrame,
    scores: np.ndarray,
    cutoff: pd.Timestamp | pd.DatetimeIndex,
    label: np.ndarray | None = None,
) -> pd.DataFrame:
    """Scored rows as drift is measured on them: customer, item, model inputs, score, the cutoff the
    inputs were computed at (`as_of`; drift compares some features relative to it) and the label."""
    frame = pd.concat([cands[[s.CUSTOMER, s.ITEM]].reset_index(drop=True), x.reset_index(drop=True)], axis=1)
    frame["score"] = scores
    frame[s.AS_OF] = cutoff
    if label is not None:
        frame["label"] = label
    return frame


def monitoring_sample(
    cands: pd.DataFrame, x: pd.DataFrame, scores: np.ndarray, cutoff: pd.Timestamp, rows: int, seed: int
) -> pd.DataFrame:
    """A seeded sample of `rows` scored rows at `cutoff`, in their original order (drawn as
    `DataFrame.sample` draws them; only the drawn rows are copied)."""
    picked = np.sort(
        pd.RangeIndex(len(cands)).to_series().sample(n=min(rows, len(cands)), random_state=seed).to_numpy()
    )
    return scored_rows(cands.iloc[picked], x.iloc[picked], np.asarray(scores)[picked], cutoff)
