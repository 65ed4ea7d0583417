"""The Evidently reports of the pipeline run: they agree with our metrics, render in headless Chromium
without JavaScript errors and show the key numbers, and the Evidently UI shows runs side by side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.browser import open_report
from tests.e2e.conftest import BIN, free_port, http_json, run, wait_for

pytestmark = pytest.mark.e2e


def evidently_value(report: dict, metric: str, k: int) -> float:
    """A top-k metric's value at k (Evidently returns a table per k; row k-1 is @k)."""
    for m in report["metrics"]:
        if m["config"]["type"].endswith(f":{metric}"):
            return float(m["value"]["value"][str(k - 1)])
    raise KeyError(metric)


def test_evidently_agrees_with_our_ranking_metrics(project):
    ours = json.loads((project / "metrics/evaluate.json").read_text())["ranker"]
    theirs = json.loads((project / "reports/quality.json").read_text())
    for metric, name, k in [
        ("NDCG", "ndcg", 10),
        ("RecallTopK", "recall", 20),
        ("PrecisionTopK", "precision", 10),
        ("HitRate", "hitrate", 10),
        ("MRR", "mrr", 10),
    ]:
        assert evidently_value(theirs, metric, k) == pytest.approx(ours[f"{name}@{k}"], abs=1e-9), metric


def test_the_drift_summary_is_the_reports_figure(project):
    summary = json.loads((project / "metrics/drift.json").read_text())
    report = json.loads((project / "reports/drift.json").read_text())
    counts = [m for m in report["metrics"] if m["config"]["type"].endswith(":DriftedColumnsCount")][0]["value"]
    assert summary["drifted"] == counts["count"] and summary["share"] == pytest.approx(counts["share"])
    assert summary["features"] >= 30 and summary["current_rows"] == summary["reference_rows"] == 5000
    assert 0 < summary["reference_label_rate"] < 1 and 0 < summary["current_label_rate"] < 1
    failed = {  # Evidently's own verdict per column: its value-drift test failed
        t["metric_config"]["params"]["column"]
        for t in report["tests"]
        if t["status"] == "FAIL" and "Value Drift" in t["name"]
    }
    assert set(summary["drifted_features"]) == failed - {"score", "label"}


def shown(value: float) -> str:
    """A figure as the report's counter displays it: three decimals, trailing zeros dropped (0.330 is 0.33)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


@pytest.mark.slow  # Chromium rendering both reports: 10 s (keeps `make test` under 8 minutes)
def test_the_reports_render_in_chromium_and_show_the_key_numbers(project, browser, tmp_path):
    ours = json.loads((project / "metrics/evaluate.json").read_text())["ranker"]
    drift = json.loads((project / "metrics/drift.json").read_text())
    quality = open_report(browser, project / "reports/quality.html", tmp_path / "quality.png")
    assert not quality.page_errors and not quality.console_errors and not quality.failed_requests, quality
    assert "Not implemented" not in quality.text
    assert "NDCG (top-10)" in quality.text and shown(ours["ndcg@10"]) in quality.text
    assert "Recall (top-20)" in quality.text and shown(ours["recall@20"]) in quality.text
    assert "Novelty (top-10)" in quality.text and "Popularity bias (top-10)" in quality.text

    report = open_report(browser, project / "reports/drift.html", tmp_path / "drift.png")
    assert not report.page_errors and not report.console_errors and not report.failed_requests, report
    assert f"({drift['drifted']} out of {drift['features']})" in report.text
    assert "Drift in column 'score'" in report.text and "Drift in column 'label'" in report.text
    for png in ("quality.png", "drift.png"):
        assert (tmp_path / png).stat().st_size > 50_000  # a drawn page, not a blank one

    # The reviewer's first screen: the sentence, the verdict and what to look at, above the fold.
    screen = drift["first_screen"]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto((project / "reports/monitoring.html").resolve().as_uri(), wait_until="load")
    page.screenshot(path=str(tmp_path / "first_screen.png"))  # the viewport only: what is seen first
    headline, verdict = page.locator("#headline"), page.locator("#verdict")
    assert headline.inner_text() == screen["headline"]
    assert verdict.inner_text() == ("BLOCKS PUBLISHING" if screen["blocks"] else "DOES NOT BLOCK")
    boxes = [locator.bounding_box() for locator in (headline, verdict, page.locator("#look-at"))]
    assert all(box and box["y"] + box["height"] < 900 for box in boxes), boxes  # on the first screen
    inputs = page.locator("#inputs tr").all_inner_texts()
    assert len(inputs) == len(drift["inputs"]["checks"]) and len(page.locator("#features tr").all()) == len(
        drift["verdicts"]
    )
    context.close()
    assert (tmp_path / "first_screen.png").stat().st_size > 20_000


@pytest.fixture
def evidently_ui(project):
    """`evidently ui` over the project's workspace on a free loopback port, after a second report run."""
    run([sys.executable, "-m", "dvc", "repro", "-f", "-s", "report"], project)  # a second run of the reports
    port = free_port()
    log = (project / "ui.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "evidently"), "ui", "--workspace", "reports/workspace", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project, stdout=log, stderr=subprocess.STDOUT, env={"DO_NOT_TRACK": "1", "PATH": str(BIN)},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/api/version", server, project / "ui.log", timeout=60)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.slow  # a second run of the report stage, then the UI in Chromium: 33 s
