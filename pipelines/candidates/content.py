"""Content-based: items whose text resembles what the customer bought (TF-IDF; Jaccard as an option).

Text is the item's description plus its category. New items with few purchases get
exposure here, since their text is known from their first sale.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from pipelines.candidates.base import no_candidates, register
from pipelines.candidates.matrix import MatrixSource, l2_rows
from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.topk import Product, top_entries

log = logging.getLogger(__name__)


def item_texts(history: pd.DataFrame, items: pd.Index) -> pd.Series:
    """The latest description and category of each item ('' where none is known)."""
    cols = [c for c in (s.DESCRIPTION, s.CATEGORY) if c in history]
    latest = history.sort_values(s.TS).groupby(s.ITEM)[cols].last()
    text = latest.fillna("").astype(str).agg(" ".join, axis=1).str.strip()
    return text.reindex(items, fill_value="")


@register("content")
class Content(MatrixSource):
    """cosine: score = cos(customer profile, item), the profile being the strength-weighted mean TF-IDF vector.
    jaccard: score(c, i) = sum over the customer's items j of strength(c, j) * Jaccard(tokens j, tokens i).
    """

    def __init__(
        self,
        n: int,
        similarity: str = "cosine",
        max_features: int = 20000,
        neighbours: int = 100,
        half_life_days: float | None = 90.0,
        exclude_bought: bool = True,
    ) -> None:
        super().__init__(n, half_life_days, exclude_bought)
        if similarity not in ("cosine", "jaccard"):
            raise InputError(f"params: content.similarity must be 'cosine' or 'jaccard', not {similarity!r}")
        self.similarity, self.max_features, self.neighbours = similarity, int(max_features), int(neighbours)

    def fit(self, history: pd.DataFrame, as_of: pd.Timestamp) -> Content:
        self.fit_matrix(history, as_of)
        texts = item_texts(history, self.ui_.items)
        self.has_text_ = bool((texts != "").any())
        if not self.has_text_:
            log.warning("content: no item has a description or category; the source proposes nothing")
            return self
        try:
            self._fit_text(texts)
        except ValueError as exc:  # scikit-learn: "empty vocabulary" when no text has a usable word
            log.warning("content: no usable words in item texts (%s); the source proposes nothing", exc)
            self.has_text_ = False
        return self

    def _fit_text(self, texts: pd.Series) -> None:
        """TF-IDF item vectors (cosine) or the kNN graph of token-set Jaccard similarities (jaccard)."""
        if self.similarity == "cosine":
            vec = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True, dtype=np.float32)
            self.item_vectors_ = vec.fit_transform(texts).tocsr()  # rows are L2-normalised
            self.item_vectors_t_ = self.item_vectors_.T.tocsr()
        else:
            tokens = TfidfVectorizer(max_features=self.max_features, use_idf=False, norm=None, binary=True)
            b = tokens.fit_transform(texts).astype(np.float32).tocsr()
            inter = (b @ b.T).tocsr()
            sizes = np.asarray(b.sum(axis=1)).ravel()
            inter.setdiag(0)
            inter.eliminate_zeros()
            coo = inter.tocoo()
            jac = coo.data / (sizes[coo.row] + sizes[coo.col] - coo.data)
            self.jaccard_ = top_entries(sp.csr_matrix((jac, (coo.row, coo.col)), shape=inter.shape), self.neighbours)

    def scores(self, rows: np.ndarray) -> Product:
        if self.similarity == "jaccard":
            return Product(self.ui_.matrix[rows], self.jaccard_)
        return Product(l2_rows(self.ui_.matrix[rows] @ self.item_vectors_), self.item_vectors_t_)

    def proposals(self, customers: pd.Index) -> pd.DataFrame:
        return super().proposals(customers) if self.has_text_ else no_candidates()
