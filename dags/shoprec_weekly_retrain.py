"""shoprec_weekly_retrain: retrain the LightGBM ranker every week and publish it if it passes the gate.

The whole DVC pipeline at the run's date: ingest -> split -> features (-> materialize) -> candidates ->
train -> recommend -> evaluate -> report -> gate (against the published model, on the same holdout) ->
score -> publish. The tasks and their edges are dvc.yaml's stages (`wire`, pipelines/orchestration/tasks.py);
each task runs its stage's own command in the run's directory (pipelines/orchestration/runs.py).
"""

from airflow.sdk import dag

from pipelines.orchestration.tasks import DAG_ARGS, wire


@dag(dag_id="shoprec_weekly_retrain", schedule="@weekly", doc_md=__doc__, **DAG_ARGS)
def shoprec_weekly_retrain() -> None:
    wire("shoprec_weekly_retrain")


shoprec_weekly_retrain()
