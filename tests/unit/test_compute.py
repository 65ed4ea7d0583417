"""Compute backends: local and dask maps, candidates and the ranker on both backends, and the
early stopping on every worker that lightgbm.dask needs (checked against LightGBM's own)."""

import threading
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.candidates.union import candidates_at_cutoffs
from pipelines.core import compute
from pipelines.core.compute import LOCAL, DaskBackend, LocalBackend, open_backend
from pipelines.core.errors import InputError
from pipelines.data.split import make_windows
from pipelines.evaluation.metrics import ranking_metrics
from pipelines.ranking.dask_training import ListNdcg, StopEarly, ValidationCurve
from pipelines.ranking.lists import top_k
from pipelines.ranking.model import boost_local, fit, lgb_params, predict
from tests.helpers import RANKER_PARAMS, shipped, source, synthetic, truth_of

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dask_backend():
    with open_backend(shipped("compute", backend="dask", workers=2, memory_limit="2GiB")) as backend:
        yield backend


@pytest.fixture(scope="module")
def clean_interactions(tmp_path_factory) -> pd.DataFrame:
    from pipelines.data.ingest import clean, load_canonical
    from pipelines.data.synthetic import generate

    raw = Path(tmp_path_factory.mktemp("synthetic")) / "raw.parquet"
    generate(raw, {"seed": 7, "rows": 12_000})
    return clean(load_canonical(raw, shipped("data")).frame, shipped("ingest")).frame


def test_an_unreachable_scheduler_is_a_one_line_input_error(monkeypatch):
    monkeypatch.setattr(compute, "CONNECT_TIMEOUT", "1s")
    with (
        pytest.raises(InputError, match="compute.scheduler 'tcp://127.0.0.1:9': no scheduler answers"),
        open_backend(shipped("compute", backend="dask", scheduler="tcp://127.0.0.1:9")),
    ):
        pass


def test_the_local_backend_is_this_process():
    with open_backend(shipped("compute", threads=1)) as backend:
        assert isinstance(backend, LocalBackend) and backend.threads == 1
        assert list(backend.map(lambda part, add: part + add, [1, 2, 3], add=10)) == [11, 12, 13]


def test_local_threads_run_parts_at_once_results_in_order_a_few_in_flight():
    started, running, most = [], [0], [0]
    lock, both = threading.Lock(), threading.Barrier(2, timeout=10)

    def slow(part: int, add: int) -> int:
        with lock:
            started.append(part)
            running[0] += 1
            most[0] = max(most[0], running[0])
        if part < 2:
            both.wait()  # the first two parts finish only once both have started: they run at once
        time.sleep(0.01 * (part % 3))  # later parts finish out of order
        with lock:
            running[0] -= 1
        return part + add

    read = []

    def parts():
        for p in range(20):
            read.append(p)
            yield p

    with open_backend(shipped("compute", threads=2)) as backend:
        results = backend.map(slow, parts(), add=100)
        assert next(results) == 100
        assert len(read) <= 4  # two parts per thread in flight, not all twenty read ahead
        assert [100, *results] == [p + 100 for p in range(20)]
    assert most[0] == 2 and sorted(started) == list(range(20))


def test_a_failing_part_fails_the_threaded_map():
    def fail_on_three(part: int) -> int:
        if part == 3:
            raise ValueError("part 3")
        return part

    with pytest.raises(ValueError, match="part 3"):
        list(LocalBackend(2).map(fail_on_three, range(10)))


def _plus(part: int, add: np.ndarray) -> int:
    return part + int(add.sum())


def test_the_dask_backend_returns_results_in_order(dask_backend):
    assert isinstance(dask_backend, DaskBackend) and dask_backend.workers == 2
    shared = np.ones(1000)
    parts = (p for p in range(50))  # read lazily, a few tasks in flight at a time
    assert list(dask_backend.map(_plus, parts, add=shared)) == [p + 1000 for p in range(50)]
    assert list(dask_backend.map(_plus, [], add=shared)) == []


def _weighted(part: int, weights: dict[str, float], names: list[str]) -> tuple[float, str]:
    return part * weights["w"], names[part % len(names)]


