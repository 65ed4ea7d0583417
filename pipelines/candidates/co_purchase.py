"""Co-purchase: items bought in the same orders as the customer's recent purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines import schema as s
from pipelines.candidates.base import CandidateSource, register
from pipelines.candidates.matrix import keep_top_k, top_n, user_items


@register("co_purchase")
class CoPurchase(CandidateSource):
    """score(c, i) = sum over the customer's items j (recency-weighted) of cos(j, i) over order baskets."""

    def __init__(
        self, n: int, neighbours: int = 100, half_life_days: float | None = 90.0, exclude_bought: bool = True
    ) -> None:
        super().__init__(n)
        self.neighbours, self.half_life, self.exclude_bought = int(neighbours), half_life_days, bool(exclude_bought)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> CoPurchase:
        self.ui_ = user_items(history, as_of, self.half_life)
        lines = history[[s.ORDER, s.ITEM]].drop_duplicates()
        orders = pd.factorize(lines[s.ORDER])[0]
        baskets = sp.csr_matrix(
            (np.ones(len(lines), np.float32), (orders, self.ui_.items.get_indexer(lines[s.ITEM]))),
            shape=(orders.max() + 1 if len(orders) else 0, len(self.ui_.items)),
        )
        together = (baskets.T @ baskets).tocsr()
        counts = together.diagonal().astype(np.float32)
        together.setdiag(0)
        together.eliminate_zeros()
        norm = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        self.similarity_ = keep_top_k(sp.diags(norm) @ together @ sp.diags(norm), self.neighbours)
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        rows, ids = self.ui_.rows(customers)
        exclude = self.ui_.matrix if self.exclude_bought else None
        return top_n(lambda r: self.ui_.matrix[r] @ self.similarity_, rows, ids, self.ui_.items, self.n, exclude)
