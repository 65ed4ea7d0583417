"""Scheduled runs: what the Airflow tasks call (dags/ only wires them).

Each run works in its own directory, `runs/<dag_id>/<as_of>/`, laid out like the project
(params.yaml, feature_repo/, data/, models/, metrics/, plots/, reports/), and every step calls the
same function as its DVC stage, with the paths of dvc.yaml under that directory. So runs of other
dates never touch each other's files, re-running a date rewrites its own directory with the same
outputs, and a data scientist reproduces a run from its params.yaml with `dvc repro` (or `dvc exp
run -S split.as_of=<date> -S data.raw=<file>`). What runs share is what they publish to: the
published versions and serving store (`publish.dir`) and the Evidently workspace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import load_params
from pipelines.errors import InputError
from pipelines.files import write_json

log = logging.getLogger(__name__)
PROJECT = Path(__file__).resolve().parents[1]
RUNS = "runs"
# The steps of each DAG, in the order of dvc.yaml; daily scores with the published model, weekly trains one.
DAILY = ("ingest", "split", "features", "materialize", "candidates", "recommend", "evaluate", "report", "gate")
DAILY += ("score", "publish")
WEEKLY = ("ingest", "split", "features", "materialize", "candidates", "train", "recommend", "evaluate", "report")
WEEKLY += ("gate", "score", "publish")


@dataclass(frozen=True)
class Run:
    """One run's directory; `run / "data/clean"` is a path inside it."""

    root: Path

    def __truediv__(self, rel: str) -> Path:
        return self.root / rel

    @property
    def params(self) -> dict[str, Any]:
        return load_params(self.root / "params.yaml")

    @property
    def as_of(self) -> str:
        return str(self.params["split"]["as_of"])


def run_dir(project: Path, dag_id: str, as_of: str) -> Run:
    return Run(Path(project) / RUNS / dag_id / as_of)


