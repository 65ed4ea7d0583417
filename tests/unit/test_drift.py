"""Drift compares like with like: the monitored forms on hand-made samples, and a verdict per feature."""

import numpy as np
import pandas as pd
import pytest

from pipelines.core import schema as s
from pipelines.monitoring.drift import monitored

pytestmark = pytest.mark.unit

START = pd.Timestamp("2011-01-01")


def sample(as_of: str, age: list[float], buyers: list[float], price: list[float]) -> pd.DataFrame:
    return pd.DataFrame({s.AS_OF: pd.Timestamp(as_of), "age_days": age, "buyers_7d": buyers, "price": price})


def test_history_features_become_a_share_of_the_history_and_volume_features_relative_to_their_cutoff():
    early = sample("2011-03-02", [60.0, 30.0], [2.5, 7.5], [1.5, 2.5])  # 60 days of history
    late = sample("2011-05-01", [120.0, 60.0], [5.0, 15.0], [1.5, 2.5])  # 120 days; twice the volume
    both = monitored(pd.concat([early, late], ignore_index=True), START)
    assert both["age_days"].tolist() == [1.0, 0.5, 1.0, 0.5]  # the same catalogue, older by construction
    assert both["buyers_7d"].tolist() == [0.5, 1.5, 0.5, 1.5]  # the same shape at twice the volume
    assert both["price"].tolist() == [1.5, 2.5, 1.5, 2.5]  # compared as it is


def test_a_change_of_shape_survives_the_volume_form():
    flat = monitored(sample("2011-05-01", [1.0] * 4, [5.5, 5.5, 5.5, 5.5], [1.0] * 4), START)
    peaked = monitored(sample("2011-05-01", [1.0] * 4, [1.5, 1.5, 1.5, 17.5], [1.0] * 4), START)
    assert flat["buyers_7d"].std() == 0 and peaked["buyers_7d"].std() > 1
    assert np.isclose(peaked["buyers_7d"].mean(), 1.0)


def test_counts_are_spread_within_their_unit_before_scaling():
    counts = monitored(sample("2011-05-01", [1.0] * 1000, [3.0] * 500 + [5.0] * 500, [1.0] * 1000), START)
    scaled = counts["buyers_7d"] * 4.0  # back to counts: the mean was 4 (the jitter averages out)
    assert scaled.between(2.45, 5.55).all() and scaled.nunique() > 900  # spread, not atoms
    assert ((scaled > 2.45) & (scaled < 3.55)).sum() == 500  # each count stays within its unit


def test_the_monitoring_sample_is_the_seeded_sample_of_all_scored_rows_in_their_order():
    from pipelines.monitoring.samples import monitoring_sample, scored_rows

    rng = np.random.default_rng(3)
    cands = pd.DataFrame({s.CUSTOMER: [f"c{i // 4}" for i in range(40)], s.ITEM: [f"i{i}" for i in range(40)]})
    cands.index = np.arange(100, 140)  # a partition's rows need not be numbered from 0
    x = pd.DataFrame({"f": rng.random(40), "g": rng.random(40)}, index=cands.index[::-1])
    scores, cutoff = rng.random(40), pd.Timestamp("2011-06-01")
    every = scored_rows(cands, x, scores, cutoff)
    expected = every.sample(n=7, random_state=11).sort_index().reset_index(drop=True)
    pd.testing.assert_frame_equal(monitoring_sample(cands, x, scores, cutoff, 7, 11), expected)
    assert len(monitoring_sample(cands, x, scores, cutoff, 99, 11)) == 40
    assert monitoring_sample(cands, x, scores, cutoff, 0, 11).empty
