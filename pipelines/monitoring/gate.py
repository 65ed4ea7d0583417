"""The publish gate: a new model or new recommendations go out only when quality and drift are acceptable.

Checks, each with its threshold from the `gate` params:
- quality: every metric in `min_metrics` reaches its floor on the holdout;
- sources: the ranker beats every single candidate source on `beat_sources_on` (what fusion is for);
- drift: the share of the ranker's input features that drifted is at most `max_drift_share`, and no input
  property named in `block_on_inputs` alarms (pipelines/monitoring/inputs.py);
- realised: the lists served since the last publish reach each floor in `min_realised` on the purchases
  that followed (pipelines/monitoring/realised.py); nothing to check before the first publish;
- champion: on the same holdout, the challenger loses at most `max_regression` (relative) against the
  published model on each metric in `compare_on`. Without a published model there is nothing to lose to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipelines.core.errors import InputError
from pipelines.core.files import sha256, write_json

log = logging.getLogger(__name__)


def _names(names: list[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f": {', '.join(names[:shown])}{more}" if names else ""


def check(name: str, passed: bool, detail: str, **figures: Any) -> dict[str, Any]:
    return {"check": name, "passed": bool(passed), "detail": detail, **figures}


def decide(
    challenger: dict[str, float],
    sources: dict[str, dict[str, float]],
    drift: dict[str, Any],
    champion: dict[str, float] | None,
    params: dict[str, Any],
    realised: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The gate's decision: every check with its figures, and `passed` when all of them pass."""
    named = [*params["min_metrics"], *params["compare_on"], params["beat_sources_on"]]
    unknown = sorted({m for m in named if m and m not in challenger})
    if unknown:
        raise InputError(f"params: gate names metric(s) {', '.join(unknown)} that evaluate did not compute")
    checks = []
    for metric, floor in params["min_metrics"].items():
        value = challenger[metric]
        checks.append(
            check(
                f"quality {metric}",
                value >= floor,
                f"{metric} {value:.4f} vs floor {floor:.4f}",
                value=value,
                threshold=floor,
            )
        )
    metric = params["beat_sources_on"]
    if metric and sources:
        best = max(sources, key=lambda name: sources[name][metric])
        value, rival = challenger[metric], sources[best][metric]
        checks.append(
            check(
                "beats every source",
                value > rival,
                f"{metric} {value:.4f} vs best source {best} {rival:.4f}",
                value=value,
                threshold=rival,
            )
        )
    checks += drift_checks(drift, params)
    checks += _realised_checks(realised, params["min_realised"])
    if champion is None:
        checks.append(check("vs published model", True, "no published model yet: nothing to compare with"))
    else:
        tolerance = float(params["max_regression"])
        for metric in params["compare_on"]:
            value, old = challenger[metric], champion[metric]
            floor = old * (1 - tolerance)
            checks.append(
                check(
                    f"vs published {metric}",
                    value >= floor,
                    f"{metric} {value:.4f} vs published {old:.4f} (may drop to {floor:.4f})",
                    value=value,
                    threshold=floor,
                )
            )
    passed = all(c["passed"] for c in checks)
    return {"passed": passed, "decision": "publish" if passed else "blocked", "checks": checks}


