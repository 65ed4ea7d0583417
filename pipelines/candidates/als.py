"""Matrix factorisation: implicit-feedback ALS (Hu, Koren & Volinsky) from the `implicit` library."""

from __future__ import annotations

import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from pipelines.candidates.base import CandidateSource, register
from pipelines.candidates.matrix import top_n, user_items


@register("als")
class ALS(CandidateSource):
    """score(c, i) = user_factors[c] . item_factors[i], fitted on confidence 1 + alpha * strength."""

    def __init__(
        self,
        n: int,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 42,
        half_life_days: float | None = None,
        exclude_bought: bool = True,
    ) -> None:
        super().__init__(n)
        self.model_args = {
            "factors": int(factors),
            "regularization": float(regularization),
            "alpha": float(alpha),
            "iterations": int(iterations),
            "random_state": int(seed),
        }
        self.half_life, self.exclude_bought = half_life_days, bool(exclude_bought)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> ALS:
        self.ui_ = user_items(history, as_of, self.half_life)
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; nested BLAS threads only slow it
            model = AlternatingLeastSquares(**self.model_args, calculate_training_loss=False)
            model.fit(self.ui_.matrix, show_progress=False)
        self.user_factors_, self.item_factors_ = model.user_factors, model.item_factors
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        rows, ids = self.ui_.rows(customers)
        exclude = self.ui_.matrix if self.exclude_bought else None
        return top_n(lambda r: self.user_factors_[r] @ self.item_factors_.T, rows, ids, self.ui_.items, self.n, exclude)
