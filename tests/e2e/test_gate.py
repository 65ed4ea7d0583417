"""The gate on the pipeline's real outputs: the trained model passes (and the pipeline publishes it);
a planted distribution shift blocks publishing; a deliberately degraded model loses to the published
one and is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.serving.publish import Releases
from tests.e2e.conftest import shoprec

pytestmark = pytest.mark.e2e

COMMON = ["--candidates", "data/candidates/test.parquet", "--split-dir", "data/split"]


def gate(
    project: Path,
    out: Path,
    evaluation: str = "metrics/evaluate.json",
    drift: str = "metrics/drift.json",
    model: str = "models",
):
    args = ["--evaluation", evaluation, "--drift", drift, "--realised", "metrics/realised.json", "--model", model]
    args += [*COMMON, "--out", str(out)]
    res = shoprec("gate", *args, cwd=project)
    decision = json.loads(out.read_text())
    assert f"GATE: {decision['decision'].upper()}" in res.stderr  # the readable block is in the log
    return decision


def failed(decision: dict) -> list[str]:
    return [c["check"] for c in decision["checks"] if not c["passed"]]


def test_the_trained_model_passes_the_gate(project):
    decision = json.loads((project / "reports/gate.json").read_text())
    assert decision["passed"], decision
    names = [c["check"] for c in decision["checks"]]
    assert names[:2] == ["quality ndcg@10", "quality recall@20"]
    assert {"beats every source", "feature drift", "vs published model"} <= set(names)


@pytest.mark.slow  # Evidently's drift report on the planted sample: over a minute
def test_a_planted_distribution_shift_blocks_publishing(project, tmp_path):
    current = pd.read_parquet(project / "data/monitor/current.parquet")
    reference = pd.read_parquet(project / "models/reference.parquet")
    features = [c for c in current.columns if c not in ("customer_id", "item_id", "as_of", "score")]
    shifted = current.copy()
    for c in features:  # every input moves by one reference standard deviation
        shifted[c] = shifted[c] + reference[c].std()
    shifted.to_parquet(tmp_path / "shifted.parquet")
    shoprec(
        "report", "--recs", "data/recommendations/test.parquet", "--split-dir", "data/split",
        "--reference", "models/reference.parquet", "--current", str(tmp_path / "shifted.parquet"),
        "--clean", "data/clean/interactions.parquet", "--out", str(tmp_path / "reports"),
        "--metrics", str(tmp_path / "drift.json"), "--workspace", str(tmp_path / "workspace"), cwd=project,
    )  # fmt: skip
    drift = json.loads((tmp_path / "drift.json").read_text())
    assert drift["share"] > 0.5, drift  # above the gate's limit (volume forms absorb part of a uniform shift)
    decision = gate(project, tmp_path / "gate.json", drift=str(tmp_path / "drift.json"))
    assert decision["decision"] == "blocked" and failed(decision) == ["feature drift"]


def degraded_model(project: Path, out: Path) -> Path:
    """A LambdaRank model trained to put what customers did not buy first (labels inverted)."""
    import lightgbm as lgb

    info = json.loads((project / "models/ranker.json").read_text())
    ref = pd.read_parquet(project / "models/reference.parquet").sort_values("customer_id", kind="stable")
    groups = ref.groupby("customer_id", sort=False).size().to_numpy()
    data = lgb.Dataset(ref[info["features"]], 1 - ref["label"].to_numpy(), group=groups)
    booster = lgb.train({"objective": "lambdarank", "verbosity": -1, "seed": 1, "num_threads": 1}, data, 30)
    out.mkdir(parents=True)
    booster.save_model(str(out / "ranker.lgb"))
    (out / "ranker.json").write_text(json.dumps(info))
    return out


def evaluate_model(project: Path, model: Path, out: Path) -> Path:
    shoprec(
        "recommend", "--candidates", "data/candidates", "--split-dir", "data/split", "--model", str(model),
        "--out", str(out / "recs.parquet"), "--sample", str(out / "sample.parquet"), cwd=project,
    )  # fmt: skip
    shoprec(
        "evaluate", "--recs", str(out / "recs.parquet"), *COMMON, "--metrics", str(out / "evaluate.json"),
        "--segments", str(out / "segments.json"), "--plots", str(out / "plots"), cwd=project,
    )  # fmt: skip
    return out / "evaluate.json"


def test_a_degraded_model_is_rejected_against_the_published_one(project, tmp_path):
    assert (project / "published/current/model/ranker.lgb").is_file()  # the pipeline published its model
    degraded = degraded_model(project, tmp_path / "degraded")
    evaluation = evaluate_model(project, degraded, tmp_path)
    decision = gate(project, tmp_path / "gate.json", evaluation=str(evaluation), model=str(degraded))
    assert decision["decision"] == "blocked"
    assert {"vs published ndcg@10", "vs published recall@20", "beats every source"} <= set(failed(decision))
    good = json.loads((project / "metrics/evaluate.json").read_text())["ranker"]
    bad = json.loads(evaluation.read_text())["ranker"]
    assert bad["ndcg@10"] < 0.5 * good["ndcg@10"]


def test_the_model_passes_against_itself_published(project, tmp_path):
    """Judged against itself published: the champion's figures are the challenger's (not ranked again)."""
    decision = gate(project, tmp_path / "gate.json")
    assert decision["passed"] and decision["champion"] == Releases(project / "published").current()
    compared = [c for c in decision["checks"] if c["check"].startswith("vs published ")]
    assert len(compared) == 2
    for c in compared:
        assert c["value"] == pytest.approx(c["threshold"] / 0.98)
    assert np.isfinite([c["value"] for c in compared]).all()
