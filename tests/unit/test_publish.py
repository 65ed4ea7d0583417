"""Publishing: gated, versioned, atomic, idempotent, pruned, and undone by a rollback; the API reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.core.errors import InputError
from pipelines.core.files import sha256
from pipelines.serving.api import create_app
from pipelines.serving.publish import Releases, publish, rollback
from pipelines.serving.store import SqliteStore

pytestmark = pytest.mark.unit

PASSED = {"passed": True, "decision": "publish", "checks": []}
BLOCKED = {
    "passed": False,
    "decision": "blocked",
    "checks": [{"check": "feature drift", "passed": False, "detail": "9 of 10 features drifted"}],
}
WINDOWS = {"as_of": "2011-12-10T00:00:00", "test_start": "2011-11-10T00:00:00"}
NEXT_DAY = pd.Timestamp("2011-12-11")  # a daily run's date after WINDOWS
EVALUATION = {"customers": 2, "ranker": {"ndcg@10": 0.3}}


def scored(root: Path, top_item: str = "a") -> Path:
    """Hand-made outputs of the score step: two customers' lists, cold-start lists, segments, similar items."""
    out = root / f"scored-{top_item}"
    out.mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": ["u", "u", "v"],
            "item_id": [top_item, "b", "c"],
            "rank": [1, 2, 1],
            "score": [2.0, 1.0, 0.5],
            "sources": ["buy_again", "popularity,item_cf", "content"],
            "reasons": ["you bought it before; due for a re-order", "a best seller right now", ""],
        }
    ).to_parquet(out / "recommendations.parquet")
    pd.DataFrame(
        {
            "country": ["*", "*", "Germany"],
            "rank": [1, 2, 1],
            "item_id": ["p", "q", "g"],
            "score": [10.0, 9.0, 3.0],
            "reason": ["a best seller right now"] * 2 + ["popular in Germany right now"],
        }
    ).to_parquet(out / "cold_start.parquet")
    pd.DataFrame(
        {
            "customer_id": ["u", "v"],
            "tier": ["champion", "unknown"],
            "segment": [2, None],
            "rfm_score": [12, None],
            "profile_keywords": ["mug heart", None],
            "recency_days": [3.0, None],
            "orders_365d": [14, None],
        }
    ).to_parquet(out / "segments.parquet")
    pd.DataFrame(
        {
            "item_id": ["a", "a", "b", "b", "c"],
            "rank": [1, 2, 1, 2, 1],
            "similar_id": [top_item if top_item != "a" else "b", "c", "c", "d", "a"],
            "score": [0.9, 0.5, 0.8, 0.4, 0.3],
            "source": ["item_cf", "item_cf", "item_cf", "content", "content"],
        }
    ).to_parquet(out / "similar.parquet")
    pd.DataFrame({"customer_id": ["c1", "c1"], "item_id": ["a", "b"], "x": [1.0, 2.0]}).to_parquet(
        out / "candidates.parquet"
    )
    return out


