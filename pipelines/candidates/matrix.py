"""Sparse customer x item matrices and batched top-N scoring shared by the matrix-based sources."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates.base import SCORE, CandidateSource, decoded, no_candidates
from pipelines.core import schema as s
from pipelines.core.topk import Scores, top_entries

BATCH = 1024  # customers scored at once: bounds a dense (ALS) batch x items block and the top-n output
BLOCK = 1 << 24  # entries of a customers x customers similarity block computed at once (rows x all customers)


@dataclass(frozen=True)
class UserItems:
    """Customer x item interaction strengths with their id indexes (rows = customers, columns = items)."""

    matrix: sp.csr_matrix
    customers: pd.Index
    items: pd.Index

    def rows(self, customers: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        """Matrix rows of the known customers among `customers`, and those customers' ids."""
        pos = self.customers.get_indexer(customers)
        known = pos >= 0
        return pos[known], np.asarray(customers)[known]


def user_items(history: pd.DataFrame, as_of: pd.Timestamp, half_life_days: float | None = None) -> UserItems:
    """Strength = number of distinct orders of the item by the customer, each decayed by age if a half-life is set."""
    lines = history.drop_duplicates([s.CUSTOMER, s.ITEM, s.ORDER])
    if half_life_days:
        age = (as_of - lines[s.TS]).dt.total_seconds().to_numpy() / 86400.0
        weight = np.power(0.5, age / float(half_life_days))
    else:
        weight = np.ones(len(lines))
    cust_codes, customers = pd.factorize(lines[s.CUSTOMER], sort=True)
    item_codes, items = pd.factorize(lines[s.ITEM], sort=True)
    matrix = sp.csr_matrix(
        (weight.astype(np.float32), (cust_codes, item_codes)), shape=(len(customers), len(items)), dtype=np.float32
    )
    matrix.sum_duplicates()
    return UserItems(matrix, pd.Index(customers, name=s.CUSTOMER), pd.Index(items, name=s.ITEM))


def l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to unit L2 norm (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def row_blocks(rows: np.ndarray, n_customers: int) -> Iterator[np.ndarray]:
    """`rows` in consecutive slices whose similarity to all `n_customers` holds at most `BLOCK` entries."""
    step = max(1, BLOCK // max(n_customers, 1))
    for lo in range(0, len(rows), step):
        yield rows[lo : lo + step]


def top_n(
    score_rows: Callable[[np.ndarray], Scores],
    rows: np.ndarray,
    ids: np.ndarray,
    items: pd.Index,
    n: int,
    exclude: sp.csr_matrix | None = None,
) -> pd.DataFrame:
    """Top-n positive-scored items per customer, scoring `BATCH` customers at a time (ids as categoricals).

    `score_rows(rows)` returns the scores of those matrix rows over all items (dense, sparse or a
    `Product` left to the selection); items with an entry in `exclude` (e.g. what the customer
    already bought; by structure, not value: a fully decayed purchase is still a purchase) are
    skipped. Output rows are grouped by customer in the order of `rows`, best first, ties broken
    by item order.
    """
    if not len(rows):
        return no_candidates()
    customer, item, score = [], [], []
    for lo in range(0, len(rows), BATCH):
        batch = rows[lo : lo + BATCH]
        top = top_entries(score_rows(batch), n, None if exclude is None else exclude[batch])
        customer.append(lo + np.repeat(np.arange(len(batch)), np.diff(top.indptr)))
        item.append(top.indices)
        score.append(top.data)
    return pd.DataFrame(  # grouped by customer in `rows` order, best first; ids as codes (union joins on them)
        {
            s.CUSTOMER: pd.Categorical.from_codes(np.concatenate(customer), categories=pd.Index(ids, dtype=object)),
            s.ITEM: pd.Categorical.from_codes(np.concatenate(item), categories=items),
            SCORE: np.concatenate(score),
        }
    )


class SharedMatrices:
    """Customer x item matrices of one history, built once per half-life and shared by the sources."""

    def __init__(self, history: pd.DataFrame, as_of: pd.Timestamp) -> None:
        self.history, self.as_of = history, as_of
        self._built: dict[float | None, UserItems] = {}

    def get(self, history: pd.DataFrame, as_of: pd.Timestamp, half_life_days: float | None) -> UserItems:
        if history is not self.history or as_of != self.as_of:  # another history: nothing to share
            return user_items(history, as_of, half_life_days)
        if half_life_days not in self._built:
            self._built[half_life_days] = user_items(history, as_of, half_life_days)
        return self._built[half_life_days]


class MatrixSource(CandidateSource):
    """A source that scores customers' rows of the customer x item matrix.

    Subclasses call `fit_matrix` in `fit` and define `scores(rows)`; `recommend` is shared:
    batched top-n, skipping what the customer already bought when `exclude_bought`.
    `shared`, when set (by `union.fit_sources`), lets sources reuse each other's matrices.
    """

    shared: SharedMatrices | None = None

    def __init__(self, n: int, half_life_days: float | None = None, exclude_bought: bool = True) -> None:
        super().__init__(n)
        self.half_life, self.exclude_bought = half_life_days, bool(exclude_bought)

    def fit_matrix(self, history: pd.DataFrame, as_of: pd.Timestamp) -> UserItems:
        """Build (and keep) the customer x item strengths, decayed by this source's half-life."""
        if self.shared is not None:
            self.ui_ = self.shared.get(history, as_of, self.half_life)
        else:
            self.ui_ = user_items(history, as_of, self.half_life)
        return self.ui_

    @abstractmethod
    def scores(self, rows: np.ndarray) -> Scores:
        """Scores of these matrix rows (customers) over all items."""

    def proposals(self, customers: pd.Index) -> pd.DataFrame:
        rows, ids = self.ui_.rows(customers)
        exclude = self.ui_.matrix if self.exclude_bought else None
        return top_n(self.scores, rows, ids, self.ui_.items, self.n, exclude)

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        return decoded(self.proposals(customers))