def test_dict_and_list_arguments_reach_the_workers_whole_and_do_not_collide(dask_backend):
    names = ["a", "b", "c"]
    for w in (1.0, 2.0, 3.0):  # back to back, the same keys with other values
        got = list(dask_backend.map(_weighted, range(6), weights={"w": w}, names=names))
        assert got == [(p * w, names[p % 3]) for p in range(6)]


def test_candidates_are_identical_on_both_backends(clean_interactions, dask_backend, monkeypatch, tmp_path):
    import importlib

    monkeypatch.setattr(importlib.import_module("pipelines.candidates.union"), "CHUNK", 37)  # many partitions
    w = make_windows(clean_interactions["timestamp"], shipped("split", train_cutoffs=1))
    cand_params = {
        "sources": {
            "buy_again": source("buy_again", n=50),
            "popularity": source("popularity", n=30),
            "item_cf": source("item_cf", n=40, neighbours=50),
            "user_cf": source("user_cf", n=40, neighbours=30),
            "als": source("als", n=30, factors=8, iterations=3),
        },
        "selection": {
            "mean_per_customer": 40,
            "activity_power": 0.75,
            "min_per_customer": 10,
            "max_per_customer": 200,
            "rrf_k": 20,
            "grid": [0, 1, 2],
            "rounds": 1,
            "tune_customers": 100,
        },
    }
    local = candidates_at_cutoffs(clean_interactions, w, cand_params, LOCAL)
    distributed = candidates_at_cutoffs(clean_interactions, w, cand_params, dask_backend, out_dir=tmp_path)
    assert local["selection"] == distributed["selection"]
    assert local["metrics"] == distributed["metrics"]
    for name in w.label_windows():  # the files, written partition by partition, hold the same frames
        assert len(local[name]) > 1000 and name not in distributed
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{name}.parquet"), local[name])


# --- the ranker --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranking_data():
    return {"train": synthetic(300, 1), "valid": synthetic(150, 2), "test": synthetic(200, 3)}


def _valid_lists(valid):
    from pipelines.ranking.model import _with_positives

    cands, x, y = valid
    return _with_positives(x, y, cands)


def lambdarank_ndcg(y, scores, g, k) -> float:
    return ListNdcg(np.asarray(y), np.asarray(g), k)(np.asarray(scores, dtype=float))


def test_list_ndcg_hand_computed():
    y = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    g = np.array([3, 3])  # list 1: hit at position 2; list 2: hits at positions 1 and 2
    first = (1 / np.log2(3)) / 1.0
    assert lambdarank_ndcg(y, scores, g, 10) == pytest.approx((first + 1.0) / 2)
    assert lambdarank_ndcg(y, scores, g, 1) == pytest.approx((0.0 + 1.0) / 2)
    assert lambdarank_ndcg(np.zeros(3), np.ones(3), np.array([3]), 5) == 1.0  # no gain to find: LightGBM's 1
    assert lambdarank_ndcg(np.array([2, 1]), np.array([0.0, 1.0]), np.array([2]), 2) == pytest.approx(
        (1 + 3 / np.log2(3)) / (3 + 1 / np.log2(3))  # graded gains 2**label - 1
    )
    assert lambdarank_ndcg([], [], [], 10) == 0.0  # no list


def test_list_ndcg_ties_in_score_keep_row_order():
    # the hit ties with the row before it: second; with the row after it: first
    assert lambdarank_ndcg([0, 1, 0], [1.0, 1.0, 1.0], [3], 10) == pytest.approx(1 / np.log2(3))
    assert lambdarank_ndcg([1, 0, 0], [1.0, 1.0, 1.0], [3], 1) == 1.0


def test_list_ndcg_equals_sorting_every_list():
    rng = np.random.default_rng(7)
    g = rng.integers(1, 40, size=200)
    y = rng.choice([0, 0, 0, 1, 2], size=g.sum())
    scores = rng.integers(0, 5, size=g.sum()).astype(float)  # many ties
    qid = np.repeat(np.arange(len(g)), g)
    position = np.arange(len(y)) - np.repeat(np.cumsum(g) - g, g)
    discount = np.where(position < 10, 1.0 / np.log2(position + 2.0), 0.0)
    gain = np.power(2.0, y) - 1.0
    dcg = np.bincount(qid, weights=gain[np.lexsort((-scores, qid))] * discount)
    idcg = np.bincount(qid, weights=gain[np.lexsort((-gain, qid))] * discount)
    expected = np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 1.0))
    assert lambdarank_ndcg(y, scores, g, 10) == pytest.approx(expected, abs=1e-12)


