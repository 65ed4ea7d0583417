"""Evaluate: the ranker and every source are scored on the same customers; curves match the metrics."""

import pandas as pd
import pytest

from pipelines.evaluate import evaluate, metric_curves

pytestmark = pytest.mark.unit


def test_sources_are_scored_alone_on_their_own_ranks():
    # customer c bought x; buy_again ranks x first, popularity ranks it second
    cands = pd.DataFrame(
        {
            "customer_id": ["c", "c", "c"],
            "item_id": ["x", "y", "z"],
            "buy_again_rank": [1, 3, 3],  # n = 2: y and z not proposed
            "popularity_rank": [2, 1, 3],
        }
    )
    truth = pd.DataFrame({"customer_id": ["c"], "item_id": ["x"]})
    recs = pd.DataFrame({"customer_id": ["c", "c"], "item_id": ["y", "x"], "rank": [1, 2], "score": [2.0, 1.0]})
    result = evaluate(recs, cands, truth, {"buy_again": 2, "popularity": 2}, ks=[1, 2], n_items=4)
    assert result["customers"] == 1
    assert result["sources"]["buy_again"]["hitrate@1"] == 1.0
    assert result["sources"]["popularity"]["hitrate@1"] == 0.0
    assert result["sources"]["popularity"]["mrr@2"] == 0.5
    assert result["ranker"]["mrr@2"] == 0.5
    assert result["ranker"]["coverage@2"] == 0.5  # 2 of 4 catalogue items shown

    curves = metric_curves(result, [1, 2])
    assert list(curves["ndcg"].columns) == ["k", "ranker", "buy_again", "popularity"]
    assert curves["recall"].loc[1, "popularity"] == result["sources"]["popularity"]["recall@2"]
