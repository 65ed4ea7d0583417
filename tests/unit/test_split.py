"""Temporal split: window boundaries, disjoint [start, end) windows, no rows past as_of, warm customers."""

import pandas as pd
import pytest

from pipelines.core.errors import InputError
from pipelines.core.files import write_json
from pipelines.data.split import WINDOWS, Windows, make_windows, read_windows, warm_customers, window
from tests.conftest import interactions
from tests.helpers import shipped

pytestmark = pytest.mark.unit
SPLIT = shipped("split", train_cutoffs=0)  # tests set the windows they need

DAY0 = pd.Timestamp("2011-01-01")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def test_as_of_null_is_the_day_after_the_last_event():
    ts = pd.Series([day(0) + pd.Timedelta(hours=9), day(99) + pd.Timedelta(hours=15, minutes=30)])
    w = make_windows(ts, {**SPLIT, "as_of": None, "test_days": 7, "valid_days": 14})
    assert w.as_of == day(100)  # 2011-04-10 15:30 -> 2011-04-11 00:00
    assert w.test_start == day(100 - 7)
    assert w.valid_start == day(100 - 7 - 14)
    assert w.train_start == day(0)  # first event, normalised to midnight


def test_as_of_null_when_last_event_is_exactly_midnight():
    w = make_windows(pd.Series([day(0), day(50)]), {**SPLIT, "as_of": None, "test_days": 5, "valid_days": 5})
    assert w.as_of == day(51)  # the last event (day 50, 00:00) is still inside test


def test_explicit_as_of():
    ts = pd.Series([day(0), day(200)])
    w = make_windows(ts, {**SPLIT, "as_of": "2011-03-01", "test_days": 10, "valid_days": 20})
    assert w.as_of == pd.Timestamp("2011-03-01")
    assert w.test_start == pd.Timestamp("2011-02-19")
    assert w.valid_start == pd.Timestamp("2011-01-30")
    assert w.bounds("train") == (day(0), w.valid_start)
    assert w.bounds("valid") == (w.valid_start, w.test_start)
    assert w.bounds("test") == (w.test_start, w.as_of)


def test_window_lengths_and_missing_valid_days():
    ts = pd.Series([day(0), day(99)])
    w = make_windows(ts, {**SPLIT, "as_of": None, "test_days": 3, "valid_days": 4})
    assert w.as_of - w.test_start == pd.Timedelta(days=3)
    assert w.test_start - w.valid_start == pd.Timedelta(days=4)
    w = make_windows(ts, shipped("split", test_days=3, valid_days=0, train_cutoffs=0))  # an empty validation window
    assert w.valid_start == w.test_start == day(97)


def test_windows_are_disjoint_half_open_and_nothing_at_or_after_as_of():
    df = interactions(
        [(f"c{d % 3}", f"i{d % 5}", d, d) for d in range(0, 60)] + [("c0", "late", 60, 100), ("c1", "late", 75, 101)]
    )  # rows after as_of = day 50
    w = make_windows(df["timestamp"], {**SPLIT, "as_of": str(day(50).date()), "test_days": 10, "valid_days": 10})
    parts = {name: window(df, *w.bounds(name)) for name in WINDOWS}
    # [start, end): a row exactly at a boundary belongs to the later window only
    assert parts["train"]["timestamp"].max() == day(29) and parts["valid"]["timestamp"].min() == day(30)
    assert parts["valid"]["timestamp"].max() == day(39) and parts["test"]["timestamp"].min() == day(40)
    assert parts["test"]["timestamp"].max() == day(49)
    # disjoint and, together, exactly the rows before as_of
    indices = [set(p.index) for p in parts.values()]
    assert sum(len(i) for i in indices) == len(set().union(*indices))
    assert set().union(*indices) == set(df.index[df["timestamp"] < w.as_of])
    # no leakage: nothing at or after as_of in any window
    for part in parts.values():
        assert (part["timestamp"] < w.as_of).all()
        assert "late" not in set(part["item_id"])
    at_as_of = set(df.index[df["timestamp"] == w.as_of])
    assert at_as_of and not at_as_of & set().union(*indices)  # a row exactly at as_of is in no window


