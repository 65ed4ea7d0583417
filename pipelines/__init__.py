"""shoprec: purchase history in; fresh, explained, monitored recommendations out.

Every pipeline step is one function in this package; the CLI (`pipelines.cli`), the DVC
stages (`dvc.yaml`) and the Airflow tasks (`dags/`) are thin wrappers around them.
"""
