"""Candidate sources: each proposes the top N items per customer with a score.

Sources register by name (`@register("buy_again")`) and are chosen, with their settings,
in `params.yaml` under `candidates.sources`. `union` fuses them into one row per
customer x item with every source's score and rank as columns.
"""

from pipelines.candidates import (  # noqa: F401  (importing a source registers it)
    als,
    buy_again,
    co_purchase,
    content,
    item_cf,
    popularity,
    tifu_knn,
    up_cf,
    user_cf,
)
from pipelines.candidates.base import SOURCES, CandidateSource, build_sources, register
from pipelines.candidates.union import generate_candidates, union

__all__ = ["SOURCES", "CandidateSource", "build_sources", "register", "generate_candidates", "union"]
