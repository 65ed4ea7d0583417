"""Feature builders on hand-made purchases: snapshot dates, history tables, customer, product and
customer x product features, RFM, keywords, segments and the `features` step, values computed by hand."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipelines.data.split import Windows
from pipelines.features.build import build_features
from pipelines.features.customer import (
    CLUSTER_INPUTS,
    Keywords,
    behaviour_clusters,
    customer_features,
    rfm_scores,
    rfm_tier,
)
from pipelines.features.customer_product import customer_product_features
from pipelines.features.history import SNAPSHOT_TTL, History, item_category, snapshot_dates, within_reach
from pipelines.features.product import product_features
from tests.conftest import interactions
from tests.helpers import shipped

pytestmark = pytest.mark.unit
FEATURES = shipped("features")

DAY0 = pd.Timestamp("2011-01-01")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def clean(rows, quantity=None, price=None, category=None, description=None):
    """interactions(rows) with per-row quantity, unit_price, category and description where given."""
    df = interactions(rows)
    for col, values in (("quantity", quantity), ("unit_price", price), ("category", category)):
        if values is not None:
            df[col] = values
    if description is not None:
        df["description"] = df["item_id"].map(description)
    return df


# --- snapshot dates and item categories ----------------------------------------------------------


def test_snapshot_dates_step_back_from_last_date_with_extras():
    # a 10:00 one, one already on the grid, one too early, one too late
    extra = [pd.Timestamp("2011-01-20 10:00"), pd.Timestamp("2011-01-24"), day(0), day(40)]
    got = snapshot_dates(day(0) + pd.Timedelta(hours=15), pd.Timestamp("2011-01-31 12:00"), 7, extra)
    # grid 31, 24, 17, 10, 3 (day 3 >= Jan 2, the day after the first event), plus Jan 20
    assert got == [pd.Timestamp(f"2011-01-{d:02d}") for d in (3, 10, 17, 20, 24, 31)]
    assert all(d == d.normalize() for d in got)


def test_snapshot_dates_start_the_day_after_the_first_event():
    assert snapshot_dates(day(1), day(8), 7) == [day(8)]  # day 1 is the first event's own day
    assert snapshot_dates(day(0), day(8), 7) == [day(1), day(8)]
    assert snapshot_dates(day(5), day(5), 1, [day(5)]) == []


def test_item_category_from_the_category_column():
    lines = pd.DataFrame({"category": ["Mugs", None], "description": ["RED BAG", "BLUE BAG"]})
    assert item_category(lines).tolist() == ["Mugs", None]


def test_item_category_from_the_last_word_of_the_description():
    text = ["white hanging heart t-light holder", "SET OF 3 CAKE TINS", "PACK OF 12 ab", "12 PC xy", None]
    lines = pd.DataFrame({"category": None, "description": text})
    assert item_category(lines).tolist() == ["HOLDER", "TINS", "PACK", None, None]
    assert item_category(lines.drop(columns="category")).tolist() == ["HOLDER", "TINS", "PACK", None, None]
    assert item_category(pd.DataFrame({"item_id": ["a", "b"]})).isna().all()


# --- History ---------------------------------------------------------------------------------------


def test_history_tables():
    rows = [("b", "x", 0, "o1"), ("b", "y", 0, "o1"), ("a", "x", 2, "o2"), ("a", "x", 2, "o3"), ("a", "y", 7, "o4")]
    df = clean(rows, quantity=[2.0, 1.0, 4.0, 1.0, 3.0], price=[3.0, 5.0, 1.0, 1.0, np.nan])
    df.loc[3, "timestamp"] += pd.Timedelta(hours=18)
    h = History.of(df)
    assert h.customers.tolist() == ["a", "b"] and h.items.tolist() == ["x", "y"]
    a, b, x, y = 0, 1, 0, 1
    np.testing.assert_allclose(h.lines["revenue"], [6.0, 5.0, 4.0, 1.0, np.nan])
    orders = h.orders.sort_values(["day", "revenue"]).set_index("customer_id")
    assert orders.index.tolist() == [b, a, a, a]
    np.testing.assert_allclose(orders["revenue"], [11.0, 1.0, 4.0, np.nan])  # no price at all: NaN, not 0
    assert orders["lines"].tolist() == [2, 1, 1, 1]
    assert orders["day"].tolist() == [day(0), day(2), day(2), day(7)]
    pair_days = h.pair_days.set_index(["customer_id", "item_id", "day"])["quantity"]
    assert pair_days.to_dict() == {(a, x, day(2)): 5.0, (a, y, day(7)): 3.0, (b, x, day(0)): 2.0, (b, y, day(0)): 1.0}
    h2 = History.of(clean([("a", "x", 1, 1), ("a", "x", 1, 2), ("a", "x", 4, 3), ("a", "x", 9, 4), ("a", "y", 3, 5)]))
    pairs = h2.pairs.set_index(["customer_id", "item_id"])
    assert pairs.loc[(0, 0)].tolist() == [day(1), day(4)]  # two orders on day 1 are one purchase day
    assert pairs.loc[(0, 1), "first_day"] == day(3) and pd.isna(pairs.loc[(0, 1), "second_day"])


def test_history_before_slices_time_ordered_tables_as_the_mask_selects_unordered_ones():
    h = History.of(clean([("a", "x", d, f"o{d}") for d in (0, 1, 3, 3, 5, 8, 9)]))
    assert h.lines["day"].is_monotonic_increasing  # the slice
    for end, days in [(day(3), None), (day(3), 2), (day(9), 6), (day(0), None), (day(20), 30)]:
        got = h.before("lines", end, days)
        shuffled = replace(h, lines=h.lines.iloc[::-1])  # not in time order: the boolean mask
        want = shuffled.before("lines", end, days).iloc[::-1]
        pd.testing.assert_frame_equal(got, want)
        assert got["day"].lt(end).all() and (days is None or got["day"].ge(end - pd.Timedelta(days=days)).all())
    assert h.before("lines", day(3), 2)["day"].tolist() == [day(1)]  # [end - days, end)


# --- customer features -----------------------------------------------------------------------------

CUSTOMER_ROWS = [
    ("a", "x", 10, "o1"),
    ("a", "y", 10, "o1"),
    ("a", "x", 50, "o2"),
    ("a", "z", 80, "o3"),
    ("a", "x", 80, "o3"),
    ("a", "y", 100, "o4"),  # on the snapshot date: excluded
    ("b", "x", 95, "o5"),
    ("c", "x", 30, "o6"),  # 70 days before day 100: inactive (active_days 60)
    ("d", "z", 40, "o7"),  # exactly 60 days before day 100: active
]


def customer_table():
    df = clean(
        CUSTOMER_ROWS,
        quantity=[2.0, 1.0, 1.0, 1.0, 1.0, 10.0, 1.0, 1.0, 1.0],
        price=[3.0, 4.0, 3.0, 5.0, 3.0, 100.0, 3.0, 3.0, 5.0],
        category=["MUG", "BAG", "MUG", "BAG", "MUG", "BAG", "MUG", "MUG", "BAG"],
    )
    out = customer_features(History.of(df), [day(60), day(100)], shipped("features", active_days=60))
    return out.set_index(["event_timestamp", "customer_id"])


def test_customer_features_at_a_date_use_only_earlier_events():
    f = customer_table().loc[day(100)]
    assert sorted(f.index) == ["a", "b", "d"]
    a = f.loc["a"]
    assert (a["recency_days"], a["tenure_days"]) == (20.0, 90.0)
    assert (a["orders_30d"], a["orders_90d"], a["orders_365d"]) == (1, 3, 3)  # [70,100), [10,100): day 10 counts
    assert (a["spend_30d"], a["spend_90d"], a["spend_365d"]) == (8.0, 21.0, 21.0)  # o1 = 6 + 4, o2 = 3, o3 = 5 + 3
    assert a["basket_size"] == pytest.approx(5 / 3) and a["basket_value"] == pytest.approx(7.0)
    assert a["distinct_items"] == 3
    assert a["repurchase_rate"] == pytest.approx(1 / 3)  # x on 3 days; y again only on day 100 (excluded)
    assert a["top_category"] == "MUG" and a["top_category_share"] == pytest.approx(12 / 21)  # BAG 9 (+1000 on day 100)
    assert a["categories"] == 2
    assert (f.loc["b", "recency_days"], f.loc["b", "spend_30d"], f.loc["b", "repurchase_rate"]) == (5.0, 3.0, 0.0)
    assert f.loc["d", "recency_days"] == 60.0 and f.loc["d", "orders_30d"] == 0
    assert (f["profile_keywords"] == "").all() and (f["behaviour_cluster"] == -1).all()  # no text; < 5 * k customers


def test_customer_features_each_snapshot_has_its_own_customers():
    t = customer_table()
    assert sorted(t.loc[day(60)].index) == ["a", "c", "d"]  # b has not bought yet; c bought 30 days ago
    a = t.loc[(day(60), "a")]
    assert (a["recency_days"], a["orders_365d"], a["spend_365d"], a["distinct_items"]) == (10.0, 2, 13.0, 2)
    assert a["repurchase_rate"] == 0.5
    assert set(t.index.get_level_values("event_timestamp")) == {day(60), day(100)}


# --- RFM -------------------------------------------------------------------------------------------


def test_rfm_scores_are_quintiles_with_ties_equal():
    idx = pd.Index(list("abcde"))
    recency = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0], index=idx)
    frequency = pd.Series([1, 1, 2, 3, 3], index=idx)  # average ranks 1.5 1.5 3 4.5 4.5 -> ceil(5 * rank / 5)
    monetary = pd.Series([np.nan, 5.0, 10.0, 20.0, 40.0], index=idx)  # missing spend = 0, the lowest
    got = rfm_scores(recency, frequency, monetary)
    assert got.index.tolist() == list("abcde")
    assert got["r"].tolist() == [5, 4, 3, 2, 1]  # most recent = 5
    assert got["f"].tolist() == [2, 2, 3, 5, 5]
    assert got["m"].tolist() == [1, 2, 3, 4, 5]
    assert got["rfm_score"].tolist() == [8, 8, 9, 11, 11]
    assert got["rfm_tier"].tolist() == ["promising", "promising", "loyal", "at_risk", "at_risk"]  # FM 1.5 2 3 4.5 5


@pytest.mark.parametrize(
    "r, fm, tier",
    [
        (5, 5.0, "champion"),
        (4, 4.0, "champion"),
        (4, 3.5, "loyal"),
        (3, 5.0, "loyal"),
        (2, 5.0, "at_risk"),
        (1, 3.0, "at_risk"),
        (5, 2.5, "promising"),
        (3, 1.0, "promising"),
        (2, 2.5, "hibernating"),
        (1, 1.0, "hibernating"),
    ],
)
def test_rfm_tier_grid(r, fm, tier):
    assert rfm_tier(pd.Series([r]), pd.Series([fm])).tolist() == [tier]


# --- keywords and segments -------------------------------------------------------------------------


def test_keywords_rank_distinctive_terms_first():
    text = {"x": "LACE MUG", "y": "STAR MUG", "z": "MUG", "w": None}
    h = History.of(clean([("a", "x", 1, 1), ("b", "y", 1, 2), ("c", "z", 1, 3), ("d", "w", 1, 4)], description=text))
    got = Keywords(h.lines, top=2).of(h.pairs, pd.Index(range(4)))
    # mug: idf log(5/4) + 1 < lace, star: log(5/2) + 1, so it comes second even where it sorts first ("mug" < "star")
    assert got.tolist() == ["lace mug", "star mug", "mug", ""]
    assert Keywords(h.lines, top=1).of(h.pairs, pd.Index(range(4))).tolist() == ["lace", "star", "mug", ""]
    assert Keywords(h.lines, top=0).of(h.pairs, pd.Index(range(4))).tolist() == ["", "", "", ""]


def segment_frame(spends):
    f = pd.DataFrame({c: 1.0 for c in CLUSTER_INPUTS}, index=pd.RangeIndex(len(spends)))
    f["spend_365d"] = spends
    return f


def test_segmenter_needs_five_customers_per_cluster():
    assert behaviour_clusters(segment_frame([1.0] * 9), 2, 0).tolist() == [-1] * 9
    assert behaviour_clusters(segment_frame([1e3] * 5 + [1.0] * 5), 2, 0).tolist() == [1] * 5 + [0] * 5


@pytest.mark.parametrize("seed", range(5))
def test_segmenter_numbers_clusters_by_spend(seed):
    low, mid, high = [1.0, 2.0, 1.0, 2.0, 1.0], [100.0, 120.0, 110.0, 100.0, 90.0], [1e4, 1.2e4, 1.1e4, 1e4, 9e3]
    spends = [v for triple in zip(high, low, mid, strict=True) for v in triple]  # interleaved, highest spender first
    labels = behaviour_clusters(segment_frame(spends), 3, seed).to_numpy()
    assert labels.tolist() == [2, 0, 1] * 5
    assert behaviour_clusters(segment_frame(spends), 3, seed).tolist() == labels.tolist()  # deterministic


# --- product features ------------------------------------------------------------------------------


def test_product_features_windows_price_repeat_and_category():
    rows = [
        ("c1", "x", 5, 1),
        ("c1", "x", 10, 2),  # exactly 90 days before day 100: in the 90-day window
        ("c2", "x", 70, 3),  # exactly 30 days before
        ("c3", "x", 93, 4),  # exactly 7 days before
        ("c2", "x", 99, 5),
        ("c4", "x", 100, 6),  # on the snapshot date: excluded
        ("c1", "y", 40, 7),  # exactly active_days before: kept
        ("c1", "z", 2, 8),
        ("c1", "z", 50, 9),
        ("c1", "w", 39, 10),  # 61 days before: inactive
    ]
    df = clean(
        rows,
        quantity=[1.0, 2.0, 3.0, 1.0, 2.0, 5.0, 1.0, 1.0, 1.0, 1.0],
        price=[1.0, 2.0, 10.0, 4.0, 6.0, 100.0, 1.0, 3.0, np.nan, 1.0],
        category=["MUG", "MUG", "MUG", "MUG", "MUG", "BAG", "BAG", None, None, "BAG"],
    )
    f = product_features(History.of(df), [day(100)], shipped("features", active_days=60)).set_index("item_id")
    assert sorted(f.index) == ["x", "y", "z"]
    assert (f["event_timestamp"] == day(100)).all()
    x = f.loc["x"]
    assert (x["units_7d"], x["units_30d"], x["units_90d"]) == (3.0, 6.0, 8.0)
    assert (x["buyers_7d"], x["buyers_30d"], x["buyers_90d"]) == (2, 2, 3)
    assert x["trend_7_30"] == pytest.approx((3 / 7) / (6 / 30))
    assert x["trend_30_90"] == pytest.approx((6 / 30) / (8 / 90))
    assert x["price"] == 5.0  # median of 2, 10, 4, 6 (not the day-5 price 1, not the day-100 price 100)
    assert x["repeat_rate"] == pytest.approx(2 / 3)  # c1 and c2 twice, c3 once; c4 is not yet a buyer
    assert x["age_days"] == 95.0 and x["category"] == "MUG"
    y = f.loc["y"]
    assert y["units_30d"] == 0.0 and np.isnan(y["trend_7_30"]) and y["trend_30_90"] == 0.0
    assert f.loc["z", "price"] == 3.0  # no price in 90 days: the all-time median
    assert f.loc["z", "category"] is None and f.loc["z", "repeat_rate"] == 1.0


def test_product_features_same_four_weeks_last_year():
    rows = [("c1", "x", 35, 1), ("c1", "x", 36, 2), ("c2", "x", 50, 3), ("c3", "x", 63, 4), ("c4", "x", 64, 5)]
    rows.append(("c5", "x", 390, 6))
    df = clean(rows, quantity=[1.0, 1.0, 2.0, 1.0, 1.0, 1.0], category="MUG")
    f = product_features(History.of(df), [day(400)], FEATURES).set_index("item_id")
    # [400 - 364, 400 - 336) = days [36, 64): c1 on 36, c2 (2 units) on 50, c3 on 63
    assert f.loc["x", "units_next4w_last_year"] == 4.0 and f.loc["x", "buyers_next4w_last_year"] == 3
    # a year before day 398 is day 34, before the data (day 35): unknown, not "sold nothing"
    early = product_features(History.of(df), [day(398)], FEATURES).set_index("item_id")
    assert np.isnan(early.loc["x", "units_next4w_last_year"]) and np.isnan(early.loc["x", "buyers_next4w_last_year"])


def test_product_features_without_any_category_or_description():
    f = product_features(History.of(interactions([("a", "x", 0, 1), ("b", "x", 3, 2)])), [day(10)], FEATURES)
    assert f["category"].tolist() == [None] and f["units_30d"].tolist() == [2.0]


# --- customer x product ----------------------------------------------------------------------------


def test_customer_product_features_one_row_per_purchase_day():
    rows = [("a", "x", 1, 1), ("a", "x", 1, 2), ("a", "x", 4, 3), ("a", "x", 10, 4), ("b", "x", 3, 5)]
    df = clean(rows, quantity=[2.0, 1.0, 1.0, 5.0, 1.0])
    df.loc[2, "timestamp"] += pd.Timedelta(hours=18)
    got = customer_product_features(History.of(df))
    assert got["customer_id"].tolist() == ["a", "a", "a", "b"] and (got["item_id"] == "x").all()
    assert got["event_timestamp"].tolist() == [day(2), day(5), day(11), day(4)]  # the midnight after the purchase
    assert got["times_bought"].tolist() == [1, 2, 3, 1]
    assert got["units_bought"].tolist() == [3.0, 4.0, 9.0, 1.0]
    assert got["first_purchase"].tolist() == [day(1), day(1), day(1), day(3)]
    assert got["last_purchase"].tolist() == [day(1), day(4), day(10), day(3)]
    np.testing.assert_allclose(got["mean_repurchase_interval_days"], [np.nan, 3.0, 4.5, np.nan])


# --- the features step -----------------------------------------------------------------------------


def test_build_features_utc_cutoffs_and_nothing_at_or_after_as_of():
    rows = [("a", "x", 0, 1), ("a", "y", 10, 2), ("b", "x", 12, 3), ("a", "x", 29, 4)]
    rows += [("b", "y", 30, 5), ("c", "z", 35, 6)]  # at and after as_of
    df = clean(rows, category=["MUG", "BAG", "MUG", "MUG", "BAG", "CUP"])
    windows = Windows(train_start=day(0), valid_start=day(20), test_start=day(25), as_of=day(30))
    tables = build_features(df, windows, shipped("features", every_days=7, active_days=365, clusters=2))
    for name, cols in {
        "customer": ["event_timestamp"],
        "product": ["event_timestamp"],
        "customer_product": ["event_timestamp", "first_purchase", "last_purchase"],
    }.items():
        for col in cols:
            assert str(tables[name][col].dtype) == "datetime64[us, UTC]", (name, col)
    utc = [pd.Timestamp(d, tz="UTC") for d in (day(2), day(9), day(16), day(20), day(23), day(25), day(30))]
    assert sorted(tables["customer"]["event_timestamp"].unique()) == utc  # grid from as_of plus both cutoffs
    assert sorted(tables["product"]["event_timestamp"].unique()) == utc
    assert "c" not in set(tables["customer"]["customer_id"]) and "z" not in set(tables["product"]["item_id"])
    b = tables["customer"].set_index(["event_timestamp", "customer_id"]).loc[(utc[-1], "b")]
    assert (b["orders_365d"], b["distinct_items"]) == (1, 1)  # b's day-30 order is at as_of
    cp = tables["customer_product"]
    assert len(cp) == 4 and cp["last_purchase"].max() == pd.Timestamp(day(29), tz="UTC")


def test_a_scratch_store_finds_the_feature_definitions_from_anywhere_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from pipelines.core.config import CHECKOUT
    from pipelines.core.errors import InputError
    from pipelines.features.store import definitions

    monkeypatch.chdir(tmp_path)  # e.g. `shoprec backtest --params mine.yaml` run from a shop's own folder
    assert definitions({"repo": "feature_repo"}) == (CHECKOUT / "feature_repo").resolve()
    (tmp_path / "feature_repo").mkdir()  # a repo beside the working directory wins
    assert definitions({"repo": "feature_repo"}) == (tmp_path / "feature_repo").resolve()
    assert definitions({"repo": str(tmp_path / "feature_repo")}) == (tmp_path / "feature_repo").resolve()
    with pytest.raises(InputError, match="features.repo: nowhere not found"):
        definitions({"repo": "nowhere"})
    with pytest.raises(InputError, match=r"looked in /nowhere\)"):  # absolute: looked for there only
        definitions({"repo": "/nowhere"})


def test_latest_snapshots_are_the_calendars_snapshots_a_join_at_the_test_cutoff_or_as_of_reaches():
    rng = np.random.default_rng(3)
    n = 4000
    days = np.sort(rng.integers(0, 200, n))
    rows = [(f"c{rng.integers(0, 300) % (1 + d)}", f"i{rng.zipf(1.6) % 80}", int(d), i) for i, d in enumerate(days)]
    words = ["RED MUG", "LACE BAG", "STAR LIGHT", "TEA CUP", "JAR"]
    df = clean(rows, quantity=rng.integers(1, 12, n).astype(float), price=rng.gamma(2.0, 2.0, n).round(2))
    df["description"] = df["item_id"].map(lambda i: words[int(i[1:]) % 5])
    windows = Windows(day(0), day(140), day(170), day(200), (day(80), day(110)))
    calendar = build_features(df, windows, FEATURES)
    latest = build_features(df, windows, {**FEATURES, "snapshots": "latest"})
    stamps = sorted(calendar["customer"]["event_timestamp"].unique())
    joins = [pd.Timestamp(t, tz="UTC") for t in (windows.test_start, windows.as_of)]
    kept = within_reach(stamps, joins)
    assert kept[0] == pd.Timestamp(day(137), tz="UTC") and len(kept) == 12 < len(stamps)  # 10 of the grid, 2 cutoffs
    assert all(t - d > SNAPSHOT_TTL for d in set(stamps) - set(kept) for t in joins if d <= t)
    for name in ("customer", "product"):
        got = latest[name].reset_index(drop=True)
        want = calendar[name].loc[calendar[name]["event_timestamp"].isin(kept)].reset_index(drop=True)
        assert sorted(got["event_timestamp"].unique()) == kept
        pd.testing.assert_frame_equal(got, want)  # the clusters too: no snapshot depends on an earlier one
    assert latest["customer"]["behaviour_cluster"].nunique() == FEATURES["clusters"]
    pd.testing.assert_frame_equal(latest["customer_product"], calendar["customer_product"])


def test_the_snapshot_views_ttls_are_checked_against_the_cadence_and_the_latest_snapshots_reach():
    from types import SimpleNamespace

    from pipelines.core.errors import InputError
    from pipelines.features.store import check_ttls

    def view(name, days):
        return SimpleNamespace(name=name, ttl=None if days is None else pd.Timedelta(days=days))

    check_ttls([view("customer", 35), view("product", 20), view("customer_product", 730)], every_days=7)
    with pytest.raises(InputError, match="'customer' has a TTL of 60 days: a join would reach past the 35 days"):
        check_ttls([view("customer", 60)], every_days=7)
    with pytest.raises(InputError, match="'product' has no TTL"):
        check_ttls([view("product", None)], every_days=7)
    with pytest.raises(InputError, match="every_days = 21 but feature view 'product' has a TTL of 20 days"):
        check_ttls([view("product", 20)], every_days=21)
