"""The DAGs run for real with `airflow dags test` on small synthetic data, in a scratch project:
weekly retraining publishes a model, the daily run scores with it, and re-running a day changes
nothing. The production configuration (PostgreSQL metadata database, LocalExecutor) is checked
against the real server (marked services)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.orchestration.airflow_env import airflow_env, cli_json
from pipelines.serving.publish import Releases
from tests.e2e.conftest import BIN, free_port, http_json, wait_for

pytestmark = pytest.mark.e2e
WEEK, DAY = "2011-11-20", "2011-11-21"


def airflow(args: list[str], env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=1200)
    if ok:
        assert res.returncode == 0, f"airflow {args}: {res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def scheduled(project, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A scratch project (params, feature repo, the e2e pipeline's raw data) and an Airflow home over it."""
    root = tmp_path_factory.mktemp("scheduled")
    params = yaml.safe_load((project / "params.yaml").read_text())
    # These tests are about orchestration. On 15k rows, whether the ranker beats buy-again at the
    # 2011-11-20 cutoff hangs on a few customers: the same code passed on one CI machine and gives
    # NDCG@10 0.243 vs 0.267 on another. The gate's checks are tested in tests/e2e/test_gate.py.
    params["gate"]["beat_sources_on"] = None
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(project / "feature_repo", root / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "data/raw").mkdir(parents=True)
    shutil.copy(project / "data/raw/synthetic.parquet", root / "data/raw")
    env = {**os.environ, **airflow_env(root / ".airflow"), "SHOPREC_PROJECT": str(root), "PATH": os.environ["PATH"]}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    airflow(["db", "migrate"], env)
    return root, env


def states(dag_id: str, day: str, env: dict[str, str]) -> dict[str, str]:
    """The state of each task of the DAG's run for `day`."""
    listed = cli_json(
        airflow(["tasks", "states-for-dag-run", dag_id, f"{day}T00:00:00+00:00", "-o", "json"], env).stdout
    )
    return {row["task_id"]: row["state"] for row in listed}


def digest(run: Path) -> dict[str, str]:
    """Hashes of a run's data, models and metrics (not its HTML reports, which embed render ids)."""
    files = [p for d in ("data", "models", "metrics") for p in sorted((run / d).rglob("*")) if p.is_file()]
    files = [p for p in files if p.suffix != ".db"]  # the run's Feast registry and online store: stores, not outputs
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_the_daily_run_needs_a_published_model_and_says_so(scheduled):
    root, env = scheduled
    res = airflow(["dags", "test", "shoprec_daily", "2011-11-19"], env, ok=False)
    log = res.stdout + res.stderr
    assert "no published model yet: trigger shoprec_weekly_retrain first" in log
    assert "shoprec: shoprec_daily.prepare failed for 2011-11-19" in log  # the one-line failure callback


