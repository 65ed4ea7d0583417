"""Evaluate: the ranker and every source are scored on the same customers; curves match the metrics;
segments are known at the cutoff and split the evaluated customers."""

import pandas as pd
import pytest

from pipelines.evaluation.evaluate import Catalogue, by_segment, evaluate, metric_curves, metric_table, model_lists
from pipelines.evaluation.metrics import ItemVectors
from pipelines.evaluation.segments import customer_segments, latest_snapshot, loyalty_tier
from tests.conftest import interactions

pytestmark = pytest.mark.unit


def catalogue(n_items: int) -> Catalogue:
    return Catalogue(n_items, pd.Series(dtype=float), ItemVectors.of_texts(pd.Series(dtype=object)))


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
    lists = model_lists(recs, [cands], {"buy_again": 2, "popularity": 2}, 2)
    result = evaluate(lists, truth, ks=[1, 2], catalogue=catalogue(4))
    assert result["customers"] == 1
    assert result["sources"]["buy_again"]["hitrate@1"] == 1.0
    assert result["sources"]["popularity"]["hitrate@1"] == 0.0
    assert result["sources"]["popularity"]["mrr@2"] == 0.5
    assert result["ranker"]["mrr@2"] == 0.5
    assert result["ranker"]["coverage@2"] == 0.5  # 2 of 4 catalogue items shown

    curves = metric_curves(result, [1, 2])
    assert list(curves["ndcg"].columns) == ["k", "ranker", "buy_again", "popularity"]
    assert curves["recall"].loc[1, "popularity"] == result["sources"]["popularity"]["recall@2"]


def test_source_lists_do_not_depend_on_the_partitions():
    cands = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "item_id": ["x", "y", "z", "x", "y", "z"],
            "buy_again_rank": [2, 1, 3, 1, 3, 1],
            "popularity_rank": [1, 3, 2, 2, 1, 3],
        }
    )
    sizes = {"buy_again": 2, "popularity": 2}
    whole = model_lists(cands[:0], [cands], sizes, 2)
    split = model_lists(cands[:0], [cands[:3], cands[3:5], cands[5:]], sizes, 2)
    for name in sizes:
        pd.testing.assert_frame_equal(split[name], whole[name])
    assert whole["buy_again"]["item_id"].tolist() == ["y", "x", "x", "z"]


def test_lists_of_customers_outside_the_truth_do_not_count():
    recs = pd.DataFrame({"customer_id": ["u", "v"], "item_id": ["a", "b"], "rank": [1, 1], "score": [1.0, 1.0]})
    truth = pd.DataFrame({"customer_id": ["u"], "item_id": ["a"]})
    result = evaluate({"ranker": recs}, truth, ks=[1], catalogue=catalogue(4))
    assert result["ranker"]["coverage@1"] == 0.25  # only u's list: 1 of 4 items


def test_segments_at_the_cutoff():
    # day 0 = 2011-01-01; cutoff day 100; "new" = first purchase within 30 days of the cutoff
    clean = interactions(
        [("old", "a", 0, 1), ("old", "b", 95, 2), ("fresh", "a", 80, 3), ("de", "c", 10, 4), ("uk", "c", 10, 5)]
    )
    clean.loc[clean.customer_id == "de", "country"] = "Germany"
    clean.loc[(clean.customer_id == "old") & (clean.item_id == "b"), "country"] = "France"  # the latest counts
    cutoff = pd.Timestamp("2011-01-01") + pd.Timedelta(days=100)
    feats = pd.DataFrame(
        {
            "customer_id": ["old", "old", "fresh", "de"],
            "event_timestamp": pd.to_datetime(["2011-03-20", "2011-05-01", "2011-04-01", "2011-04-11"], utc=True),
            "rfm_tier": ["loyal", "champion", "promising", "at_risk"],  # old's May snapshot is after the cutoff
        }
    )
    customers = pd.Index(["old", "fresh", "de", "uk", "ghost"])
    seg = customer_segments(clean, customers, cutoff, feats, {"new_customer_days": 30, "countries": 1})
    assert seg.loc["old"].to_dict() == {"tier": "loyal", "lifecycle": "returning", "country": "other"}
    assert seg.loc["fresh"].to_dict() == {"tier": "promising", "lifecycle": "new", "country": "United Kingdom"}
    assert seg.loc["de"].to_dict() == {"tier": "at_risk", "lifecycle": "returning", "country": "other"}
    assert seg.loc["ghost", "tier"] == "unknown" and seg.loc["ghost", "country"] == "unknown"
    assert loyalty_tier(feats, pd.Index(["old"]), pd.Timestamp("2011-02-01")).tolist() == ["unknown"]
    # 36 days after old's March snapshot, past the 35-day TTL: the ranker's join would not read it either
    assert loyalty_tier(feats, pd.Index(["old"]), pd.Timestamp("2011-04-25")).tolist() == ["unknown"]
    assert loyalty_tier(feats, pd.Index(["old"]), pd.Timestamp("2011-04-24")).tolist() == ["loyal"]