def prepare(project: str | Path, dag_id: str, as_of: datetime, data: str | None = None, k: int | None = None) -> Run:
    """Lay out the run's directory: its params (the project's, with split.as_of = the run's date,
    the data file and k from the trigger form, the shared publish and workspace paths made absolute)
    and a copy of the feature repo. The daily run also takes a copy of the published model."""
    project = Path(project).resolve()
    params = load_params(project / "params.yaml")
    day = as_of.strftime("%Y-%m-%d")
    run = run_dir(project, dag_id, day)
    raw = Path(data or params["data"]["raw"])
    raw = raw if raw.is_absolute() else project / raw
    if not raw.is_file():
        raise InputError(f"{raw}: the raw export for the run of {day} is not there (data path in the trigger form)")
    params["data"]["raw"] = str(raw)
    params["split"]["as_of"] = day
    params["features"]["repo"] = str(run / "feature_repo")
    params["features"]["store"] = "local"  # each run's own Feast store (SQLite takes one writer)
    for key, rel in (("publish", "dir"), ("monitor", "workspace")):
        path = Path(params[key][rel])
        params[key][rel] = str(path if path.is_absolute() else project / path)
    if k is not None:
        params["publish"]["k"] = int(k)
    run.root.mkdir(parents=True, exist_ok=True)
    (run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for own in ("feature_repo", "data/feast"):  # the run's Feast repo and store start afresh on every try
        shutil.rmtree(run / own, ignore_errors=True)
    shutil.copytree(project / "feature_repo", run / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    if dag_id.endswith("daily"):
        take_published_model(run, Path(params["publish"]["dir"]))
    log.info("run %s: prepared for as_of %s on %s", run.root, day, raw)
    return run


def take_published_model(run: Run, publish_dir: Path) -> None:
    """Copy the live model (publish.dir/current/model) into the run: the daily run scores with it."""
    model = publish_dir / "current" / "model"
    if not (model / "ranker.lgb").is_file():
        raise InputError(f"{model}: no published model yet: trigger shoprec_weekly_retrain first")
    shutil.rmtree(run / "models", ignore_errors=True)
    shutil.copytree(model, run / "models")


def _ingest(run: Run, p: dict) -> Any:
    from pipelines.ingest import ingest

    return ingest(p["data"]["raw"], run / "data/clean", p, run / "metrics/ingest.json")


def _split(run: Run, p: dict) -> Any:
    from pipelines.split import split

    return split(run / "data/clean/interactions.parquet", run / "data/split", p["split"], run / "metrics/split.json")


def _features(run: Run, p: dict) -> Any:
    from pipelines.features.build import features_stage
    from pipelines.split import read_windows

    windows = read_windows(run / "data/split/windows.json")
    return features_stage(
        run / "data/clean/interactions.parquet",
        windows,
        run / "data/features",
        p["features"],
        run / "metrics/features.json",
    )


def _materialize(run: Run, p: dict) -> Any:
    from pipelines.features.store import materialize_stage
    from pipelines.split import read_windows

    as_of = read_windows(run / "data/split/windows.json").as_of
    return materialize_stage(
        p["features"], as_of, run / "metrics/feature_store.json", run / "data/feast/materialized.json"
    )


def _candidates(run: Run, p: dict) -> Any:
    from pipelines.candidates.union import candidates_stage

    return candidates_stage(
        run / "data/split", run / "data/candidates", p["candidates"], run / "metrics/candidates.json", p.get("compute")
    )


def _train(run: Run, p: dict) -> Any:
    from pipelines.ranker import train_stage

    return train_stage(run / "data/candidates", run / "data/split", run / "models", run / "plots", p)


def _recommend(run: Run, p: dict) -> Any:
    from pipelines.ranker import recommend_stage

    recs = recommend_stage(
        run / "data/candidates",
        run / "data/split",
        run / "models",
        run / "data/recommendations/test.parquet",
        run / "data/monitor/current.parquet",
        p,
    )
    return {"recommendations": len(recs), "customers": int(recs["customer_id"].nunique())}


def _evaluate(run: Run, p: dict) -> Any:
    from pipelines.evaluate import evaluate_stage

    out = {"metrics": run / "metrics/evaluate.json", "segments": run / "metrics/segments.json", "plots": run / "plots"}
    result = evaluate_stage(
        run / "data/recommendations/test.parquet",
        run / "data/candidates/test.parquet",
        run / "data/split",
        run / "data/features/customer.parquet",
        out,
        p["candidates"]["sources"],
        p["evaluate"],
        int(p["recommend"]["k"]),
    )
    return {"customers": result["customers"], "ndcg@10": result["ranker"].get("ndcg@10")}


def _report(run: Run, p: dict) -> Any:
    from pipelines.reports import report_stage

    stamp = datetime.fromisoformat(run.as_of)
    return report_stage(
        run / "data/recommendations/test.parquet",
        run / "data/split",
        run / "models/reference.parquet",
        run / "data/monitor/current.parquet",
        run / "data/clean/interactions.parquet",
        run / "reports",
        run / "metrics/drift.json",
        p,
        timestamp=stamp,
        run_key=str(run.root.relative_to(run.root.parents[2])),
    )


def _gate(run: Run, p: dict) -> Any:
    from pipelines.gate import gate_stage

    evaluation = json.loads((run / "metrics/evaluate.json").read_text())
    drift = json.loads((run / "metrics/drift.json").read_text())
    return gate_stage(
        evaluation,
        drift,
        run / "models",
        run / "data/candidates/test.parquet",
        run / "data/split",
        run / "reports/gate.json",
        p,
    )


def _score(run: Run, p: dict) -> Any:
    from pipelines.score import score_stage

    return score_stage(
        run / "data/split",
        run / "data/candidates",
        run / "data/features/customer.parquet",
        run / "models",
        run / "data/serving",
        p,
    )


def _publish(run: Run, p: dict) -> Any:
    from pipelines.publish import publish_stage

    return publish_stage(
        run / "data/serving",
        run / "models",
        run / "reports/gate.json",
        run / "data/split",
        run / "metrics/evaluate.json",
        run / "reports/publish.json",
        p,
    )


STEPS: dict[str, Callable[[Run, dict], Any]] = {
    "ingest": _ingest,
    "split": _split,
    "features": _features,
    "materialize": _materialize,
    "candidates": _candidates,
    "train": _train,
    "recommend": _recommend,
    "evaluate": _evaluate,
    "report": _report,
    "gate": _gate,
    "score": _score,
    "publish": _publish,
}


def run_step(run: Run, name: str) -> Any:
    """Run one step in the run's directory with the run's params."""
    if name not in STEPS:
        raise InputError(f"run: no step {name!r} (steps: {', '.join(STEPS)})")
    return STEPS[name](run, run.params)


def record(run: Run, dag_id: str, run_id: str) -> dict[str, Any]:
    """`run.json`: what this run used and produced, and how to reproduce it with DVC."""
    from pipelines.publish import sha256

    p = run.params

    def read(rel: str) -> Any:
        path = run / rel
        return json.loads(path.read_text()) if path.is_file() else None

    model = run / "models/ranker.lgb"
    evaluation = read("metrics/evaluate.json")
    gate = read("reports/gate.json")
    drift = read("metrics/drift.json")
    out = {
        "dag_id": dag_id,
        "run_id": run_id,
        "as_of": run.as_of,
        "data": p["data"]["raw"],
        "data_window": read("data/split/windows.json"),
        "params_sha256": hashlib.sha256((run / "params.yaml").read_bytes()).hexdigest(),
        "model_sha256": sha256([model]) if model.is_file() else None,
        "metrics": {m: evaluation["ranker"][m] for m in ("ndcg@10", "recall@20")} if evaluation else None,
        "drift_share": drift["share"] if drift else None,
        "gate": gate["decision"] if gate else None,
        "published": read("reports/publish.json"),
        "reproduce": f"cp {run / 'params.yaml'} params.yaml && dvc repro"
        + ("" if "train" in dag_id else "  (the daily run scores with the published model in models/)"),
    }
    write_json(out, run / "run.json")
    return out
