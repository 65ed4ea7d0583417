"""A short, human-readable summary of a pipeline run, from the metrics files the stages wrote."""

from __future__ import annotations

import json
from pathlib import Path

OUTPUTS = {
    "clean data": "data/clean/interactions.parquet",
    "windows": "data/split/",
    "features": "data/features/   (online store: data/feast/; shoprec features online --customer ID)",
    "candidates": "data/candidates/",
    "model": "models/ranker.lgb  (models/ranker.json: features, best iteration)",
    "recommendations": "data/recommendations/test.parquet",
    "reports": "reports/{quality,drift}.html  (make evidently-ui: the dashboard over runs)",
    "gate": "reports/gate.json",
    "published": "published/current/  (shoprec serve: the API; shoprec publish --rollback)",
    "metrics": "metrics/*.json   (dvc metrics show / dvc metrics diff; by segment: metrics/segments.json)",
    "plots": "plots/*.csv       (dvc plots show)",
}


def summarize(metrics_dir: str | Path = "metrics", reports_dir: str | Path = "reports") -> str:
    """Rows in and out, features, candidate recall, the ranker against each source on the test window,
    drift and the gate's decision."""
    d = Path(metrics_dir)
    ingest = json.loads((d / "ingest.json").read_text())
    cands = json.loads((d / "candidates.json").read_text())["test"]
    ev = json.loads((d / "evaluate.json").read_text())
    feats = json.loads((d / "features.json").read_text())
    online = json.loads((d / "feature_store.json").read_text())["rows_online"]
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
    drift = json.loads((d / "drift.json").read_text())
    lines.append(f"drift      {drift['drifted']} of {drift['features']} ranker inputs drifted ({drift['share']:.0%})")
    gate_file = Path(reports_dir) / "gate.json"
    if gate_file.is_file():
        from pipelines.monitoring.gate import render

        lines.append(render(json.loads(gate_file.read_text())))
    publish_file = Path(reports_dir) / "publish.json"
    if publish_file.is_file():
        p = json.loads(publish_file.read_text())
        state = "published" if p["published"] else p["reason"]
        lines.append(f"publish    version {p.get('version', '-')}: {state}")
    lines.append("")
    lines += [f"{name:<16}{path}" for name, path in OUTPUTS.items()]
    return "\n".join(lines)
