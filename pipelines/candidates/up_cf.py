"""UP-CF@r (Faggioli et al., UMAP 2020): recency-aware user popularity spread by user-based CF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates.base import register
from pipelines.candidates.baskets import AGE, COUNT, basket_lines, before, weighted
from pipelines.candidates.matrix import MatrixSource, row_blocks
from pipelines.core.errors import InputError
from pipelines.core.topk import top_entries


@register("up_cf")
class UpCF(MatrixSource):
    """score(u, i) = sum over customers v of sim(u, v) ** locality * pop(v, i).

    pop(v, i): the share of v's `recency` most recent baskets (orders; None: all) that hold i.
    sim(u, v) = |I_u & I_v| / (|I_u| ** asymmetry * |I_v| ** (1 - asymmetry)), the asymmetric
    cosine of the sets of items u and v ever bought (0.5: the plain cosine). As in the paper the
    sum runs over every customer, u included (sim(u, u) = 1: u's own repeat purchases); with
    `neighbours` set, over the `neighbours` most similar ones (u among them). Sparse products
    over blocks of customers (`row_blocks`), never a customers x customers matrix.
    """

    def __init__(
        self,
        n: int,
        recency: int | None = 5,
        asymmetry: float = 0.75,
        locality: float = 5,
        neighbours: int | None = None,
        exclude_bought: bool = False,
    ) -> None:
        super().__init__(n, None, exclude_bought)
        if (recency is not None and int(recency) < 1) or (neighbours is not None and int(neighbours) < 1):
            raise InputError(f"params: up_cf.recency and neighbours must be >= 1 or null, not {recency}, {neighbours}")
        if not 0.0 <= float(asymmetry) <= 1.0 or float(locality) <= 0:
            raise InputError(f"params: up_cf.asymmetry must be in [0, 1] and locality > 0, not {asymmetry}, {locality}")
        self.recency = None if recency is None else int(recency)
        self.neighbours = None if neighbours is None else int(neighbours)
        self.asymmetry, self.locality = float(asymmetry), float(locality)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> UpCF:
        history = before(history, as_of)
        ui = self.fit_matrix(history, as_of)
        lines = basket_lines(history)
        baskets = lines[COUNT].to_numpy()
        if self.recency is not None:
            recent = lines[AGE].to_numpy() < self.recency
            lines, baskets = lines[recent], np.minimum(baskets[recent], self.recency)
        self.popularity_ = weighted(lines, 1.0 / baskets, ui)
        bought = sp.csr_matrix((ui.matrix > 0).astype(np.float32))
        size = np.asarray(bought.sum(axis=1)).ravel()  # distinct items; every known customer has one
        self.left_ = sp.csr_matrix(sp.diags(size**-self.asymmetry) @ bought)
        self.right_t_ = sp.csr_matrix((sp.diags(size ** -(1.0 - self.asymmetry)) @ bought).T)
        return self

    def scores(self, rows: np.ndarray) -> sp.csr_matrix:
        return sp.vstack([self._block(b) for b in row_blocks(rows, self.left_.shape[0])], format="csr")

    def _block(self, rows: np.ndarray) -> sp.csr_matrix:
        sim = (self.left_[rows] @ self.right_t_).tocsr()  # rows x customers
        sim.data **= self.locality
        if self.neighbours is not None:
            sim = top_entries(sim, self.neighbours)
        return sp.csr_matrix(sim @ self.popularity_)
