"""Rank-fusion ranker: rank features, top-k, weight fitting, and scoring with the fitted model."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.metrics import ranking_metrics
from pipelines.ranker import FILL, fit, fuse, rank_features, score, source_sizes, top_k

pytestmark = pytest.mark.unit

SOURCES = ("buy_again", "popularity")


def cands_frame(rows: list[tuple], names: tuple[str, ...] = SOURCES) -> pd.DataFrame:
    """(customer, item, rank of source 1, rank of source 2, ...) -> candidates with `<source>_rank` columns."""
    return pd.DataFrame(rows, columns=["customer_id", "item_id"] + [f"{n}_rank" for n in names])


def truth_frame(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["customer_id", "item_id"])


# --- source_sizes / rank_features ------------------------------------------------------------


def test_source_sizes_reads_n_per_source_in_order():
    assert source_sizes({"buy_again": {"n": 4, "half_life_days": 9}, "popularity": {"n": "2"}}) == {
        "buy_again": 4,
        "popularity": 2,
    }


def test_rank_features_hand_computed():
    cands = cands_frame(
        [
            ("c", "a", 1, 2),  # buy_again (n=4): 1/(10+1);  popularity (n=2): 1/(10+2)
            ("c", "b", 4, 3),  #                  1/(10+4);                    rank 3 > n: not proposed, 0
            ("c", "d", 5, 1),  #                  rank 5 > n: 0;               1/(10+1)
            ("c", "e", 7, 9),  # ranks past n are no vote at all
        ]
    )
    got = rank_features(cands, {"buy_again": 4, "popularity": 2}, rrf_k=10)
    np.testing.assert_allclose(got, [[1 / 11, 1 / 12], [1 / 14, 0.0], [0.0, 1 / 11], [0.0, 0.0]])
    np.testing.assert_allclose(rank_features(cands, {"buy_again": 4}, rrf_k=0)[:2, 0], [1.0, 0.25])


def test_rank_features_column_order_follows_sizes():
    cands = cands_frame([("c", "a", 1, 2)])
    np.testing.assert_allclose(rank_features(cands, {"popularity": 2, "buy_again": 4}, rrf_k=10), [[1 / 12, 1 / 11]])
    assert rank_features(cands, {}).shape == (1, 0)


# --- top_k -------------------------------------------------------------------------------------


def test_top_k_orders_ties_by_item_id_drops_non_positive_and_cuts_at_k():
    cands = pd.DataFrame(
        {"customer_id": ["u", "u", "u", "u", "u", "v", "v"], "item_id": ["z", "m", "a", "q", "n", "b", "c"]}
    )
    scores = np.array([2.0, 1.0, 1.0, 0.0, -1.0, 0.5, 3.0])
    got = top_k(cands, scores, k=2)
    assert list(got.columns) == ["customer_id", "item_id", "rank", "score"]
    assert got[["customer_id", "item_id", "rank"]].values.tolist() == [
        ["u", "z", 1],
        ["u", "a", 2],  # a beats m on the 1.0 tie by item id; k = 2 drops m
        ["v", "c", 1],
        ["v", "b", 2],
    ]
    got = top_k(cands, scores, k=10)
    assert set(got["item_id"]) == {"z", "m", "a", "b", "c"}  # q (score 0) and n (score -1) never appear
    assert got[got["customer_id"] == "u"]["item_id"].tolist() == ["z", "a", "m"]


# --- fuse / score ------------------------------------------------------------------------------


def test_fuse_is_weighted_sum_plus_small_fill():
    feats = np.array([[1.0, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(fuse(feats, np.array([1.0, 0.0])), [1.0 + FILL * 1.5, 0.0 + FILL * 1.0])
    # a zero weight still lets the source fill the list
    assert (fuse(feats, np.array([1.0, 0.0])) > 0).all()


def test_score_uses_the_model_weights_and_sizes():
    cands = cands_frame([("c", "a", 1, 2), ("c", "b", 4, 3), ("c", "d", 5, 1)])
    model = {"weights": {"buy_again": 0.25, "popularity": 1.0}, "sizes": {"buy_again": 4, "popularity": 2}, "rrf_k": 10}
    feats = np.array([[1 / 11, 1 / 12], [1 / 14, 0.0], [0.0, 1 / 11]])
    # a: 0.25/11 + 1/12 + FILL*(1/11 + 1/12); b: 0.25/14 + FILL/14; d: 1/11 + FILL/11
    expected = [0.25 / 11 + 1 / 12 + FILL * (1 / 11 + 1 / 12), 0.25 / 14 + FILL / 14, 1 / 11 + FILL / 11]
    np.testing.assert_allclose(score(model, cands), expected)
    np.testing.assert_allclose(score(model, cands), fuse(feats, np.array([0.25, 1.0])))


# --- fit ---------------------------------------------------------------------------------------


def useful_vs_useless(good: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Per customer: the good source (n=3) ranks the purchased item x first; the bad one (n=2) never proposes it.

    With equal weights the sums are x = 1, y = 2/3 + 1/2, z = 1/3 + 1 -> z, y, x (NDCG@3 = 1/log2(4));
    with the bad source at 0, x comes first (NDCG@3 = 1).
    """
    bad = next(n for n in SOURCES if n != good)
    sizes = {good: 3, bad: 2}
    ranks = {"x": {good: 1, bad: 3}, "y": {good: 2, bad: 2}, "z": {good: 3, bad: 1}}
    rows = [(c, item, r[SOURCES[0]], r[SOURCES[1]]) for c in ("c1", "c2", "c3") for item, r in ranks.items()]
    truth = truth_frame([(c, "x") for c in ("c1", "c2", "c3")])
    return cands_frame(rows), truth, {name: sizes[name] for name in SOURCES}


