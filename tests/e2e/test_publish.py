"""The pipeline ends with a gated publish; `shoprec serve` answers over HTTP; a publish killed half-way
(SIGKILL) leaves the previous version serving, and running it again completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from pipelines.serving.api import create_app
from pipelines.serving.publish import Releases
from pipelines.serving.store import SqliteStore
from tests.e2e.conftest import BIN, a_moving_purchase, free_port, http_json, shoprec, wait_for

pytestmark = pytest.mark.e2e
PUBLISH_ARGS = ["--model", "models", "--gate", "reports/gate.json", "--split-dir", "data/split"]
PUBLISH_ARGS += ["--evaluation", "metrics/evaluate.json"]


def test_the_pipeline_published_every_known_customer(project):
    result = json.loads((project / "reports/publish.json").read_text())
    assert result["published"] or result["reason"] == "already live", result  # a rerun after a param change
    releases = Releases(project / "published")
    assert releases.current() == result["version"]
    manifest = json.loads((project / "published/current/manifest.json").read_text())
    assert manifest["gate"]["passed"] and manifest["data_window"]["as_of"].startswith(result["version"][:4])
    recs = pd.read_parquet(project / "published/current/recommendations.parquet")
    clean = pd.read_parquet(project / "data/clean/interactions.parquet")
    assert recs["customer_id"].nunique() == clean["customer_id"].nunique()  # every known customer
    segments = pd.read_parquet(project / "published/current/segments.parquet")
    assert set(segments["customer_id"]) == set(clean["customer_id"])
    assert segments["tier"].isin(["champion", "loyal", "promising", "at_risk", "hibernating", "unknown"]).all()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_shoprec_serve_answers_known_and_unknown_customers(project, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    server = subprocess.Popen([str(BIN / "shoprec"), "serve", "--port", str(port)], cwd=project, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/health", server, log, timeout=90)
        status, health = get(base + "/health")
        live = json.loads((project / "reports/publish.json").read_text())["version"]
        assert status == 200 and health == {"status": "ok", "version": live}
        customer = pd.read_parquet(project / "published/current/recommendations.parquet")["customer_id"].iloc[0]
        status, body = get(f"{base}/recommendations/{customer}?k=5")
        assert status == 200 and not body["cold_start"] and len(body["items"]) == 5
        assert all(item["reason"] and item["sources"] for item in body["items"])
        status, body = get(f"{base}/recommendations/someone-new?k=3")
        assert status == 200 and body["cold_start"] and len(body["items"]) == 3
        assert get(f"{base}/recommendations/{customer}?k=1000")[0] == 422
        assert get(base + "/version")[1]["version"] == live
        assert {"/recommendations/{customer_id}", "/items/{item_id}/similar", "/baskets/recommendations"} <= set(
            get(base + "/openapi.json")[1]["paths"]
        )
        similar = pd.read_parquet(project / "published/current/similar.parquet")
        item = similar["item_id"].iloc[0]
        status, body = get(f"{base}/items/{item}/similar?k=4")
        expected = similar[similar["item_id"] == item].sort_values("rank")["similar_id"].head(4).tolist()
        assert status == 200 and body["version"] == live and [i["item_id"] for i in body["items"]] == expected
        cart = similar["item_id"].unique()[:3].tolist()
        basket = http_json(f"{base}/baskets/recommendations", {"items": cart, "k": 5})
        assert basket["version"] == live and not basket["fallback"] and len(basket["items"]) == 5
        assert not {i["item_id"] for i in basket["items"]} & set(cart)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_purchase_posted_to_the_server_re_ranks_the_customers_list(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())  # a log and a Feast store of its own
    params["events"]["log"] = str(tmp_path / "events.db")
    shutil.copytree(project / "feature_repo", tmp_path / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(project / "data/feast", tmp_path / "data/feast")
    params["features"]["repo"] = str(tmp_path / "feature_repo")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    port, log = free_port(), tmp_path / "serve.log"
    cmd = [str(BIN / "shoprec"), "serve", "--port", str(port), "--params", str(tmp_path / "params.yaml")]
    server = subprocess.Popen(cmd, cwd=project, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"
    events, expected = a_moving_purchase(project, SqliteStore(project / "published/serving.db"))
    customer = events[0]["customer_id"]
    try:
        wait_for(base + "/health", server, log, timeout=90)
        before = get(f"{base}/recommendations/{customer}?k=20")[1]
        assert before["fresh"] and [i["item_id"] for i in before["items"]] != expected
        answer = http_json(f"{base}/events", {"events": events})
        assert answer["accepted"] == 3 and answer["online_updated"]
        after = get(f"{base}/recommendations/{customer}?k=20")[1]
        assert after["fresh"] and after["version"] == before["version"]
        assert [i["item_id"] for i in after["items"]] == expected  # the published model's order after the purchases
    finally:
        server.terminate()
        server.wait(timeout=10)


def new_version_of(project: Path, out: Path) -> Path:
    """The scored files with every list reversed: different content, so a different version."""
    shutil.copytree(project / "data/serving", out)
    recs = pd.read_parquet(out / "recommendations.parquet")
    recs["rank"] = recs.groupby("customer_id")["rank"].transform(lambda r: r.max() + 1 - r)
    recs.sort_values(["customer_id", "rank"]).to_parquet(out / "recommendations.parquet")
    return out


def first_item(api: TestClient, customer: str) -> tuple[str, str]:
    body = api.get(f"/recommendations/{customer}").json()
    return body["version"], body["items"][0]["item_id"]


def test_a_publish_killed_half_way_keeps_the_previous_version_and_a_rerun_completes(own_project, tmp_path):
    db = own_project / "published/serving.db"
    api = TestClient(create_app(SqliteStore(db), own_project / "published", max_k=20, max_basket=50))
    customer = pd.read_parquet(own_project / "data/serving/recommendations.parquet")["customer_id"].iloc[0]
    before = first_item(api, customer)
    scored = new_version_of(own_project, tmp_path / "scored")
    params = yaml.safe_load((own_project / "params.yaml").read_text())
    params["publish"]["write_batch_size"] = 1  # one commit per entry: a long window to be killed in
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [str(BIN / "shoprec"), "publish", "--scored", str(scored), *PUBLISH_ARGS]
    cmd += ["--out", str(tmp_path / "publish.json"), "--params", str(tmp_path / "params.yaml")]

    proc = subprocess.Popen(cmd, cwd=own_project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher, killed_at = sqlite3.connect(db, timeout=30), None
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT COUNT(*) FROM entries e JOIN versions v ON v.version = e.version WHERE v.complete = 0"
            ).fetchone()
            if row[0] > 0:  # the new version is being written, not yet complete
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = row[0]
                break
            time.sleep(0.005)
        proc.wait(timeout=30)
    finally:
        watcher.close()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "publish ended before it could be killed"

    assert first_item(api, customer) == before  # serving still answers from the previous version
    assert Releases(own_project / "published").current() == before[0]

    res = shoprec(*cmd[1:], cwd=own_project)  # the rerun finishes the same version
    result = json.loads((tmp_path / "publish.json").read_text())
    assert res.returncode == 0 and result["published"]
    after = first_item(api, customer)
    assert after[0] == result["version"] != before[0] and after[1] != before[1]
    assert Releases(own_project / "published").current() == result["version"]
    assert not list((own_project / "published/versions").glob(".tmp-*"))

    shoprec("publish", "--rollback", cwd=own_project)  # and a rollback makes the previous version live again
    assert first_item(api, customer) == before


def test_a_daily_score_ranks_the_due_customers_and_keeps_the_other_published_lists(own_project):
    """`publish.reuse_lists`: the customers whose list is too old are ranked again (the same lists as
    a full score), the others keep the published rows as they are (marked here, to tell them apart)."""
    live, reused = own_project / "published/current", own_project / "data/published"
    reused.mkdir()
    for name in ("recommendations.parquet", "candidates.parquet", "manifest.json"):
        shutil.copy(live / name, reused / name)
    recs = pd.read_parquet(reused / "recommendations.parquet")
    as_of = pd.Timestamp(json.loads((live / "manifest.json").read_text())["data_window"]["as_of"])
    assert (recs["scored_as_of"] == as_of).all()
    customers = recs["customer_id"].drop_duplicates()
    due = set(customers.iloc[::2])
    old = recs["customer_id"].isin(due)
    recs.loc[old, "scored_as_of"] = as_of - pd.Timedelta(days=8)  # refresh_days 7: due
    recs.loc[~old, "score"] += 1.0  # kept rows are copied, not ranked again
    recs.to_parquet(reused / "recommendations.parquet", index=False)
    params = yaml.safe_load((own_project / "params.yaml").read_text())
    params["publish"]["reuse_lists"] = "data/published"
    (own_project / "daily.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    args = ["--split-dir", "data/split", "--candidates", "data/candidates", "--model", "models"]
    args += ["--customer-features", "data/features/customer.parquet", "--out", "daily", "--params", "daily.yaml"]
    shoprec("score", *args, cwd=own_project)

    key = ["customer_id", "rank"]
    daily = pd.read_parquet(own_project / "daily/recommendations.parquet").sort_values(key, ignore_index=True)
    full = pd.read_parquet(live / "recommendations.parquet")
    assert set(daily["customer_id"]) == set(full["customer_id"])
    ranked = daily[daily["customer_id"].isin(due)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ranked, full[full["customer_id"].isin(due)].sort_values(key, ignore_index=True))
    kept = daily[~daily["customer_id"].isin(due)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, recs[~old].sort_values(key, ignore_index=True))
    cands = pd.read_parquet(own_project / "daily/candidates.parquet")
    runs = (cands["customer_id"] != cands["customer_id"].shift()).sum()
    assert runs == cands["customer_id"].nunique()  # grouped by customer, as re-ranking reads them
    pair = ["customer_id", "item_id"]
    published = pd.read_parquet(live / "candidates.parquet").sort_values(pair, ignore_index=True)
    # implicit's ALS fit differs in the last digits between fits (threads): the ALS score of a ranked-again pair too
    pd.testing.assert_frame_equal(cands.sort_values(pair, ignore_index=True), published, atol=1e-5)
