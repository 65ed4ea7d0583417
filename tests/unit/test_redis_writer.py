"""The Redis writer's distinct values: what serialises apart must stay apart (the bytes themselves
are compared with Feast's writer in tests/e2e/test_feature_store.py, against Redis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.features.redis_writer import _distinct

pytestmark = pytest.mark.unit


def test_floats_and_times_are_told_apart_by_their_bits():
    codes, uniques = _distinct(np.array([0.0, -0.0, np.nan, 0.0]))
    assert codes[0] == codes[3] and len({codes[0], codes[1], codes[2]}) == 3
    assert np.signbit(uniques[codes[1]]) and not np.signbit(uniques[codes[0]])
    stamps = np.array(["2011-01-01", "NaT", "2011-01-01"], dtype="datetime64[ns]")
    codes, uniques = _distinct(stamps)
    assert codes[0] == codes[2] != codes[1] and np.isnat(uniques[codes[1]])


def test_strings_are_factorized_and_anything_else_kept_value_by_value():
    codes, uniques = _distinct(np.array(["a", None, "a", np.nan, "ü"], dtype=object))
    assert codes[0] == codes[2] and codes[1] == codes[3] and len(uniques) == 3  # None, NaN: both null to Feast
    mixed = np.array([1, 1.0, True, "1", None], dtype=object)  # equal to pandas, not to protobuf
    codes, uniques = _distinct(mixed)
    assert list(codes) == [0, 1, 2, 3, 4] and [type(u) for u in uniques] == [type(v) for v in mixed]
    assert pd.isna(uniques[4])
