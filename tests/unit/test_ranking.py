"""LightGBM LambdaRank ranker: rank features, top-k, the ranker's table (labels, groups, features),
fitting on a planted signal, recommendations with their sources and reasons, and the reason words."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.core.errors import InputError
from pipelines.evaluation.metrics import ranking_metrics
from pipelines.ranking import explain as explain_module
from pipelines.ranking.dataset import feature_table, groups, labels, source_columns
from pipelines.ranking.explain import (
    CUSTOMER_LEVEL,
    FEATURE_WORDS,
    SOURCE_WORDS,
    contribution_method,
    explain,
    path_contributions,
    phrase,
)
from pipelines.ranking.inference import recommend
from pipelines.ranking.lists import rank_features, source_sizes, top_k
from pipelines.ranking.model import KIND, fit, importance, predict
from tests.helpers import FAKE, PLANTED, RANKER_PARAMS, shipped, synthetic, truth_of

pytestmark = pytest.mark.unit

SOURCES = ("buy_again", "popularity")


def cands_frame(rows: list[tuple], names: tuple[str, ...] = SOURCES) -> pd.DataFrame:
    """(customer, item, rank of source 1, rank of source 2, ...) -> candidates with `<source>_rank` columns."""
    return pd.DataFrame(rows, columns=["customer_id", "item_id"] + [f"{n}_rank" for n in names])


def pairs(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "item_id"])


# --- source_sizes / rank_features ------------------------------------------------------------


def test_source_sizes_reads_n_per_source_in_order():
    got = source_sizes({"buy_again": {"n": 4, "half_life_days": 9}, "popularity": {"n": "2"}})
    assert got == {"buy_again": 4, "popularity": 2}
    assert list(got) == ["buy_again", "popularity"]
    assert all(isinstance(v, int) for v in got.values())
    assert source_sizes({}) == {}


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


def test_rank_features_default_rrf_k_and_column_order():
    cands = cands_frame([("c", "a", 1, 2)])
    np.testing.assert_allclose(rank_features(cands, {"buy_again": 4, "popularity": 2}), [[1 / 61, 1 / 62]])
    np.testing.assert_allclose(rank_features(cands, {"popularity": 2, "buy_again": 4}, rrf_k=10), [[1 / 12, 1 / 11]])
    assert rank_features(cands, {}).shape == (1, 0)


# --- top_k -------------------------------------------------------------------------------------


def ties_table() -> tuple[pd.DataFrame, np.ndarray]:
    cands = pd.DataFrame(
        {"customer_id": ["u", "u", "u", "u", "u", "v", "v"], "item_id": ["z", "m", "a", "q", "n", "b", "c"]}
    )
    return cands, np.array([2.0, 1.0, 1.0, 0.0, -1.0, 0.5, 3.0])


def test_top_k_cuts_at_k_per_customer_and_breaks_ties_by_item_id():
    cands, scores = ties_table()
    got = top_k(cands, scores, k=2)
    assert list(got.columns) == ["customer_id", "item_id", "rank", "score"]
    assert got[["customer_id", "item_id", "rank"]].values.tolist() == [
        ["u", "z", 1],
        ["u", "a", 2],  # a beats m on the 1.0 tie by item id; k = 2 drops m
        ["v", "c", 1],
        ["v", "b", 2],
    ]
    assert got["score"].tolist() == [2.0, 1.0, 3.0, 0.5]
    # the tie order does not depend on the input order
    rev = cands.iloc[::-1].reset_index(drop=True)
    assert top_k(rev, scores[::-1], k=2)[["customer_id", "item_id"]].values.tolist() == [
        ["u", "z"], ["u", "a"], ["v", "c"], ["v", "b"]
    ]  # fmt: skip


def test_top_k_positive_only_drops_zero_and_negative_scores():
    cands, scores = ties_table()
    got = top_k(cands, scores, k=10)
    assert got[["customer_id", "item_id", "rank"]].values.tolist() == [
        ["u", "z", 1], ["u", "a", 2], ["u", "m", 3], ["v", "c", 1], ["v", "b", 2]
    ]  # fmt: skip
    assert (got["score"] > 0).all()


def test_top_k_keeps_non_positive_scores_when_asked():
    cands, scores = ties_table()
    got = top_k(cands, scores, k=10, positive_only=False)
    assert got[got["customer_id"] == "u"]["item_id"].tolist() == ["z", "a", "m", "q", "n"]
    assert got[got["customer_id"] == "u"]["rank"].tolist() == [1, 2, 3, 4, 5]
    assert len(top_k(cands, scores, k=4, positive_only=False)) == 4 + 2  # v has only 2 candidates
    assert top_k(cands, -np.ones(len(cands)), k=3).empty


def test_top_k_index_points_at_candidate_rows():
    cands, scores = ties_table()
    for positive_only in (True, False):
        got = top_k(cands, scores, k=3, positive_only=positive_only)
        back = cands.iloc[got.index.to_numpy()]
        assert back["customer_id"].tolist() == got["customer_id"].tolist()
        assert back["item_id"].tolist() == got["item_id"].tolist()
        np.testing.assert_array_equal(scores[got.index.to_numpy()], got["score"].to_numpy())


# --- ranking_data: labels, groups, source_columns, feature_table -------------------------------


def test_labels_mark_pairs_bought_in_the_future_window_aligned_with_candidates():
    cands = pairs([("u", "x"), ("u", "y"), ("v", "x"), ("v", "z"), ("w", "x")])
    future = pairs([("v", "x"), ("u", "y"), ("u", "y"), ("w", "q"), ("q", "x")])  # repeat, other item, other customer
    got = labels(cands, future)
    assert got.tolist() == [0, 1, 1, 0, 0]
    assert len(got) == len(cands) and np.issubdtype(got.dtype, np.integer)
    # row for row with the candidates, whatever their order
    shuffled = cands.iloc[[4, 2, 0, 3, 1]].reset_index(drop=True)
    assert labels(shuffled, future).tolist() == [0, 1, 0, 0, 1]
    assert labels(cands, future.iloc[:0]).tolist() == [0] * 5


def test_groups_count_rows_per_customer_in_order():
    assert groups(pairs([("a", "1"), ("a", "2"), ("b", "1"), ("c", "1"), ("c", "2"), ("c", "3")])).tolist() == [2, 1, 3]
    # grouped is enough: the order of the groups is the order of the rows
    assert groups(pairs([("z", "1"), ("z", "2"), ("a", "1")])).tolist() == [2, 1]
    assert groups(pairs([])).tolist() == []


def test_groups_refuse_candidates_not_grouped_by_customer():
    with pytest.raises(ValueError, match="grouped by customer"):
        groups(pairs([("a", "1"), ("b", "1"), ("a", "2")]))


def test_source_columns_score_then_rank_per_source():
    assert source_columns(["a", "b"]) == ["a_score", "a_rank", "b_score", "b_rank"]
    assert source_columns([]) == []


def test_feature_table_without_store():
    cands = pd.DataFrame(
        {
            "customer_id": ["u", "u", "v"],
            "item_id": ["x", "y", "x"],
            "a_score": [0.5, 0.0, 2.0],
            "a_rank": [1, 4, 1],
            "b_score": [0.0, 0.0, 1.5],
            "b_rank": [3, 3, 2],
            "not_a_feature": [9, 9, 9],
        },
        index=[10, 11, 12],
    )
    x = feature_table(cands, pd.Timestamp("2011-12-09"), ["a", "b"], None)
    assert list(x.columns) == ["a_score", "a_rank", "b_score", "b_rank", "n_sources"]  # no calendar context
    assert list(x.index) == [0, 1, 2]
    assert set(x.dtypes) == {np.dtype(np.float32)}  # LightGBM copies an all-float32 table as float32, not float64
    np.testing.assert_array_equal(x[["a_score", "a_rank", "b_score", "b_rank"]].to_numpy(), [
        [0.5, 1, 0, 3], [0, 4, 0, 3], [2, 1, 1.5, 2]
    ])  # fmt: skip
    assert x["n_sources"].tolist() == [1, 0, 2]
    # only the named sources count
    assert feature_table(cands, pd.Timestamp("2011-12-09"), ["b"], None)["n_sources"].tolist() == [0, 0, 1]


# --- fit on a planted signal -------------------------------------------------------------------


def customers_with_positive(cands: pd.DataFrame, y: np.ndarray) -> int:
    return cands.loc[y > 0, "customer_id"].nunique()


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[pd.DataFrame, pd.DataFrame, np.ndarray]]:
    return {"train": synthetic(200, 1), "valid": synthetic(100, 2), "test": synthetic(200, 3)}


@pytest.fixture(scope="module")
def fitted(data):
    return fit([data["train"]], data["valid"], RANKER_PARAMS)


def test_synthetic_table_is_as_intended(data):
    for cands, x, y in data.values():
        assert groups(cands).tolist() == [20] * cands["customer_id"].nunique()
        n_customers = cands["customer_id"].nunique()
        assert 0.5 * n_customers < customers_with_positive(cands, y) < n_customers  # some lists have no positive
        assert (x["n_sources"] >= 0).all() and (x["n_sources"] <= 2).all()


def test_fit_info(data, fitted):
    booster, info = fitted
    cands, x, y = data["train"]
    assert info["kind"] == KIND and booster.params["objective"] == "lambdarank"  # what the model is, recorded
    assert 1 <= info["best_iteration"] <= RANKER_PARAMS["n_estimators"]
    assert info["features"] == list(x.columns) == booster.feature_name()
    assert 0.0 < info["valid_ndcg@10_positive_lists"] <= 1.0
    json.dumps(info)


def test_fit_leaves_out_customers_without_a_positive(data, fitted):
    _, info = fitted
    cands, x, y = data["train"]
    with_positive = customers_with_positive(cands, y)
    assert with_positive < cands["customer_id"].nunique()  # the exclusion is exercised
    assert info["train_customers"] == with_positive
    assert info["train_rows"] == 20 * with_positive
    assert info["train_positive_rate"] == pytest.approx(y.sum() / (20 * with_positive))


def test_fit_counts_customers_over_every_training_cutoff(data):
    first, second = synthetic(60, 11), synthetic(40, 12)
    _, info = fit([first, second], data["valid"], RANKER_PARAMS)
    assert info["train_customers"] == customers_with_positive(*first[::2]) + customers_with_positive(*second[::2])
    assert info["train_rows"] == 20 * info["train_customers"]


def test_fit_ranks_positives_above_negatives_on_held_out_customers(data, fitted):
    booster, _ = fitted
    cands, x, y = data["test"]
    truth = truth_of(cands, y)
    model = ranking_metrics(top_k(cands, predict(booster, x), 10, positive_only=False), truth, 10)["ndcg@10"]
    rng = np.random.default_rng(0)
    chance = np.mean(
        [ranking_metrics(top_k(cands, rng.random(len(cands)), 10), truth, 10)["ndcg@10"] for _ in range(5)]
    )
    oracle = ranking_metrics(top_k(cands, x[PLANTED].to_numpy() + 1, 10), truth, 10)["ndcg@10"]
    assert chance < 0.5
    assert model > chance + 0.3
    assert model >= oracle - 0.05  # at least about as good as sorting by the planted feature


def test_importance_puts_the_planted_feature_first(fitted):
    booster, info = fitted
    imp = importance(booster)
    assert list(imp.columns) == ["feature", "gain"]
    assert sorted(imp["feature"]) == sorted(info["features"])
    assert imp["feature"].iloc[0] == PLANTED
    assert imp["gain"].is_monotonic_decreasing
    assert imp["gain"].iloc[0] > 2 * imp["gain"].iloc[1:].sum()


def test_fit_is_deterministic(data, fitted):
    booster, info = fitted
    again, info2 = fit([data["train"]], data["valid"], dict(RANKER_PARAMS))
    x = data["test"][1]
    np.testing.assert_array_equal(predict(booster, x), predict(again, x))
    assert {k: v for k, v in info.items() if k != "seconds"} == {k: v for k, v in info2.items() if k != "seconds"}


def test_fit_with_feature_fraction_is_deterministic_per_seed(data):
    x = data["test"][1]
    params = {**RANKER_PARAMS, "feature_fraction": 0.5}
    a = predict(fit([data["train"]], data["valid"], params)[0], x)
    b = predict(fit([data["train"]], data["valid"], params)[0], x)
    np.testing.assert_array_equal(a, b)
    c = predict(fit([data["train"]], data["valid"], {**params, "seed": 2})[0], x)
    assert np.isfinite(c).all() and not np.array_equal(c, a)  # the seed drives the feature sampling


def test_fit_does_not_depend_on_the_candidates_index(data, fitted):
    booster, _ = fitted
    cands, x, y = data["train"]
    moved = cands.set_axis(np.arange(len(cands)) + 1000)
    other, _ = fit([(moved, x, y)], data["valid"], RANKER_PARAMS)
    np.testing.assert_array_equal(predict(booster, data["test"][1]), predict(other, data["test"][1]))


# --- recommend ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recs(data, fitted):
    booster, _ = fitted
    cands, x, _ = data["test"]
    return recommend(booster, cands, x, FAKE, 5)


def test_recommend_k_rows_per_customer_best_first(data, fitted, recs):
    booster, _ = fitted
    cands, x, _ = data["test"]
    assert list(recs.columns) == ["customer_id", "item_id", "rank", "score", "sources", "reasons", "contributions"]
    assert (recs.groupby("customer_id").size() == 5).all()
    assert recs["customer_id"].nunique() == cands["customer_id"].nunique()
    assert recs.groupby("customer_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert recs.groupby("customer_id")["score"].apply(lambda v: v.is_monotonic_decreasing).all()
    expected = top_k(cands, predict(booster, x), 5, positive_only=False).reset_index(drop=True)
    pd.testing.assert_frame_equal(recs[["customer_id", "item_id", "rank", "score"]], expected)


def test_recommend_sources_are_those_that_proposed_the_item(data, recs):
    cands, _, _ = data["test"]
    joined = recs.merge(cands, on=["customer_id", "item_id"], how="left", validate="one_to_one")
    expected = [",".join(n for n in FAKE if row[f"{n}_score"] > 0) for _, row in joined.iterrows()]
    assert joined["sources"].tolist() == expected
    assert {"", "a", "b", "a,b"} <= set(expected)  # every case occurs


def test_recommend_contributions_are_up_to_three_features_that_push_up(recs):
    for text in recs["contributions"]:
        contrib = json.loads(text)
        assert text == json.dumps(contrib)  # written as json.dumps writes it
        assert len(contrib) <= 3
        assert all(v > 0 for v in contrib.values())
        assert list(contrib.values()) == sorted(contrib.values(), reverse=True)
    assert recs["contributions"].map(lambda t: PLANTED in json.loads(t)).any()
    assert recs["contributions"].map(lambda t: len(json.loads(t)) == 3).any()


def test_recommend_reasons_are_the_contributions_in_words(data, recs):
    cands, x, _ = data["test"]
    joined = recs.merge(
        pd.concat([cands[["customer_id", "item_id"]], x], axis=1), on=["customer_id", "item_id"], validate="one_to_one"
    )
    for _, row in joined.iterrows():
        by = set(row["sources"].split(",")) - {""}
        words = list(dict.fromkeys(phrase(f, row[f], by) for f in json.loads(row["contributions"])))
        assert row["reasons"] == "; ".join(words)
    assert recs["reasons"].str.contains(r"you bought it \d+ times").any()


def test_recommend_never_gives_customer_level_features_as_reasons(data, fitted, recs):
    booster, _ = fitted
    cands, x, _ = data["test"]
    assert "recency_days" in CUSTOMER_LEVEL
    # the check means something: recency_days does push some rows up in the model
    names = booster.feature_name()
    contrib = path_contributions(booster, x[names])
    assert (contrib[:, names.index("recency_days")] > 0).any()
    for text in recs["contributions"]:
        assert not set(json.loads(text)) & CUSTOMER_LEVEL
    assert not recs["reasons"].str.contains("recency").any()


def test_recommend_with_shap_contributions_reads_treeshap(data, fitted, recs):
    booster, _ = fitted
    cands, x, _ = data["test"]
    got = recommend(booster, cands, x, FAKE, 5, method="shap")
    pd.testing.assert_frame_equal(
        got.drop(columns=["reasons", "contributions"]), recs.drop(columns=["reasons", "contributions"])
    )
    names = booster.feature_name()
    rows = x.set_index(pd.MultiIndex.from_frame(cands[["customer_id", "item_id"]]))
    shap = booster.predict(rows[names], num_iteration=booster.best_iteration, pred_contrib=True)
    at = rows.index.get_indexer(pd.MultiIndex.from_frame(got[["customer_id", "item_id"]]))
    for row, text in zip(at, got["contributions"], strict=True):
        for feature, value in json.loads(text).items():
            assert value == round(float(shap[row, names.index(feature)]), 4)
    assert got["contributions"].map(lambda t: len(json.loads(t)) > 0).any()


def test_contribution_method_from_params_checked():
    assert contribution_method({"recommend": shipped("recommend", contributions="shap")}) == "shap"
    assert contribution_method({"recommend": shipped("recommend")}) == "path"
    with pytest.raises(
        InputError, match=r"^params: recommend.contributions must be one of \['path', 'shap'\], not 'lime'$"
    ):
        contribution_method({"recommend": shipped("recommend", contributions="lime")})


def test_recommend_contributions_are_the_path_contributions(data, fitted, recs):
    booster, _ = fitted
    cands, x, _ = data["test"]
    names = booster.feature_name()
    path = path_contributions(booster, x[names])
    at = pd.MultiIndex.from_frame(cands[["customer_id", "item_id"]]).get_indexer(
        pd.MultiIndex.from_frame(recs[["customer_id", "item_id"]])
    )
    for row, text in zip(at, recs["contributions"], strict=True):
        for feature, value in json.loads(text).items():
            assert value == round(float(path[row, names.index(feature)]), 4)


@pytest.mark.parametrize("relabel", ["shifted", "reversed"])
def test_recommend_with_candidates_not_indexed_from_zero(data, fitted, recs, relabel):
    booster, _ = fitted
    cands, x, _ = data["test"]
    labels_ = np.arange(len(cands)) + 1000 if relabel == "shifted" else np.arange(len(cands))[::-1]
    got = recommend(booster, cands.set_axis(labels_), x, FAKE, 5)
    pd.testing.assert_frame_equal(got, recs)


# --- path contributions, on real boosters ------------------------------------------------------


def small_booster(n_estimators: int = 30, num_leaves: int = 15, **extra) -> tuple:
    import lightgbm as lgb

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(2000, 5)), columns=[f"f{i}" for i in range(5)])
    x.loc[::9, "f2"] = np.nan  # missing values take the default branch
    y = ((x["f0"] + x["f1"] * x["f2"].fillna(0) + rng.normal(scale=0.5, size=2000)) > 0.8).astype(int)
    params = {"objective": "lambdarank", "num_leaves": num_leaves, "min_data_in_leaf": 10, "verbose": -1, **extra}
    data = lgb.Dataset(x, y, group=[20] * 100)
    return lgb.train(params, data, num_boost_round=n_estimators), x


def test_path_contributions_add_up_to_the_raw_score_like_shap():
    booster, x = small_booster()
    got = path_contributions(booster, x)
    shap = booster.predict(x, pred_contrib=True)
    assert got.shape == (len(x), x.shape[1])
    np.testing.assert_allclose(got.sum(axis=1) + shap[:, -1], booster.predict(x), atol=1e-9)
    assert np.corrcoef(got[:, 0], shap[:, 0])[0, 1] > 0.95  # the strongest feature: close to SHAP


def saabas_by_hand(booster, x: pd.DataFrame) -> np.ndarray:
    """Reference: walk each row down each dumped tree by its thresholds (numerical splits, NaN to the
    default side); every step adds (child's expected value - node's) to the split feature, expected
    values being leaf values weighted by training rows."""

    def expected(node):
        if "split_feature" not in node:
            return node["leaf_value"], node["leaf_count"]
        (lv, lc), (rv, rc) = expected(node["left_child"]), expected(node["right_child"])
        return (lv * lc + rv * rc) / (lc + rc), lc + rc

    out = np.zeros(x.shape)
    for tree in booster.dump_model()["tree_info"]:
        for r, row in enumerate(x.to_numpy()):
            node = tree["tree_structure"]
            while "split_feature" in node:
                value = row[node["split_feature"]]
                left = node["default_left"] if np.isnan(value) else value <= node["threshold"]
                child = node["left_child"] if left else node["right_child"]
                out[r, node["split_feature"]] += expected(child)[0] - expected(node)[0]
                node = child
    return out


def test_path_contributions_equal_a_walk_down_the_trees_by_hand():
    booster, x = small_booster(n_estimators=5, num_leaves=8)
    rows = x.iloc[:200]
    np.testing.assert_allclose(path_contributions(booster, rows), saabas_by_hand(booster, rows), atol=1e-12)


def test_path_contributions_refuse_linear_trees():
    booster, x = small_booster(n_estimators=2, linear_tree=True)
    with pytest.raises(InputError, match="linear_tree model has no path contributions"):
        path_contributions(booster, x)


def test_path_contributions_of_one_split_equal_shap():
    booster, x = small_booster(n_estimators=1, num_leaves=2)  # one split: the path and SHAP agree exactly
    shap = booster.predict(x, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(path_contributions(booster, x), shap, atol=1e-12)


def test_path_contributions_follow_best_iteration_and_row_order():
    booster, x = small_booster()
    booster.best_iteration = 10
    got = path_contributions(booster, x)
    shap = booster.predict(x, num_iteration=10, pred_contrib=True)
    np.testing.assert_allclose(got.sum(axis=1) + shap[:, -1], booster.predict(x, num_iteration=10), atol=1e-9)
    order = np.arange(len(x))[::-1]
    np.testing.assert_array_equal(path_contributions(booster, x.iloc[order]), got[order])


def test_path_contributions_of_a_tree_without_splits_are_zero():
    booster, x = small_booster(n_estimators=3, min_data_in_leaf=5000)  # too few rows to split: one-leaf trees
    assert {tree["num_leaves"] for tree in booster.dump_model()["tree_info"]} == {1}
    np.testing.assert_array_equal(path_contributions(booster, x), np.zeros(x.shape))


# --- explain, with contributions chosen by hand --------------------------------------------------


class StubBooster:
    """What explain() uses of a LightGBM booster besides the contributions: the feature names."""

    def __init__(self, names: list[str]):
        self.names = names

    def feature_name(self) -> list[str]:
        return list(self.names)


STUB_NAMES = ["a_score", "times_bought", "recency_days", "units_90d", "buyers_90d", "price"]


def stub_explain(contrib: list[list[float]], values: list[list[float]] | None = None) -> pd.DataFrame:
    n = len(contrib)
    x = pd.DataFrame(values or [[1.0] * len(STUB_NAMES)] * n, columns=STUB_NAMES)
    cands = pd.DataFrame({"a_score": [0.5, 0.0][:n], "b_score": [0.0, 0.0][:n]})

    def by_hand(booster, given):
        assert list(given.columns) == STUB_NAMES
        return np.asarray(contrib, dtype=float)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(explain_module.CONTRIBUTIONS, "path", by_hand)
        return explain(StubBooster(STUB_NAMES), x, cands, FAKE)


def test_explain_top_three_positive_non_customer_features_best_first():
    got = stub_explain(
        [
            # recency_days pushes most but is customer-level; price is 4th of the usable positives
            [0.2, 0.5, 0.9, 0.3, -0.1, 0.05],
            [-0.2, -0.5, 0.9, -0.3, -0.1, -0.05],  # nothing usable pushes up
        ],
        [[0.5, 4.0, 30.0, 7.0, 3.0, 2.5], [0.0, 0.0, 30.0, 0.0, 0.0, 1.0]],
    )
    assert list(got.columns) == ["sources", "reasons", "contributions"]
    assert got["sources"].tolist() == ["a", ""]
    assert json.loads(got["contributions"][0]) == {"times_bought": 0.5, "units_90d": 0.3, "a_score": 0.2}
    assert list(json.loads(got["contributions"][0])) == ["times_bought", "units_90d", "a_score"]
    assert got["reasons"][0] == "you bought it 4 times; a steady seller; a score"
    assert json.loads(got["contributions"][1]) == {}
    assert got["reasons"][1] == ""


def test_explain_says_the_same_words_once():
    got = stub_explain([[0.0, 0.0, 0.0, 0.4, 0.3, 0.2]])
    assert list(json.loads(got["contributions"][0])) == ["units_90d", "buyers_90d", "price"]
    assert got["reasons"][0] == "a steady seller; its price suits you"  # units_90d and buyers_90d read the same


def test_explain_lists_no_feature_whose_contribution_reads_zero():
    got = stub_explain([[0.00002, 0.5, 0.0, 0.0, 0.0, 0.0]])
    contrib = json.loads(got["contributions"][0])
    assert all(v > 0 for v in contrib.values()), contrib
    assert got["reasons"][0] == "you bought it 1 times"
    edge = json.loads(stub_explain([[0.00005, 0.5, 0.0, 0.0000499, 0.0, 0.0]])["contributions"][0])
    assert list(edge) == ["times_bought", "a_score"]  # 0.00005 reads 0.0001, 0.0000499 reads 0


# --- phrase ------------------------------------------------------------------------------------


def test_phrase_source_columns_use_the_source_words_only_when_it_proposed_the_item():
    for name, words in SOURCE_WORDS.items():
        assert phrase(f"{name}_score", 0.7, {name}) == words
        assert phrase(f"{name}_rank", 3.0, {name}) == words
        assert phrase(f"{name}_rank", 301.0, {"other"}) is None  # a rank past n: it did not propose it
    assert phrase("buy_again_score", float("nan"), {"buy_again"}) == "you bought it before"


def test_phrase_formats_templated_features():
    assert phrase("times_bought", 3.0) == "you bought it 3 times"
    assert phrase("days_since_last_purchase", 12.4) == "last bought 12 days ago"
    assert phrase("mean_repurchase_interval_days", 29.6) == "you re-order it every 30 days or so"
    assert phrase("n_sources", 2.0) == "proposed by several sources"  # no number in that one
    assert phrase("in_top_category", 1.0) == FEATURE_WORDS["in_top_category"]


def test_phrase_is_not_said_when_the_value_does_not_bear_it_out():
    assert phrase("times_bought", float("nan")) is None  # never bought
    assert phrase("age_days", 700.0) is None and phrase("age_days", 20.0) == "new in the catalogue"
    assert phrase("trend_7_30", 0.6) is None and phrase("trend_7_30", 1.5) == "sales rising"
    assert phrase("n_sources", 1.0) is None
    assert phrase("in_top_category", 0.0) is None
    assert phrase("repurchase_due_ratio", 0.3) is None and phrase("repurchase_due_ratio", 1.2) == "due for a re-order"
    assert phrase("days_since_last_purchase", float("inf")) is None
    for feature, template in FEATURE_WORDS.items():  # whatever is said has no unformatted placeholder
        for value in (float("nan"), 1.0, 100.0):
            words = phrase(feature, value)
            assert words is None or "{" not in words
            if words is not None and "{" not in template:
                assert words == template


def test_phrase_unknown_features_become_words():
    assert phrase("foo_bar", 1.0) == "foo bar"
    assert phrase("foo_bar", float("nan")) == "foo bar"
    assert phrase("unknown_source_score", 0.5) == "unknown source score"
    assert phrase("a_rank", 1.0) == "a rank"


def test_refit_learns_from_validation_too_with_factor_times_the_trees(data, fitted):
    booster, info = fitted
    refitted, refit_info = fit([data["train"]], data["valid"], {**RANKER_PARAMS, "refit_factor": 1.5})
    trees = round(info["best_iteration"] * 1.5)
    assert refit_info["early_stopping_iteration"] == info["best_iteration"]
    assert refit_info["best_iteration"] == refitted.best_iteration == refitted.num_trees() == trees
    assert refit_info["refit_on_valid"] and not info["refit_on_valid"]
    # the same trees on the training rows alone would not be this model: the validation rows were learnt from
    alone, _ = fit([data["train"]], data["valid"], {**RANKER_PARAMS, "n_estimators": trees, "early_stopping_rounds": 0})
    x_test = data["test"][1]
    assert not np.allclose(refitted.predict(x_test), alone.predict(x_test))


def test_train_refuses_feature_sources_without_the_training_cutoffs_snapshots(tmp_path):
    from pipelines.ranking.train import train_stage

    params = {"features": shipped("features", snapshots="latest")}
    with pytest.raises(InputError, match="features.snapshots is 'latest': .* train needs calendar"):
        train_stage(tmp_path / "candidates", tmp_path / "split", tmp_path / "models", tmp_path / "plots", params)
    assert not (tmp_path / "models").exists()
