"""Evidently reports: recommendation quality and drift of the ranker's inputs, scores and labels.

Each report is saved as HTML and JSON under `reports/` and added, with a run of the ingested rows,
to a local Evidently workspace whose dashboard plots NDCG@10, recall@20, the share of drifted
features and the rows ingested over runs (`make evidently-ui`). The ranking figures that decide
anything are ours (pipelines/evaluation/metrics.py); Evidently renders them and tests the drift share.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.core import schema as s
from pipelines.core.files import write_json, write_text

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's UI and collector send usage data unless told not to
log = logging.getLogger(__name__)
EVIDENTLY_PROJECT = "shoprec"
LOCK_FILE = "shoprec-runs.lock"  # in the workspace: reports take turns  # the project in the Evidently workspace
NOT_RECOMMENDED = 10**6  # the rank a bought item that was not recommended gets in Evidently's table


def recsys_table(recs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Evidently's recsys layout: one row per recommendation (rank, target) and one per bought item
    that was not recommended (target 1, a rank past every list), sorted by customer and rank."""
    bought = truth[[s.CUSTOMER, s.ITEM]].drop_duplicates().assign(target=1)
    lists = recs[recs[s.CUSTOMER].isin(bought[s.CUSTOMER].unique())][[s.CUSTOMER, s.ITEM, "rank"]]
    table = lists.merge(bought, on=[s.CUSTOMER, s.ITEM], how="outer")
    table["rank"] = table["rank"].fillna(NOT_RECOMMENDED).astype("int64")
    table["target"] = table["target"].fillna(0).astype("int64")
    return table.sort_values([s.CUSTOMER, "rank"], kind="stable").reset_index(drop=True)


def quality_report(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    history: pd.DataFrame,
    k: int,
    recall_k: int,
    timestamp: datetime | None = None,
    tag: str = "quality",
) -> Snapshot:
    """Evidently's recommendation-quality metrics, with the training purchases for novelty and popularity bias;
    `tag` tells the offline holdout's runs (quality) from the served lists' (realised) on the dashboard."""
    from evidently import DataDefinition, Dataset, Recsys, Report
    from evidently.metrics import (
        MAP,
        MRR,
        NDCG,
        HitRate,
        Novelty,
        Personalization,
        PopularityBiasMetric,
        PrecisionTopK,
        RecallTopK,
    )

    ids = [s.CUSTOMER, s.ITEM]
    ranking = Recsys(
        user_id=s.CUSTOMER, item_id=s.ITEM, target="target", prediction="rank", recommendations_type="rank"
    )
    current = Dataset.from_pandas(
        recsys_table(recs, truth),
        data_definition=DataDefinition(
            numerical_columns=["rank", "target"], categorical_columns=ids, ranking=[ranking]
        ),
    )
    train = Dataset.from_pandas(
        history[ids].drop_duplicates().astype(str), data_definition=DataDefinition(categorical_columns=ids)
    )
    metrics = [
        NDCG(k=k),
        RecallTopK(k=recall_k),
        PrecisionTopK(k=k),
        MAP(k=k),
        MRR(k=k),
        HitRate(k=k),
        Personalization(k=k),
        Novelty(k=k),
        PopularityBiasMetric(k=k, normalize_arp=True),  # its widget also shows catalogue coverage and Gini
    ]
    return Report(metrics, tags=[tag]).run(
        current,
        None,
        additional_data={"current_train_data": train},
        timestamp=timestamp,
        metadata=ran_at(),
        name="Recommendation quality" if tag == "quality" else "Realised performance of the served lists",
    )


def ingest_report(rows: int, timestamp: datetime | None = None) -> Snapshot:
    """The number of clean interactions ingested: a run of the dashboard. Evidently counts the rows of a
    frame without columns (given the 10M lines, it spent 10 s on column statistics no panel shows)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import RowCount

    data = Dataset.from_pandas(pd.DataFrame(index=pd.RangeIndex(rows)), data_definition=DataDefinition())
    return Report([RowCount()], tags=["ingest"]).run(
        data, None, timestamp=timestamp, metadata=ran_at(), name="Ingested rows"
    )


def dashboard(k: int, recall_k: int) -> Any:
    """Panels over runs: NDCG@k and recall@recall_k offline (the holdout) and realised (the served lists on
    the purchases that followed), share of drifted features, rows ingested."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
    from evidently.sdk.panels import counter_panel, line_plot_panel

    def at(metric: str, at_k: int, tag: str) -> PanelMetric:
        labels = {"k": str(at_k), "column": "value"}
        return PanelMetric(legend=f"{metric}@{at_k} {tag}", tags=[tag], metric=metric, metric_labels=labels)

    series = {
        f"NDCG@{k} (offline)": at("NDCG", k, "quality"),
        f"NDCG@{k} (realised)": at("NDCG", k, "realised"),
        f"Recall@{recall_k} (offline)": at("RecallTopK", recall_k, "quality"),
        f"Recall@{recall_k} (realised)": at("RecallTopK", recall_k, "realised"),
        "Share of drifted features": PanelMetric(
            legend="share", tags=["drift"], metric="DriftedColumnsCount", metric_labels={"value_type": "share"}
        ),
        "Rows ingested": PanelMetric(legend="rows", tags=["ingest"], metric="RowCount"),
    }
    counters = [counter_panel(f"Last {title}", [m], aggregation="last", size="half") for title, m in series.items()]
    plotted = {  # the realised figures beside the offline ones, on one time axis
        f"NDCG@{k}, offline and realised": [series[f"NDCG@{k} (offline)"], series[f"NDCG@{k} (realised)"]],
        f"Recall@{recall_k}, offline and realised": [
            series[f"Recall@{recall_k} (offline)"],
            series[f"Recall@{recall_k} (realised)"],
        ],
        **{title: [series[title]] for title in ("Share of drifted features", "Rows ingested")},
    }
    lines = [line_plot_panel(title, metrics, size="half") for title, metrics in plotted.items()]
    panels = counters + lines
    return DashboardModel(tabs=[DashboardTabModel(title="Monitoring", panels=[p.id for p in panels])], panels=panels)