def test_validation_curve_keeps_the_iteration_lightgbm_early_stopping_keeps(ranking_data):
    parts = [_valid_lists(ranking_data["train"]), _valid_lists(ranking_data["valid"])]
    params = lgb_params(RANKER_PARAMS)
    stopped = boost_local(params, parts[0], parts[1], rounds=200, patience=10)
    assert stopped.best_iteration < 200  # early stopping did stop
    full = boost_local(params, parts[0], parts[1], rounds=200, patience=200)
    curve = ValidationCurve(*parts[1], k=10, patience=10)
    curve.extend(full)
    assert curve.best == stopped.best_iteration
    assert curve.best_score == pytest.approx(stopped.best_score["valid"]["ndcg@10"], abs=1e-9)
    chunked = ValidationCurve(*parts[1], k=10, patience=10)  # trees seen in chunks: the same curve
    for trees in (7, 20, 200):
        chunked.extend(lgb.Booster(model_str=full.model_to_string(num_iteration=trees)))
    assert (chunked.best, chunked.best_score) == (curve.best, curve.best_score)


def test_the_workers_callback_stops_where_lightgbm_early_stopping_stops(ranking_data):
    train, valid = _valid_lists(ranking_data["train"]), _valid_lists(ranking_data["valid"])
    params = lgb_params(RANKER_PARAMS)
    theirs = boost_local(params, train, valid, rounds=200, patience=10)
    rounds = []

    class Counted(StopEarly):
        def __call__(self, env):
            rounds.append(env.iteration)
            super().__call__(env)

    def ours(**extra) -> lgb.Booster:
        rounds.clear()
        return lgb.train(
            {key: v for key, v in params.items() if key not in ("metric", "eval_at")} | extra,
            lgb.Dataset(train[0], train[1], group=train[2]),
            200,
            callbacks=[Counted(ValidationCurve(*valid, k=10, patience=10))],
        )

    booster = ours()
    assert booster.best_iteration == theirs.best_iteration == booster.num_trees() < 200
    assert len(rounds) == booster.best_iteration + 10  # stopped where the rule fires, not at the last round
    assert booster.best_score["valid"]["ndcg@10"] == pytest.approx(theirs.best_score["valid"]["ndcg@10"], abs=1e-12)
    np.testing.assert_array_equal(booster.predict(valid[0]), theirs.predict(valid[0]))
    ours(min_data_in_leaf=10**6)
    assert len(rounds) <= 2  # no split allowed: stopped at the first round that added no tree


def test_dask_training_stops_early_in_one_fit(ranking_data, dask_backend, monkeypatch):
    from lightgbm.dask import DaskLGBMRanker

    fits, fit_once = [], DaskLGBMRanker.fit
    monkeypatch.setattr(DaskLGBMRanker, "fit", lambda self, *a, **kw: fits.append(1) or fit_once(self, *a, **kw))
    params = {**RANKER_PARAMS, "n_estimators": 200, "early_stopping_rounds": 5}
    booster, info = fit([ranking_data["train"]], ranking_data["valid"], params, dask_backend)
    assert len(fits) == 1 and info["best_iteration"] == booster.best_iteration == booster.num_trees() < 200
    curve = ValidationCurve(*_valid_lists(ranking_data["valid"]), k=10, patience=5)
    curve.extend(booster)  # the workers' curve, computed again here
    assert curve.best == booster.num_trees()
    assert info["valid_ndcg@10_positive_lists"] == pytest.approx(curve.best_score, abs=1e-12)


def test_dask_training_ends_without_patience_and_without_splits(ranking_data, dask_backend):
    data = [ranking_data["train"]], ranking_data["valid"]
    off, _ = fit(*data, {**RANKER_PARAMS, "n_estimators": 7, "early_stopping_rounds": 0}, dask_backend)
    assert off.num_trees() == 7  # early stopping off, as LightGBM reads 0: every tree
    stuck, info = fit(*data, {**RANKER_PARAMS, "min_data_in_leaf": 10**6}, dask_backend)  # no split is allowed
    assert stuck.num_trees() <= 1 and info["best_iteration"] <= 1  # returns with what it has
    with pytest.raises(InputError, match="n_estimators"):
        fit(*data, {**RANKER_PARAMS, "n_estimators": 0}, dask_backend)


