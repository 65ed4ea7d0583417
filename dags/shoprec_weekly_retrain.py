"""shoprec_weekly_retrain: retrain the LightGBM ranker every week and publish it if it passes the gate.

The whole DVC pipeline at the run's date: ingest -> split -> features (-> materialize) -> candidates ->
train -> recommend -> evaluate -> report -> gate (against the published model, on the same holdout) ->
score -> publish. The edges are those of dvc.yaml (tests/unit/test_dags.py checks it); every task
calls the step's own function (pipelines/runs.py, pipelines/orchestrate.py).
"""

from airflow.sdk import dag

from pipelines.orchestrate import DAG_ARGS, prepare, step


@dag(dag_id="shoprec_weekly_retrain", schedule="@weekly", doc_md=__doc__, **DAG_ARGS)
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