@pytest.fixture
def model(tmp_path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    (d / "ranker.lgb").write_text("tree\n")
    (d / "ranker.json").write_text(json.dumps({"kind": "lightgbm_lambdarank", "best_iteration": 7, "sources": []}))
    pd.DataFrame({"x": [1.0]}).to_parquet(d / "reference.parquet")
    (d / "selection.json").write_text(json.dumps({"selection": None}))
    return d


@pytest.fixture
def params(tmp_path) -> dict:
    publish = {"dir": str(tmp_path / "published"), "keep": 2, "rerank_versions": 2, "store": "sqlite"}
    return {"publish": publish | {"write_batch_size": 1}, "compute": {"threads": 2}}


def judged(gate: dict, model: Path) -> dict:
    """The gate's decision about this model (the gate step records the model's hash)."""
    return {**gate, "model_sha256": sha256([model / "ranker.lgb"])}


def run(tmp_path, model, params, top_item="a", gate=PASSED) -> dict:
    return publish(scored(tmp_path, top_item), model, judged(gate, model), WINDOWS, EVALUATION, params)


def client(params) -> TestClient:
    root = params["publish"]["dir"]
    return TestClient(create_app(SqliteStore(Path(root) / "serving.db"), root, max_k=20, max_basket=50))


def test_a_publish_makes_a_version_live_with_its_manifest(tmp_path, model, params):
    result = run(tmp_path, model, params)
    assert result["published"] and result["version"].startswith("20111210-")
    root = Path(params["publish"]["dir"])
    assert Releases(root).current() == result["version"]
    assert (root / "current" / "model" / "ranker.lgb").read_text() == "tree\n"
    m = json.loads((root / "current" / "manifest.json").read_text())
    assert m["data_window"] == WINDOWS and m["metrics"]["ranker"]["ndcg@10"] == 0.3 and m["gate"]["passed"]
    assert len(m["model"]["sha256"]) == 64 and m["model"]["best_iteration"] == 7

    api = client(params)
    body = api.get("/recommendations/u", params={"k": 1}).json()
    assert body == {
        "customer_id": "u",
        "version": result["version"],
        "cold_start": False,
        "fresh": True,
        "items": [{"item_id": "a", "score": 2.0, "reason": "you bought it before", "sources": ["buy_again"]}],
    }
    assert api.get("/customers/u/segment").json()["tier"] == "champion"
    assert api.get("/version").json()["version"] == result["version"]


def test_publishing_the_same_thing_again_is_a_no_op(tmp_path, model, params):
    first = run(tmp_path, model, params)
    again = publish(tmp_path / "scored-a", model, judged(PASSED, model), WINDOWS, EVALUATION, params)
    assert again == {"published": False, "version": first["version"], "reason": "already live"}
    assert len(Releases(params["publish"]["dir"]).index()) == 1


def test_an_older_date_never_replaces_newer_lists(tmp_path, model, params):
    newer = publish(scored(tmp_path, "n"), model, judged(PASSED, model), WINDOWS, EVALUATION, params)["version"]
    older = {**WINDOWS, "as_of": "2011-12-01T00:00:00"}  # e.g. a backfill re-running an earlier day
    result = publish(scored(tmp_path, "o"), model, judged(PASSED, model), older, EVALUATION, params)
    assert not result["published"] and result["reason"].startswith(f"a newer version is live: {newer}")
    assert Releases(params["publish"]["dir"]).current() == newer
    same_day = publish(scored(tmp_path, "s"), model, judged(PASSED, model), WINDOWS, EVALUATION, params)
    assert same_day["published"]  # a new model for the same date may replace the lists


def test_a_blocked_gate_publishes_nothing_and_keeps_the_live_version(tmp_path, model, params):
    first = run(tmp_path, model, params)
    result = run(tmp_path, model, params, top_item="z", gate=BLOCKED)
    assert result == {"published": False, "reason": "gate blocked: 9 of 10 features drifted"}
    assert client(params).get("/recommendations/u").json()["version"] == first["version"]


def test_rollback_restores_the_previous_version_and_old_ones_are_pruned(tmp_path, model, params):
    versions = [run(tmp_path, model, params, top_item=item)["version"] for item in ("a", "x", "y")]
    releases = Releases(params["publish"]["dir"])
    assert [v["version"] for v in releases.index()] == versions[1:]  # keep: 2
    assert not (releases.versions_dir / versions[0]).exists()
    api = client(params)
    assert api.get("/recommendations/u").json()["items"][0]["item_id"] == "y"
    assert rollback(params) == {"rolled_back_from": versions[2], "live": versions[1], "rerank_entries_restored": 0}
    assert api.get("/recommendations/u").json()["items"][0]["item_id"] == "x"
    assert releases.current() == versions[1]
    assert api.get("/items/a/similar").json()["items"][0]["item_id"] == "x"  # item pages roll back with it
    with pytest.raises(InputError, match="no version before"):
        rollback(params)


def test_only_the_newest_versions_and_the_live_one_keep_their_re_ranking_entries(tmp_path, model, params):
    params["publish"] |= {"keep": 3, "rerank_versions": 3}
    versions = [run(tmp_path, model, params, top_item=item)["version"] for item in ("a", "x", "y")]
    store = SqliteStore(Path(params["publish"]["dir"]) / "serving.db")

    def reranks() -> list[bool]:
        return [store.get("cand", "c1", v)[1] is not None for v in versions]

    assert reranks() == [True, True, True]
    rollback(params)  # x is live, y the newest
    Releases(params["publish"]["dir"]).prune(3, 1, store)
    assert reranks() == [False, True, True]
    params["publish"]["rerank_versions"] = 1
    versions.append(run(tmp_path, model, params, top_item="z")["version"])
    assert reranks() == [False, False, False, True]  # a was pruned; x and y gave theirs up
    assert all(store.get("rec", "u", v)[1] for v in versions[1:])  # the older versions still serve their lists
    assert rollback(params)["rerank_entries_restored"] == 1  # y is live again and re-ranks: written from its files
    assert reranks() == [False, False, True, True]
    again = publish(tmp_path / "scored-x", model, judged(PASSED, model), WINDOWS, EVALUATION, params)
    assert again["version"] == versions[1] and reranks() == [False, True, False, True]  # x live and restored; z newest


def test_missing_inputs_are_named(tmp_path, model, params):
    out = scored(tmp_path)
    (out / "segments.parquet").unlink()
    with pytest.raises(InputError, match="segments.parquet"):
        publish(out, model, judged(PASSED, model), WINDOWS, EVALUATION, params)


def test_a_decision_about_another_model_is_refused(tmp_path, model, params):
    with pytest.raises(InputError, match="run `shoprec gate` on this model first"):
        publish(scored(tmp_path), model, {**PASSED, "model_sha256": "0" * 64}, WINDOWS, EVALUATION, params)
    assert not Path(params["publish"]["dir"]).exists()  # nothing written


def test_keep_must_be_at_least_one(tmp_path, model, params):
    params["publish"]["keep"] = 0
    with pytest.raises(InputError, match="publish.keep must be at least 1"):
        run(tmp_path, model, params)


def test_a_publish_killed_after_the_store_switched_is_finished_by_a_rerun(tmp_path, model, params, monkeypatch):
    first = run(tmp_path, model, params)["version"]

    def killed(self, version):
        raise KeyboardInterrupt  # stands for a kill between the store's pointer and the `current` link

    with monkeypatch.context() as m:
        m.setattr(Releases, "switch", killed)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, model, params, top_item="x")
    releases = Releases(params["publish"]["dir"])
    second = releases.index()[-1]["version"]  # indexed before it went live
    assert releases.current() == first and client(params).get("/recommendations/u").json()["version"] == second
    assert rollback(params)["live"] == first  # the operator can go back at once
    result = publish(tmp_path / "scored-x", model, judged(PASSED, model), WINDOWS, EVALUATION, params)
    assert result["published"] and result["version"] == second and releases.current() == second


