"""Realised performance on hand-made served lists and purchases."""

import json
import math

import pandas as pd
import pytest

from pipelines.core import schema as s
from pipelines.core.files import write_json
from pipelines.monitoring.realised import NEW, realised, served_lists, served_version

pytestmark = pytest.mark.unit

RECS = pd.DataFrame(
    {s.CUSTOMER: ["a", "a", "b", "b"], s.ITEM: ["x", "y", "x", "z"], "rank": [1, 2, 1, 2]}
)  # c has no personal list
COLD = pd.DataFrame({"country": [s.GLOBAL, s.GLOBAL, "FR"], s.ITEM: ["p", "y", "q"], "rank": [1, 2, 1]})
TIERS = pd.Series({"a": "loyal", "b": "at_risk"}, name="tier")


def test_customers_without_a_personal_list_are_shown_the_global_cold_start_list():
    shown = served_lists(RECS, COLD, pd.Index(["a", "c"]))
    assert sorted(map(tuple, shown[[s.CUSTOMER, s.ITEM, "rank"]].values)) == [
        ("a", "x", 1),
        ("a", "y", 2),
        ("c", "p", 1),
        ("c", "y", 2),
    ]


def test_realised_figures_match_a_hand_computed_case():
    # a bought y (rank 2) and w (not shown); c (no list) bought p (global rank 1); b bought nothing
    purchases = pd.DataFrame({s.CUSTOMER: ["a", "a", "a", "c"], s.ITEM: ["y", "w", "y", "p"]})
    shown = served_lists(RECS, COLD, pd.Index(purchases[s.CUSTOMER].unique()))
    result = realised(shown, TIERS, purchases, k=1, recall_k=2)
    assert result["purchasers"] == 2 and sorted(shown.loc[shown[s.ITEM] == "x", s.CUSTOMER]) == ["a"]  # a: its own list
    overall = result["overall"]
    assert overall["hitrate@1"] == pytest.approx(0.5)  # only c's first item was bought
    assert overall["ndcg@1"] == pytest.approx(0.5)
    assert overall["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert set(result["segments"]) == {"loyal", NEW}
    loyal = result["segments"]["loyal"]
    assert loyal["customers"] == 1 and loyal["hitrate@1"] == 0.0 and loyal["recall@2"] == pytest.approx(0.5)
    assert result["segments"][NEW]["ndcg@1"] == pytest.approx(1.0)


def test_ndcg_discounts_a_hit_by_its_served_rank():
    purchases = pd.DataFrame({s.CUSTOMER: ["a"], s.ITEM: ["y"]})
    result = realised(served_lists(RECS, COLD, pd.Index(["a"])), TIERS, purchases, k=2, recall_k=2)
    assert result["overall"]["ndcg@2"] == pytest.approx(1 / math.log2(3))


def _version(root, name, as_of):
    write_json({"data_window": {"as_of": as_of}}, root / "versions" / name / "manifest.json")


def test_the_served_version_is_the_newest_kept_one_with_data_before_the_run(tmp_path):
    _version(tmp_path, "v1", "2011-11-01")
    _version(tmp_path, "v2", "2011-11-08")
    _version(tmp_path, "v3", "2011-11-15")
    _version(tmp_path, "dropped", "2011-11-09")  # on disk, no longer in the index
    (tmp_path / "index.json").write_text(json.dumps([{"version": v} for v in ("v1", "v2", "v3")]))
    assert served_version(tmp_path, pd.Timestamp("2011-11-10")) == ("v2", pd.Timestamp("2011-11-08"))
    assert served_version(tmp_path, pd.Timestamp("2011-11-08")) == ("v1", pd.Timestamp("2011-11-01"))
    assert served_version(tmp_path, pd.Timestamp("2011-11-01")) is None
    assert served_version(tmp_path / "nothing", pd.Timestamp("2011-11-10")) is None
