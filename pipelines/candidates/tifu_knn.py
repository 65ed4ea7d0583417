"""TIFU-KNN (Hu et al., SIGIR 2020): the customer's time-decayed item frequencies, blended with their neighbours'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipelines.candidates.base import register
from pipelines.candidates.baskets import AGE, COUNT, basket_lines, before, weighted
from pipelines.candidates.matrix import MatrixSource, l2_rows, row_blocks
from pipelines.core.errors import InputError
from pipelines.core.topk import top_entries


@register("tifu_knn")
class TifuKnn(MatrixSource):
    """score = alpha * v(c) + (1 - alpha) * mean of v(u) over the `neighbours` customers u nearest to c.

    v(c), the customer's vector: baskets (orders, binary item vectors) are cut into groups of
    `group_size`, counted from the newest basket backward, so the newest group is full and the
    oldest may be partial. A group's vector is the mean of its baskets weighted by
    `within_decay ** (distance from the group's newest basket)`; v(c) is the mean of the group
    vectors weighted by `group_decay ** (distance from the newest group)`.
    Nearest = highest cosine of those vectors (self excluded; only customers with a positive
    cosine count, the mean is over the neighbours found). Similarities are sparse products over
    blocks of customers (`row_blocks`), never a customers x customers matrix.
    """

    def __init__(
        self,
        n: int,
        group_size: int = 7,
        within_decay: float = 0.9,
        group_decay: float = 0.7,
        neighbours: int = 300,
        alpha: float = 0.7,
        exclude_bought: bool = False,
    ) -> None:
        super().__init__(n, None, exclude_bought)
        if int(group_size) < 1 or int(neighbours) < 1:
            raise InputError(f"params: tifu_knn.group_size and neighbours must be >= 1, not {group_size}, {neighbours}")
        if not all(0.0 <= float(x) <= 1.0 for x in (within_decay, group_decay, alpha)):
            raise InputError("params: tifu_knn.within_decay, group_decay and alpha must be in [0, 1]")
        self.group_size, self.neighbours = int(group_size), int(neighbours)
        self.within_decay, self.group_decay, self.alpha = float(within_decay), float(group_decay), float(alpha)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> TifuKnn:
        history = before(history, as_of)
        ui = self.fit_matrix(history, as_of)
        lines = basket_lines(history)
        count = lines[COUNT].to_numpy()
        group, within = np.divmod(lines[AGE].to_numpy(), self.group_size)
        n_groups = -(-count // self.group_size)
        in_group = np.minimum(self.group_size, count - group * self.group_size)
        weight = self.within_decay**within / in_group * self.group_decay**group / n_groups
        self.vectors_ = weighted(lines, weight, ui)
        self.unit_ = l2_rows(self.vectors_)
        self.unit_t_ = self.unit_.T.tocsr()
        return self

    def scores(self, rows: np.ndarray) -> sp.csr_matrix:
        return sp.vstack([self._block(b) for b in row_blocks(rows, self.vectors_.shape[0])], format="csr")

    def _block(self, rows: np.ndarray) -> sp.csr_matrix:
        sim = (self.unit_[rows] @ self.unit_t_).tocsr()  # rows x customers
        sim[np.arange(len(rows)), rows] = 0.0  # a customer is not their own neighbour
        sim.eliminate_zeros()
        near = top_entries(sim, self.neighbours)
        near.data[:] = 1.0
        found = np.maximum(np.diff(near.indptr), 1)
        neighbours = sp.diags(1.0 / found) @ near @ self.vectors_
        return sp.csr_matrix(self.alpha * self.vectors_[rows] + (1.0 - self.alpha) * neighbours)
