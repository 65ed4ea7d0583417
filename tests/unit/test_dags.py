"""The Airflow DAGs: they load without import errors, quickly and without heavy imports, and their
task graphs are dvc.yaml's stage graph between the same steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.orchestration import stages
from tests.conftest import ROOT

pytestmark = pytest.mark.unit
HEAVY = ("pandas", "numpy", "lightgbm", "feast", "evidently", "sklearn", "scipy", "dvc")
PROBE = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "seconds": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "edges": {d: sorted([u, t] for t, task in dag.task_dict.items() for u in task.upstream_task_ids)
              for d, dag in bag.dags.items()},
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r),
}))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    """The DagBag of dags/, loaded in a fresh interpreter with a throw-away AIRFLOW_HOME."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "DO_NOT_TRACK": "1"}
    res = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), str(ROOT / "dags")], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_the_dags_load_without_errors_quickly_and_light(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["edges"]) == {"shoprec_daily", "shoprec_weekly_retrain"}
    assert dagbag["seconds"] and all(s < 2.0 for s in dagbag["seconds"].values()), dagbag["seconds"]
    assert dagbag["loaded"] == [], f"DAG files import heavy modules at parse time: {dagbag['loaded']}"


@pytest.mark.parametrize("dag_id", ["shoprec_daily", "shoprec_weekly_retrain"])
def test_the_task_graph_is_the_dvc_stage_graph(dagbag, dag_id):
    spec = stages.load()
    left_out = {"shoprec_daily": {"generate", "train"}, "shoprec_weekly_retrain": {"generate"}}[dag_id]
    steps = set(spec) - left_out
    edges = {tuple(e) for e in dagbag["edges"][dag_id]}
    assert {t for e in edges for t in e} == steps | {"prepare"}
    assert {("prepare", s) for s in steps} <= edges  # every step works in the run's directory
    assert {e for e in edges if "prepare" not in e} == stages.edges(spec, steps)
    # written out by hand, not derived: what each stage must wait for
    must = {("ingest", "split"), ("split", "features"), ("features", "materialize"), ("split", "candidates")}
    must |= {("candidates", "recommend"), ("recommend", "evaluate"), ("evaluate", "gate"), ("report", "gate")}
    must |= {("gate", "publish"), ("score", "publish"), ("features", "score"), ("candidates", "score")}
    if dag_id == "shoprec_weekly_retrain":
        must |= {("candidates", "train"), ("features", "train"), ("train", "recommend"), ("train", "gate")}
    assert must <= edges
    assert not {(b, a) for a, b in must} & edges  # nothing runs before what it reads


def test_the_local_and_production_airflow_environments(tmp_path):
    from pipelines.orchestration.airflow_env import airflow_env, set_password

    local = airflow_env(tmp_path, port=8099)
    assert local["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False" and local["AIRFLOW__CORE__DAGS_FOLDER"].endswith("dags")
    assert local["AIRFLOW__API__PORT"] == "8099" and "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in local  # SQLite
    prod = airflow_env(tmp_path, production=True, db="postgresql+psycopg://u@h:5432/d")
    assert prod["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert prod["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == prod["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
    path = set_password(tmp_path / "home", "s3cret")  # what SHOPREC_AIRFLOW_PASSWORD does before the start
    assert json.loads(path.read_text()) == {"admin": "s3cret"} and oct(path.stat().st_mode)[-3:] == "600"
    assert path.name == "simple_auth_manager_passwords.json.generated"  # the file Airflow reads and writes
