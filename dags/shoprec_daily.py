"""shoprec_daily: fresh recommendations every day with the published model.

ingest -> split -> features (-> materialize) -> candidates -> recommend (the last test window) ->
evaluate -> report (drift) -> gate -> score (every customer at the run's date) -> publish.
The edges are those of dvc.yaml between the same stages (tests/unit/test_dags.py checks it);
every task calls the step's own function (pipelines/runs.py, pipelines/orchestrate.py).
"""

from airflow.sdk import dag

from pipelines.orchestrate import DAG_ARGS, prepare, step


@dag(dag_id="shoprec_daily", schedule="@daily", doc_md=__doc__, **DAG_ARGS)
def shoprec_daily() -> None:
    root = prepare()
    t = {name: step(name)(root) for name in ("ingest", "split", "features", "materialize", "candidates")}
    t |= {name: step(name)(root) for name in ("recommend", "evaluate", "report", "gate", "score", "publish")}
    t["ingest"] >> [t["split"], t["features"], t["report"]]
    t["split"] >> [t["features"], t["materialize"], t["candidates"], t["recommend"], t["evaluate"], t["report"]]
    t["split"] >> [t["gate"], t["score"], t["publish"]]
    t["features"] >> [t["materialize"], t["recommend"], t["evaluate"], t["gate"], t["score"]]
    t["candidates"] >> [t["recommend"], t["evaluate"], t["gate"], t["score"]]
    t["recommend"] >> [t["evaluate"], t["report"]]
    t["evaluate"] >> [t["gate"], t["publish"]]
    t["report"] >> t["gate"] >> t["publish"]
    t["score"] >> t["publish"]


shoprec_daily()
