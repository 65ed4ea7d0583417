"""The pipeline end to end on the other backend and the production stores: a copy of the reproduced
project switched to `compute.backend: dask`, the Feast registry on PostgreSQL, the online store and
the published recommendations on Redis, reproduced with `dvc repro`; its results match the local run's."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import scratch_database
from tests.e2e.conftest import a_moving_purchase, run, shoprec

# a second repro on dask (~5 min), shared by the module: --dist loadgroup keeps it on one xdist worker
# (tests/unit/test_xdist_grouping.py checks that the installed pytest and pytest-xdist still do)
pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.slow, pytest.mark.xdist_group("production")]
REDIS_DB = 5


@pytest.fixture(scope="module")
def production(project, services, tmp_path_factory):
    """(the local project, the dask + production copy, the copy's environment), reproduced."""
    import redis

    # Its own Feast project and serving namespace, removed at the end and nothing else: other runs may use
    # the database (pytest 9.2 once ran this module on two workers, each with its own instance of this fixture).
    registry, run_id = scratch_database(), uuid.uuid4().hex[:8]
    server = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    copy = Path(tmp_path_factory.mktemp("production")) / "project"
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns("published", "workspace"))
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["compute"].update(backend="dask", workers=2, memory_limit="2GiB")
    params["features"]["store"] = "production"
    params["publish"].update(
        store="redis", redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}", redis_namespace=f"shoprec:e2e:{run_id}"
    )
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        "SHOPREC_FEAST_PROJECT": f"shoprec_e2e_{run_id}",
        "SHOPREC_FEAST_REGISTRY_URL": registry,
        "SHOPREC_FEAST_REDIS": f"127.0.0.1:6379,db={REDIS_DB}",
    }
    run(["dvc", "repro"], copy, env=env)
    yield project, copy, env
    from pipelines.features.store import forget, open_store

    features = {**params["features"], "repo": str(copy / "feature_repo")}
    forget(open_store(features, env={**env, "SHOPREC_FEATURE_STORE": "production"}))  # registry rows, Redis keys
    served = server.keys(f"shoprec:e2e:{run_id}:*")
    if served:
        server.delete(*served)


def serving_store(copy: Path):
    from pipelines.serving.store import RedisStore

    publish = yaml.safe_load((copy / "params.yaml").read_text())["publish"]
    return RedisStore(publish["redis_url"], publish["redis_namespace"])


def metrics(root: Path, name: str) -> dict:
    return json.loads((root / "metrics" / name).read_text())


def test_every_stage_ran_again_on_dask_with_the_production_stores(production):
    _, copy, env = production
    assert "up to date" in run(["dvc", "status"], copy, env=env).stdout
    lock = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]
    for stage in ("candidates", "train", "recommend", "score"):
        assert lock[stage]["params"]["params.yaml"]["compute"]["backend"] == "dask", stage
    assert lock["materialize"]["params"]["params.yaml"]["features"]["store"] == "production"
    assert json.loads((copy / "reports/publish.json").read_text())["published"] is True


def test_candidates_are_the_same_on_both_backends(production):
    local, copy, _ = production
    assert metrics(copy, "candidates.json") == metrics(local, "candidates.json")
    for name in ("train_1", "valid", "test"):
        dask, here = (pd.read_parquet(d / f"data/candidates/{name}.parquet") for d in (copy, local))
        # als scores are BLAS float32 products, single-threaded on a dask worker and multi-threaded in the
        # step, which can change their last bits (and so the order of near-ties): the same rows, every
        # other column equal, als within float32 precision
        pd.testing.assert_frame_equal(
            dask.drop(columns=["als_score", "als_rank"]), here.drop(columns=["als_score", "als_rank"])
        )
        np.testing.assert_allclose(dask["als_score"], here["als_score"], rtol=1e-4, atol=1e-9)
        assert (dask["als_rank"] != here["als_rank"]).mean() < 0.01


def test_one_model_ranks_identically_on_both_backends(production, tmp_path):
    local, copy, env = production
    out = tmp_path / "recs.parquet"
    shoprec(
        "recommend",
        *("--candidates", "data/candidates", "--split-dir", "data/split", "--model", str(local / "models")),
        *("--out", str(out), "--sample", str(tmp_path / "sample.parquet")),
        cwd=copy,
        env=env,
    )
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(local / "data/recommendations/test.parquet"))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "sample.parquet"), pd.read_parquet(local / "data/monitor/current.parquet")
    )


def test_the_ranker_on_lightgbm_dask_is_as_good_as_the_local_one(production):
    local, copy, _ = production
    ranker = {name: metrics(root, "evaluate.json")["ranker"] for name, root in (("local", local), ("dask", copy))}
    # Data-parallel trees differ a little from serial ones; on ~130 test customers one hit is 0.008 of hitrate.
    for metric, tolerance in (("ndcg@10", 0.03), ("recall@20", 0.03), ("hitrate@10", 0.05)):
        assert ranker["dask"][metric] == pytest.approx(ranker["local"][metric], abs=tolerance), metric
    assert json.loads((copy / "models/ranker.json").read_text())["best_iteration"] >= 1


def test_features_are_served_from_redis_and_the_registry_lives_in_postgresql(production):
    import psycopg

    local, copy, env = production
    customer = pd.read_parquet(local / "data/recommendations/test.parquet")["customer_id"].iloc[0]
    answers = {
        name: json.loads(shoprec("features", "online", "--customer", customer, cwd=root, env=extra).stdout)
        for name, root, extra in (("local", local, None), ("production", copy, env))
    }
    assert answers["production"] == answers["local"]
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=shoprec_test") as conn:
        views = conn.execute(
            "SELECT feature_view_name FROM feature_views WHERE project_id = %s ORDER BY 1",
            (env["SHOPREC_FEAST_PROJECT"],),
        ).fetchall()
    assert [v[0] for v in views] == ["customer", "customer_product", "product"]


def test_published_recommendations_are_served_from_redis(production):
    _, copy, _ = production
    published = pd.read_parquet(copy / "data/serving/recommendations.parquet")
    customer = published["customer_id"].iloc[0]
    store = serving_store(copy)
    version, items = store.get("rec", customer)
    assert version == json.loads((copy / "reports/publish.json").read_text())["version"]
    expected = published[published["customer_id"] == customer].sort_values("rank")["item_id"].tolist()
    assert [item["item_id"] for item in items] == expected


def test_a_logged_purchase_re_ranks_the_list_served_from_redis(production, tmp_path):
    from fastapi.testclient import TestClient

    from pipelines.data.events import EventLog
    from pipelines.serving.api import create_app

    _, copy, _ = production
    log = EventLog(tmp_path / "events.db")
    store = serving_store(copy)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    api = TestClient(create_app(store, copy / "published", 20, 50, events=log, event_params=params["events"]))
    events, expected = a_moving_purchase(copy, store)
    customer = events[0]["customer_id"]
    before = api.get(f"/recommendations/{customer}?k=20").json()
    assert api.post("/events", json={"events": events}).json()["accepted"] == 3
    after = api.get(f"/recommendations/{customer}?k=20").json()
    assert before["fresh"] and after["fresh"] and after["version"] == before["version"]
    assert [i["item_id"] for i in before["items"]] != expected
    assert [i["item_id"] for i in after["items"]] == expected
    log.close()