def test_latest_snapshot_reads_the_same_from_the_file_and_the_frame(tmp_path):
    feats = pd.DataFrame(
        {
            "customer_id": ["b", "a", "a", "b", "c"],
            "event_timestamp": pd.to_datetime(
                ["2011-03-12", "2011-03-01", "2011-04-01", "2011-05-01", "2011-05-01"], utc=True
            ),
            "rfm_tier": ["loyal", "promising", "champion", "at_risk", "loyal"],
            "rfm_score": [9, 6, 13, 5, 10],
        }
    )
    feats.to_parquet(tmp_path / "customer.parquet")
    customers = pd.Index(["a", "b", "c", "ghost"])
    cutoff = pd.Timestamp("2011-04-15")
    from_file = latest_snapshot(tmp_path / "customer.parquet", customers, cutoff, ["rfm_tier", "rfm_score"])
    pd.testing.assert_frame_equal(from_file, latest_snapshot(feats, customers, cutoff, ["rfm_tier", "rfm_score"]))
    assert from_file["rfm_tier"].tolist()[:2] == ["champion", "loyal"] and pd.isna(from_file.loc["c", "rfm_tier"])
    assert from_file.loc["a", "rfm_score"] == 13 and pd.isna(from_file.loc["ghost", "rfm_score"])
    gap = pd.concat([feats, feats[1:2].assign(event_timestamp=pd.Timestamp("2011-04-10", tz="UTC"), rfm_score=None)])
    assert pd.isna(
        latest_snapshot(gap, customers, cutoff, ["rfm_tier", "rfm_score"]).loc["a", "rfm_score"]
    )  # whole row
    assert latest_snapshot(feats, customers[:0], cutoff, ["rfm_tier"]).empty
    naive = feats.assign(event_timestamp=feats["event_timestamp"].dt.tz_localize(None))
    assert latest_snapshot(naive, customers, cutoff, ["rfm_tier"])["rfm_tier"].tolist()[:2] == ["champion", "loyal"]


def test_segment_metrics_are_the_metrics_of_the_segment_customers():
    recs = pd.DataFrame(
        {"customer_id": ["u", "v", "w"], "item_id": ["a", "x", "b"], "rank": [1, 1, 1], "score": [1.0, 1.0, 1.0]}
    )
    truth = pd.DataFrame({"customer_id": ["u", "v", "w"], "item_id": ["a", "b", "b"]})
    segments = pd.DataFrame(
        {"tier": ["champion", "loyal", "loyal"], "lifecycle": ["new", "new", "returning"], "country": "UK"},
        index=pd.Index(["u", "v", "w"]),
    )
    got = by_segment({"ranker": recs}, truth, segments, [1], catalogue(3), ["hitrate@1"])
    assert got["tier"]["champion"] == {"customers": 1, "ranker": {"hitrate@1": 1.0}}
    assert got["tier"]["loyal"] == {"customers": 2, "ranker": {"hitrate@1": 0.5}}  # v misses, w hits
    assert got["lifecycle"]["returning"]["ranker"]["hitrate@1"] == 1.0
    assert got["country"]["UK"] == {"customers": 3, "ranker": {"hitrate@1": pytest.approx(2 / 3)}}


def test_metric_table_only_the_named_metrics_with_the_full_tables_values():
    recs = pd.DataFrame(
        {
            "customer_id": ["u", "u", "v", "v", "w"],
            "item_id": ["a", "b", "b", "c", "a"],
            "rank": [1, 2, 1, 2, 1],
            "score": [1.0, 0.5, 1.0, 0.5, 1.0],
        }
    )
    truth = pd.DataFrame({"customer_id": ["u", "v", "w"], "item_id": ["b", "b", "c"]})
    full = metric_table(recs, truth, [1, 2], catalogue(3))
    only = ["ndcg@2", "novelty@1", "coverage@2", "hitrate@1"]
    got = metric_table(recs, truth, [1, 2], catalogue(3), only)
    assert list(got) == only and got == {m: full[m] for m in only}
    assert metric_table(recs, truth, [1, 2], catalogue(3), []) == {}
    with pytest.raises(KeyError):
        metric_table(recs, truth, [1, 2], catalogue(3), ["ndcg@5"])  # a k not evaluated


def test_metric_table_only_computes_what_it_is_asked_for(monkeypatch):
    from pipelines.evaluation import evaluate as evaluate_module

    def boom(lists, k, catalogue):
        raise AssertionError("diversity computed though not asked for")

    monkeypatch.setitem(evaluate_module.BEYOND_ACCURACY, "diversity", boom)
    recs = pd.DataFrame({"customer_id": ["u"], "item_id": ["a"], "rank": [1], "score": [1.0]})
    truth = pd.DataFrame({"customer_id": ["u"], "item_id": ["a"]})
    assert metric_table(recs, truth, [1], catalogue(3), ["ndcg@1", "novelty@1"]) == {"ndcg@1": 1.0, "novelty@1": 0.0}
    with pytest.raises(AssertionError, match="not asked for"):
        metric_table(recs, truth, [1], catalogue(3))
