"""Matrix-based, content and popularity candidate sources and their sparse helpers, on tiny hand-made data."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipelines.candidates import SOURCES, build_sources
from pipelines.candidates import matrix as mx
from pipelines.candidates.als import ALS
from pipelines.candidates.base import decoded
from pipelines.candidates.co_purchase import CoPurchase
from pipelines.candidates.content import Content, item_texts
from pipelines.candidates.item_cf import ItemCF
from pipelines.candidates.popularity import CountryPopularity, Trending
from pipelines.candidates.user_cf import UserCF
from pipelines.core import topk
from pipelines.core.errors import InputError
from tests.conftest import interactions

pytestmark = pytest.mark.unit

DAY0 = pd.Timestamp("2011-01-01")
AS_OF = DAY0 + pd.Timedelta(days=100)
COLUMNS = ["customer_id", "item_id", "score"]


def top_n(*args, **kwargs):
    """matrix.top_n's rows with plain ids (it returns them as categoricals)."""
    return decoded(mx.top_n(*args, **kwargs))


def by_customer(recs: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    return {c: list(zip(g["item_id"], g["score"], strict=True)) for c, g in recs.groupby("customer_id", sort=True)}


def items_of(recs: pd.DataFrame, customer: str) -> list[str]:
    return recs.loc[recs["customer_id"] == customer, "item_id"].tolist()


def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(map(tuple, frame[["customer_id", "item_id"]].to_numpy()))


def with_texts(history: pd.DataFrame, descriptions: dict, categories: dict | None = None) -> pd.DataFrame:
    out = history.copy()
    out["description"] = out["item_id"].map(descriptions).astype(object)
    out["description"] = out["description"].where(out["description"].notna(), None)
    if categories is not None:
        out["category"] = out["item_id"].map(categories).astype(object)
        out["category"] = out["category"].where(out["category"].notna(), None)
    return out


def with_countries(rows: list[tuple]) -> pd.DataFrame:
    """Interactions from (customer, item, day, order, country) tuples."""
    out = interactions([r[:4] for r in rows])
    out["country"] = pd.Series([r[4] for r in rows], dtype=object)
    return out


def check_output(recs: pd.DataFrame, n: int) -> None:
    """The source contract: columns, at most n rows per customer, positive scores, best first, no duplicates."""
    assert list(recs.columns) == COLUMNS
    assert (recs.groupby("customer_id").size() <= n).all()
    assert (recs["score"] > 0).all()
    assert not recs.duplicated(["customer_id", "item_id"]).any()
    for _, g in recs.groupby("customer_id"):
        scores = g["score"].to_numpy()
        assert (np.diff(scores) <= 0).all(), f"not best first: {scores}"


# --- shared tiny data ---------------------------------------------------------------------------

# as_of = day 100. "t" bought A and, in a later separate order, B; A and B are bought together by c1 and c2;
# c2 also bought C in another order; C and D together (c3); E and F together (c4), a separate island.
HISTORY = with_texts(
    interactions(
        [
            ("c1", "A", 10, 1),
            ("c1", "B", 10, 1),
            ("c2", "A", 20, 2),
            ("c2", "B", 20, 2),
            ("c2", "C", 30, 3),
            ("c3", "C", 40, 4),
            ("c3", "D", 40, 4),
            ("c4", "E", 50, 5),
            ("c4", "F", 50, 5),
            ("t", "A", 90, 6),
            ("t", "B", 95, 7),
        ]
    ),
    {
        "A": "RED HEART MUG",
        "B": "RED HEART CANDLE",
        "C": "BLUE CANDLE",
        "D": "BLUE GARDEN CHAIR",
        "E": "GREEN TEA CUP",
        "F": "GREEN TEA POT",
    },
)
KNOWN = ["c1", "c2", "c3", "c4", "t"]
CUSTOMERS = pd.Index([*KNOWN, "newcomer"])

PERSONALISED = {
    "item_cf_cosine": lambda **kw: ItemCF(weighting="cosine", **kw),
    "item_cf_bm25": lambda **kw: ItemCF(weighting="bm25", **kw),
    "item_cf_tfidf": lambda **kw: ItemCF(weighting="tfidf", **kw),
    "user_cf_cosine": lambda **kw: UserCF(weighting="cosine", **kw),
    "user_cf_bm25": lambda **kw: UserCF(weighting="bm25", **kw),
    "user_cf_tfidf": lambda **kw: UserCF(weighting="tfidf", **kw),
    "als": lambda **kw: ALS(factors=4, iterations=10, seed=7, **kw),
    "co_purchase": lambda **kw: CoPurchase(**kw),
    "content_cosine": lambda **kw: Content(similarity="cosine", **kw),
    "content_jaccard": lambda **kw: Content(similarity="jaccard", **kw),
}
POPULAR = {
    "trending": lambda **kw: Trending(window_days=100, min_buyers=1, **kw),
    "country_popularity": lambda **kw: CountryPopularity(window_days=100, min_customers=1, **kw),
}
ALL = {**PERSONALISED, **POPULAR}


def fitted(name: str, history: pd.DataFrame = HISTORY, **kw):
    return ALL[name](**{"n": 10, **kw}).fit(history, AS_OF)


_FITTED: dict = {}


def cached(name: str, **kw):
    """A source fitted on HISTORY, shared between tests (recommend does not change it)."""
    key = (name, tuple(sorted(kw.items())))
    if key not in _FITTED:
        _FITTED[key] = fitted(name, **kw)
    return _FITTED[key]


# --- properties every source has ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("n", [1, 3])
def test_output_contract(name, n):
    recs = cached(name, n=n).recommend(CUSTOMERS)
    check_output(recs, n)
    assert set(recs["customer_id"]) <= set(CUSTOMERS)
    assert not recs.empty


@pytest.mark.parametrize("name", list(ALL))
def test_deterministic(name):
    first = fitted(name).recommend(CUSTOMERS)
    second = fitted(name).recommend(CUSTOMERS)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("name", list(ALL))
def test_only_items_with_purchases_are_proposed(name):
    recs = cached(name).recommend(CUSTOMERS)
    assert set(recs["item_id"]) <= set(HISTORY["item_id"])


@pytest.mark.parametrize("name", list(ALL))
def test_only_requested_customers(name):
    recs = cached(name).recommend(pd.Index(["c2"]))
    assert set(recs["customer_id"]) == {"c2"}
    assert cached(name).recommend(pd.Index([])).empty


@pytest.mark.parametrize("name", list(PERSONALISED))
def test_personalised_cold_start_gets_nothing(name):
    src = cached(name)
    recs = src.recommend(CUSTOMERS)
    assert "newcomer" not in set(recs["customer_id"])
    assert set(recs["customer_id"]) <= set(KNOWN)
    only_new = src.recommend(pd.Index(["newcomer", "another"]))
    assert only_new.empty and list(only_new.columns) == COLUMNS


@pytest.mark.parametrize("name", list(POPULAR))
def test_popularity_cold_start_gets_the_global_list(name):
    recs = cached(name, n=3).recommend(CUSTOMERS)
    lists = {c: items_of(recs, c) for c in CUSTOMERS}
    assert len(lists["newcomer"]) == 3
    assert all(lst == lists["newcomer"] for lst in lists.values())  # one country in HISTORY: same list for all


@pytest.mark.parametrize("name", list(PERSONALISED))
def test_exclude_bought_never_proposes_a_bought_item(name):
    recs = cached(name).recommend(CUSTOMERS)
    assert not recs.empty
    assert not pairs(recs) & pairs(HISTORY)


@pytest.mark.parametrize("name", list(PERSONALISED))
def test_without_exclude_bought_a_bought_item_can_be_proposed(name):
    recs = cached(name, exclude_bought=False).recommend(pd.Index(["t"]))
    # t bought A and B in separate orders, each similar to the other by every measure
    assert {"A", "B"} <= set(recs["item_id"])


# --- item-based CF ------------------------------------------------------------------------------

# t bought only A. A is bought by c1, c2 (each with B) and t; c2 also bought C (another order); D, E, F
# never share a buyer with A.
CF_HISTORY = interactions(
    [
        ("c1", "A", 10, 1),
        ("c1", "B", 10, 1),
        ("c2", "A", 20, 2),
        ("c2", "B", 20, 2),
        ("c2", "C", 30, 3),
        ("c3", "C", 40, 4),
        ("c3", "D", 40, 4),
        ("c4", "E", 50, 5),
        ("c4", "F", 50, 5),
        ("t", "A", 90, 6),
    ]
)


@pytest.mark.parametrize("weighting", ["cosine", "bm25", "tfidf"])
def test_item_cf_proposes_co_bought_items_only(weighting):
    recs = ItemCF(n=10, weighting=weighting).fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # B shares two buyers with A, C one; D, E, F none
    assert items_of(recs, "t") == ["B", "C"]


def test_item_cf_cosine_scores_hand_computed():
    recs = ItemCF(n=10, weighting="cosine").fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t", "c3"]))
    # buyer vectors: A = {c1, c2, t}, B = {c1, c2}, C = {c2, c3}, D = {c3}
    assert by_customer(recs) == {
        "t": [("B", pytest.approx(2 / math.sqrt(6))), ("C", pytest.approx(1 / math.sqrt(6)))],
        # c3 bought C and D: B gets cos(C, B) = 1/2, A gets cos(C, A) = 1/sqrt(6); D adds nothing
        "c3": [("B", pytest.approx(1 / 2)), ("A", pytest.approx(1 / math.sqrt(6)))],
    }


def test_item_cf_neighbours_limits_the_similarity_graph():
    recs = ItemCF(n=10, weighting="cosine", neighbours=2).fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # with 2 neighbours per item (itself included), A keeps only B
    assert items_of(recs, "t") == ["B"]


def test_item_cf_half_life_weights_recent_purchases_more():
    history = interactions(
        [
            ("c1", "OLD", 50, 1),
            ("c1", "X", 50, 1),
            ("t", "OLD", 50, 2),  # age 50: strength 0.5 ** 5 with a 10-day half-life
            ("c2", "NEW", 90, 3),
            ("c2", "Y", 90, 3),
            ("t", "NEW", 90, 4),  # age 10: strength 0.5
        ]
    )
    plain = ItemCF(n=10, weighting="cosine").fit(history, AS_OF).recommend(pd.Index(["t"]))
    decayed = ItemCF(n=10, weighting="cosine", half_life_days=10).fit(history, AS_OF).recommend(pd.Index(["t"]))
    # cos(OLD, X) = cos(NEW, Y) = 1/sqrt(2) with or without decay (each pair's rows decay alike)
    assert by_customer(plain)["t"] == [("X", pytest.approx(0.5**0.5)), ("Y", pytest.approx(0.5**0.5))]
    assert by_customer(decayed)["t"] == [
        ("Y", pytest.approx(0.5 * 0.5**0.5, rel=1e-5)),
        ("X", pytest.approx(0.5**5 * 0.5**0.5, rel=1e-5)),
    ]


# --- user-based CF ------------------------------------------------------------------------------


def test_user_cf_cosine_scores_hand_computed():
    recs = UserCF(n=10, weighting="cosine").fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # t = {A}; c1 = {A, B}: cos 1/sqrt(2); c2 = {A, B, C}: cos 1/sqrt(3); c3, c4 share nothing with t
    assert by_customer(recs)["t"] == [
        ("B", pytest.approx(1 / math.sqrt(2) + 1 / math.sqrt(3))),
        ("C", pytest.approx(1 / math.sqrt(3))),
    ]


def test_user_cf_proposes_what_the_most_similar_customer_bought():
    recs = UserCF(n=10, weighting="cosine", neighbours=1).fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # the single nearest neighbour is c1 (cos 1/sqrt(2) > 1/sqrt(3)); c2's C is not proposed
    assert by_customer(recs)["t"] == [("B", pytest.approx(1 / math.sqrt(2)))]


def test_user_cf_pool_keeps_the_strongest_customers_as_neighbours():
    # strengths: c2 = 3, c1, c3, c4 = 2, t = 1; a pool of 1 is {c2}, of 2 {c1, c2} (c1 before c3, c4 on ties)
    pooled = UserCF(n=10, weighting="cosine", pool=1).fit(CF_HISTORY, AS_OF)
    assert list(pooled.ui_.customers[pooled.pool_]) == ["c2"]
    assert by_customer(pooled.recommend(pd.Index(["t"])))["t"] == [
        ("B", pytest.approx(1 / math.sqrt(3))),
        ("C", pytest.approx(1 / math.sqrt(3))),
    ]
    both = UserCF(n=10, weighting="cosine", pool=2).fit(CF_HISTORY, AS_OF)
    assert by_customer(both.recommend(pd.Index(["t"]))) == by_customer(
        UserCF(n=10, weighting="cosine").fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    )


def test_user_cf_pool_member_is_not_its_own_neighbour():
    # c2 is in the pool {c1, c2}: its only neighbour is c1, which bought nothing c2 lacks
    recs = UserCF(n=10, weighting="cosine", pool=2, exclude_bought=False).fit(CF_HISTORY, AS_OF)
    assert by_customer(recs.recommend(pd.Index(["c2"])))["c2"] == [
        ("A", pytest.approx(2 / math.sqrt(6))),
        ("B", pytest.approx(2 / math.sqrt(6))),
    ]


def test_user_cf_strength_counts_distinct_orders():
    history = interactions(
        [
            ("t", "A", 10, 1),
            ("t", "B", 10, 1),
            ("u", "A", 20, 2),
            ("u", "B", 20, 2),
            ("u", "C", 30, 3),
            ("u", "C", 40, 4),  # C twice in different orders: strength 2
            ("u", "C", 40, 4),  # the same order again counts once
        ]
    )
    recs = UserCF(n=10, weighting="cosine").fit(history, AS_OF).recommend(pd.Index(["t"]))
    # t = (1, 1, 0), u = (1, 1, 2): cos = 2 / (sqrt(2) * sqrt(6)); score(C) = cos * 2
    assert by_customer(recs)["t"] == [("C", pytest.approx(2 * 2 / (math.sqrt(2) * math.sqrt(6))))]


# --- ALS ----------------------------------------------------------------------------------------

# two disjoint clusters: p* buy A, B, C; q* buy D, E, F; t bought A and B
ALS_HISTORY = interactions(
    [(c, i, 50, f"{c}{i}") for c in ("p1", "p2", "p3") for i in "ABC"]
    + [(c, i, 50, f"{c}{i}") for c in ("q1", "q2", "q3") for i in "DEF"]
    + [("t", "A", 60, "t1"), ("t", "B", 60, "t2")]
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_als_proposes_the_missing_item_of_the_customers_cluster(seed):
    recs = ALS(n=3, factors=2, iterations=15, seed=seed).fit(ALS_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    assert items_of(recs, "t")[0] == "C"
    check_output(recs, 3)


def test_als_same_seed_same_result_and_seed_is_used():
    def run(seed):
        return ALS(n=6, factors=4, iterations=5, seed=seed, exclude_bought=False).fit(ALS_HISTORY, AS_OF)

    a, b = run(3), run(3)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    pd.testing.assert_frame_equal(a.recommend(pd.Index(["t", "q1"])), b.recommend(pd.Index(["t", "q1"])))
    assert not np.array_equal(a.item_factors_, run(4).item_factors_)


# --- co-purchase --------------------------------------------------------------------------------


def test_co_purchase_only_same_order_counts():
    recs = CoPurchase(n=10, half_life_days=None).fit(CF_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # A is in orders 1, 2, 6; B in 1, 2: cos = 2 / sqrt(3 * 2). C shares a buyer with A (c2) but no order.
    assert by_customer(recs)["t"] == [("B", pytest.approx(2 / math.sqrt(6)))]


def test_co_purchase_recency_weighted_scores_hand_computed():
    history = interactions(
        [
            ("c1", "A", 10, 1),
            ("c1", "X", 10, 1),
            ("c2", "B", 10, 2),
            ("c2", "X", 10, 2),
            ("c2", "Y", 10, 2),
            ("t", "A", 80, 3),  # age 20 -> 0.25 with a 10-day half-life
            ("t", "B", 90, 4),  # age 10 -> 0.5
        ]
    )
    recs = CoPurchase(n=10, half_life_days=10).fit(history, AS_OF).recommend(pd.Index(["t"]))
    # orders: A {1, 3}, B {2, 4}, X {1, 2}, Y {2}. cos(A, X) = cos(B, X) = 1/2, cos(B, Y) = 1/sqrt(2)
    assert by_customer(recs)["t"] == [
        ("X", pytest.approx(0.25 * 0.5 + 0.5 * 0.5, rel=1e-5)),
        ("Y", pytest.approx(0.5 / math.sqrt(2), rel=1e-5)),
    ]


def test_co_purchase_same_item_twice_in_an_order_counts_once():
    once = interactions([("c", "A", 10, 1), ("c", "B", 10, 1), ("t", "A", 90, 2)])
    twice = interactions([("c", "A", 10, 1), ("c", "A", 10, 1), ("c", "B", 10, 1), ("t", "A", 90, 2)])

    def scores(history):
        return CoPurchase(n=5, half_life_days=None).fit(history, AS_OF).recommend(pd.Index(["t"]))

    pd.testing.assert_frame_equal(scores(once), scores(twice))
    assert scores(once)["score"].tolist() == pytest.approx([1 / math.sqrt(2)])


def test_co_purchase_without_orders_together_proposes_nothing():
    history = interactions([("c", "A", 10, 1), ("c", "B", 20, 2), ("t", "A", 90, 3)])
    assert CoPurchase(n=5).fit(history, AS_OF).recommend(pd.Index(["c", "t"])).empty


# --- content ------------------------------------------------------------------------------------

CONTENT_HISTORY = with_texts(
    interactions([("t", "MUG", 90, 1), ("c", "CANDLE", 50, 2), ("c", "LAMP", 50, 3), ("c", "CHAIR", 50, 4)]),
    {"MUG": "RED HEART MUG", "CANDLE": "RED HEART CANDLE", "LAMP": "RED LAMP", "CHAIR": "BLUE GARDEN CHAIR"},
)


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_content_proposes_items_sharing_words(similarity):
    recs = Content(n=10, similarity=similarity).fit(CONTENT_HISTORY, AS_OF).recommend(pd.Index(["t"]))
    # CANDLE shares "red heart", LAMP only "red", CHAIR nothing
    assert items_of(recs, "t") == ["CANDLE", "LAMP"]


def test_content_jaccard_scores_hand_computed():
    src = Content(n=10, similarity="jaccard", half_life_days=10).fit(CONTENT_HISTORY, AS_OF)
    recs = src.recommend(pd.Index(["t", "c"]))
    # t bought MUG at age 10 (strength 1/2): J(MUG, CANDLE) = 2/4, J(MUG, LAMP) = 1/4
    # c bought CANDLE, LAMP, CHAIR at age 50 (strength 1/32 each): MUG = (2/4 + 1/4) / 32
    assert by_customer(recs) == {
        "t": [("CANDLE", pytest.approx(0.5 * 2 / 4)), ("LAMP", pytest.approx(0.5 * 1 / 4))],
        "c": [("MUG", pytest.approx((2 / 4 + 1 / 4) / 32))],
    }


def test_content_uses_the_category_too():
    history = with_texts(
        interactions([("t", "P", 90, 1), ("c", "Q", 50, 2), ("c", "R", 50, 3)]),
        {"P": "PLATE", "Q": "SAUCER", "R": "SHOVEL"},
        {"P": "kitchen", "Q": "kitchen", "R": "garden"},
    )
    for similarity in ("cosine", "jaccard"):
        recs = Content(n=10, similarity=similarity).fit(history, AS_OF).recommend(pd.Index(["t"]))
        assert items_of(recs, "t") == ["Q"]


def test_content_cosine_profile_follows_purchase_strength():
    history = with_texts(
        interactions(
            [
                ("t", "RED", 90, 1),
                ("t", "RED", 91, 2),
                ("t", "RED", 92, 3),  # three orders of RED ...
                ("t", "BLUE", 92, 3),  # ... one of BLUE
                ("c", "RED2", 50, 4),
                ("c", "BLUE2", 50, 5),
            ]
        ),
        {"RED": "RED MUG", "BLUE": "BLUE PLATE", "RED2": "RED BOWL", "BLUE2": "BLUE BOWL"},
    )
    recs = Content(n=10, similarity="cosine", half_life_days=None).fit(history, AS_OF).recommend(pd.Index(["t"]))
    assert items_of(recs, "t") == ["RED2", "BLUE2"]


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_content_without_any_text_proposes_nothing(similarity, caplog):
    no_text = HISTORY.assign(description=None, category=None)
    src = Content(n=10, similarity=similarity).fit(no_text, AS_OF)
    recs = src.recommend(CUSTOMERS)
    assert recs.empty and list(recs.columns) == COLUMNS
    assert "no item has a description or category" in caplog.text
    # and without the columns at all
    assert Content(n=10).fit(HISTORY.drop(columns=["description", "category"]), AS_OF).recommend(CUSTOMERS).empty


def test_content_items_without_text_are_never_proposed():
    history = with_texts(
        interactions([("t", "MUG", 90, 1), ("c", "CANDLE", 50, 2), ("c", "MYSTERY", 50, 3)]),
        {"MUG": "RED HEART MUG", "CANDLE": "RED HEART CANDLE"},
    )
    for similarity in ("cosine", "jaccard"):
        recs = Content(n=10, similarity=similarity, exclude_bought=False).fit(history, AS_OF)
        got = recs.recommend(pd.Index(["t", "c"]))
        assert "MYSTERY" not in set(got["item_id"])
        assert set(got["item_id"]) == {"MUG", "CANDLE"}


def test_item_texts_latest_description_and_category():
    history = interactions([("c", "A", 10, 1), ("c", "A", 20, 2), ("c", "B", 10, 3)])
    history["description"] = pd.Series(["old name", "new name", None], dtype=object)
    history["category"] = pd.Series(["home", None, None], dtype=object)
    got = item_texts(history, pd.Index(["A", "B", "C"]))
    # the latest known description and category of A; nothing known for B and C
    assert got.to_dict() == {"A": "new name home", "B": "", "C": ""}


@pytest.mark.parametrize("similarity", ["cosine", "jaccard"])
def test_content_texts_without_usable_words_propose_nothing(similarity):
    history = with_texts(CONTENT_HISTORY, {}, {"MUG": "1", "CANDLE": "1", "LAMP": "2", "CHAIR": "3"})
    recs = Content(n=10, similarity=similarity).fit(history, AS_OF).recommend(pd.Index(["t"]))
    assert recs.empty


# --- trending -----------------------------------------------------------------------------------

# as_of = day 100, window 14: recent = days 86..99, the window before = days 72..85.
# RISE: 3 buyers now, none before. FLAT: the same 4 customers in both windows.
# OLD: 5 buyers before only. NOISE: 1 buyer now.
TREND_HISTORY = interactions(
    [(f"r{i}", "RISE", 90, f"r{i}") for i in range(3)]
    + [(f"f{i}", "FLAT", 90, f"f{i}a") for i in range(4)]
    + [(f"f{i}", "FLAT", 80, f"f{i}b") for i in range(4)]
    + [(f"o{i}", "OLD", 75, f"o{i}") for i in range(5)]
    + [("x", "NOISE", 95, "x")]
)


def test_trending_rising_item_above_flat_item_hand_computed():
    recs = Trending(n=10, window_days=14, min_buyers=3).fit(TREND_HISTORY, AS_OF).recommend(pd.Index(["c"]))
    # score = recent * (recent + 1) / (previous + 1): RISE 3 * 4 / 1 = 12, FLAT 4 * 5 / 5 = 4
    assert by_customer(recs)["c"] == [("RISE", pytest.approx(12.0)), ("FLAT", pytest.approx(4.0))]


def test_trending_leaves_out_items_without_enough_recent_buyers():
    recs = Trending(n=10, window_days=14, min_buyers=3).fit(TREND_HISTORY, AS_OF).recommend(pd.Index(["c"]))
    assert set(recs["item_id"]) == {"RISE", "FLAT"}  # OLD has no recent buyer, NOISE only one
    with_noise = Trending(n=10, window_days=14, min_buyers=1).fit(TREND_HISTORY, AS_OF)
    assert set(with_noise.recommend(pd.Index(["c"]))["item_id"]) == {"RISE", "FLAT", "NOISE"}


def test_trending_same_list_for_everyone_and_n_cut_off():
    src = Trending(n=1, window_days=14, min_buyers=1).fit(TREND_HISTORY, AS_OF)
    recs = src.recommend(pd.Index(["r0", "f0", "never_seen"]))
    assert recs.groupby("customer_id").size().to_dict() == {"f0": 1, "never_seen": 1, "r0": 1}
    assert recs["item_id"].nunique() == 1
    check_output(recs, 1)


def test_trending_with_no_recent_sales_proposes_nothing():
    src = Trending(n=5, window_days=14, min_buyers=1).fit(TREND_HISTORY, AS_OF + pd.Timedelta(days=100))
    recs = src.recommend(pd.Index(["c"]))
    assert recs.empty and list(recs.columns) == COLUMNS


# --- country popularity -------------------------------------------------------------------------

# as_of = day 100, window 30 (days 70..99), min_customers 3: UK has 4 recent buyers (u1, u2, u3, m), DE 2, FR 1.
COUNTRY_HISTORY = with_countries(
    [
        ("u1", "X", 90, 1, "UK"),
        ("u2", "X", 90, 2, "UK"),
        ("u3", "X", 90, 3, "UK"),
        ("u1", "Y", 91, 4, "UK"),
        ("g1", "W", 90, 5, "DE"),
        ("g2", "W", 90, 6, "DE"),
        ("f1", "Z", 90, 7, "FR"),
        ("m", "Z", 10, 8, "FR"),  # m moved from France ...
        ("m", "Y", 95, 9, "UK"),  # ... to the UK
        ("n", "Y", 95, 10, None),  # n's country is unknown
        ("u1", "OLD", 5, 11, "UK"),  # outside the window
    ]
)
GLOBAL = [("X", 3), ("Y", 3), ("W", 2), ("Z", 1)]  # recent distinct buyers, ties by item id
UK = [("X", 3), ("Y", 2)]


def test_country_popularity_big_country_gets_its_own_list():
    src = CountryPopularity(n=10, window_days=30, min_customers=3).fit(COUNTRY_HISTORY, AS_OF)
    got = by_customer(src.recommend(pd.Index(["u1", "u2", "m", "g1", "f1", "n", "newcomer"])))
    assert got["u1"] == got["u2"] == UK
    assert got["m"] == UK  # the latest country counts
    for small_or_unknown in ("g1", "f1", "n", "newcomer"):
        assert got[small_or_unknown] == GLOBAL


def test_country_popularity_n_cut_off_and_contract():
    src = CountryPopularity(n=1, window_days=30, min_customers=3).fit(COUNTRY_HISTORY, AS_OF)
    recs = src.recommend(pd.Index(["u1", "g1", "newcomer"]))
    check_output(recs, 1)
    assert by_customer(recs) == {"g1": [("X", 3)], "newcomer": [("X", 3)], "u1": [("X", 3)]}


def test_country_popularity_min_customers_decides_who_is_big():
    src = CountryPopularity(n=10, window_days=30, min_customers=2).fit(COUNTRY_HISTORY, AS_OF)
    got = by_customer(src.recommend(pd.Index(["g1", "f1"])))
    assert got["g1"] == [("W", 2)]  # DE has 2 recent buyers now: big enough
    assert got["f1"] == GLOBAL  # FR still has 1


def test_country_popularity_without_countries_everyone_gets_the_global_list():
    no_country = COUNTRY_HISTORY.assign(country=None)
    src = CountryPopularity(n=10, window_days=30, min_customers=1).fit(no_country, AS_OF)
    recs = src.recommend(pd.Index(["u1", "g1", "newcomer"]))
    assert by_customer(recs) == {c: GLOBAL for c in ("u1", "g1", "newcomer")}


# --- registry and invalid settings --------------------------------------------------------------


def test_registry_knows_the_sources():
    expected = {
        "item_cf": ItemCF,
        "user_cf": UserCF,
        "als": ALS,
        "co_purchase": CoPurchase,
        "content": Content,
        "trending": Trending,
        "country_popularity": CountryPopularity,
    }
    for name, cls in expected.items():
        assert SOURCES[name] is cls and cls.name == name


ITEM_CF = {"n": 3, "weighting": "tfidf", "neighbours": 7, "half_life_days": None, "exclude_bought": False}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ItemCF(n=5, weighting="foo"), "item_cf.weighting"),
        (lambda: UserCF(n=5, weighting="foo"), "user_cf.weighting"),
        (lambda: UserCF(n=5, pool=0), "user_cf.pool"),
        (lambda: Content(n=5, similarity="foo"), "content.similarity"),
        (lambda: build_sources({"item_cf": ITEM_CF | {"weighting": "foo"}}), "item_cf.weighting"),
        (lambda: build_sources({"als": {"n": 5, "colour": "red"}}), "als.colour"),
    ],
)
def test_invalid_settings_raise_input_error(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_build_sources_passes_settings():
    built = build_sources({"item_cf": ITEM_CF})
    assert [(s.name, s.n, s.weighting, s.neighbours, s.exclude_bought) for s in built] == [
        ("item_cf", 3, "tfidf", 7, False)
    ]


# --- old purchases under a short half-life ------------------------------------------------------


@pytest.mark.parametrize("name", ["co_purchase", "content_jaccard"])
def test_exclude_bought_also_excludes_very_old_purchases(name):
    history = with_texts(
        interactions([("t", "X", -100, 1), ("t", "Y", 99, 2), ("c", "X", 50, 3), ("c", "Y", 50, 3)]),
        {"X": "RED MUG", "Y": "RED CUP"},
    )
    # X was bought 200 days before as_of; with a 1-day half-life its strength is 2 ** -200
    recs = fitted(name, history, half_life_days=1).recommend(pd.Index(["t"]))
    assert "X" not in set(recs["item_id"])


# --- matrix helpers -----------------------------------------------------------------------------

UI_HISTORY = interactions(
    [
        ("b", "Y", 95, 3),  # age 5
        ("a", "X", 90, 1),  # age 10 ...
        ("a", "X", 90, 1),  # ... the same order twice counts once
        ("a", "X", 80, 2),  # age 20
        ("a", "Z", 70, 4),  # age 30
    ]
)


def test_user_items_counts_distinct_orders():
    ui = mx.user_items(UI_HISTORY, AS_OF)
    assert ui.customers.tolist() == ["a", "b"] and ui.items.tolist() == ["X", "Y", "Z"]
    assert ui.customers.name == "customer_id" and ui.items.name == "item_id"
    assert sp.issparse(ui.matrix) and ui.matrix.dtype == np.float32
    np.testing.assert_array_equal(ui.matrix.toarray(), [[2, 0, 1], [0, 1, 0]])


def test_user_items_half_life_decay_hand_computed():
    ui = mx.user_items(UI_HISTORY, AS_OF, half_life_days=10)
    np.testing.assert_allclose(ui.matrix.toarray(), [[0.5 + 0.25, 0, 0.125], [0, 0.5**0.5, 0]], rtol=1e-6)


def test_user_items_rows_of_known_customers():
    ui = mx.user_items(UI_HISTORY, AS_OF)
    rows, ids = ui.rows(pd.Index(["b", "stranger", "a"]))
    assert rows.tolist() == [1, 0] and ids.tolist() == ["b", "a"]


def test_top_entries_keeps_the_k_largest_per_row():
    m = sp.csr_matrix(np.array([[1, 5, 3, 0, 4], [2, 0, 0, 0, 0], [0, 0, 0, 0, 0], [7, 6, 0, 0, 0]], np.float32))
    got = topk.top_entries(m, 2)
    assert sp.issparse(got) and got.shape == m.shape
    np.testing.assert_array_equal(got.toarray(), [[0, 5, 0, 0, 4], [2, 0, 0, 0, 0], [0, 0, 0, 0, 0], [7, 6, 0, 0, 0]])
    assert got.indices.tolist() == [1, 4, 0, 0, 1]  # each row best first
    np.testing.assert_array_equal(topk.top_entries(m, 10).toarray(), m.toarray())
    np.testing.assert_array_equal(topk.top_entries(m, 1).toarray()[0], [0, 5, 0, 0, 0])
    assert topk.top_entries(sp.csr_matrix((0, 3)), 2).shape == (0, 3)


def test_top_entries_of_a_product_equal_those_of_the_product_computed():
    rng = np.random.default_rng(7)
    left = sp.random(40, 30, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    right = sp.random(30, 50, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    left.data -= 0.3  # negative sums too: only positive ones are candidates
    exclude = sp.random(40, 50, density=0.1, format="csr", random_state=rng)
    lazy = topk.top_entries(topk.Product(left, right), 6, exclude)
    computed = topk.top_entries((left @ right).toarray(), 6, exclude)
    assert (lazy != computed).nnz == 0 and lazy.indices.tolist() == computed.indices.tolist()
    assert lazy.nnz > 0 and (lazy.data > 0).all()
    assert not (lazy.multiply(exclude != 0)).nnz  # nothing excluded is kept


def test_l2_rows_unit_norm_and_empty_rows_stay_empty():
    got = mx.l2_rows(sp.csr_matrix(np.array([[3, 4], [0, 0], [0, 2]], np.float32)))
    assert sp.issparse(got)
    np.testing.assert_allclose(got.toarray(), [[0.6, 0.8], [0, 0], [0, 1]], rtol=1e-6)


ITEMS = pd.Index(["i0", "i1", "i2", "i3"], name="item_id")
SCORES = np.array(
    [
        [0.5, 0.9, 0.1, 0.0],
        [-1.0, 0.0, 0.3, 0.0],  # one positive score only
        [0.2, 0.2, 0.2, 0.2],  # ties: by item id
        [0.0, 0.0, 0.0, 0.0],  # nothing positive: no rows
        [0.4, 0.8, 0.6, 0.7],
    ],
    dtype=np.float32,
)
EXCLUDE = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]))
IDS = np.array(["u0", "u1", "u2", "u3", "u4"], dtype=object)


def dense_scores(rows: np.ndarray) -> np.ndarray:
    return SCORES[rows]


def test_top_n_best_positive_first_with_exclusions():
    got = top_n(dense_scores, np.arange(5), IDS, ITEMS, 2, EXCLUDE)
    assert list(got.columns) == COLUMNS
    assert by_customer(got) == {
        "u0": [("i0", pytest.approx(0.5)), ("i2", pytest.approx(0.1))],  # i1 excluded
        "u1": [("i2", pytest.approx(0.3))],  # negatives and zeros dropped
        "u2": [("i1", pytest.approx(0.2)), ("i2", pytest.approx(0.2))],  # i0 excluded
        "u4": [("i1", pytest.approx(0.8)), ("i2", pytest.approx(0.6))],  # i3 excluded
    }


def test_top_n_without_exclusions_and_sparse_scores():
    got = top_n(lambda r: sp.csr_matrix(SCORES[r]), np.arange(5), IDS, ITEMS, 2)
    assert by_customer(got)["u0"] == [("i1", pytest.approx(0.9)), ("i0", pytest.approx(0.5))]
    assert by_customer(got)["u4"] == [("i1", pytest.approx(0.8)), ("i3", pytest.approx(0.7))]
    assert "u3" not in set(got["customer_id"])


def test_top_n_n_larger_than_the_catalogue_and_empty_input():
    got = top_n(dense_scores, np.arange(5), IDS, ITEMS, 100)
    assert got.groupby("customer_id").size().to_dict() == {"u0": 3, "u1": 1, "u2": 4, "u4": 4}
    empty = top_n(dense_scores, np.array([], dtype=int), np.array([], dtype=object), ITEMS, 3)
    assert empty.empty and list(empty.columns) == COLUMNS


def test_top_n_across_batches(monkeypatch):
    whole = top_n(dense_scores, np.arange(5), IDS, ITEMS, 2, EXCLUDE)
    calls = []

    def recording(rows):
        calls.append(rows.tolist())
        return SCORES[rows]

    monkeypatch.setattr(mx, "BATCH", 2)
    # rows in a different order from their ids' order: each batch must keep rows and ids aligned
    order = np.array([4, 2, 0, 3, 1])
    batched = top_n(recording, order, IDS[order], ITEMS, 2, EXCLUDE)
    assert calls == [[4, 2], [0, 3], [1]]
    assert list(dict.fromkeys(batched["customer_id"])) == [c for c in IDS[order] if c in set(batched["customer_id"])]
    by_customer = batched.sort_values("customer_id", kind="stable").reset_index(drop=True)  # output follows `rows`
    pd.testing.assert_frame_equal(by_customer, whole)


def test_sources_across_batches_match_one_batch(monkeypatch):
    expected = {name: cached(name).recommend(CUSTOMERS) for name in PERSONALISED}
    monkeypatch.setattr(mx, "BATCH", 2)
    for name, want in expected.items():
        pd.testing.assert_frame_equal(cached(name).recommend(CUSTOMERS), want, obj=name)


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_top_entries_break_ties_at_the_cut_by_item_order(form):
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((50, 40)), 1).astype(np.float32) * (rng.random((50, 40)) < 0.7)  # ties, zeros
    scores[:, ::-1][:, :20] = np.round(scores[:, ::-1][:, :20], 0)  # many ties at 1.0 and 0
    got = topk.top_entries(scores if form == "dense" else sp.csr_matrix(scores), 5)
    for row in range(len(scores)):
        expected = sorted((-v, c) for c, v in enumerate(scores[row].tolist()) if v > 0)[:5]  # best, then item order
        lo, hi = got.indptr[row], got.indptr[row + 1]
        assert [(-float(v), int(c)) for c, v in zip(got.indices[lo:hi], got.data[lo:hi], strict=True)] == expected


