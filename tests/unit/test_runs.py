"""A scheduled run's directory (pipelines/orchestration/runs.py `prepare`): its params and what it copies."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pipelines.orchestration.runs import PUBLISHED, prepare
from pipelines.serving.publish import Releases
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


@pytest.fixture
def project(tmp_path) -> Path:
    """A project with the checkout's params and feature repo, a raw file, and one published version (as of
    2011-12-09) with a model and lists."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "feature_repo", tmp_path / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/raw/synthetic.parquet").write_bytes(b"raw")
    version = tmp_path / "published/versions/v1"
    (version / "model").mkdir(parents=True)
    for name in ("ranker.lgb", "selection.json"):
        (version / "model" / name).write_text(name)
    for name in ("recommendations.parquet", "candidates.parquet"):
        (version / name).write_text(name)
    (version / "manifest.json").write_text(json.dumps({"data_window": {"as_of": "2011-12-09"}}))
    (tmp_path / "published/index.json").write_text(json.dumps([{"version": "v1"}]))
    Releases(tmp_path / "published").switch("v1")
    return tmp_path


def set_features(project: Path, key: str, value: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["features"][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_daily_run_copies_the_live_model_and_lists_and_keeps_the_configured_feature_store(project):
    set_features(project, "store", "production")
    run = prepare(project, "shoprec_daily", datetime(2011, 12, 10))
    p = run.params
    assert p["candidates"]["reuse_model"] == "models" and (run / "models/ranker.lgb").read_text() == "ranker.lgb"
    assert p["publish"]["reuse_lists"] == PUBLISHED
    assert sorted(x.name for x in (run / PUBLISHED).iterdir()) == [
        "candidates.parquet",
        "manifest.json",
        "recommendations.parquet",
    ]
    assert p["features"]["store"] == "production"  # the shared Redis store the API reads, loaded by this run
    assert p["features"]["snapshots"] == "latest"  # it trains nothing: only the snapshots its joins reach
    assert p["features"]["repo"] == str(run / "feature_repo") and (run / "feature_repo/features.py").is_file()


def test_a_daily_run_of_the_published_day_or_a_weekly_run_ranks_everyone(project):
    set_features(project, "snapshots", "latest")  # a weekly run builds every snapshot whatever the project says
    assert prepare(project, "shoprec_daily", datetime(2011, 12, 9)).params["publish"]["reuse_lists"] is None
    weekly = prepare(project, "shoprec_weekly_retrain", datetime(2011, 12, 10))
    assert weekly.params["publish"]["reuse_lists"] is None and weekly.params["candidates"]["reuse_model"] is None
    assert not (weekly / PUBLISHED).exists()
    assert weekly.params["features"]["store"] == "local"  # the run's own SQLite store, under its directory
    assert weekly.params["features"]["snapshots"] == "calendar"  # its training cutoffs need theirs
