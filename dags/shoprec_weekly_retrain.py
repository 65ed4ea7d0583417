"""shoprec_weekly_retrain: retrain the LightGBM ranker every week and publish it if it passes the gate.

The whole DVC pipeline at the run's date: ingest -> split -> features (-> materialize) -> candidates ->
train -> recommend -> evaluate -> report -> gate (against the published model, on the same holdout) ->
score -> publish. The edges are those of dvc.yaml (tests/unit/test_dags.py checks it); every task
calls the step's own function (pipelines/runs.py, pipelines/orchestrate.py).
"""

from datetime import datetime

from airflow.sdk import dag

from pipelines.orchestrate import DEFAULT_ARGS, PARAMS, prepare, step


@dag(
    dag_id="shoprec_weekly_retrain",
    schedule="@weekly",
    start_date=datetime(2010, 12, 1),  # runs may be dated back to the start of the UCI data (backfills)
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["shoprec"],
    doc_md=__doc__,
)
def shoprec_weekly_retrain() -> None:
    root = prepare()
    t = {name: step(name)(root) for name in ("ingest", "split", "features", "materialize", "candidates", "train")}
    t |= {name: step(name)(root) for name in ("recommend", "evaluate", "report", "gate", "score", "publish")}
    t["ingest"] >> [t["split"], t["features"], t["report"]]
    t["split"] >> [t["features"], t["materialize"], t["candidates"], t["train"], t["recommend"], t["evaluate"]]
    t["split"] >> [t["report"], t["gate"], t["score"], t["publish"]]
    t["features"] >> [t["materialize"], t["train"], t["recommend"], t["evaluate"], t["gate"], t["score"]]
    t["candidates"] >> [t["train"], t["recommend"], t["evaluate"], t["gate"], t["score"]]
    t["train"] >> [t["recommend"], t["report"], t["gate"], t["score"], t["publish"]]
    t["recommend"] >> [t["evaluate"], t["report"]]
    t["evaluate"] >> [t["gate"], t["publish"]]
    t["report"] >> t["gate"] >> t["publish"]
    t["score"] >> t["publish"]


shoprec_weekly_retrain()