def drift_checks(drift: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The drift checks: the share of drifted features within `max_drift_share`, and one check per input
    property in `block_on_inputs` (pipelines/monitoring/inputs.py) that must not alarm; the other input
    alarms are reported, not blocking."""
    share, limit = float(drift["share"]), float(params["max_drift_share"])
    checks = [
        check(
            "feature drift",
            share <= limit,
            f"{drift['drifted']} of {drift['features']} features drifted ({share:.0%}, limit {limit:.0%})"
            + _names(drift.get("drifted_features", [])),
            value=share,
            threshold=limit,
        )
    ]
    inputs = {c["input"]: c for c in drift.get("inputs", {}).get("checks", [])}
    for name in params["block_on_inputs"]:
        if name in inputs:
            checks.append(check(f"input {name}", not inputs[name]["alarm"], inputs[name]["line"]))
    return checks


def _realised_checks(realised: dict[str, Any] | None, floors: dict[str, float]) -> list[dict[str, Any]]:
    """A check per floor on what the served lists achieved (one passing check when nothing was served yet)."""
    if not floors:
        return []
    if not realised or not realised.get("served_version") or not realised.get("purchasers"):
        return [check("realised", True, "no served lists with purchases after them yet: nothing to check")]
    unknown = sorted(set(floors) - set(realised["overall"]))
    if unknown:
        names = ", ".join(unknown)
        raise InputError(f"params: gate.min_realised names metric(s) {names} that realised did not compute")
    return [
        check(
            f"realised {metric}",
            realised["overall"][metric] >= floor,
            f"served version {realised['served_version']} reached {metric} {realised['overall'][metric]:.4f} on "
            f"{realised['purchasers']} purchasers' next {realised['days']:g} days vs floor {floor:.4f}",
            value=realised["overall"][metric],
            threshold=floor,
        )
        for metric, floor in floors.items()
    ]


def render(decision: dict[str, Any]) -> str:
    """The decision as one readable block: the verdict, then a line per check."""
    lines = [f"GATE: {decision['decision'].upper()}"]
    lines += [f"  [{'pass' if c['passed'] else 'FAIL'}] {c['check']}: {c['detail']}" for c in decision["checks"]]
    return "\n".join(lines)


def champion_metrics(
    publish_dir: str | Path,
    cands_path: str | Path,
    split_dir: str | Path,
    params: dict[str, Any],
    challenger: tuple[str | Path, dict[str, float]] | None = None,
) -> tuple[dict[str, float], str] | None:
    """The published model's metrics on this holdout and its version (None before the first publish):
    it ranks the same test candidates with the same features. When the published model is the
    `challenger`'s (its model directory and metrics: a daily run scores with the published model),
    they are the challenger's metrics, not computed again."""
    from pipelines.core.partitions import customer_partitions
    from pipelines.data.split import read_windows
    from pipelines.evaluation.evaluate import Catalogue, holdout, metric_table
    from pipelines.ranking.inference import rank
    from pipelines.serving.publish import Releases

    releases = Releases(publish_dir)
    version = releases.current()
    if version is None:
        return None
    model_dir = releases.root / "current" / "model"
    if not (model_dir / "ranker.lgb").is_file():
        raise InputError(f"{model_dir}: the published version {version} has no model (ranker.lgb)")
    if challenger is not None and sha256([model_dir / "ranker.lgb"]) == sha256([Path(challenger[0]) / "ranker.lgb"]):
        return challenger[1], version  # the same trees on the same candidates and features
    ks = [int(k) for k in params["evaluate"]["ks"]]
    cutoff = read_windows(Path(split_dir) / "windows.json").test_start
    parts, rows = customer_partitions(cands_path)
    recs = rank(model_dir, parts, rows, cutoff, params["features"], max(ks), reasons=None)[0]
    history, truth, n_items = holdout(split_dir, params["evaluate"].get("max_customers"))
    return metric_table(recs, truth, ks, Catalogue.of(history, n_items)), version


def gate_stage(
    evaluation: dict[str, Any],
    drift: dict[str, Any],
    realised: dict[str, Any] | None,
    model_dir: str | Path,
    cands_path: str | Path,
    split_dir: str | Path,
    out_path: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The gate step: decide about the model in `model_dir`, write the decision and its reasons to
    `out_path` (with the model's hash, which publish checks), log it as one block."""
    champion = champion_metrics(
        params["publish"]["dir"], cands_path, split_dir, params, (model_dir, evaluation["ranker"])
    )
    decision = decide(
        evaluation["ranker"], evaluation["sources"], drift, champion and champion[0], params["gate"], realised
    )
    decision["model_sha256"] = sha256([Path(model_dir) / "ranker.lgb"])
    decision["champion"] = champion[1] if champion else None
    write_json(decision, out_path)
    log.info("%s", render(decision))
    return decision
