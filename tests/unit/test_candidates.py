"""Candidate sources (buy-again, popularity), the registry, their union and candidate recall on tiny data."""

import pandas as pd
import pytest

from pipelines.candidates import SOURCES, build_sources, generate_candidates, union
from pipelines.candidates.base import top_n
from pipelines.candidates.buy_again import BuyAgain
from pipelines.candidates.popularity import Popularity
from pipelines.candidates.union import coverage, fit_sources, pool
from pipelines.core.errors import InputError
from pipelines.data.split import window
from tests.conftest import interactions

pytestmark = pytest.mark.unit

DAY0 = pd.Timestamp("2011-01-01")
AS_OF = DAY0 + pd.Timedelta(days=100)


def by_customer(recs: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    return {c: list(zip(g["item_id"], g["score"], strict=True)) for c, g in recs.groupby("customer_id", sort=True)}


# --- buy-again ---------------------------------------------------------------------------------

BUY_AGAIN_HISTORY = interactions(
    [
        # (customer, item, day, order); as_of = day 100, half-life 10 days
        ("c1", "A", 90, 1),  # age 10 -> 0.5
        ("c1", "A", 80, 2),  # age 20 -> 0.25
        ("c1", "B", 95, 3),  # age 5  -> 0.5 ** 0.5, ...
        ("c1", "B", 95, 3),  # ... the same item twice in one order counts once
        ("c1", "C", 70, 4),  # age 30 -> 0.125
        ("c2", "A", 99, 5),  # age 1  -> 0.5 ** 0.1
    ]
)


def test_buy_again_exact_recency_weighted_scores():
    got = BuyAgain(n=10, half_life_days=10).fit(BUY_AGAIN_HISTORY, AS_OF).recommend(pd.Index(["c1", "c2"]))
    scores = by_customer(got)
    assert [item for item, _ in scores["c1"]] == ["A", "B", "C"]  # 0.75 > 0.707 > 0.125
    assert [s for _, s in scores["c1"]] == pytest.approx([0.5 + 0.25, 0.5**0.5, 0.125])
    assert scores["c2"] == [("A", pytest.approx(0.5**0.1))]
    assert list(got.columns) == ["customer_id", "item_id", "score"]


def test_buy_again_same_item_twice_in_one_order_counts_once():
    one_line = interactions([("c", "B", 95, 3)])
    two_lines = interactions([("c", "B", 95, 3), ("c", "B", 95, 3)])
    two_orders = interactions([("c", "B", 95, 3), ("c", "B", 95, 4)])

    def score(history):
        return BuyAgain(n=5, half_life_days=10).fit(history, AS_OF).recommend(pd.Index(["c"]))["score"].tolist()

    assert score(one_line) == pytest.approx([0.5**0.5])
    assert score(two_lines) == pytest.approx(score(one_line))
    assert score(two_orders) == pytest.approx([2 * 0.5**0.5])


def test_buy_again_n_cut_off_and_best_first():
    got = BuyAgain(n=2, half_life_days=10).fit(BUY_AGAIN_HISTORY, AS_OF).recommend(pd.Index(["c1", "c2"]))
    assert got.groupby("customer_id").size().to_dict() == {"c1": 2, "c2": 1}
    assert got[got["customer_id"] == "c1"]["item_id"].tolist() == ["A", "B"]


def test_buy_again_ties_broken_by_item_id():
    history = interactions([("c", "Z", 90, 1), ("c", "M", 90, 2), ("c", "Q", 90, 3)])
    got = BuyAgain(n=2, half_life_days=10).fit(history, AS_OF).recommend(pd.Index(["c"]))
    assert got["item_id"].tolist() == ["M", "Q"]


def test_buy_again_no_history_no_rows_and_only_own_purchases():
    src = BuyAgain(n=10, half_life_days=10).fit(BUY_AGAIN_HISTORY, AS_OF)
    got = src.recommend(pd.Index(["c1", "c2", "newcomer"]))
    assert "newcomer" not in set(got["customer_id"])
    assert src.recommend(pd.Index(["newcomer"])).empty
    # each customer is only offered what they bought themselves; items never bought never appear
    bought = set(map(tuple, BUY_AGAIN_HISTORY[["customer_id", "item_id"]].to_numpy()))
    assert set(map(tuple, got[["customer_id", "item_id"]].to_numpy())) == bought


def test_buy_again_only_requested_customers():
    got = BuyAgain(n=10, half_life_days=10).fit(BUY_AGAIN_HISTORY, AS_OF).recommend(pd.Index(["c2"]))
    assert set(got["customer_id"]) == {"c2"}


# --- popularity --------------------------------------------------------------------------------

POP_HISTORY = interactions(
    [
        # as_of = day 100, window 30 days -> "recent" = day >= 70
        ("c1", "P", 80, 1),
        ("c2", "P", 90, 2),
        ("c2", "P", 91, 3),  # P: recent 2 buyers, all-time 2
        ("c1", "Z", 10, 4),
        ("c2", "Z", 10, 5),
        ("c3", "Z", 95, 6),  # Z: recent 1, all-time 3
        ("c4", "M", 70, 7),  # M: recent 1 (day 70 is in), all-time 1
        ("c1", "S", 5, 8),  # S: recent 0, all-time 1
    ]
)


def test_popularity_scores_recent_buyers_then_all_time_buyers():
    got = Popularity(n=10, window_days=30).fit(POP_HISTORY, AS_OF).recommend(pd.Index(["c1"]))
    # score = recent buyers + all-time buyers / (max all-time buyers + 1) = ... / 4
    assert got["item_id"].tolist() == ["P", "Z", "M", "S"]  # Z beats M on all-time buyers despite its id
    assert got["score"].tolist() == pytest.approx([2 + 2 / 4, 1 + 3 / 4, 1 + 1 / 4, 0 + 1 / 4])


def test_popularity_same_list_for_everyone_including_cold_start():
    src = Popularity(n=2, window_days=30).fit(POP_HISTORY, AS_OF)
    got = src.recommend(pd.Index(["c1", "c4", "never_seen"]))
    lists = {c: g["item_id"].tolist() for c, g in got.groupby("customer_id")}
    assert lists == {"c1": ["P", "Z"], "c4": ["P", "Z"], "never_seen": ["P", "Z"]}


def test_popularity_item_without_purchases_never_appears():
    src = Popularity(n=100, window_days=30).fit(POP_HISTORY, AS_OF)
    got = src.recommend(pd.Index(["c1"]))
    assert set(got["item_id"]) == set(POP_HISTORY["item_id"])


# --- registry / build_sources -----------------------------------------------------------------


def test_registry_knows_both_sources():
    assert SOURCES["buy_again"] is BuyAgain and SOURCES["popularity"] is Popularity
    assert BuyAgain.name == "buy_again" and Popularity.name == "popularity"


def test_build_sources_instantiates_with_settings():
    built = build_sources({"buy_again": {"n": 7, "half_life_days": 14}, "popularity": {"n": "3", "window_days": 9}})
    assert [(s.name, s.n) for s in built] == [("buy_again", 7), ("popularity", 3)]
    assert built[0].half_life == 14.0 and built[1].window_days == 9


@pytest.mark.parametrize(
    "params, message",
    [
        ({"nope": {"n": 5}}, "unknown candidate source candidates.sources.nope; known: "),
        ({"buy_again": {"n": 5, "half_life_days": 1}, "buy_agin": {"n": 5}}, r"buy_agin \(did you mean buy_again\?\)"),
        ({"buy_again": {"half_life_days": 10}}, r"candidates.sources.buy_again lacks n \(every setting"),
        ({"popularity": None}, "candidates.sources.popularity lacks n, window_days"),
        ({}, "names no source"),
        ({"popularity": {"n": 5, "window_day": 9}}, r"popularity.window_day \(did you mean window_days\?\)"),
        ({"popularity": {"n": 5, "window_days": 9, "colour": "red"}}, "popularity.colour; it takes n, window_days"),
    ],
)
def test_build_sources_bad_params_raise_input_error(params, message):
    with pytest.raises(InputError, match=message):
        build_sources(params)


def test_top_n_keeps_best_n_per_customer():
    scored = pd.DataFrame(
        {"customer_id": ["a", "a", "a", "b"], "item_id": ["x", "y", "z", "x"], "score": [1.0, 3.0, 3.0, 0.5]}
    )
    got = top_n(scored, 2)
    assert list(zip(got["customer_id"], got["item_id"], strict=True)) == [("a", "y"), ("a", "z"), ("b", "x")]


# --- union and candidate recall --------------------------------------------------------------

UNION_HISTORY = interactions(
    [
        ("c1", "A", 90, 1),  # buy-again c1: A = 0.5 ** 1 = 0.5
        ("c1", "B", 80, 2),  #               B = 0.5 ** 2 = 0.25 (and B is outside the popularity window)
        ("c2", "C", 95, 3),  # buy-again c2: C = 0.5 ** 0.5
        ("c3", "C", 95, 4),  # popularity: C = 2 + 2/3, A = 1 + 1/3, B = 0 + 1/3 -> top 2 = C, A
    ]
)
PARAMS = {"buy_again": {"n": 5, "half_life_days": 10}, "popularity": {"n": 2, "window_days": 30}}
CUSTOMERS = pd.Index(["c1", "c2", "c4"])  # c4 has no history


def union_candidates() -> pd.DataFrame:
    return generate_candidates(UNION_HISTORY, AS_OF, CUSTOMERS, PARAMS)


def test_union_outer_join_fills_missing_sources():
    got = union_candidates()
    assert list(got.columns) == [
        "customer_id",
        "item_id",
        "buy_again_score",
        "buy_again_rank",
        "popularity_score",
        "popularity_rank",
    ]
    expected = pd.DataFrame(
        [
            # customer, item, buy_again score, rank (6 = n + 1), popularity score, rank (3 = n + 1: not proposed)
            ("c1", "A", 0.5, 1, 1 + 1 / 3, 2),
            ("c1", "B", 0.25, 2, 0.0, 3),
            ("c1", "C", 0.0, 6, 2 + 2 / 3, 1),
            ("c2", "A", 0.0, 6, 1 + 1 / 3, 2),
            ("c2", "C", 0.5**0.5, 1, 2 + 2 / 3, 1),
            ("c4", "A", 0.0, 6, 1 + 1 / 3, 2),
            ("c4", "C", 0.0, 6, 2 + 2 / 3, 1),
        ],
        columns=got.columns,
    )
    assert got[["customer_id", "item_id"]].values.tolist() == expected[["customer_id", "item_id"]].values.tolist()
    for col in ("buy_again_score", "popularity_score"):
        assert got[col].tolist() == pytest.approx(expected[col].tolist())
    for col in ("buy_again_rank", "popularity_rank"):
        assert got[col].tolist() == expected[col].tolist()
        assert got[col].dtype == "int32"


def test_union_one_row_per_customer_item():
    got = union_candidates()
    assert not got.duplicated(["customer_id", "item_id"]).any()


def test_union_of_a_single_source_is_its_recommendations():
    src = BuyAgain(n=5, half_life_days=10).fit(UNION_HISTORY, AS_OF)
    got = union([src], CUSTOMERS)
    assert got[["customer_id", "item_id", "buy_again_rank"]].values.tolist() == [
        ["c1", "A", 1],
        ["c1", "B", 2],
        ["c2", "C", 1],
    ]


def union_pool():
    return pool(fit_sources(UNION_HISTORY, AS_OF, PARAMS), CUSTOMERS)


def test_the_pool_is_the_union_on_integer_keys():
    got = union_pool()
    pd.testing.assert_frame_equal(got.frame(), union_candidates())
    rows = got.rows_of(
        pd.DataFrame({"customer_id": ["c2", "c1", "nobody", "c1"], "item_id": ["C", "A", "A", "nothing"]})
    )
    frame = got.frame()
    assert rows[2:].tolist() == [-1, -1]
    assert frame.iloc[rows[:2]][["customer_id", "item_id"]].values.tolist() == [["c2", "C"], ["c1", "A"]]


def test_coverage_hand_computed():
    cands = union_pool()
    future = interactions(
        [
            ("c1", "B", 101, 10),  # covered by buy-again only
            ("c1", "D", 102, 11),  # covered by nobody
            ("c2", "C", 101, 12),  # covered by both
            ("c4", "A", 103, 13),  # covered by popularity only ...
            ("c4", "A", 104, 14),  # ... and a repeat purchase counts once
            ("c2", "E", 105, 15),  # covered by nobody
        ]
    )
    pairs = future[["customer_id", "item_id"]].drop_duplicates()
    # 5 distinct pairs; buy-again covers (c1,B), (c2,C); popularity (c2,C), (c4,A); union all three
    assert coverage(cands, pairs, ["buy_again", "popularity"]) == {"buy_again": 2, "popularity": 2, "union": 3}


def test_coverage_of_no_pairs():
    pairs = interactions([])[["customer_id", "item_id"]]
    assert coverage(union_pool(), pairs, ["buy_again", "popularity"]) == {
        "buy_again": 0,
        "popularity": 0,
        "union": 0,
    }


# --- leakage ----------------------------------------------------------------------------------


def test_generate_candidates_uses_only_the_history_it_is_given():
    future = interactions(
        [
            ("c1", "FUTURE", 100, 20),
            ("c2", "FUTURE", 101, 21),
            ("c4", "FUTURE", 120, 22),  # only at/after as_of
            ("c1", "B", 100, 23),
            ("c1", "B", 105, 24),  # repeat buys after as_of
        ]
    )
    full = pd.concat([UNION_HISTORY, future], ignore_index=True)
    assert len(window(full, AS_OF, AS_OF + pd.Timedelta(days=365))) == len(future)  # the future is handed over
    before = full.copy()
    got = generate_candidates(full, AS_OF, CUSTOMERS, PARAMS)
    pd.testing.assert_frame_equal(got, union_candidates())  # same as if the future did not exist
    assert "FUTURE" not in set(got["item_id"])
    pd.testing.assert_frame_equal(full, before)  # the input is not modified


def test_generate_candidates_changes_with_the_history_given():
    # c1's buy-again list follows exactly the rows it is handed
    only_a = UNION_HISTORY[UNION_HISTORY["item_id"] != "B"]
    got = generate_candidates(only_a, AS_OF, pd.Index(["c1"]), {"buy_again": {"n": 5, "half_life_days": 10}})
    assert got[["item_id", "buy_again_score"]].values.tolist() == [["A", 0.5]]


def test_generate_candidates_is_deterministic():
    pd.testing.assert_frame_equal(union_candidates(), union_candidates())


# --- window_candidates: chunks and selection ----------------------------------------------------


def test_window_candidates_same_result_in_chunks_and_selection_keeps_the_budget(monkeypatch):
    import importlib

    from pipelines.candidates.union import fit_sources, window_candidates

    union_module = importlib.import_module("pipelines.candidates.union")  # the package re-exports `union()`

    def candidates(*args):
        parts: list[pd.DataFrame] = []
        metrics = window_candidates(*args, parts.append)
        return pd.concat(parts, ignore_index=True), metrics, len(parts)

    sources = fit_sources(UNION_HISTORY, AS_OF, PARAMS)
    future = interactions([("c1", "B", 101, 10), ("c2", "C", 101, 12), ("c4", "A", 103, 13), ("c1", "D", 102, 11)])
    whole, metrics, _ = candidates(sources, CUSTOMERS, future, None, None)
    monkeypatch.setattr(union_module, "CHUNK", 1)
    chunked, chunked_metrics, parts = candidates(sources, CUSTOMERS, future, None, None)
    assert parts == len(CUSTOMERS)  # written a partition at a time
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked_metrics == metrics
    assert metrics["recall_union"] == pytest.approx(3 / 4) and metrics["pairs"] == 4

    budget = pd.Series(1, index=CUSTOMERS)  # one candidate each, buy-again's vote only
    selection = {"weights": {"buy_again": 1.0, "popularity": 0.0}, "rrf_k": 20}
    kept, sel_metrics, _ = candidates(sources, CUSTOMERS, future, budget, selection)
    assert kept.groupby("customer_id").size().max() == 1
    assert (kept["buy_again_score"] > 0).all()  # a zero-weight source casts no vote
    assert sel_metrics["recall_union_before_selection"] == metrics["recall_union"]
    assert sel_metrics["recall_union"] <= metrics["recall_union"]