def ran_at() -> dict[str, str]:
    """The wall clock of a run, kept beside its timestamp (the data's as-of date, the dashboard's time axis)."""
    return {"ran_at": datetime.now().isoformat(timespec="seconds")}


def add_runs(
    workspace_dir: str | Path, snapshots: list[Snapshot], k: int, recall_k: int, run_key: str | None = None
) -> dict[str, Any]:
    """Add the snapshots to the local workspace's shoprec project (created once); rewrite its dashboard.

    With a `run_key` (a scheduled run's directory), the snapshots an earlier try of the same run added
    are replaced, so re-running a date leaves one set of runs on the dashboard.
    """
    with _workspace_lock(workspace_dir):
        return _add_runs(workspace_dir, snapshots, k, recall_k, run_key)


@contextlib.contextmanager
def _workspace_lock(workspace_dir: str | Path) -> Iterator[None]:
    """One report at a time in the shared workspace: the daily and weekly runs may report at once, and
    the project, the dashboard and the run index are read, changed and written whole."""
    path = Path(workspace_dir)
    path.mkdir(parents=True, exist_ok=True)
    with (path / LOCK_FILE).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _add_runs(
    workspace_dir: str | Path, snapshots: list[Snapshot], k: int, recall_k: int, run_key: str | None
) -> dict[str, Any]:
    from evidently.ui.workspace import Workspace

    ws = Workspace(str(workspace_dir))
    found = ws.search_project(EVIDENTLY_PROJECT)
    project = found[0] if found else ws.create_project(EVIDENTLY_PROJECT, description="shoprec: quality, drift, ingest")
    ws.save_dashboard(project.id, dashboard(k, recall_k))
    index_path = Path(workspace_dir) / "shoprec-runs.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    existing = {str(s) for s in ws.list_runs(project.id)}
    for old in index.pop(run_key, []) if run_key else []:
        if old in existing:
            ws.delete_run(project.id, old)
    added = [str(ws.add_run(project.id, snapshot, include_data=False).id) for snapshot in snapshots]
    if run_key:
        write_json({**index, run_key: added}, index_path)
    return {"project": str(project.id), "snapshots": len(ws.list_runs(project.id))}


def report_stage(
    recs_path: str | Path,
    split_dir: str | Path,
    reference_path: str | Path,
    current_path: str | Path,
    clean_path: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The report step: quality and drift reports (HTML, JSON), the drift summary (a DVC metric) and
    three runs (quality, drift, ingest) in the Evidently workspace. The runs are stamped with the data's
    as-of date, so DVC and scheduled runs share one time axis; with `monitor.run_key`, they replace the
    runs an earlier report with that key added."""
    from pipelines.data.split import read_windows
    from pipelines.evaluation.evaluate import holdout
    from pipelines.monitoring.drift import drift_report
    from pipelines.monitoring.first_screen import first_screen, render_first_screen
    from pipelines.monitoring.inputs import input_drift
    from pipelines.ranking.dataset import labels

    monitor, out_dir = params["monitor"], Path(out_dir)
    k, recall_k = int(monitor["k"]), int(monitor["recall_k"])
    windows = read_windows(Path(split_dir) / "windows.json")
    timestamp = windows.as_of.to_pydatetime()
    history, truth, _ = holdout(split_dir, params["evaluate"].get("max_customers"))
    current = pd.read_parquet(current_path)
    current["label"] = labels(current, truth)  # the scored rows are the evaluated customers' candidates
    quality = quality_report(pd.read_parquet(recs_path), truth, history, k, recall_k, timestamp)
    method = {
        key: monitor[f"drift_{key}"] for key in ("method", "threshold") if monitor.get(f"drift_{key}") is not None
    }
    reference = pd.read_parquet(reference_path)
    max_share = float(params["gate"]["max_drift_share"])
    drift, summary = drift_report(reference, current, windows.train_start, max_share, method, timestamp)
    clean = pd.read_parquet(clean_path)
    summary["inputs"] = input_drift(clean, windows.as_of, monitor["inputs"])
    summary["first_screen"] = first_screen(summary, params["gate"])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, snapshot in (("quality", quality), ("drift", drift)):
        snapshot.save_html(str(out_dir / f"{name}.html"))
        snapshot.save_json(str(out_dir / f"{name}.json"))
    write_text(render_first_screen(summary, windows.as_of), out_dir / "monitoring.html")
    write_json(summary, metrics_path)
    ingest = ingest_report(len(clean), timestamp)
    summary["workspace"] = add_runs(monitor["workspace"], [quality, drift, ingest], k, recall_k, monitor["run_key"])
    log.info("reports: %s -> %s", summary["first_screen"]["headline"], out_dir)
    return summary