def test_versions_left_by_killed_publishes_are_pruned(tmp_path, model, params):
    store = SqliteStore(Path(params["publish"]["dir"]) / "serving.db")
    store.write("orphan", "rec", [("u", "[]")], batch_size=1)
    store.complete("orphan")  # written and complete, never indexed
    (Path(params["publish"]["dir"]) / "versions" / ".tmp-x-1").mkdir(parents=True)
    version = run(tmp_path, model, params)["version"]
    assert store.versions() == [version]
    assert [p.name for p in (Path(params["publish"]["dir"]) / "versions").iterdir()] == [version]


def test_unknown_customers_get_the_cold_start_list_of_their_country_else_the_global_one(tmp_path, model, params):
    run(tmp_path, model, params)
    api = client(params)
    body = api.get("/recommendations/newcomer", params={"k": 5}).json()
    assert body["cold_start"] and [i["item_id"] for i in body["items"]] == ["p", "q"]
    german = api.get("/recommendations/newcomer", params={"country": "Germany"}).json()
    assert [i["item_id"] for i in german["items"]] == ["g"]
    assert german["items"][0]["reason"] == "popular in Germany right now"
    nowhere = api.get("/recommendations/newcomer", params={"country": "Atlantis"}).json()
    assert [i["item_id"] for i in nowhere["items"]] == ["p", "q"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/recommendations/u?k=0", "k: Input should be greater than or equal to 1"),
        ("/recommendations/u?k=21", "k: Input should be less than or equal to 20"),
        ("/recommendations/u?k=ten", "k: Input should be a valid integer"),
        ("/recommendations/bad%20id", "customer_id: String should match pattern"),
        ("/recommendations/" + "x" * 129, "customer_id: String should match pattern"),
        ("/recommendations/u?country=%3Cscript%3E", "country: String should match pattern"),
        ("/items/a/similar?k=21", "k: Input should be less than or equal to 20"),
        ("/items/%20a/similar", "item_id: String should match pattern"),
    ],
)
def test_bad_input_is_a_422_with_one_line(tmp_path, model, params, url, message):
    run(tmp_path, model, params)
    response = client(params).get(url)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(message) and "\n" not in detail


def test_nothing_published_is_a_503_not_a_500(params):
    api = client(params)
    for url in ("/health", "/version", "/recommendations/u", "/customers/u/segment", "/items/a/similar"):
        response = api.get(url)
        assert response.status_code == 503 and "nothing published yet" in response.json()["detail"], url
    response = api.post("/baskets/recommendations", json={"items": ["a"]})
    assert response.status_code == 503 and "nothing published yet" in response.json()["detail"]


