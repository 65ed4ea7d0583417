"""Candidate sources: each proposes the top N items per customer with a score.

Sources register by name (`@register("buy_again")`) and are chosen, with their settings,
in `params.yaml` under `candidates.sources`. `union` fuses them into one row per
customer x item with every source's score and rank as columns.
"""

from pipelines.candidates import buy_again, popularity  # noqa: F401  (register the sources)
from pipelines.candidates.base import SOURCES, CandidateSource, build_sources, register
from pipelines.candidates.union import generate_candidates, union

__all__ = ["SOURCES", "CandidateSource", "build_sources", "register", "generate_candidates", "union"]
