"""Item-based collaborative filtering: items similar to what the customer bought (implicit's item kNN)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender
from implicit.utils import ParameterWarning

from pipelines.candidates.base import register
from pipelines.candidates.matrix import MatrixSource
from pipelines.core.errors import InputError
from pipelines.core.topk import Product

MODELS = {"cosine": CosineRecommender, "bm25": BM25Recommender, "tfidf": TFIDFRecommender}


@register("item_cf")
class ItemCF(MatrixSource):
    """score(c, i) = sum over items j the customer bought of strength(c, j) * sim(j, i), sim from kNN over buyers."""

    def __init__(
        self,
        n: int,
        weighting: str = "bm25",
        neighbours: int = 100,
        half_life_days: float | None = None,
        exclude_bought: bool = True,
    ) -> None:
        super().__init__(n, half_life_days, exclude_bought)
        if weighting not in MODELS:
            raise InputError(f"params: item_cf.weighting must be one of {sorted(MODELS)}, not {weighting!r}")
        self.weighting, self.neighbours = weighting, int(neighbours)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> ItemCF:
        self.fit_matrix(history, as_of)
        model = MODELS[self.weighting](K=self.neighbours)
        with warnings.catch_warnings():  # implicit warns about the COO matrix its own weighting returns
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(self.ui_.matrix, show_progress=False)
        self.similarity_ = model.similarity.tocsr()
        return self

    def scores(self, rows: np.ndarray) -> Product:
        return Product(self.ui_.matrix[rows], self.similarity_)