def test_an_item_page_gets_the_published_similar_items_with_the_version(tmp_path, model, params):
    version = run(tmp_path, model, params)["version"]
    api = client(params)
    answer = api.get("/items/a/similar").json()
    assert answer == {
        "item_id": "a",
        "version": version,
        "items": [
            {"item_id": "b", "score": 0.9, "source": "item_cf"},
            {"item_id": "c", "score": 0.5, "source": "item_cf"},
        ],
    }
    assert [i["item_id"] for i in api.get("/items/a/similar?k=1").json()["items"]] == ["b"]
    missing = api.get("/items/zz/similar")
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == f"item zz: no similar items in the published version {version}"
    )


def test_a_basket_is_completed_from_its_items_lists_without_what_is_in_it(tmp_path, model, params):
    version = run(tmp_path, model, params)["version"]
    api = client(params)
    answer = api.post("/baskets/recommendations", json={"items": ["a", "b", "a"]}).json()
    # a: b (in the cart), c at rank 2; b: c at rank 1, d at rank 2 -> c = 1/62 + 1/61, d = 1/62
    assert answer == {
        "version": version,
        "fallback": False,
        "items": [
            {"item_id": "c", "score": round(1 / 62 + 1 / 61, 6), "because": ["a", "b"]},
            {"item_id": "d", "score": round(1 / 62, 6), "because": ["b"]},
        ],
    }
    assert [
        i["item_id"] for i in api.post("/baskets/recommendations", json={"items": ["a", "b"], "k": 1}).json()["items"]
    ] == ["c"]
    unknown = api.post("/baskets/recommendations", json={"items": ["zz", "p"]}).json()
    assert unknown["fallback"] is True and [i["item_id"] for i in unknown["items"]] == ["q"]  # best sellers, minus p


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": []}, "items: List should have at least 1 item"),
        ({"items": ["a"] * 51}, "items: List should have at most 50 items"),
        ({"items": [" a"]}, "items.0: String should match pattern"),
        ({"items": ["a"], "k": 21}, "k: Input should be less than or equal to 20"),
        ({"items": ["a"], "basket": 1}, "basket: Extra inputs are not permitted"),
    ],
)
def test_a_bad_basket_is_a_422_with_one_line(tmp_path, model, params, body, message):
    run(tmp_path, model, params)
    response = client(params).post("/baskets/recommendations", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(message) and "\n" not in detail, detail


def test_the_openapi_spec_describes_the_endpoints_and_their_limits(tmp_path, model, params):
    spec = client(params).get("/openapi.json").json()
    assert {
        "/recommendations/{customer_id}",
        "/customers/{customer_id}/segment",
        "/items/{item_id}/similar",
        "/baskets/recommendations",
        "/health",
        "/version",
    } <= set(spec["paths"])
    get = spec["paths"]["/recommendations/{customer_id}"]["get"]
    k = next(p for p in get["parameters"] if p["name"] == "k")
    assert k["schema"]["minimum"] == 1 and k["schema"]["maximum"] == 20 and k["schema"]["default"] == 10
    item = spec["components"]["schemas"]["Item"]["properties"]
    assert set(item) == {"item_id", "score", "reason", "sources"}


@pytest.mark.services
def test_the_production_store_redis_serves_and_rolls_back(services, tmp_path, model, params):
    import uuid

    from pipelines.serving.store import RedisStore

    namespace = f"shoprec-test:{uuid.uuid4()}"
    params["publish"].update(store="redis", redis_url="redis://127.0.0.1:6379/0", redis_namespace=namespace)
    store = RedisStore("redis://127.0.0.1:6379/0", namespace)
    try:
        first = run(tmp_path, model, params)["version"]
        second = run(tmp_path, model, params, top_item="x")["version"]
        api = TestClient(create_app(store, params["publish"]["dir"], max_k=20, max_basket=50))
        assert api.get("/recommendations/u").json()["items"][0]["item_id"] == "x"
        assert rollback(params)["live"] == first
        body = api.get("/recommendations/u").json()
        assert body["version"] == first and body["items"][0]["item_id"] == "a"
        assert api.get("/recommendations/newcomer", params={"country": "Germany"}).json()["items"][0]["item_id"] == "g"
        assert store.versions() == sorted([first, second])
    finally:
        keys = list(store.client.scan_iter(f"{namespace}:*"))
        if keys:
            store.client.delete(*keys)


def test_rerank_entries_are_made_customer_by_customer_across_row_groups(tmp_path, monkeypatch):
    import functools

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.core import partitions
    from pipelines.serving.publish import candidate_entries
    from pipelines.serving.rerank import candidate_payloads

    kept = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "c3", "c3"],
            "item_id": ["a", "b", "c", "a", "d", "e"],
            "f": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "g": [0.5, 0.25, 0.0, 1.0, 2.0, 3.0],
        }
    )
    pq.write_table(pa.Table.from_pandas(kept, preserve_index=False), tmp_path / "c.parquet", row_group_size=2)
    assert pq.ParquetFile(tmp_path / "c.parquet").num_row_groups == 3  # c1 and c3 span two row groups
    entries = list(candidate_entries(tmp_path / "c.parquet"))
    assert entries == candidate_payloads(kept, ["f", "g"])  # one entry per customer, rows whole
    assert [customer for customer, _ in entries] == ["c1", "c2", "c3"]
    one_each = functools.partial(partitions.customer_partitions, customers=1)
    monkeypatch.setattr(partitions, "customer_partitions", one_each)  # three partitions, packed on two threads
    assert list(candidate_entries(tmp_path / "c.parquet", threads=2)) == entries


