"""Scheduled runs: what the Airflow tasks call (dags/ only wires them).

Each run works in its own directory, `runs/<dag_id>/<as_of>/`, laid out like the project
(params.yaml, feature_repo/, data/, models/, metrics/, plots/, reports/), and each task runs its
dvc.yaml stage's own command there (`run_stage`), rendered with the run's params. So runs of other
dates never touch each other's files, re-running a date rewrites its own directory with the same
outputs, and a data scientist reproduces a weekly run from its params.yaml with `dvc repro` (or `dvc
exp run -S split.as_of=<date> -S data.raw=<file>`) and any run with its run.json's `reproduce`. What
runs share is what they publish to: the published versions and serving store (`publish.dir`) and
the Evidently workspace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.config import load_params, tool, venv_path
from pipelines.core.errors import ERROR_PREFIX, InputError
from pipelines.core.files import sha256, write_json
from pipelines.orchestration import stages

log = logging.getLogger(__name__)
RUNS = "runs"
PUBLISHED = "data/published"  # a daily run's copy of the live lists


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
    the data file and k from the trigger form, the shared publish, workspace and event log paths made absolute)
    and a copy of the feature repo. The daily run also takes a copy of the published model, and its
    candidates take that model's selection (`candidates.reuse_model`); its score keeps the live lists
    that are not due (`publish.reuse_lists`)."""
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
    params["monitor"]["run_key"] = f"{RUNS}/{dag_id}/{day}"  # a re-run of the date replaces its dashboard runs
    for key, rel in (("publish", "dir"), ("monitor", "workspace"), ("events", "log")):
        path = Path(params[key][rel])
        params[key][rel] = str(path if path.is_absolute() else project / path)
    if k is not None:
        params["publish"]["k"] = int(k)
    run.root.mkdir(parents=True, exist_ok=True)
    daily = dag_id.endswith("daily")  # no training: the published model, and its candidate selection
    publish_dir = Path(params["publish"]["dir"])
    params["candidates"]["reuse_model"] = take_published_model(run, publish_dir) if daily else None
    params["publish"]["reuse_lists"] = take_published_lists(run, publish_dir, day) if daily else None
    params["features"]["snapshots"] = "latest" if daily else "calendar"  # what its joins reach
    (run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for own in ("feature_repo", "data/feast"):  # the run's Feast repo and store start afresh on every try
        shutil.rmtree(run / own, ignore_errors=True)
    shutil.copytree(project / "feature_repo", run / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    log.info("run %s: prepared for as_of %s on %s", run.root, day, raw)
    return run


def take_published_model(run: Run, publish_dir: Path) -> str:
    """Copy the live model (publish.dir/current/model) to where the train stage writes its model:
    the daily run scores with it. Returns that place, relative to the run."""
    rel = stages.load()["train"].outs[0]
    model, models = publish_dir / "current" / "model", run / rel
    if not (model / "ranker.lgb").is_file():
        raise InputError(f"{model}: no published model yet: trigger shoprec_weekly_retrain first")
    shutil.rmtree(models, ignore_errors=True)
    shutil.copytree(model, models)
    return rel


def take_published_lists(run: Run, publish_dir: Path, day: str) -> str | None:
    """Copy the lists, re-ranking candidates and manifest of the version the run of `day` builds on
    (`Releases.before`: the live one, or the one before it on a re-run of the day) to the run's
    `PUBLISHED`: score keeps the lists that are not due. Returns that place, relative to the run
    (None: no version before the day, every customer is ranked)."""
    import pandas as pd

    from pipelines.serving.publish import Releases
    from pipelines.serving.refresh import REUSED

    releases, copy = Releases(publish_dir), run / PUBLISHED
    shutil.rmtree(copy, ignore_errors=True)
    version = releases.before(pd.Timestamp(day))
    if version is None:
        return None
    copy.mkdir(parents=True)
    for name in REUSED:
        shutil.copy2(releases.versions_dir / version / name, copy / name)
    return PUBLISHED


def run_stage(run: Run, name: str) -> dict[str, Any]:
    """Run the stage's own dvc.yaml command, rendered with the run's params, in the run's directory.

    Its output goes to the log line by line. Exit code 2 (bad input) raises InputError with the
    command's one-line message; any other failure raises RuntimeError (the task is retried).
    """
    stage = stages.load().get(name)
    if stage is None:
        raise InputError(f"run: no stage {name!r} in {stages.CHECKOUT / stages.DVC_YAML}")
    command = stage.command(run.params)
    argv = shlex.split(command)
    env = {**os.environ, "PATH": venv_path(), "DVC_NO_ANALYTICS": "1"}
    log.info("run %s: %s", run.root, command)
    started, error, last = time.perf_counter(), None, ""
    with subprocess.Popen(
        [tool(argv[0]), *argv[1:]], cwd=run.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            for line in proc.stdout or []:
                log.info("%s: %s", name, line.rstrip())
                last = line.strip() or last
                if line.startswith(ERROR_PREFIX):
                    error = line.removeprefix(ERROR_PREFIX).strip()
        except BaseException:  # the task is killed or times out: so is its stage
            proc.terminate()
            proc.wait(timeout=30)
            raise
    if proc.returncode == 2:
        raise InputError(error or f"{name}: bad input ({last})")
    if proc.returncode:
        raise RuntimeError(f"stage {name}: `{command}` exited with {proc.returncode}: {last}")
    return {"stage": name, "command": command, "seconds": round(time.perf_counter() - started, 2)}


def stage_json(run: Run, name: str, kind: str = "metrics") -> Any:
    """The first JSON file among a stage's `kind` ("metrics" or "outs") in the run, or None if absent."""
    stage = stages.load()[name]
    rel = next(p for p in getattr(stage, kind) if p.endswith(".json"))
    path = run / rel
    return json.loads(path.read_text()) if path.is_file() else None


def record(run: Run, dag_id: str, run_id: str, names: list[str]) -> dict[str, Any]:
    """`run.json`: what this run used and produced, the commands its stages `names` ran, and how to
    reproduce it."""
    p, spec = run.params, stages.load()
    commands = [spec[n].command(p) for n in names]
    model = run / spec["train"].outs[0] / "ranker.lgb"
    windows = run / spec["split"].outs[0] / "windows.json"
    evaluation, drift, gate = (stage_json(run, n) for n in ("evaluate", "report", "gate"))
    out = {
        "dag_id": dag_id,
        "run_id": run_id,
        "as_of": run.as_of,
        "data": p["data"]["raw"],
        "data_window": json.loads(windows.read_text()) if windows.is_file() else None,
        "params_sha256": hashlib.sha256((run / "params.yaml").read_bytes()).hexdigest(),
        "model_sha256": sha256([model]) if model.is_file() else None,
        "metrics": {m: evaluation["ranker"][m] for m in ("ndcg@10", "recall@20")} if evaluation else None,
        "drift_share": drift["share"] if drift else None,
        "gate": gate["decision"] if gate else None,
        "published": stage_json(run, "publish", "outs"),
        "commands": commands,
        "reproduce": f"cd {run.root} && " + " && ".join(commands),
    }
    write_json(out, run / "run.json")
    return out