def test_dask_training_scatters_the_same_rows_under_new_keys(ranking_data, dask_backend, monkeypatch):
    # content-hashed keys would be the previous fit's, whose release can reach a worker after the new
    # data: "Futures cancelled for reason: lost dependencies" in lightgbm.dask, or a hang (the flaky test)
    keys, scatter = [], dask_backend.client.scatter

    def spy(data, **kwargs):
        futures = scatter(data, **kwargs)
        keys.extend(f.key for f in futures)
        return futures

    monkeypatch.setattr(dask_backend.client, "scatter", spy)
    data = [ranking_data["train"]], ranking_data["valid"]
    for _ in range(2):  # the same rows, back to back
        fit(*data, {**RANKER_PARAMS, "n_estimators": 2, "early_stopping_rounds": 0}, dask_backend)
    # per fit: x, y and groups per worker, and the validation curve's callback (broadcast under one key)
    assert len(keys) == 2 * (3 * dask_backend.workers + 1) and len(set(keys)) == len(keys)


def test_without_early_stopping_the_refit_keeps_every_tree(ranking_data):
    data = [ranking_data["train"]], ranking_data["valid"]
    params = {**RANKER_PARAMS, "n_estimators": 7, "early_stopping_rounds": 0, "refit_factor": 1.0}
    booster, info = fit(*data, params, LOCAL)  # LightGBM leaves best_iteration at 0 without early stopping
    assert info["early_stopping_iteration"] == booster.num_trees() == 7


def test_dask_refit_trains_again_on_training_and_validation_rows(ranking_data, dask_backend):
    data = [ranking_data["train"]], ranking_data["valid"]
    booster, info = fit(*data, {**RANKER_PARAMS, "refit_factor": 2.0}, dask_backend)
    assert info["refit_on_valid"] and info["train_rows"] > 0
    trees = 2 * info["early_stopping_iteration"]
    assert booster.num_trees() == booster.best_iteration == info["best_iteration"] == trees


def test_the_ranker_trains_and_scores_on_dask_as_well_as_locally(ranking_data, dask_backend):
    train, valid, (cands, x, y) = ranking_data["train"], ranking_data["valid"], ranking_data["test"]
    local, local_info = fit([train], valid, RANKER_PARAMS, LOCAL)
    remote, remote_info = fit([train], valid, RANKER_PARAMS, dask_backend)
    assert remote_info["train_rows"] == local_info["train_rows"] and remote_info["features"] == local_info["features"]
    assert 1 <= remote_info["best_iteration"] <= RANKER_PARAMS["n_estimators"]
    truth = truth_of(cands, y)
    ndcg = {
        name: ranking_metrics(top_k(cands, predict(booster, x), 10, positive_only=False), truth, 10)["ndcg@10"]
        for name, booster in (("local", local), ("dask", remote))
    }
    assert ndcg["dask"] == pytest.approx(ndcg["local"], abs=0.03)


# --- partitions of whole customers ---------------------------------------------------------------


def test_groups_in_order_are_what_groupby_without_sorting_iterates():
    from pipelines.core.partitions import groups_in_order

    keys = pd.Series(["b", "a", "b", None, "c", "a", "b"])
    order, groups = groups_in_order(keys)
    assert groups == [("b", 0, 3), ("a", 3, 5), ("c", 5, 6)]  # first appearance; the missing key dropped
    assert order.tolist() == [0, 2, 6, 1, 5, 4]  # each key's rows in their order
    values = pd.Series(range(7))
    want = [(k, g.tolist()) for k, g in values.groupby(keys, sort=False)]
    assert [(k, values.to_numpy()[order][a:b].tolist()) for k, a, b in groups] == want
    assert groups_in_order(pd.Series([], dtype=object))[1] == []