def test_without_rerank_candidates_nothing_is_published_for_re_ranking(tmp_path, model, params):
    scored(tmp_path, "a")
    pd.DataFrame().to_parquet(tmp_path / "scored-a" / "candidates.parquet")  # score's file with rerank_candidates: 0
    result = publish(tmp_path / "scored-a", model, judged(PASSED, model), WINDOWS, EVALUATION, params)
    store = SqliteStore(Path(params["publish"]["dir"]) / "serving.db")
    assert result["published"] and store.get("rec", "u")[1] and store.get("cand", "c1") == (result["version"], None)


def test_store_entries_hold_each_list_in_rank_order_whatever_the_row_order(tmp_path, monkeypatch):
    from pipelines.serving import publish as pub

    monkeypatch.setattr(pub, "KEYS_AT_ONCE", 2)  # lists made two keys at a time: the chunks' seams are covered
    out = scored(tmp_path)
    recs = pd.read_parquet(out / "recommendations.parquet")
    w = recs.iloc[:2].assign(customer_id="w", score=[0.25, 0.125])
    recs = pd.concat([recs, w], ignore_index=True).iloc[[4, 0, 2, 3, 1]].reset_index(drop=True)
    frames = [pd.read_parquet(out / f"{name}.parquet") for name in ("cold_start", "segments", "similar")]
    entries = {kind: dict(rows) for kind, rows in pub.payloads(recs, *frames, out / "candidates.parquet").items()}
    assert list(entries["rec"]) == ["u", "v", "w"]
    assert json.loads(entries["rec"]["w"]) == [
        {"item_id": "a", "score": 0.25, "reason": "you bought it before", "sources": ["buy_again"]},
        {"item_id": "b", "score": 0.125, "reason": "a best seller right now", "sources": ["popularity", "item_cf"]},
    ]
    assert json.loads(entries["rec"]["v"]) == [{"item_id": "c", "score": 0.5, "reason": "", "sources": ["content"]}]
    assert [e["item_id"] for e in json.loads(entries["cold"]["*"])] == ["p", "q"]
    assert json.loads(entries["cold"]["Germany"])[0]["sources"] == ["country_popularity"]
    assert json.loads(entries["similar"]["b"]) == [
        {"item_id": "c", "score": 0.8, "source": "item_cf"},
        {"item_id": "d", "score": 0.4, "source": "content"},
    ]
    assert [json.loads(entries["similar"][i])[0]["item_id"] for i in "ac"] == ["b", "a"]