def test_the_evidently_ui_shows_two_runs_side_by_side(project, evidently_ui, browser, tmp_path):
    (project_info,) = [p for p in http_json(evidently_ui + "/api/projects") if p["name"] == "shoprec"]
    pid = project_info["id"]
    snapshots = http_json(evidently_ui + f"/api/projects/{pid}/snapshots")
    assert len(snapshots) >= 6  # quality, drift and ingest runs of two pipeline runs
    as_of = json.loads((project / "data/split/windows.json").read_text())["as_of"][:10]
    assert {s["timestamp"][:10] for s in snapshots} == {as_of}  # the data's date: one time axis with scheduled runs
    assert all(s["metadata"]["ran_at"] > as_of for s in snapshots)  # the wall clock, kept beside it
    panels = {p["title"] for p in http_json(evidently_ui + f"/api/v2/dashboards/{pid}")["panels"]}
    assert {"NDCG@10, offline and realised", "Recall@20, offline and realised", "Share of drifted features"} <= panels
    series = {
        "ndcg": {
            "metric": "evidently:metric_v2:NDCG",
            "metric_labels": {"k": "10", "column": "value"},
            "tags": ["quality"],
        },
        "drift": {"metric": "evidently:metric_v2:DriftedColumnsCount", "metric_labels": {"value_type": "share"}},
        "rows": {"metric": "evidently:metric_v2:RowCount", "metric_labels": {}},
    }
    body = {"series_filter": [{"tags": [], "metadata": {}, **f} for f in series.values()]}
    data = http_json(evidently_ui + f"/api/v2/snapshots/{pid}/data_series_batch", body)
    values: dict[int, list[float]] = {}
    for s in data["series"]:  # one series per filter (and per distinct metric parameters)
        values.setdefault(s["filter_index"], [v for v in s["values"] if v is not None])
    ndcg, drift, rows = (values[i] for i in range(3))
    assert len(ndcg) >= 2 and len(drift) >= 2 and len(rows) >= 2  # two runs side by side
    ours = json.loads((project / "metrics/evaluate.json").read_text())["ranker"]["ndcg@10"]
    assert ndcg[-1] == pytest.approx(ours)  # the pipeline's NDCG@10 is on the dashboard
    assert rows[-1] == json.loads((project / "metrics/ingest.json").read_text())["rows_out"]  # the clean lines

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{evidently_ui}/projects/{pid}", wait_until="networkidle", timeout=60_000)
    page.wait_for_selector("text=Share of drifted features", timeout=60_000)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    text = page.evaluate("() => document.body.innerText")
    page.close()
    assert not errors and "NDCG@10" in text and "Rows ingested" in text
