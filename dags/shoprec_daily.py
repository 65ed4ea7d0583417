"""shoprec_daily: fresh recommendations every day with the published model.

ingest -> split -> features (-> materialize) -> candidates -> recommend (the last test window) ->
evaluate -> report (drift) -> gate -> score (every customer at the run's date) -> publish. The candidates
are cut with the published model's selection, for the test window only (docs/airflow.md).
The tasks and their edges are dvc.yaml's stages (`wire`, pipelines/orchestration/tasks.py); each task runs
its stage's own command in the run's directory (pipelines/orchestration/runs.py).
"""

from airflow.sdk import dag

from pipelines.orchestration.tasks import DAG_ARGS, wire


@dag(dag_id="shoprec_daily", schedule="@daily", doc_md=__doc__, **DAG_ARGS)
def shoprec_daily() -> None:
    wire("shoprec_daily")


shoprec_daily()
