"""Item-based collaborative filtering: items similar to what the customer bought (implicit's item kNN)."""

from __future__ import annotations

import pandas as pd
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

from pipelines.candidates.base import CandidateSource, register
from pipelines.candidates.matrix import top_n, user_items
from pipelines.errors import InputError

MODELS = {"cosine": CosineRecommender, "bm25": BM25Recommender, "tfidf": TFIDFRecommender}


@register("item_cf")
class ItemCF(CandidateSource):
    """score(c, i) = sum over items j the customer bought of strength(c, j) * sim(j, i), sim from kNN over buyers."""

    def __init__(
        self,
        n: int,
        weighting: str = "bm25",
        neighbours: int = 100,
        half_life_days: float | None = None,
        exclude_bought: bool = True,
    ) -> None:
        super().__init__(n)
        if weighting not in MODELS:
            raise InputError(f"params: item_cf.weighting must be one of {sorted(MODELS)}, not {weighting!r}")
        self.weighting, self.neighbours = weighting, int(neighbours)
        self.half_life, self.exclude_bought = half_life_days, bool(exclude_bought)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> ItemCF:
        self.ui_ = user_items(history, as_of, self.half_life)
        model = MODELS[self.weighting](K=self.neighbours)
        model.fit(self.ui_.matrix, show_progress=False)
        self.similarity_ = model.similarity.tocsr()
        return self

    def recommend(self, customers: pd.Index) -> pd.DataFrame:
        rows, ids = self.ui_.rows(customers)
        exclude = self.ui_.matrix if self.exclude_bought else None
        return top_n(lambda r: self.ui_.matrix[r] @ self.similarity_, rows, ids, self.ui_.items, self.n, exclude)
