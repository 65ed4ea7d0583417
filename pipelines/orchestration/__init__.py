"""Orchestration: dvc.yaml read once, scheduled runs and the Airflow tasks, the run summary."""
