"""Ranking and beyond-accuracy metrics on hand-computed cases and limit cases (arithmetic in the comments)."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipelines.evaluation.metrics import (
    ItemVectors,
    average_popularity,
    catalogue_coverage,
    exposure_gini,
    intra_list_diversity,
    item_popularity,
    novelty,
    paired_bootstrap,
    per_customer,
    per_customer_at,
    personalisation,
    ranking_metrics,
    ranking_metrics_at,
)

pytestmark = pytest.mark.unit

NAMES = ("ndcg", "recall", "precision", "hitrate", "map", "mrr")


def recs(lists: dict[str, list[str]]) -> pd.DataFrame:
    """customer -> items best first; rank 1 = first item."""
    rows = [(c, item, r) for c, items in lists.items() for r, item in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["customer_id", "item_id", "rank"])


def truth(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["customer_id", "item_id"])


def at(k: int, **expected: float) -> dict[str, float]:
    return {f"{name}@{k}": value for name, value in expected.items()}


def test_one_customer_hits_at_ranks_1_and_3_with_2_relevant():
    got = ranking_metrics(recs({"u": ["a", "x", "b"]}), truth([("u", "a"), ("u", "b")]), k=3)
    # DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5; IDCG (2 relevant) = 1/log2(2) + 1/log2(3)
    ndcg = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    # AP = (1/1 + 2/3) / min(|rel| = 2, k = 3)
    ap = (1 / 1 + 2 / 3) / 2
    assert got == pytest.approx(at(3, ndcg=ndcg, recall=2 / 2, precision=2 / 3, hitrate=1.0, map=ap, mrr=1 / 1))
    assert got["ndcg@3"] == pytest.approx(0.9197207891481876)


def test_one_customer_single_hit_at_rank_2_of_4_relevant():
    got = ranking_metrics(recs({"u": ["x", "a", "y", "z", "w"]}), truth([("u", s) for s in "abcd"]), k=5)
    # DCG = 1/log2(3); IDCG = sum_{r=1..4} 1/log2(r+1)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert got == pytest.approx(
        at(
            5,
            ndcg=(1 / math.log2(3)) / idcg,
            recall=1 / 4,  # hits / |relevant|
            precision=1 / 5,  # hits / k
            hitrate=1.0,
            map=(1 / 2) / 4,  # (1 hit so far / rank 2) / min(4, 5)
            mrr=1 / 2,
        )
    )


def test_perfect_list_scores_one_everywhere():
    got = ranking_metrics(
        recs({"u": ["a", "b", "c"], "v": ["d", "e", "f"]}),
        truth([("u", "a"), ("u", "b"), ("u", "c"), ("v", "d"), ("v", "e"), ("v", "f")]),
        k=3,
    )
    assert got == pytest.approx(at(3, ndcg=1.0, recall=1.0, precision=1.0, hitrate=1.0, map=1.0, mrr=1.0))


def test_perfect_list_when_more_relevant_than_k():
    # 5 relevant, k = 2, both slots hit: the ideal is capped at k, so ndcg and map are 1
    got = ranking_metrics(recs({"u": ["a", "b"]}), truth([("u", s) for s in "abcde"]), k=2)
    assert got == pytest.approx(
        at(2, ndcg=1.0, recall=2 / 5, precision=2 / 2, hitrate=1.0, map=(1 / 1 + 2 / 2) / min(5, 2), mrr=1.0)
    )


def test_map_is_normalised_by_min_of_relevant_and_k():
    # 4 relevant, k = 3, hits at ranks 1 and 3: AP = (1/1 + 2/3) / min(4, 3) = (5/3) / 3
    got = ranking_metrics(recs({"u": ["a", "x", "b"]}), truth([("u", s) for s in "abcd"]), k=3)
    assert got["map@3"] == pytest.approx((1 + 2 / 3) / 3)
    # 1 relevant, k = 3, hit at rank 2: AP = (1/2) / min(1, 3) = 0.5
    got = ranking_metrics(recs({"u": ["x", "a", "y"]}), truth([("u", "a")]), k=3)
    assert got["map@3"] == pytest.approx(0.5)


def test_mrr_averages_reciprocal_of_first_hit():
    got = ranking_metrics(
        recs({"u": ["x", "a", "b"], "v": ["x", "y", "c"], "w": ["x", "y", "z"]}),
        truth([("u", "a"), ("u", "b"), ("v", "c"), ("w", "d")]),
        k=3,
    )
    # u: first hit at rank 2 -> 1/2; v: rank 3 -> 1/3; w: none -> 0
    assert got["mrr@3"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert got["hitrate@3"] == pytest.approx(2 / 3)


def test_precision_denominator_is_k_even_for_short_lists():
    # 2 hits in a list of 2, k = 5: precision = 2 / 5, not 2 / 2
    got = ranking_metrics(recs({"u": ["a", "b"]}), truth([("u", "a"), ("u", "b")]), k=5)
    assert got["precision@5"] == pytest.approx(2 / 5)
    assert got["recall@5"] == pytest.approx(1.0)
    assert got["ndcg@5"] == pytest.approx(1.0)


def test_empty_recommendations_score_zero():
    empty = pd.DataFrame(
        {"customer_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object), "rank": pd.Series(dtype="int64")}
    )
    got = ranking_metrics(empty, truth([("u", "a"), ("v", "b")]), k=3)
    assert got == pytest.approx(at(3, **{m: 0.0 for m in NAMES}))


def test_no_hits_score_zero():
    got = ranking_metrics(recs({"u": ["x", "y", "z"]}), truth([("u", "a")]), k=3)
    assert got == pytest.approx(at(3, **{m: 0.0 for m in NAMES}))


def test_empty_truth_scores_zero():
    got = ranking_metrics(recs({"u": ["a"]}), truth([]), k=3)
    assert got == at(3, **{m: 0.0 for m in NAMES})


def test_customer_in_truth_without_recs_counts_as_zero():
    # u is perfect (all metrics 1), v has no list at all: every metric is (1 + 0) / 2
    got = ranking_metrics(recs({"u": ["a"]}), truth([("u", "a"), ("v", "b")]), k=1)
    assert got == pytest.approx(at(1, **{m: 0.5 for m in NAMES}))


def test_recs_for_customers_not_in_truth_are_ignored():
    base = ranking_metrics(recs({"u": ["x", "a"]}), truth([("u", "a")]), k=2)
    extra = ranking_metrics(recs({"u": ["x", "a"], "stranger": ["a", "b"]}), truth([("u", "a")]), k=2)
    assert extra == pytest.approx(base)
    # u alone: hit at rank 2 -> ndcg = (1/log2(3)) / 1, precision = 1/2
    assert base == pytest.approx(
        at(2, ndcg=1 / math.log2(3), recall=1.0, precision=1 / 2, hitrate=1.0, map=1 / 2, mrr=1 / 2)
    )


def test_duplicate_truth_rows_count_once():
    once = ranking_metrics(recs({"u": ["a", "x"]}), truth([("u", "a"), ("u", "b")]), k=2)
    twice = ranking_metrics(recs({"u": ["a", "x"]}), truth([("u", "a"), ("u", "a"), ("u", "b"), ("u", "b")]), k=2)
    assert twice == pytest.approx(once)
    assert once["recall@2"] == pytest.approx(1 / 2)  # 1 hit of 2 distinct relevant items, not of 4 rows


def test_k_cut_off_a_hit_at_rank_k_plus_1_does_not_count():
    got = ranking_metrics(recs({"u": ["x", "y", "a"]}), truth([("u", "a")]), k=2)
    assert got == pytest.approx(at(2, **{m: 0.0 for m in NAMES}))
    got = ranking_metrics(recs({"u": ["x", "y", "a"]}), truth([("u", "a")]), k=3)
    assert got["ndcg@3"] == pytest.approx(1 / math.log2(4)) and got["mrr@3"] == pytest.approx(1 / 3)


def test_row_order_does_not_matter_only_rank_does():
    r = recs({"u": ["a", "x", "b", "y"], "v": ["y", "c"]})
    t = truth([("u", "a"), ("u", "b"), ("v", "c")])
    shuffled = r.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert ranking_metrics(shuffled, t, k=4) == pytest.approx(ranking_metrics(r, t, k=4))


def test_metrics_average_over_customers():
    got = ranking_metrics(recs({"u": ["a", "b"], "v": ["x", "c"]}), truth([("u", "a"), ("u", "b"), ("v", "c")]), k=2)
    # u perfect -> ndcg 1; v hit at rank 2 with 1 relevant -> (1/log2(3)) / 1
    assert got["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    # precision: 3 hits over k * customers = 2 * 2 slots
    assert got["precision@2"] == pytest.approx(3 / 4)
    # map: u = (1/1 + 2/2) / 2 = 1; v = (1/2) / 1
    assert got["map@2"] == pytest.approx((1 + 0.5) / 2)


def test_per_customer_rows_hand_computed():
    # u: hit at rank 1 of 2 relevant -> dcg 1, idcg 1 + 1/log2(3); v: no recommendations -> 0
    got = per_customer(recs({"u": ["a", "x"]}), truth([("u", "a"), ("u", "b"), ("v", "c")]), k=2)
    assert got.loc["u", "ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert got.loc["u", "recall@2"] == pytest.approx(0.5)
    assert got.loc["v"].tolist() == [0.0] * got.shape[1]
    assert ranking_metrics(recs({"u": ["a", "x"]}), truth([("u", "a"), ("u", "b"), ("v", "c")]), k=2)[
        "ndcg@2"
    ] == pytest.approx(got["ndcg@2"].mean())


def test_paired_bootstrap_of_a_constant_ratio_is_that_ratio():
    theirs = pd.Series([0.1, 0.4, 0.2, 0.3], index=list("abcd"))
    assert paired_bootstrap(2 * theirs, theirs) == pytest.approx((2.0, 2.0))


def test_paired_bootstrap_interval_holds_the_point_ratio_and_is_paired():
    rng = np.random.default_rng(1)
    theirs = pd.Series(rng.random(400), index=[f"c{i}" for i in range(400)])
    ours = theirs + rng.normal(0.05, 0.01, 400)  # paired: the same customers, a small steady gain
    low, high = paired_bootstrap(ours, theirs)
    point = ours.mean() / theirs.mean()
    assert low < point < high
    assert high - low < 0.02  # pairing cancels the customers' own spread (unpaired it would be ~0.15 wide)
    # a customer missing from one side counts as 0 there, whichever side it is
    assert paired_bootstrap(pd.Series([1.0, 1.0], index=["a", "b"]), pd.Series([1.0], index=["a"])) == (
        pytest.approx(1.0),
        pytest.approx(2.0),
    )
    assert paired_bootstrap(pd.Series([1.0], index=["a"]), pd.Series([1.0, 1.0], index=["a", "b"])) == (
        pytest.approx(0.0),  # a resample of b alone: 0 / 1
        pytest.approx(1.0),
    )


def test_keys_are_named_with_k():
    assert set(ranking_metrics(recs({"u": ["a"]}), truth([("u", "a")]), k=7)) == {f"{m}@7" for m in NAMES}


def test_catalogue_coverage():
    r = recs({"u": ["a", "b", "c"], "v": ["a", "d", "e"]})
    # top-2 lists: {a, b} and {a, d} -> 3 distinct items of a 10-item catalogue
    assert catalogue_coverage(r, k=2, n_items=10) == pytest.approx(3 / 10)
    # top-3: {a, b, c, d, e} -> 5 / 10
    assert catalogue_coverage(r, k=3, n_items=10) == pytest.approx(5 / 10)
    assert catalogue_coverage(r, k=3, n_items=0) == 0.0
    assert catalogue_coverage(r.iloc[:0], k=3, n_items=10) == 0.0


def test_a_duplicated_recommendation_counts_at_its_best_rank():
    recs = pd.DataFrame({"customer_id": ["u", "u"], "item_id": ["a", "a"], "rank": [3, 1]})
    truth = pd.DataFrame({"customer_id": ["u"], "item_id": ["a"]})
    assert ranking_metrics(recs, truth, 3)["mrr@3"] == 1.0


# Beyond accuracy -----------------------------------------------------------------------------


def vectors(rows: dict[str, list[float]]) -> ItemVectors:
    """Hand-made unit vectors: item -> row."""
    items = list(rows)
    return ItemVectors(pd.Series(range(len(items)), index=items), sp.csr_matrix(np.array([rows[i] for i in items])))


def test_personalisation_counts_shared_items_between_every_pair_of_lists():
    # top-2 lists u {a, b}, v {a, c}, w {d, e}: overlaps (u,v) 1, (u,w) 0, (v,w) 0 -> mean 1/3, over k=2 -> 1/6
    got = personalisation(recs({"u": ["a", "b"], "v": ["a", "c"], "w": ["d", "e"]}), k=2)
    assert got == pytest.approx(1 - 1 / 6)


def test_personalisation_normalises_each_pair_by_its_shorter_list():
    # u {a, b, c}, v {a}, w {a, b}: shared (u,v) 1, (u,w) 2, (v,w) 1 = 4; shorter lists 1 + 2 + 1 = 4 -> 0
    assert personalisation(recs({"u": ["a", "b", "c"], "v": ["a"], "w": ["a", "b"]}), k=10) == pytest.approx(0.0)
    # the same 3 items for everyone at k = 10 is no personalisation at all, however short the lists
    assert personalisation(recs({c: ["a", "b", "c"] for c in "uvw"}), k=10) == pytest.approx(0.0)
    # u {a, b}, v {a, c, d}: 1 shared of a shorter list of 2 -> 1/2
    assert personalisation(recs({"u": ["a", "b"], "v": ["a", "c", "d"]}), k=3) == pytest.approx(0.5)


def test_personalisation_limits():
    assert personalisation(recs({"u": ["a", "b"], "v": ["a", "b"]}), k=2) == 0.0  # the same list for all
    assert personalisation(recs({"u": ["a", "b"], "v": ["c", "d"]}), k=2) == 1.0  # nothing shared
    assert personalisation(recs({"u": ["a", "b"]}), k=2) == 0.0  # one list: no pair to compare
    assert personalisation(recs({}).astype({"rank": int}), k=2) == 0.0


def test_intra_list_diversity_by_hand():
    v = vectors({"a": [1, 0], "b": [0, 1], "c": [math.sqrt(0.5), math.sqrt(0.5)]})
    # [a, b, c]: cos(a,b) = 0, cos(a,c) = cos(b,c) = sqrt(.5) -> mean similarity 2 sqrt(.5) / 3
    got = intra_list_diversity(recs({"u": ["a", "b", "c"]}), k=3, vectors=v)
    assert got == pytest.approx(1 - 2 * math.sqrt(0.5) / 3)
    # v has one item with a vector (x has none) and is not scored; w [a, b] is fully diverse
    got = intra_list_diversity(recs({"u": ["a", "b", "c"], "v": ["a", "x"], "w": ["a", "b"]}), k=3, vectors=v)
    assert got == pytest.approx(((1 - 2 * math.sqrt(0.5) / 3) + 1) / 2)


def test_intra_list_diversity_limits_from_texts():
    v = ItemVectors.of_texts(pd.Series({"a": "red mug", "b": "red mug", "c": "garden lamp", "d": ""}))
    assert intra_list_diversity(recs({"u": ["a", "b"]}), k=2, vectors=v) == pytest.approx(0.0)  # identical texts
    assert intra_list_diversity(recs({"u": ["a", "c"]}), k=2, vectors=v) == pytest.approx(1.0)  # no word shared
    assert intra_list_diversity(recs({"u": ["a", "d"]}), k=2, vectors=v) == 0.0  # d has no text: nothing to score
    assert list(ItemVectors.of_texts(pd.Series({"a": "", "b": None})).rows) == []


def test_novelty_and_average_popularity_by_hand():
    pop = pd.Series({"a": 0.5, "b": 0.25})
    r = recs({"u": ["a", "b"], "v": ["a"], "w": ["z"]})  # z unknown: counts as the rarest known item (0.25)
    # self-information: a 1 bit, b 2 bits; u = 1.5, v = 1, w = 2 -> mean 1.5
    assert novelty(r, k=2, popularity=pop) == pytest.approx((1.5 + 1 + 2) / 3)
    assert average_popularity(r, k=2, popularity=pop) == pytest.approx((0.375 + 0.5 + 0.25) / 3)
    assert novelty(r, k=1, popularity=pop) == pytest.approx((1 + 1 + 2) / 3)  # only the first items


def test_an_unknown_item_is_as_rare_as_the_rarest_known_one():
    pop = pd.Series({"a": 0.5, "b": 0.2})
    assert novelty(recs({"u": ["z"]}), k=1, popularity=pop) == pytest.approx(-math.log2(0.2))


def test_item_popularity_is_the_share_of_customers_who_bought():
    history = truth([("u", "a"), ("u", "a"), ("v", "a"), ("v", "b"), ("w", "c")])
    assert item_popularity(history).to_dict() == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 1 / 3})


def test_exposure_gini_by_hand():
    # exposures sorted over a 3-item catalogue: [0, 1, 3]; G = sum (2i - n - 1) x_i / (n sum x)
    # = ((2 - 4) 0 + (4 - 4) 1 + (6 - 4) 3) / (3 * 4) = 6 / 12
    r = recs({"u": ["a"], "v": ["a"], "w": ["a", "b"]})
    assert exposure_gini(r, k=2, n_items=3) == pytest.approx(0.5)


def test_exposure_gini_limits():
    # even exposure over the whole catalogue -> 0; one item only, in a 4-item catalogue -> (n - 1) / n
    assert exposure_gini(recs({"u": ["a", "b"], "v": ["c", "d"]}), k=2, n_items=4) == pytest.approx(0.0)
    assert exposure_gini(recs({"u": ["a"], "v": ["a"]}), k=1, n_items=4) == pytest.approx(0.75)
    assert exposure_gini(recs({"u": ["a"]}).iloc[:0], k=1, n_items=4) == 0.0


def test_beyond_accuracy_on_empty_lists_is_zero():
    empty = recs({"u": ["a"]}).iloc[:0]
    pop = pd.Series({"a": 1.0})
    assert novelty(empty, 3, pop) == average_popularity(empty, 3, pop) == personalisation(empty, 3) == 0.0
    assert intra_list_diversity(empty, 3, vectors({"a": [1.0]})) == 0.0


def test_metrics_at_several_k_at_once_equal_those_at_each_k():
    rng = np.random.default_rng(5)
    recs = pd.DataFrame(
        {"customer_id": np.repeat([f"c{i}" for i in range(30)], 20), "item_id": rng.integers(0, 40, 600).astype(str)}
    )
    recs["rank"] = recs.groupby("customer_id").cumcount() + 1  # duplicates too: each pair counts at its best rank
    truth = pd.DataFrame(
        {"customer_id": rng.choice([f"c{i}" for i in range(35)], 120), "item_id": rng.integers(0, 40, 120).astype(str)}
    )
    at = per_customer_at(recs, truth, [1, 5, 20])
    for k in (1, 5, 20):
        pd.testing.assert_frame_equal(at[k], per_customer(recs, truth, k))
    assert at[1]["ndcg@1"].sum() < at[5]["ndcg@5"].sum() < at[20]["ndcg@20"].sum()
    assert ranking_metrics_at(recs, truth, [5, 20]) == {
        **ranking_metrics(recs, truth, 5),
        **ranking_metrics(recs, truth, 20),
    }
