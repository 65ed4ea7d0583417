"""Matrix factorisation: implicit-feedback ALS (Hu, Koren & Volinsky) from the `implicit` library."""

from __future__ import annotations

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from pipelines.candidates.base import register
from pipelines.candidates.matrix import MatrixSource


@register("als")
class ALS(MatrixSource):
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
        super().__init__(n, half_life_days, exclude_bought)
        self.model_args = {
            "factors": int(factors),
            "regularization": float(regularization),
            "alpha": float(alpha),
            "iterations": int(iterations),
            "random_state": int(seed),
        }

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> ALS:
        self.fit_matrix(history, as_of)
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; nested BLAS threads only slow it
            model = AlternatingLeastSquares(**self.model_args, calculate_training_loss=False)
            model.fit(self.ui_.matrix, show_progress=False)
        self.user_factors_, self.item_factors_ = model.user_factors, model.item_factors
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T