@pytest.mark.parametrize("n", [1, 7, 60, 500])
def test_top_entries_over_every_magnitude_equal_a_full_sort(n):
    """The kernel gathers only the entries about as large as the n-th: whatever the spread of the values
    (tiny denormals, one bucket crowded with near ties, huge ones, NaN), the result is the full sort's."""
    rng = np.random.default_rng(n)
    scores = (rng.random((30, 400)) * 2.0 ** rng.integers(-140, 60, (30, 400))).astype(np.float32)
    scores[:10] = np.float32(1.0) + rng.integers(0, 4, (10, 400)).astype(np.float32) * np.float32(2.0**-22)
    scores[10:15, ::3] = np.float32(1e-42)  # denormals: the lowest bucket, beside the zeros
    scores[rng.random(scores.shape) < 0.2] *= -1
    scores[rng.random(scores.shape) < 0.05] = np.nan
    exclude = sp.random(30, 400, density=0.1, format="csr", random_state=rng)
    banned = exclude.toarray() != 0
    for form in (
        scores,
        scores.astype(np.float64),
        topk.Product(sp.csr_matrix(np.nan_to_num(scores)), sp.identity(400, format="csr")),
    ):
        got = topk.top_entries(form, n, exclude)
        values = np.nan_to_num(scores) if isinstance(form, topk.Product) else scores
        for row in range(len(scores)):
            ok = [(-float(v), c) for c, v in enumerate(values[row].tolist()) if v > 0 and not banned[row, c]]
            lo, hi = got.indptr[row], got.indptr[row + 1]
            assert [(-float(v), int(c)) for c, v in zip(got.indices[lo:hi], got.data[lo:hi], strict=True)] == sorted(
                ok
            )[:n]


def test_top_n_skips_nan_scores_and_keeps_the_rest():
    nan_scores = np.array([[np.nan, np.nan, np.nan, 1.0, 2.0]], dtype=np.float32)
    got = top_n(lambda r: nan_scores[r], np.arange(1), IDS[:1], pd.Index(["a", "b", "c", "d", "e"]), 3)
    assert list(zip(got["item_id"], got["score"], strict=True)) == [("e", 2.0), ("d", 1.0)]
