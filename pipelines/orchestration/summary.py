"""A short, human-readable summary of a pipeline run, from the metrics files the stages wrote.

Every path comes from dvc.yaml (each stage's metrics and outputs, rendered with the params), so the
summary reads and names exactly what the stages wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.orchestration import stages as dvc_stages

HINTS = {  # what to do with a stage's outputs, beside their paths
    "materialize": "online store: data/feast/; shoprec features online --customer ID",
    "train": "ranker.lgb and ranker.json: features, best iteration",
    "report": "make evidently-ui: the dashboard over runs",
    "evaluate": "dvc metrics show / dvc metrics diff; dvc plots show",
    "publish": "the versions: ${publish.dir}/; shoprec serve: the API; shoprec publish --rollback",
}


def _read(project: Path, path: str) -> dict[str, Any]:
    return json.loads((project / path).read_text())


def summarize(project: str | Path, params: dict[str, Any]) -> str:
    """Rows in and out, features, candidate recall, the ranker against each source on the test window,
    drift, the gate's decision and the publish, then where each stage's outputs are."""
    project = Path(project)
    st = dvc_stages.load()

    def metrics(stage: str, index: int = 0) -> dict[str, Any]:
        return _read(project, dvc_stages.render(st[stage].metrics[index], params, f"stage {stage}"))

    ingest, feats, ev = metrics("ingest"), metrics("features"), metrics("evaluate")
    cands = metrics("candidates")["test"]
    online = metrics("materialize")["rows_online"]
    dropped = ", ".join(f"{k} {v:,}" for k, v in ingest["rows_dropped"].items() if v)
    lines = [
        f"ingest     {ingest['rows_in']:,} rows in, {ingest['rows_out']:,} out (dropped: {dropped or 'none'})",
        f"features   {feats['customer']['rows']:,} customer, {feats['product']['rows']:,} product and "
        f"{feats['customer_product']['rows']:,} customer x product rows; online: "
        + ", ".join(f"{view} {rows:,}" for view, rows in sorted(online.items())),
        f"candidates union recall {cands['recall_union']:.3f} with {cands['candidates_per_customer']:.0f} per customer",
        f"evaluate   {ev['customers']:,} customers in the test window",
        f"           {'model':<20}{'NDCG@10':>9}{'Recall@20':>11}{'HitRate@10':>12}",
    ]
    for name, m in {"ranker": ev["ranker"], **ev["sources"]}.items():
        lines.append(f"           {name:<20}{m['ndcg@10']:>9.4f}{m['recall@20']:>11.4f}{m['hitrate@10']:>12.4f}")
    r = ev["ranker"]
    lines.append(
        f"           ranker lists: diversity {r['diversity@10']:.3f}, novelty {r['novelty@10']:.2f} bits, "
        f"personalisation {r['personalisation@10']:.3f}, coverage {r['coverage@10']:.3f}"
    )
    drift = metrics("report")
    lines.append(f"drift      {drift['first_screen']['headline']}  (reports/monitoring.html)")
    realised = metrics("realised")
    if realised.get("purchasers"):
        o = realised["overall"]
        lines.append(
            f"realised   version {realised['served_version']} on {realised['purchasers']} purchasers' next "
            f"{realised['days']:g} days: ndcg@10 {o['ndcg@10']:.4f}, hit rate@10 {o['hitrate@10']:.4f}"
        )
    else:
        lines.append("realised   nothing served before this as-of date to measure")
    gate_file = project / st["gate"].metrics[0]
    if gate_file.is_file():
        from pipelines.monitoring.gate import render

        lines.append(render(json.loads(gate_file.read_text())))
    publish_file = project / st["publish"].outs[0]
    if publish_file.is_file():
        p = json.loads(publish_file.read_text())
        state = "published" if p["published"] else p["reason"]
        lines.append(f"publish    version {p.get('version', '-')}: {state}")
    lines.append("")
    for name, stage in st.items():
        outs = [dvc_stages.render(o, params, f"stage {name}") for o in stage.outs]
        hint = f"  ({dvc_stages.render(HINTS[name], params, 'summary')})" if name in HINTS else ""
        lines.append(f"{name:<13}{', '.join(outs)}{hint}")
    return "\n".join(lines)
