"""The Airflow side of scheduled runs: task settings, the failure callback, the trigger form, and
`wire`, which builds a DAG's tasks and edges from dvc.yaml (`pipelines.orchestration.stages`): one task per stage,
running the stage's own command in the run's directory (`pipelines.orchestration.runs.run_stage`).

Only the standard library, yaml and airflow.sdk are imported here: parsing a DAG file stays fast,
and the pipeline's heavy modules load inside the tasks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, Param, get_current_context, task

from pipelines.core.config import CHECKOUT
from pipelines.orchestration import stages

log = logging.getLogger("shoprec")
# The project the runs work in (its params.yaml, feature_repo/, runs/, published/): this checkout,
# or SHOPREC_PROJECT (tests point it at a scratch copy).
PROJECT = Path(os.environ.get("SHOPREC_PROJECT", CHECKOUT))


def log_failure(context: dict[str, Any]) -> None:
    """One line per failed try: which task, which run date, which try, and why."""
    ti = context["task_instance"]
    error = context.get("exception")
    log.error(
        "shoprec: %s.%s failed for %s (try %s of %s): %s",
        ti.dag_id,
        ti.task_id,
        as_of(context).date(),
        ti.try_number,
        ti.max_tries + 1,
        str(error).splitlines()[0] if error else "unknown error",
    )


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "shoprec",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "on_failure_callback": log_failure,
}

PARAMS: dict[str, Any] = {
    "data_path": Param(
        None, type=["null", "string"], description="Raw export to ingest (default: data.raw in params.yaml)."
    ),
    "k": Param(20, type="integer", minimum=1, maximum=100, description="Recommendations published per customer."),
}


# What both DAGs share. They start in 2010-12 so that runs can be dated within the embedded synthetic
# data and the UCI data (backfills); catchup is off, one run at a time (they publish to one place).
DAG_ARGS: dict[str, Any] = {
    "start_date": datetime(2010, 12, 1),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
    "params": PARAMS,
    "tags": ["shoprec"],
}


def asset(name: str) -> Asset:
    """An asset the runs produce, named shoprec/<name>, at its place in the project."""
    return Asset(name=f"shoprec/{name}", uri=f"file://{PROJECT}/{name}")


def outlets(stage: str) -> list[Asset]:
    """What a stage's task updates: its outputs in the run's directory (one asset per stage, whatever the
    date), and for publish, report and realised the deployments every run shares (the published versions,
    the Evidently workspace)."""
    workspace = [asset("reports/workspace")]
    shared = {"publish": [asset("published")], "report": workspace, "realised": workspace}
    return [Asset(name=f"shoprec/runs/{stage}", uri=f"file://{PROJECT}/runs/{stage}"), *shared.get(stage, [])]


# The dvc.yaml stages each DAG leaves out: daily scores with the published model, weekly trains one.
LEFT_OUT = {"shoprec_daily": ("generate", "train"), "shoprec_weekly_retrain": ("generate",)}


def dag_stages(dag_id: str) -> list[str]:
    """The stages a DAG runs, in dvc.yaml's order."""
    return [name for name in stages.load() if name not in LEFT_OUT[dag_id]]


def as_of(context: dict[str, Any]) -> datetime:
    """The run's as-of date: its logical date, or when it was asked to run (manual runs have none)."""
    return context.get("logical_date") or context["dag_run"].run_after


@contextmanager
def no_retry_on_bad_input() -> Iterator[None]:
    """Bad input (InputError: a missing file, a bad column, no published model) fails the task at
    once with its one-line message: retrying cannot fix it. Anything else is retried."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.core.errors import InputError

    try:
        yield
    except InputError as exc:
        raise AirflowFailException(str(exc)) from None


@task(task_id="prepare")
def prepare() -> str:
    """Lay out this run's directory (params with the run's date and the trigger form's values)."""
    from pipelines.orchestration.runs import prepare as lay_out

    context = get_current_context()
    p = context["params"]
    with no_retry_on_bad_input():
        run = lay_out(PROJECT, context["dag"].dag_id, as_of(context), p.get("data_path"), p.get("k"))
    return str(run.root)


def stage_task(stage: stages.Stage, names: list[str]) -> Any:
    """The task of one dvc.yaml stage (task id = the stage's name; its outputs are its assets)."""

    @task(task_id=stage.name, outlets=outlets(stage.name))
    def run(root: str) -> Any:
        from pipelines.orchestration.runs import Run, run_stage, stage_json

        with no_retry_on_bad_input():
            result = run_stage(Run(Path(root)), stage.name)
        if stage.name == "publish":
            return published(Run(Path(root)), stage_json(Run(Path(root)), "publish", "outs"), names)
        return result

    return run


def wire(dag_id: str) -> None:
    """Inside a @dag function: the prepare task, then one task per stage of the DAG, with dvc.yaml's edges."""
    spec, names = stages.load(), dag_stages(dag_id)
    root = prepare()
    tasks = {name: stage_task(spec[name], names)(root) for name in names}
    for upstream, downstream in sorted(stages.edges(spec, set(names))):
        tasks[upstream] >> tasks[downstream]


def published(run: Any, result: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Record the run; a blocked gate skips publishing and says why (the task shows as skipped)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.orchestration.runs import record

    context = get_current_context()
    record(run, context["dag"].dag_id, context["run_id"], names)
    if not result["published"] and result["reason"].startswith("gate blocked"):
        raise AirflowSkipException(f"shoprec: not published: {result['reason']}")
    return summary(result)


def summary(result: Any) -> Any:
    """What a task returns to XCom: a small JSON-safe summary, not whole tables."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if isinstance(v, str | int | float | bool | type(None))}
    return None
