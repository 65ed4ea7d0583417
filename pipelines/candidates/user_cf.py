"""User-based collaborative filtering: what customers with similar baskets bought."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from pipelines.candidates.base import register
from pipelines.candidates.matrix import MatrixSource, l2_rows
from pipelines.core.errors import InputError
from pipelines.core.topk import Product, top_entries

WEIGHTINGS = {"bm25": lambda m: bm25_weight(m, K1=1.2, B=0.75), "tfidf": tfidf_weight, "cosine": lambda m: m}


@register("user_cf")
class UserCF(MatrixSource):
    """score(c, i) = sum over the `neighbours` pool customers u most similar to c of cos(c, u) * strength(u, i).

    Customers are rows of the customer x item matrix, weighted (BM25, TF-IDF or raw) and
    L2-normalised; similarities are sparse products, computed in batches of customers.
    Neighbours come from a pool of the `pool` customers with the largest (decayed) strength in
    all, the ones whose purchases weigh most in a score; a cost per customer bounded by the
    pool, not by all customers, keeps the source linear in customers (None: everyone).
    """

    def __init__(
        self,
        n: int,
        weighting: str = "bm25",
        neighbours: int = 50,
        half_life_days: float | None = None,
        exclude_bought: bool = True,
        pool: int | None = None,
    ) -> None:
        super().__init__(n, half_life_days, exclude_bought)
        if weighting not in WEIGHTINGS:
            raise InputError(f"params: user_cf.weighting must be one of {sorted(WEIGHTINGS)}, not {weighting!r}")
        if pool is not None and int(pool) < 1:
            raise InputError(f"params: user_cf.pool must be a positive number of customers or null, not {pool!r}")
        self.weighting, self.neighbours = weighting, int(neighbours)
        self.pool = None if pool is None else int(pool)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> UserCF:
        self.fit_matrix(history, as_of)
        self.vectors_ = l2_rows(sp.csr_matrix(WEIGHTINGS[self.weighting](self.ui_.matrix), dtype=np.float32))
        strength = np.asarray(self.ui_.matrix.sum(axis=1)).ravel()
        if self.pool is None or self.pool >= len(strength):
            self.pool_ = np.arange(len(strength))
            self.pool_t_, self.pool_items_ = self.vectors_.T.tocsr(), self.ui_.matrix
        else:  # the strongest customers; ties by row, so the pool does not depend on the sort's whims
            self.pool_ = np.sort(np.lexsort((np.arange(len(strength)), -strength))[: self.pool])
            self.pool_t_, self.pool_items_ = self.vectors_[self.pool_].T.tocsr(), self.ui_.matrix[self.pool_]
        return self

    def scores(self, rows: np.ndarray) -> Product:
        own = np.searchsorted(self.pool_, rows)
        in_pool = (own < len(self.pool_)) & (self.pool_[np.minimum(own, len(self.pool_) - 1)] == rows)
        itself = sp.csr_matrix(  # a customer is not their own neighbour
            (np.ones(in_pool.sum(), np.float32), (np.flatnonzero(in_pool), own[in_pool])),
            shape=(len(rows), len(self.pool_)),
        )
        near = top_entries(Product(self.vectors_[rows], self.pool_t_), self.neighbours, exclude=itself)  # batch x pool
        return Product(near, self.pool_items_)
