"""The gate's decision on hand-made figures: each check passes and fails at its threshold."""

import pytest

from pipelines.core.errors import InputError
from pipelines.monitoring.gate import decide, render

pytestmark = pytest.mark.unit

PARAMS = {
    "min_metrics": {"ndcg@10": 0.1},
    "beat_sources_on": "ndcg@10",
    "max_drift_share": 0.5,
    "block_on_inputs": ["quantity"],
    "compare_on": ["ndcg@10", "recall@20"],
    "max_regression": 0.02,
    "min_realised": {},
}
GOOD = {"ndcg@10": 0.30, "recall@20": 0.25}
SOURCES = {"buy_again": {"ndcg@10": 0.25}, "popularity": {"ndcg@10": 0.05}}
CALM = {"share": 0.2, "drifted": 2, "features": 10, "drifted_features": ["a", "b"]}


def failed(decision: dict) -> list[str]:
    return [c["check"] for c in decision["checks"] if not c["passed"]]


def test_a_good_model_passes_every_check():
    # recall 0.25 vs published 0.255: a 2% drop allows down to 0.2499
    decision = decide(GOOD, SOURCES, CALM, {"ndcg@10": 0.29, "recall@20": 0.255}, PARAMS)
    assert decision["passed"] and decision["decision"] == "publish" and failed(decision) == []
    assert len(decision["checks"]) == 1 + 1 + 1 + 2  # quality, sources, drift, two comparisons


def test_the_regression_tolerance_is_relative_to_the_published_model():
    champion = {"ndcg@10": 0.30, "recall@20": 0.25}
    just_inside = {"ndcg@10": 0.30 * 0.98, "recall@20": 0.25}
    just_outside = {"ndcg@10": 0.30 * 0.98 - 1e-6, "recall@20": 0.25}
    assert decide(just_inside, SOURCES, CALM, champion, PARAMS)["passed"]
    assert failed(decide(just_outside, SOURCES, CALM, champion, PARAMS)) == ["vs published ndcg@10"]


def test_a_degraded_model_is_rejected_for_every_reason_it_has():
    bad = {"ndcg@10": 0.08, "recall@20": 0.10}
    decision = decide(bad, SOURCES, CALM, GOOD, PARAMS)
    assert decision["decision"] == "blocked"
    assert failed(decision) == [
        "quality ndcg@10",
        "beats every source",
        "vs published ndcg@10",
        "vs published recall@20",
    ]


def test_drift_above_the_share_blocks_and_at_the_share_passes():
    at_limit = {**CALM, "share": 0.5, "drifted": 5}
    assert decide(GOOD, SOURCES, at_limit, None, PARAMS)["passed"]
    drifted = {**CALM, "share": 0.6, "drifted": 6, "drifted_features": list("abcdefgh")}
    decision = decide(GOOD, SOURCES, drifted, None, PARAMS)
    assert failed(decision) == ["feature drift"]
    assert "6 of 10 features drifted (60%, limit 50%): a, b, c, d, e, f and 2 more" in render(decision)


def test_without_a_published_model_the_comparison_passes_and_says_why():
    decision = decide(GOOD, SOURCES, CALM, None, PARAMS)
    assert decision["passed"]
    assert "no published model yet" in render(decision)


def test_a_ranker_that_only_ties_the_best_source_does_not_beat_it():
    assert failed(decide({"ndcg@10": 0.25, "recall@20": 0.3}, SOURCES, CALM, None, PARAMS)) == ["beats every source"]
    assert decide(GOOD, SOURCES, CALM, None, {**PARAMS, "beat_sources_on": None})["passed"]


def test_render_is_one_block_with_the_verdict_first():
    text = render(decide(GOOD, SOURCES, {**CALM, "share": 0.9}, None, PARAMS))
    lines = text.splitlines()
    assert lines[0] == "GATE: BLOCKED"
    assert any(line.startswith("  [FAIL] feature drift") for line in lines)
    assert all(line.startswith("  [") for line in lines[1:])


SERVED = {
    "served_version": "v1",
    "purchasers": 40,
    "days": 1.0,
    "overall": {"customers": 40, "hitrate@10": 0.05, "ndcg@10": 0.02, "recall@20": 0.03},
}


def test_realised_floor_passes_at_the_floor_and_blocks_below_it():
    floored = {**PARAMS, "min_realised": {"hitrate@10": 0.05}}
    assert decide(GOOD, SOURCES, CALM, None, floored, SERVED)["passed"]
    below = {**SERVED, "overall": {**SERVED["overall"], "hitrate@10": 0.0499}}
    decision = decide(GOOD, SOURCES, CALM, None, floored, below)
    assert failed(decision) == ["realised hitrate@10"]
    assert "served version v1 reached hitrate@10 0.0499 on 40 purchasers' next 1 days" in render(decision)


def test_realised_check_passes_and_says_why_before_anything_was_served():
    floored = {**PARAMS, "min_realised": {"hitrate@10": 0.05}}
    for nothing in (None, {"served_version": None}, {**SERVED, "purchasers": 0}):
        decision = decide(GOOD, SOURCES, CALM, None, floored, nothing)
        (realised,) = [c for c in decision["checks"] if c["check"] == "realised"]
        assert realised["passed"] and "nothing to check" in realised["detail"]
    assert all(not c["check"].startswith("realised") for c in decide(GOOD, SOURCES, CALM, None, PARAMS)["checks"])


def test_a_realised_floor_on_an_unknown_metric_is_a_one_line_error():
    with pytest.raises(InputError, match="gate.min_realised names metric\\(s\\) mrr@10"):
        decide(GOOD, SOURCES, CALM, None, {**PARAMS, "min_realised": {"mrr@10": 0.1}}, SERVED)


def test_an_input_alarm_blocks_only_when_named_in_block_on_inputs():
    def inputs(name: str) -> dict:
        return {"inputs": {"checks": [{"input": name, "alarm": True, "line": f"{name}: ALARM"}]}}

    decision = decide(GOOD, SOURCES, {**CALM, **inputs("quantity")}, None, PARAMS)
    assert failed(decision) == ["input quantity"] and "[FAIL] input quantity: quantity: ALARM" in render(decision)
    assert decide(GOOD, SOURCES, {**CALM, **inputs("new_country_share")}, None, PARAMS)["passed"]


def test_the_published_model_itself_is_not_ranked_again(tmp_path):
    """A daily run's model is the published one: the champion's figures are the challenger's, and the
    test candidates are not read (they are not even there)."""
    from pipelines.monitoring.gate import champion_metrics
    from pipelines.serving.publish import Releases

    (tmp_path / "published/versions/v1/model").mkdir(parents=True)
    (tmp_path / "published/versions/v1/model/ranker.lgb").write_text("trees")
    Releases(tmp_path / "published").switch("v1")
    (tmp_path / "models").mkdir()
    (tmp_path / "models/ranker.lgb").write_text("trees")
    missing = tmp_path / "no/test.parquet"
    assert champion_metrics(tmp_path / "published", missing, tmp_path, {}, (tmp_path / "models", GOOD)) == (GOOD, "v1")
    (tmp_path / "models/ranker.lgb").write_text("other trees")  # another model: ranked again, from the candidates
    with pytest.raises(FileNotFoundError):  # it goes on to read the split and the candidates
        champion_metrics(
            tmp_path / "published", missing, tmp_path, {"evaluate": {"ks": [10]}}, (tmp_path / "models", GOOD)
        )
