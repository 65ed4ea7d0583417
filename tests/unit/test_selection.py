"""Budgeted selection of the union: hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from pipelines.candidates.selection import select
from pipelines.core.topk import best_in_groups

pytestmark = pytest.mark.unit


def test_best_in_groups_keeps_each_groups_limit_of_positive_priorities_ties_by_row():
    groups = np.array([1, 0, 1, 0, 1, 0, 1, 2])  # not grouped
    priority = np.array([0.5, 0.2, 0.9, 0.2, 0.5, 0.0, 0.5, 0.0])
    got = best_in_groups(groups, priority, np.array([3, 2, 5]))
    # group 0: 0.2 (row 1), 0.2 (row 3), 0.0 never; group 1: limit 2 of 0.9, 0.5, 0.5, 0.5 -> row 2, then row 0
    assert got.tolist() == [True, True, True, True, False, False, False, False]
    assert best_in_groups(np.array([], np.int64), np.array([]), np.array([], np.int64)).tolist() == []


def test_select_keeps_the_budget_by_weighted_reciprocal_rank():
    cands = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "item_id": ["x", "y", "z", "x", "y"],
            "s1_score": [1.0, 1.0, 0.0, 1.0, 0.0],
            "s1_rank": [2, 1, 9, 1, 9],
            "s2_score": [1.0, 0.0, 1.0, 0.0, 0.0],
            "s2_rank": [1, 9, 2, 9, 9],
        }
    )
    budget = pd.Series({"a": 2, "b": 5})
    # a: x = 1/(1+2) + 2/(1+1) = 1.33, y = 1/(1+1) = 0.5, z = 2/(1+2) = 0.67 -> x, z; b: x only (y has no vote)
    codes, customers = pd.factorize(cands["customer_id"])
    limits = budget.reindex(customers).to_numpy()
    got = cands[select(codes, cands, {"s1": 1.0, "s2": 2.0}, limits, rrf_k=1.0)]
    assert list(zip(got["customer_id"], got["item_id"], strict=True)) == [("a", "x"), ("a", "z"), ("b", "x")]
    only_s1 = cands[select(codes, cands, {"s1": 1.0, "s2": 0.0}, limits, rrf_k=1.0)]
    assert list(zip(only_s1["customer_id"], only_s1["item_id"], strict=True)) == [("a", "x"), ("a", "y"), ("b", "x")]