def test_customer_partitions_hold_whole_customers_in_order(tmp_path):
    from pipelines.core.partitions import customer_partitions

    cands = pd.DataFrame({"customer_id": list("aaabccddde"), "item_id": list("xyzxyxyzwx"), "score": range(10)})
    cands.to_parquet(tmp_path / "c.parquet", index=False)
    parts, rows = customer_partitions(tmp_path / "c.parquet", customers=2)
    parts = list(parts)
    assert rows == 10
    assert [sorted(p["customer_id"].unique()) for p in parts] == [["a", "b"], ["c", "d"], ["e"]]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), cands)

    for group_rows in (1, 3, 4):  # row groups that split a customer's rows, read one at a time
        cands.to_parquet(tmp_path / "groups.parquet", index=False, row_group_size=group_rows)
        parts, _ = customer_partitions(tmp_path / "groups.parquet", customers=2)
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), cands)
    parts = list(customer_partitions(tmp_path / "groups.parquet", customers=2, columns=["customer_id", "score"])[0])
    assert [len(p) for p in parts] == [4, 5, 1] and list(parts[0].columns) == ["customer_id", "score"]
    picked = customer_partitions(tmp_path / "groups.parquet", customers=1, only=pa.array(["d", "a"]))[0]
    assert [p["score"].tolist() for p in picked] == [[0, 1, 2], [6, 7, 8]]  # their rows only, in the file's order

    for rows, group_rows in ((list("aabba"), 3), (list("abca"), 3), (list("abab"), 4)):  # across groups, or in one
        cands.iloc[: len(rows)].assign(customer_id=rows).to_parquet(tmp_path / "x.parquet", row_group_size=group_rows)
        with pytest.raises(InputError, match="x.parquet: candidates are not grouped by customer"):
            list(customer_partitions(tmp_path / "x.parquet")[0])

    cands.iloc[:0].to_parquet(tmp_path / "empty.parquet", index=False)
    parts, rows = customer_partitions(tmp_path / "empty.parquet")
    (only,) = list(parts)
    assert rows == 0 and only.empty and list(only.columns) == list(cands.columns)


@pytest.fixture(scope="module")
def two_sources(clean_interactions) -> tuple:
    """Windows with one training cutoff, two sources with a selection, and their candidates at every window."""
    w = make_windows(clean_interactions["timestamp"], shipped("split", train_cutoffs=1))
    cand_params = {
        "sources": {"buy_again": source("buy_again", n=20), "popularity": source("popularity", n=10)},
        "selection": shipped("candidates")["selection"] | {"mean_per_customer": 15, "tune_customers": 40},
    }
    return w, cand_params, candidates_at_cutoffs(clean_interactions, w, cand_params)


def test_the_learning_windows_hold_the_rankers_sample_of_customers_and_test_holds_everyone(
    clean_interactions, two_sources
):
    from pipelines.data.split import sample_customers

    w, cand_params, full = two_sources
    capped = candidates_at_cutoffs(clean_interactions, w, cand_params, learn_customers=30, seed=3)
    assert capped["selection"] == full["selection"]  # tuned on the whole earliest window, as before
    for name in w.label_windows():
        everyone = pd.Index(full[name]["customer_id"].unique())
        if name == "test":
            pd.testing.assert_frame_equal(capped[name], full[name])
            continue
        kept = sample_customers(everyone, 30, 3)  # the sample the ranker used to draw from the whole window
        assert len(everyone) > 30 and len(kept) == 30
        assert capped["metrics"][name]["customers"] == 30
        expected = full[name][full[name]["customer_id"].isin(kept)].reset_index(drop=True)
        pd.testing.assert_frame_equal(capped[name], expected)  # whole customers, the same rows as before


