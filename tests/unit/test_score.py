"""The score step's pieces: cold-start lists per country then global, profiles known at as_of."""

import pandas as pd
import pytest

from pipelines.core.schema import GLOBAL
from pipelines.serving.score import cold_start, customer_profiles, recommendations
from tests.conftest import interactions

pytestmark = pytest.mark.unit

AS_OF = pd.Timestamp("2011-01-01") + pd.Timedelta(days=100)


def test_cold_start_lists_per_country_with_enough_buyers_then_global():
    rows = [(f"de{i}", "g", 95, i) for i in range(3)] + [(f"uk{i}", "u", 96, 10 + i) for i in range(2)]
    rows += [("uk0", "v", 97, 20), ("de0", "old", 10, 21)]  # "old" was bought before the 30-day window
    clean = interactions(rows)
    clean.loc[clean.customer_id.str.startswith("de"), "country"] = "Germany"
    cold = cold_start(clean, AS_OF, k=5, params={"window_days": 30, "min_customers": 3})
    assert set(cold["country"]) == {GLOBAL, "Germany"}  # the UK has 2 recent buyers: no list of its own
    germany = cold[cold.country == "Germany"]
    assert germany["item_id"].tolist() == ["g"] and germany["reason"].iloc[0] == "popular in Germany right now"
    world = cold[cold.country == GLOBAL]
    assert world["item_id"].tolist() == ["g", "u", "v"] and world["rank"].tolist() == [1, 2, 3]
    assert "old" not in set(cold["item_id"])


def test_profiles_come_from_the_latest_snapshot_at_or_before_as_of_within_the_ttl():
    feats = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "gone"],
            "event_timestamp": pd.to_datetime(["2011-03-10", "2011-05-01", "2011-04-11", "2011-03-06"], utc=True),
            "rfm_tier": ["loyal", "champion", "at_risk", "loyal"],  # a's May snapshot is after as_of (2011-04-11)
            "rfm_score": [9, 12, 5, 10],
            "behaviour_cluster": [1, 2, 0, 3],
            "profile_keywords": ["mug", "mug bag", "lamp", "jar"],
            "recency_days": [3.0, 1.0, 40.0, 300.0],
            "orders_365d": [5, 7, 1, 2],
        }
    )
    got = customer_profiles(feats, pd.Index(["a", "b", "new", "gone"]), AS_OF).set_index("customer_id")
    assert got.loc["a", "tier"] == "loyal" and got.loc["a", "rfm_score"] == 9 and got.loc["a", "segment"] == 1
    assert got.loc["b", "tier"] == "at_risk" and got.loc["b", "profile_keywords"] == "lamp"
    assert got.loc["new", "tier"] == "unknown" and pd.isna(got.loc["new", "rfm_score"])
    assert got.loc["gone", "tier"] == "unknown"  # 36 days old, past the TTL: the ranker's join does not read it


def test_a_daily_run_that_keeps_every_list_ranks_nothing(tmp_path):
    """No customer due: no partition, no model loaded (there is none here), nothing written."""
    written = []
    params = {"features": {}, "publish": {"k": 20, "rerank_candidates": 100}}
    counts = recommendations(
        [], None, pd.Index([], name="customer_id"), pd.Timestamp("2011-12-10"), params, None,
        tmp_path / "no-model", "path", written.append, written.append,
    )  # fmt: skip
    assert counts == {"customers_with_recommendations": 0, "recommendations": 0, "rerank_candidates": 0}
    assert written == []