def test_window_without_lower_bound():
    df = interactions([("c", "a", 1, 1), ("c", "b", 5, 2), ("c", "c", 9, 3)])
    assert window(df, None, day(5))["item_id"].tolist() == ["a"]
    assert window(df, day(1), day(9))["item_id"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    "params",
    [
        {"as_of": "2011-01-20", "test_days": 10, "valid_days": 10},  # validation starts on the first day
        {"as_of": "2011-01-20", "test_days": 15, "valid_days": 10},  # validation starts before the data
        {"as_of": "2010-12-01", "test_days": 1, "valid_days": 0},  # as_of before the data
    ],
)
def test_empty_train_window_is_an_input_error(params):
    ts = pd.Series([day(0), day(5), day(30)])
    with pytest.raises(InputError, match="train window is empty"):
        make_windows(ts, {**SPLIT, **params})


def test_train_window_with_one_day_is_fine():
    w = make_windows(pd.Series([day(0), day(20)]), {**SPLIT, "as_of": "2011-01-21", "test_days": 10, "valid_days": 9})
    assert w.valid_start == day(1) and w.train_start == day(0)


def test_windows_round_trip_through_json(tmp_path):
    w = Windows(train_start=day(0), valid_start=day(10), test_start=day(20), as_of=day(30))
    write_json(w.as_dict(), tmp_path / "windows.json")
    assert read_windows(tmp_path / "windows.json") == w


def test_warm_customers_are_those_in_both_sorted():
    history = interactions([("b", "x", 1, 1), ("a", "x", 2, 2), ("c", "x", 3, 3), ("a", "y", 4, 4)])
    future = interactions([("c", "x", 10, 5), ("a", "z", 11, 6), ("new", "x", 12, 7), ("a", "x", 13, 8)])
    got = warm_customers(history, future)
    assert got.tolist() == ["a", "c"]
    assert got.name == "customer_id"
    assert warm_customers(history, interactions([])).empty


def test_weekly_cutoffs_give_overlapping_label_windows_of_the_validation_length():
    ts = pd.Series([day(0), day(199)])
    w = make_windows(ts, {**SPLIT, "test_days": 30, "valid_days": 30, "train_cutoffs": 3, "cutoff_step_days": 7})
    labels = w.label_windows()
    assert [labels[f"train_{i}"][0] for i in (1, 2, 3)] == [day(200 - 104), day(200 - 97), day(200 - 90)]
    assert all(end - start == pd.Timedelta(days=30) for start, end in labels.values())
    assert labels["train_3"][1] == w.valid_start  # the newest training labels end where validation starts


def test_cutoff_step_defaults_to_the_validation_length():
    ts = pd.Series([day(0), day(199)])
    base = {**SPLIT, "test_days": 30, "valid_days": 30, "train_cutoffs": 2}
    w = make_windows(ts, base)
    assert w.label_windows()["train_1"] == (day(200 - 120), day(200 - 90))
    assert make_windows(ts, {**base, "cutoff_step_days": 30}) == w
    with pytest.raises(InputError, match="cutoff_step_days"):
        make_windows(ts, {**base, "cutoff_step_days": -1})


def test_sample_customers_is_seeded_ordered_and_keeps_small_sets_whole():
    from pipelines.data.split import sample_customers

    customers = pd.Index([f"c{i:02d}" for i in range(20)], name="customer_id")
    assert sample_customers(customers, None, 0) is customers and sample_customers(customers, 20, 0) is customers
    got = sample_customers(customers, 5, 1)
    assert len(got) == 5 and got.is_monotonic_increasing and got.isin(customers).all()
    assert got.equals(sample_customers(customers, 5, 1)) and not got.equals(sample_customers(customers, 5, 2))