@pytest.mark.parametrize("good", SOURCES)
def test_fit_learns_useful_source_and_ignores_useless_one(good):
    cands, truth, sizes = useful_vs_useless(good)
    bad = next(n for n in SOURCES if n != good)
    # sanity of the construction: equal weights put x last
    assert ranking_metrics(top_k(cands, fuse(rank_features(cands, sizes), np.ones(2)), 3), truth, 3)[
        "ndcg@3"
    ] == pytest.approx(0.5)
    model = fit(cands, truth, sizes, {"k": 3, "grid": 11, "rounds": 2})
    assert model["weights"][good] == pytest.approx(1.0)
    assert model["weights"][bad] <= 0.1
    assert model["valid_ndcg@3"] == pytest.approx(1.0)
    assert model["kind"] == "rank_fusion" and model["k"] == 3 and model["sizes"] == sizes


@pytest.mark.parametrize("good", SOURCES)
def test_score_with_fitted_model_reproduces_fit_quality(good):
    cands, truth, sizes = useful_vs_useless(good)
    model = fit(cands, truth, sizes, {"k": 3})
    recs = top_k(cands, score(model, cands), 3)
    assert ranking_metrics(recs, truth, 3)["ndcg@3"] == pytest.approx(model["valid_ndcg@3"])
    assert recs[recs["rank"] == 1]["item_id"].tolist() == ["x", "x", "x"]
    w = np.array([model["weights"][n] for n in sizes])
    np.testing.assert_allclose(score(model, cands), fuse(rank_features(cands, sizes), w))


def test_fit_is_deterministic_and_json_able():
    cands, truth, sizes = useful_vs_useless("popularity")
    a = fit(cands, truth, sizes, {"k": 3})
    b = fit(cands.copy(), truth.copy(), dict(sizes), {"k": 3})
    assert a == b
    assert json.loads(json.dumps(a)) == a


def test_fit_keeps_equal_weights_when_nothing_improves():
    # both sources rank the purchased item first: [1, 1] is already perfect, no move is a strict gain
    cands = cands_frame([("c", "x", 1, 1), ("c", "y", 2, 2)])
    model = fit(cands, truth_frame([("c", "x")]), {"buy_again": 2, "popularity": 2}, {"k": 2})
    assert model["weights"] == {"buy_again": 1.0, "popularity": 1.0}
    assert model["valid_ndcg@2"] == pytest.approx(1.0)


def test_coordinate_ascent_starts_from_the_best_single_weight():
    from pipelines.tuning import coordinate_ascent

    # only weight 2 alone scores; every mix from equal weights is worse, and the grid cannot reach it
    def objective(w):
        return 1.0 if (w[2] > 0 and w[0] == 0 and w[1] == 0) else 0.5 if w.sum() == 3 else 0.0

    weights, best = coordinate_ascent(objective, 3, grid=[0.5, 1.0], rounds=2)
    assert best == 1.0 and weights.tolist() == [0.0, 0.0, 1.0]