@pytest.mark.slow  # the pipeline three times under Airflow: ~5 min on 2 cores
def test_weekly_retrain_then_daily_and_a_rerun_changes_nothing(scheduled):
    root, env = scheduled
    airflow(["dags", "test", "shoprec_weekly_retrain", WEEK], env)
    assert set(states("shoprec_weekly_retrain", WEEK, env).values()) == {"success"}
    week_run = json.loads((root / "runs/shoprec_weekly_retrain" / WEEK / "run.json").read_text())
    assert week_run["as_of"] == WEEK and week_run["gate"] == "publish" and week_run["published"]["published"]
    assert week_run["data_window"]["as_of"].startswith(WEEK) and week_run["model_sha256"]

    airflow(["dags", "test", "shoprec_daily", DAY], env)
    daily = states("shoprec_daily", DAY, env)
    assert set(daily.values()) == {"success"} and "train" not in daily, daily
    run = root / "runs/shoprec_daily" / DAY
    record = json.loads((run / "run.json").read_text())
    assert record["model_sha256"] == week_run["model_sha256"]  # scored with the published model
    week_selection = (root / "runs/shoprec_weekly_retrain" / WEEK / "data/candidates/selection.json").read_text()
    assert (run / "data/candidates/selection.json").read_text() == week_selection  # and the model's selection
    assert sorted(p.name for p in (run / "data/candidates").glob("*.parquet")) == ["test.parquet"]  # no learning
    assert record["published"]["published"] and Releases(root / "published").current() == record["published"]["version"]
    served = json.loads((run / "metrics/realised.json").read_text())  # the weekly run's lists on the day after
    assert served["served_version"] == week_run["published"]["version"] and served["purchasers"] > 0, served
    assert 0 <= served["overall"]["ndcg@10"] <= served["overall"]["hitrate@10"] <= 1
    assert sum(seg["customers"] for seg in served["segments"].values()) == served["purchasers"]
    gate = json.loads((run / "reports/gate.json").read_text())
    assert [c["passed"] for c in gate["checks"] if c["check"] == "realised hitrate@10"] == [True], gate

    before, live = digest(run), Releases(root / "published").current()
    rerun = airflow(["dags", "test", "shoprec_daily", DAY], env)  # the same day again
    assert "state=success" in rerun.stdout + rerun.stderr
    assert digest(run) == before  # same outputs
    assert json.loads((run / "reports/publish.json").read_text())["reason"] == "already live"
    assert Releases(root / "published").current() == live
    runs = json.loads((root / "reports/workspace/shoprec-runs.json").read_text())
    daily_key = f"runs/shoprec_daily/{DAY}"
    assert set(runs) == {f"runs/shoprec_weekly_retrain/{WEEK}", daily_key, f"{daily_key}#realised"}  # replaced
    assert len(runs[f"{daily_key}#realised"]) == 1  # the realised run, once after the rerun
    assert record["commands"][0].startswith("shoprec ingest --data /")  # the rendered dvc.yaml commands that ran


@pytest.mark.services
def test_the_production_metadata_database_is_postgresql_with_the_local_executor(services, tmp_path):
    import psycopg

    name = "shoprec_airflow_test"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    db = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, **airflow_env(tmp_path / "home", production=True, db=db)}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    try:
        airflow(["db", "migrate"], env)
        assert airflow(["config", "get-value", "core", "executor"], env).stdout.strip() == "LocalExecutor"
        airflow(["dags", "reserialize"], env)
        listed = cli_json(airflow(["dags", "list", "-o", "json"], env).stdout)
        assert {d["dag_id"] for d in listed} == {"shoprec_daily", "shoprec_weekly_retrain"}
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as c:
            rows = c.execute("SELECT dag_id FROM serialized_dag ORDER BY dag_id").fetchall()
        assert [r[0] for r in rows] == ["shoprec_daily", "shoprec_weekly_retrain"]
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_make_airflow_shows_both_dags_behind_a_login(tmp_path):
    """`shoprec airflow` (what `make airflow` runs): the UI's API lists the two DAGs and no example,
    for the admin with the password generated and printed once (SHOPREC_AIRFLOW_PASSWORD writes the
    same file before the start: tests/unit/test_dags.py)."""
    import time
    import urllib.error

    port, home = free_port(), tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "SHOPREC_AIRFLOW_PASSWORD"}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    log = (tmp_path / "standalone.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "shoprec"), "airflow", "--port", str(port), "--home", str(home)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/api/v2/monitor/health", server, tmp_path / "standalone.log", timeout=240)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        assert (tmp_path / "standalone.log").read_text().count(password) == 1  # shown once
        with pytest.raises(urllib.error.HTTPError):
            http_json(base + "/auth/token", {"username": "admin", "password": "admin"})  # no fixed default
        token = http_json(base + "/auth/token", {"username": "admin", "password": password})["access_token"]
        for _ in range(60):  # the DAG processor parses dags/ shortly after start
            dags = {d["dag_id"] for d in http_json(base + "/api/v2/dags?limit=100", token=token)["dags"]}
            if dags:
                break
            time.sleep(2)
        assert dags == {"shoprec_daily", "shoprec_weekly_retrain"}
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
