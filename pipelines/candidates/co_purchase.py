"""Co-purchase: items bought in the same orders as the customer's recent purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates.base import register
from pipelines.candidates.matrix import MatrixSource
from pipelines.core import schema as s
from pipelines.core.topk import Product, top_entries


@register("co_purchase")
class CoPurchase(MatrixSource):
    """score(c, i) = sum over the customer's items j (recency-weighted) of cos(j, i) over order baskets."""

    def __init__(
        self, n: int, neighbours: int = 100, half_life_days: float | None = 90.0, exclude_bought: bool = True
    ) -> None:
        super().__init__(n, half_life_days, exclude_bought)
        self.neighbours = int(neighbours)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> CoPurchase:
        self.fit_matrix(history, as_of)
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
        self.similarity_ = top_entries(sp.diags(norm) @ together @ sp.diags(norm), self.neighbours)
        return self

    def scores(self, rows: np.ndarray) -> Product:
        return Product(self.ui_.matrix[rows], self.similarity_)
