"""Next-basket sources (TIFU-KNN, UP-CF@r) and the tuned peers of bench/peers.py on tiny hand-computed data."""

import pandas as pd
import pytest

from bench import peers
from pipelines.candidates import SOURCES, generate_candidates, matrix
from pipelines.candidates.tifu_knn import TifuKnn
from pipelines.candidates.up_cf import UpCF
from tests.conftest import interactions
from tests.helpers import source

pytestmark = pytest.mark.unit

DAY0 = pd.Timestamp("2011-01-01")
AS_OF = DAY0 + pd.Timedelta(days=100)
CUSTOMERS = pd.Index(["c1", "c2", "c3", "c4"])

HISTORY = interactions(
    [
        # (customer, item, day, order)
        ("c1", "A", 10, 1),
        ("c1", "B", 10, 1),
        ("c1", "A", 20, 2),
        ("c1", "A", 20, 2),  # the same item twice in one basket counts once
        ("c1", "C", 30, 3),
        ("c2", "A", 40, 4),
        ("c2", "D", 40, 4),
        ("c3", "B", 50, 5),
        ("c3", "B", 60, 6),
        ("c3", "E", 60, 6),
        ("c4", "D", 70, 7),
    ]
)
LATER = interactions([("c1", "E", 100, 8), ("c2", "B", 120, 9), ("c9", "A", 130, 10)])  # at / after as_of


