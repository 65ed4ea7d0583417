"""The reviewer's first screen (`reports/monitoring.html`): in a sentence, what changed in the data and
the ranker's inputs, whether that blocks publishing, and what to look at; then one line per input
check and per feature. It judges drift with the gate's own checks (`gate.drift_checks`), so the
screen and the gate cannot disagree; Evidently's reports beside it hold the histograms.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from pipelines.monitoring.gate import drift_checks


def first_screen(drift: dict[str, Any], gate_params: dict[str, Any]) -> dict[str, Any]:
    """The headline, whether drift blocks publishing (and by which checks), and what to look at."""
    checks = drift_checks(drift, gate_params)
    blocking = [c["check"] for c in checks if not c["passed"]]
    inputs = [c for c in drift["inputs"]["checks"] if c["alarm"]]
    features = drift["drifted_features"]
    changed = [f"{c['input']} ({c['column']})" for c in inputs]
    if features:
        changed.append(
            f"{len(features)} of {drift['features']} ranker features ({', '.join(features[:4])}"
            + (f" and {len(features) - 4} more)" if len(features) > 4 else ")")
        )
    if not changed:
        headline = (
            "Nothing changed: every input check is stable and no ranker feature drifted; "
            "drift does not block publishing."
        )
    else:
        verdict = (
            f"this blocks publishing ({', '.join(blocking)})"
            if blocking
            else "this does not block publishing (within the gate's drift limits)"
        )
        headline = f"Changed: {'; '.join(changed)}: {verdict}."
    look_at = [c["line"] for c in inputs] + [drift["verdicts"][f] for f in features]
    if drift.get("score_drift", {}).get("drifted"):
        look_at.append("the model's scores drifted: compare the score histograms in drift.html")
    return {"headline": headline, "blocks": bool(blocking), "blocking": blocking, "look_at": look_at}


def render_first_screen(drift: dict[str, Any], as_of: pd.Timestamp) -> str:
    """The first screen as a self-contained HTML page."""
    screen = drift["first_screen"]
    badge, colour = ("BLOCKS PUBLISHING", "#b3261e") if screen["blocks"] else ("DOES NOT BLOCK", "#1e6b34")
    look = "".join(f"<li>{html.escape(line)}</li>" for line in screen["look_at"]) or "<li>nothing</li>"

    def rows(lines: list[tuple[bool, str]]) -> str:
        cells = [("alarm", "ALARM") if bad else ("ok", "ok") for bad, _ in lines]
        ordered = sorted(zip(cells, lines, strict=True), key=lambda pair: not pair[1][0])
        return "".join(
            f'<tr class="{css}"><td>{state}</td><td>{html.escape(text)}</td></tr>'
            for (css, state), (_, text) in ordered
        )

    inputs = rows([(c["alarm"], c["line"]) for c in drift["inputs"]["checks"]])
    drifted = set(drift["drifted_features"])
    features = rows([(name in drifted, line) for name, line in drift["verdicts"].items()])
    days = ", ".join(drift["inputs"]["days"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shoprec monitoring, data as of {as_of.date()}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; color: #1b1b1b; }}
h1 {{ font-size: 1.2rem; color: #555; font-weight: normal; }}
.headline {{ font-size: 1.5rem; line-height: 1.4; margin: 0.5rem 0 1rem; }}
.badge {{ display: inline-block; padding: 0.2rem 0.6rem; color: white; background: {colour}; font-weight: bold; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }}
td {{ padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
tr.alarm td:first-child {{ color: #b3261e; font-weight: bold; }} tr.ok td:first-child {{ color: #1e6b34; }}
</style></head><body>
<h1>shoprec monitoring: data as of {as_of.date()} (latest day {days})</h1>
<p class="headline" id="headline">{html.escape(screen["headline"])}</p>
<p><span class="badge" id="verdict">{badge}</span></p>
<h2>What to look at</h2><ul id="look-at">{look}</ul>
<p>Histograms per feature: <a href="drift.html">drift.html</a>; recommendation quality:
<a href="quality.html">quality.html</a>; the gate's decision: gate.json.</p>
<h2>Input data: the latest day against the {drift["inputs"]["reference_days"]} days before</h2>
<table id="inputs">{inputs}</table>
<h2>Ranker features: the rows scored now against the training cutoffs' rows</h2>
<table id="features">{features}</table>
</body></html>
"""