def test_the_test_window_holds_the_evaluated_sample_and_evaluation_measures_those_customers(
    clean_interactions, two_sources, tmp_path
):
    from pipelines.data.split import evaluated_customers, split, window
    from pipelines.evaluation.evaluate import holdout

    w, cand_params, full = two_sources
    capped = candidates_at_cutoffs(clean_interactions, w, cand_params, test_customers=25)
    start, end = w.label_windows()["test"]
    kept = evaluated_customers(window(clean_interactions, None, start), window(clean_interactions, start, end), 25)
    everyone = pd.Index(full["test"]["customer_id"].unique())
    assert len(everyone) > 25 and len(kept) == 25 and set(kept) <= set(everyone)
    assert capped["metrics"]["test"]["customers"] == 25
    expected = full["test"][full["test"]["customer_id"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(capped["test"], expected)  # a kept customer's rows and budget as without the cap
    for name in set(w.label_windows()) - {"test"}:
        pd.testing.assert_frame_equal(capped[name], full[name])
    clean_interactions.to_parquet(tmp_path / "clean.parquet")
    split(tmp_path / "clean.parquet", tmp_path / "split", shipped("split", train_cutoffs=1), tmp_path / "s.json")
    assert set(holdout(tmp_path / "split", 25)[1]["customer_id"]) == set(kept)  # evaluate, gate, report
    assert set(holdout(tmp_path / "split", None)[1]["customer_id"]) == set(everyone)


def test_a_trained_selection_is_reused_and_only_the_test_window_is_generated(clean_interactions, two_sources):
    w, cand_params, full = two_sources
    reused = candidates_at_cutoffs(clean_interactions, w, cand_params, trained={"selection": full["selection"]})
    assert list(reused["metrics"]) == ["test"] and reused["selection"] == full["selection"]
    pd.testing.assert_frame_equal(reused["test"], full["test"])
    assert reused["metrics"]["test"] == full["metrics"]["test"]
    other = full["selection"] | {"weights": {"buy_again": 0.0, "popularity": 1.0}}
    moved = candidates_at_cutoffs(clean_interactions, w, cand_params, trained={"selection": other})
    assert moved["selection"] == other and not moved["test"].equals(full["test"])  # cut with the model's weights


def test_a_models_selection_must_exist_and_fit_the_params(tmp_path):
    import json

    from pipelines.candidates.union import model_selection

    params = {"sources": {"buy_again": {}, "popularity": {}}, "selection": {"rrf_k": 20}}
    with pytest.raises(InputError, match=r"selection\.json: the model has no candidate selection"):
        model_selection(tmp_path, params)
    kept = {"weights": {"buy_again": 1.0, "popularity": 0.5}, "rrf_k": 20.0}
    (tmp_path / "selection.json").write_text(json.dumps({"selection": kept}))
    assert model_selection(tmp_path, params) == {"selection": kept}
    with pytest.raises(InputError, match="trained with a candidate selection, unlike candidates.selection"):
        model_selection(tmp_path, params | {"selection": None})
    with pytest.raises(InputError, match=r"sources \(buy_again, popularity\) are not candidates.sources \(buy_again\)"):
        model_selection(tmp_path, params | {"sources": {"buy_again": {}}})
    with pytest.raises(InputError, match=r"are not candidates.sources \(als, buy_again, popularity\)"):
        model_selection(tmp_path, params | {"sources": {"buy_again": {}, "popularity": {}, "als": {}}})
    (tmp_path / "selection.json").write_text(json.dumps({"selection": None}))
    assert model_selection(tmp_path, params | {"selection": None}) == {"selection": None}


def test_the_daily_candidates_stage_writes_the_test_window_with_the_models_selection(tmp_path, clean_interactions):
    import json

    from pipelines.candidates.union import candidates_stage
    from pipelines.data.split import split

    clean_interactions.to_parquet(tmp_path / "clean.parquet")
    split(tmp_path / "clean.parquet", tmp_path / "split", shipped("split", train_cutoffs=1), tmp_path / "s.json")
    cand_params = {
        "sources": {"buy_again": source("buy_again", n=20), "popularity": source("popularity", n=10)},
        "selection": shipped("candidates")["selection"] | {"mean_per_customer": 15, "tune_customers": 40},
        "reuse_model": None,
    }
    args = (tmp_path / "m.json", shipped("compute"), {"learn_customers": 30, "seed": 3, "test_customers": None})
    candidates_stage(tmp_path / "split", tmp_path / "weekly", cand_params, *args)
    (tmp_path / "model").mkdir()
    (tmp_path / "model/selection.json").write_bytes((tmp_path / "weekly/selection.json").read_bytes())
    daily = tmp_path / "weekly"  # a directory an earlier training run left its learning windows in
    metrics = candidates_stage(tmp_path / "split", daily, cand_params | {"reuse_model": str(tmp_path / "model")}, *args)
    assert list(metrics) == ["test"] and sorted(p.name for p in daily.glob("*.parquet")) == ["test.parquet"]
    assert json.loads((daily / "selection.json").read_text()) == json.loads(
        (tmp_path / "model/selection.json").read_text()
    )
