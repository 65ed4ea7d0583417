"""The candidate-source interface and its registry."""

from __future__ import annotations

import difflib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError

SCORE = "score"


class CandidateSource(ABC):
    """Fit on interactions before an as-of time; propose the top `n` items for many customers at once."""

    name: str = ""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    @abstractmethod
    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> CandidateSource:
        """Learn from `history` (all rows strictly before `as_of`)."""

    @abstractmethod
    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        """Columns customer_id, item_id, score: at most `n` rows per customer, best first."""

    def proposals(self, customers: pd.Index) -> pd.DataFrame:
        """`recommend`'s rows, the ids possibly as categoricals (cheaper to make; `union` joins on their codes)."""
        return self.recommend(customers)


def decoded(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with categorical id columns as plain ids."""
    ids = {
        c: frame[c].to_numpy(dtype=object)
        for c in (s.CUSTOMER, s.ITEM)
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    return frame.assign(**ids)


T = TypeVar("T", bound=type[CandidateSource])
SOURCES: dict[str, type[CandidateSource]] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a source available under `name` in params."""

    def deco(cls: T) -> T:
        cls.name = name
        SOURCES[name] = cls
        return cls

    return deco


def build_sources(source_params: dict[str, dict[str, Any]]) -> list[CandidateSource]:
    """Instantiate the sources named in `candidates.sources` (a mapping name -> settings). Each names
    every argument of its source's constructor, so no default outside params.yaml ever applies."""
    if not source_params:
        raise InputError("params: candidates.sources names no source")
    out = []
    for name, settings in source_params.items():
        if name not in SOURCES:
            close = difflib.get_close_matches(name, list(SOURCES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {sorted(SOURCES)}"
            raise InputError(f"params: unknown candidate source candidates.sources.{name}{hint}")
        settings = dict(settings or {})
        taken = [p for p in inspect.signature(SOURCES[name]).parameters if p != "self"]
        unknown = sorted(set(settings) - set(taken))
        if unknown:
            close = difflib.get_close_matches(unknown[0], taken, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; it takes {', '.join(taken)}"
            raise InputError(f"params: unknown key candidates.sources.{name}.{unknown[0]}{hint}")
        missing = [p for p in taken if p not in settings]
        if missing:
            raise InputError(
                f"params: candidates.sources.{name} lacks {', '.join(missing)} (every setting is written out)"
            )
        try:
            out.append(SOURCES[name](**settings))
        except (TypeError, ValueError) as exc:
            raise InputError(f"params: candidates.sources.{name}: {exc}") from None
    return out


def rank_within_groups(groups: np.ndarray) -> np.ndarray:
    """1, 2, 3, ... within each run of equal consecutive values (rows grouped by customer, best first)."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int32)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return (np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)])) + 1).astype(np.int32)


def no_candidates() -> pd.DataFrame:
    """An empty result with the right columns and types."""
    return pd.DataFrame(
        {s.CUSTOMER: pd.Series(dtype=object), s.ITEM: pd.Series(dtype=object), SCORE: pd.Series(dtype=float)}
    )


def top_n(scored: pd.DataFrame, n: int) -> pd.DataFrame:
    """Keep the `n` best-scored rows per customer (ties broken by item id for determinism)."""
    ranked = scored.sort_values([s.CUSTOMER, SCORE, s.ITEM], ascending=[True, False, True], kind="stable")
    return ranked[ranked.groupby(s.CUSTOMER, sort=False).cumcount() < n].reset_index(drop=True)