def lists(recs: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    return {c: list(zip(g["item_id"], g["score"], strict=True)) for c, g in recs.groupby("customer_id", sort=True)}


def items(recs: pd.DataFrame) -> dict[str, list[str]]:
    return {c: [i for i, _ in pairs] for c, pairs in lists(recs).items()}


def scores(recs: pd.DataFrame) -> dict[str, list[float]]:
    return {c: [x for _, x in pairs] for c, pairs in lists(recs).items()}


# --- TIFU-KNN ----------------------------------------------------------------------------------
# group_size 2, both decays 0.5, alpha 0.5, one neighbour. Baskets newest first, groups from the newest:
#   c1: o3 {C}, o2 {A} | o1 {A, B}    g0 = (C + 0.5 A) / 2, g1 = {A, B} / 1, v1 = (g0 + 0.5 g1) / 2
#                                      = A 0.125 + 0.25 = 0.375, B 0.25, C 0.25
#   c2: o4 {A, D}                      v2 = A 1, D 1
#   c3: o6 {B, E}, o5 {B}              v3 = ({B, E} + 0.5 B) / 2 = B 0.75, E 0.5
#   c4: o7 {D}                         v4 = D 1
# cosines: (1,2) = 0.375 / (0.5154 * 1.4142) = 0.514, (1,3) = 0.1875 / (0.5154 * 0.9014) = 0.404, (1,4) = 0,
#          (2,4) = 0.707, (2,3) = (3,4) = 0. Nearest: c1 -> c2, c2 -> c4, c3 -> c1 (its only one), c4 -> c2.
#   c1: 0.5 v1 + 0.5 v2 = A 0.6875, D 0.5, B 0.125, C 0.125 (tie: item id)
#   c2: 0.5 v2 + 0.5 v4 = D 1, A 0.5
#   c3: 0.5 v3 + 0.5 v1 = B 0.5, E 0.25, A 0.1875, C 0.125
#   c4: 0.5 v4 + 0.5 v2 = D 1, A 0.5

TIFU = {"group_size": 2, "within_decay": 0.5, "group_decay": 0.5, "neighbours": 1, "alpha": 0.5}
TIFU_EXPECTED = {
    "c1": [("A", 0.6875), ("D", 0.5), ("B", 0.125), ("C", 0.125)],
    "c2": [("D", 1.0), ("A", 0.5)],
    "c3": [("B", 0.5), ("E", 0.25), ("A", 0.1875), ("C", 0.125)],
    "c4": [("D", 1.0), ("A", 0.5)],
}


def tifu(history: pd.DataFrame = HISTORY, **settings) -> pd.DataFrame:
    return TifuKnn(**{"n": 10, **TIFU, **settings}).fit(history, AS_OF).recommend(CUSTOMERS)


def test_tifu_knn_hand_computed_scores():
    got = tifu()
    assert SOURCES["tifu_knn"] is TifuKnn
    assert list(got.columns) == ["customer_id", "item_id", "score"]
    assert items(got) == {c: [i for i, _ in pairs] for c, pairs in TIFU_EXPECTED.items()}
    for c, pairs in TIFU_EXPECTED.items():
        assert scores(got)[c] == pytest.approx([x for _, x in pairs])


def test_tifu_knn_neighbour_mean_is_over_the_neighbours_found():
    got = lists(tifu(neighbours=2))
    # c3 has one customer with a positive cosine (c1): the same mean as with one neighbour
    assert [i for i, _ in got["c3"]] == ["B", "E", "A", "C"]
    assert [x for _, x in got["c3"]] == pytest.approx([0.5, 0.25, 0.1875, 0.125])
    # c1: mean of v2 and v3 = A 0.5, D 0.5, B 0.375, E 0.25; blended with v1
    assert dict(got["c1"]) == pytest.approx({"A": 0.4375, "B": 0.3125, "D": 0.25, "C": 0.125, "E": 0.125})


def test_tifu_knn_exclude_bought_n_unknown_and_no_leakage():
    excluded = lists(tifu(exclude_bought=True))  # c2 bought both of its items
    assert excluded == {"c1": [("D", 0.5)], "c3": [("A", 0.1875), ("C", 0.125)], "c4": [("A", 0.5)]}
    assert items(tifu(n=2)) == {c: [i for i, _ in pairs][:2] for c, pairs in TIFU_EXPECTED.items()}
    source = TifuKnn(n=10, **TIFU).fit(HISTORY, AS_OF)
    assert set(source.recommend(pd.Index(["c1", "nobody"]))["customer_id"]) == {"c1"}
    pd.testing.assert_frame_equal(tifu(pd.concat([HISTORY, LATER], ignore_index=True)), tifu())


# --- UP-CF@r -----------------------------------------------------------------------------------
# recency 2, asymmetry 0.75, locality 2. Items ever bought: I1 = {A, B, C}, I2 = {A, D}, I3 = {B, E}, I4 = {D}.
# pop over the last 2 baskets, / min(2, baskets): c1 (o3 {C}, o2 {A}) A 0.5, C 0.5; c2 A 1, D 1;
#   c3 (o6 {B, E}, o5 {B}) B 1, E 0.5; c4 D 1.
# sim(u, v) = |I_u & I_v| / (|I_u| ** 0.75 * |I_v| ** 0.25), sim(u, u) = 1, squared (locality 2):
#   c1: sim(1,2)^2 = sim(1,3)^2 = 1 / (3 ** 1.5 * 2 ** 0.5) = 0.1361, sim(1,4) = 0
#       score = pop1 + 0.1361 (pop2 + pop3) = A 0.6361, C 0.5, B 0.1361, D 0.1361, E 0.0680
#   c2: sim(2,1)^2 = 1 / (2 ** 1.5 * 3 ** 0.5) = 0.2041, sim(2,4)^2 = 1 / 2 ** 1.5 = 0.3536, sim(2,3) = 0
#       score = pop2 + 0.2041 pop1 + 0.3536 pop4 = D 1.3536, A 1.1021, C 0.1021

UP = {"recency": 2, "asymmetry": 0.75, "locality": 2}
S1 = 1 / (3**1.5 * 2**0.5)
S21, S24 = 1 / (2**1.5 * 3**0.5), 1 / 2**1.5


def up(history: pd.DataFrame = HISTORY, **settings) -> pd.DataFrame:
    return UpCF(**{"n": 10, **UP, **settings}).fit(history, AS_OF).recommend(CUSTOMERS)


def test_up_cf_hand_computed_scores():
    got = lists(up())
    assert SOURCES["up_cf"] is UpCF
    assert [i for i, _ in got["c1"]] == ["A", "C", "B", "D", "E"]  # B and D tie: item id
    assert [x for _, x in got["c1"]] == pytest.approx([0.5 + S1, 0.5, S1, S1, 0.5 * S1])
    assert [i for i, _ in got["c2"]] == ["D", "A", "C"]
    assert [x for _, x in got["c2"]] == pytest.approx([1 + S24, 1 + 0.5 * S21, 0.5 * S21])


def test_up_cf_recency_and_neighbours():
    # all baskets: c1's pop = A 2/3, B 1/3, C 1/3
    assert dict(lists(up(recency=None))["c1"])["B"] == pytest.approx(1 / 3 + S1)
    # the 2 most similar to c2: itself and c4 (0.3536 > 0.2041)
    assert lists(up(neighbours=2))["c2"] == [("D", pytest.approx(1 + S24)), ("A", pytest.approx(1.0))]


def test_up_cf_exclude_bought_n_unknown_and_no_leakage():
    assert items(up(exclude_bought=True))["c1"] == ["D", "E"]
    assert all(len(v) <= 2 for v in items(up(n=2)).values()) and items(up(n=2))["c1"] == ["A", "C"]
    source = UpCF(n=10, **UP).fit(HISTORY, AS_OF)
    assert set(source.recommend(pd.Index(["nobody", "c2"]))["customer_id"]) == {"c2"}
    pd.testing.assert_frame_equal(up(pd.concat([HISTORY, LATER], ignore_index=True)), up())


@pytest.mark.parametrize("make", [tifu, up])
def test_batches_and_blocks_give_the_same_result(monkeypatch, make):
    whole = make()
    monkeypatch.setattr(matrix, "BATCH", 1)
    monkeypatch.setattr(matrix, "BLOCK", 1)  # one customer per similarity block
    pd.testing.assert_frame_equal(make(), whole)
    monkeypatch.setattr(matrix, "BATCH", 3)
    monkeypatch.setattr(matrix, "BLOCK", 8)  # 2 of the 4 customers per block
    pd.testing.assert_frame_equal(make(), whole)


# --- buy-again + popularity peer ---------------------------------------------------------------
# window_days 30 before day 100 = days [70, 100): buyers D 3 (c4, c5, c6), C 2 (c5, c6), E 1, F 1.
#   c1 bought A in 2 orders, B and C in 1: A, then C (2 buyers) before B (0), then unbought D, E, F (E < F).
#   Scores: orders for bought items, buyers / (3 + 1) for the fill.

PEER_HISTORY = pd.concat(
    [
        HISTORY,
        interactions(
            [("c5", "C", 80, 11), ("c5", "D", 80, 11), ("c6", "D", 85, 12), ("c6", "E", 85, 12)]
            + [("c6", "C", 90, 13), ("c6", "F", 90, 13), ("c4", "D", 95, 14)]
        ),
    ],
    ignore_index=True,
)


def test_buy_again_popularity_hand_computed():
    got = peers.buy_again_popularity(PEER_HISTORY, pd.Index(["c1"]), AS_OF, {"window_days": 30})
    assert list(got.columns) == ["customer_id", "item_id", "score", "rank"]
    assert got["item_id"].tolist() == ["A", "C", "B", "D", "E", "F"]
    assert got["score"].tolist() == pytest.approx([2, 1, 1, 0.75, 0.25, 0.25])
    assert got["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    # a 3-day window [97, 100) has no buyers: bought items only, ties by item id
    short = peers.buy_again_popularity(PEER_HISTORY, pd.Index(["c1"]), AS_OF, {"window_days": 3})
    assert short["item_id"].tolist() == ["A", "B", "C"]


def test_buy_again_popularity_k_unknown_customers_and_no_leakage(monkeypatch):
    later = pd.concat([PEER_HISTORY, LATER], ignore_index=True)
    run = peers.buy_again_popularity
    whole = run(PEER_HISTORY, pd.Index(["c1", "c2", "new"]), AS_OF, {"window_days": 30})
    pd.testing.assert_frame_equal(run(later, pd.Index(["c1", "c2", "new"]), AS_OF, {"window_days": 30}), whole)
    assert items(whole)["new"] == ["D", "C", "E", "F"]  # popularity only
    assert items(whole)["c2"] == ["D", "A", "C", "E", "F"]  # bought D (3 buyers) before A (0), no repeats
    monkeypatch.setattr(peers, "K", 2)
    assert items(run(PEER_HISTORY, pd.Index(["c1"]), AS_OF, {"window_days": 30})) == {"c1": ["A", "C"]}


def test_source_peers_rank_and_allow_bought_items():
    got = peers.source_peer(TifuKnn)(HISTORY, CUSTOMERS, AS_OF, TIFU)
    assert got.loc[got["customer_id"] == "c1", ["item_id", "rank"]].values.tolist() == [
        ["A", 1],
        ["D", 2],
        ["B", 3],
        ["C", 4],
    ]


# --- tuning ------------------------------------------------------------------------------------

VALID_START, TEST_START = DAY0 + pd.Timedelta(days=100), DAY0 + pd.Timedelta(days=110)
TUNE_HISTORY = pd.concat(
    [
        HISTORY,
        interactions([("c1", "V", 102, 20), ("c2", "V", 105, 21), ("c9", "X", 103, 22)]),  # validation
        interactions([("c1", "T", 111, 23)]),  # test: must play no part
    ],
    ignore_index=True,
)


def test_tune_picks_the_obviously_best_parameter_on_validation_only():
    seen = []

    def peer(history, customers, as_of, params):
        seen.append((history["timestamp"].max(), as_of, list(customers)))
        return pd.DataFrame({"customer_id": customers, "item_id": params["item"], "rank": 1, "score": 1.0})

    grid = peers.grid(item=["X", "V", "T"])
    params, metrics = peers.tune(peer, grid, TUNE_HISTORY, VALID_START, TEST_START)
    assert params == {"item": "V"} and metrics["ndcg@10"] == pytest.approx(1.0)
    assert metrics["recall@20"] == pytest.approx(1.0)
    assert all(last < VALID_START and as_of == VALID_START and c == ["c1", "c2"] for last, as_of, c in seen)


def test_tuned_peers_refit_before_the_test_with_the_chosen_parameters(monkeypatch):
    calls = []

    def peer(history, customers, as_of, params):
        calls.append(as_of)
        return pd.DataFrame({"customer_id": customers, "item_id": params["item"], "rank": 1, "score": 1.0})

    monkeypatch.setattr(peers, "PEERS", {"fixed": (peer, peers.grid(item=["X", "V"]))})
    history = TUNE_HISTORY[TUNE_HISTORY["timestamp"] < TEST_START]
    got = peers.tuned_peers(history, pd.Index(["c1"]), VALID_START, TEST_START)
    assert list(got) == ["fixed (item=V, tuned on validation)"]
    assert calls == [VALID_START, VALID_START, TEST_START]
    assert got["fixed (item=V, tuned on validation)"]["item_id"].tolist() == ["V"]


def test_grids_stay_small():
    assert peers.grid(a=[1, 2], b=[3]) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert all(len(grid) <= 20 for _, grid in peers.PEERS.values())


def test_sources_in_the_union_share_matrices_and_match_standalone():
    got = generate_candidates(
        HISTORY,
        AS_OF,
        CUSTOMERS,
        {
            "tifu_knn": {"n": 10, **TIFU, "exclude_bought": False},
            "up_cf": {"n": 10, **UP, "neighbours": None, "exclude_bought": False},
            "buy_again": source("buy_again", n=5),
        },
    )
    c1 = got[got["customer_id"] == "c1"].set_index("item_id")
    assert c1["tifu_knn_score"].to_dict() == pytest.approx(dict(TIFU_EXPECTED["c1"]) | {"E": 0.0})
    assert c1.loc["A", "up_cf_score"] == pytest.approx(0.5 + S1)