def daily_publish(tmp_path, model, params) -> tuple[str, SqliteStore, Path]:
    """A first version (lists and candidates of u, v, w), then the next day's scored outputs built on
    it: u ranked again (top item z, candidates z and y), v kept as published, w gone. Returns the first
    version, the store and the next day's directory, with `publish.reuse_lists` set as prepare sets it."""
    first_day = pd.Timestamp(WINDOWS["as_of"])
    out = scored(tmp_path, "a")
    recs = pd.read_parquet(out / "recommendations.parquet").assign(scored_as_of=first_day)
    pd.concat([recs, recs.iloc[:1].assign(customer_id="w")], ignore_index=True).to_parquet(
        out / "recommendations.parquet"
    )
    cands = pd.DataFrame({"customer_id": ["u", "v", "w"], "item_id": ["a", "c", "a"], "x": [1.0, 2.0, 3.0]})
    cands.to_parquet(out / "candidates.parquet")
    first = publish(out, model, judged(PASSED, model), WINDOWS, EVALUATION, params)["version"]
    reused = tmp_path / "reused"  # what prepare copies from the live version
    reused.mkdir()
    for name in ("recommendations.parquet", "candidates.parquet", "manifest.json"):
        (reused / name).write_bytes((Path(params["publish"]["dir"]) / "current" / name).read_bytes())
    daily = scored(tmp_path, "z")
    ranked = pd.read_parquet(daily / "recommendations.parquet").assign(scored_as_of=first_day)
    ranked.loc[ranked["customer_id"] == "u", "scored_as_of"] = NEXT_DAY
    ranked.to_parquet(daily / "recommendations.parquet")
    again = pd.DataFrame({"customer_id": ["u", "u", "v"], "item_id": ["z", "y", "c"], "x": [4.0, 5.0, 2.0]})
    again.to_parquet(daily / "candidates.parquet")
    params["publish"]["reuse_lists"] = str(reused)
    return first, SqliteStore(Path(params["publish"]["dir"]) / "serving.db"), daily


def publish_next_day(daily: Path, model: Path, params: dict) -> dict:
    return publish(daily, model, judged(PASSED, model), {**WINDOWS, "as_of": str(NEXT_DAY)}, EVALUATION, params)


def test_a_daily_version_carries_over_the_kept_lists_and_writes_only_the_ranked_ones(tmp_path, model, params):
    """publish.reuse_lists: the new version starts as a copy of the one its kept lists come from; the
    lists and candidates of the customers ranked again are written anew, those of customers gone removed."""
    first, store, daily = daily_publish(tmp_path, model, params)
    marked = [{"item_id": "as-in-the-store"}]
    store.write(first, "rec", [("v", json.dumps(marked))], batch_size=1)  # a carried entry is copied, not remade
    store.write(first, "cand", [("v", json.dumps({"items": ["as-in-the-store"]}))], batch_size=1)
    result = publish_next_day(daily, model, params)

    assert result["carried_from"] == first and result["customers_carried"] == 1
    assert store.get("rec", "u")[1][0]["item_id"] == "z" and store.get("cand", "u")[1]["items"] == ["z", "y"]
    assert store.get("rec", "v") == (result["version"], marked)
    assert store.get("cand", "v")[1]["items"] == ["as-in-the-store"]
    assert store.get("rec", "w") == (result["version"], None) and store.get("rec", "w", first)[1] is not None
    assert store.get("cand", "w")[1] is None


def test_a_daily_publish_writes_every_re_ranking_entry_when_its_base_gave_them_up(tmp_path, model, params):
    first, store, daily = daily_publish(tmp_path, model, params)
    store.drop_kind(first, "cand")  # not among the newest publish.rerank_versions any more
    result = publish_next_day(daily, model, params)
    assert result["carried_from"] == first and store.get("rec", "v")[0] == result["version"]
    assert store.get("cand", "u")[1]["items"] == ["z", "y"] and store.get("cand", "v")[1]["items"] == ["c"]


def test_a_retried_daily_publish_starts_afresh_when_its_base_is_gone(tmp_path, model, params, monkeypatch):
    first, store, daily = daily_publish(tmp_path, model, params)

    def killed(*args, **kwargs):  # after the carried copy of the lists (w's included), before the deletes
        raise KeyboardInterrupt

    monkeypatch.setattr(SqliteStore, "delete", killed)
    with pytest.raises(KeyboardInterrupt):
        publish_next_day(daily, model, params)
    monkeypatch.undo()
    store.drop(first)  # pruned meanwhile: the retry writes every entry itself
    result = publish_next_day(daily, model, params)
    assert "carried_from" not in result and store.get("rec", "v")[1][0]["item_id"] == "c"
    assert store.get("rec", "w") == (result["version"], None) and store.get("cand", "w")[1] is None


def test_a_base_that_changes_while_it_is_copied_fails_the_publish(tmp_path, model, params):
    first, store, daily = daily_publish(tmp_path, model, params)
    store.delete(first, "rec", ["w"], batch_size=1)  # a prune under way
    with pytest.raises(RuntimeError, match=f"version {first} changed while it was copied"):
        publish_next_day(daily, model, params)
