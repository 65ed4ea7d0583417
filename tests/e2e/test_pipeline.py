"""The DVC pipeline end to end on small synthetic data: it runs, a second run is a no-op, outputs are sane."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import output as run

pytestmark = pytest.mark.e2e


def test_repro_writes_every_output(project):
    for path in [
        "data/raw/synthetic.parquet",
        "data/clean/interactions.parquet",
        "data/split/test.parquet",
        "data/candidates/test.parquet",
        "models/ranker.json",
        "models/ranker.lgb",
        "plots/feature_importance.csv",
        "data/candidates/train_1.parquet",
        "data/candidates/train_2.parquet",
        "data/recommendations/test.parquet",
        "metrics/ingest.json",
        "metrics/split.json",
        "data/features/customer.parquet",
        "data/features/product.parquet",
        "data/features/customer_product.parquet",
        "data/feast/registry.db",
        "data/feast/online.db",
        "metrics/features.json",
        "metrics/feature_store.json",
        "metrics/candidates.json",
        "metrics/evaluate.json",
        "plots/ndcg_at_k.csv",
        "plots/recall_at_k.csv",
        "metrics/segments.json",
        "models/reference.parquet",
        "data/monitor/current.parquet",
        "data/feast/materialized.json",
        "reports/quality.html",
        "reports/quality.json",
        "reports/drift.html",
        "reports/drift.json",
        "metrics/drift.json",
        "reports/gate.json",
    ]:
        assert (project / path).is_file(), path


def test_second_repro_is_a_no_op(project):
    before = (project / "dvc.lock").read_text()
    out = run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Data and pipelines are up to date." in out
    assert (project / "dvc.lock").read_text() == before
    assert "up to date" in run([sys.executable, "-m", "dvc", "status"], project)


def test_outputs_are_consistent(project):
    ingest = json.loads((project / "metrics/ingest.json").read_text())
    assert ingest["rows_in"] == ingest["rows_out"] + sum(ingest["rows_dropped"].values())
    clean = pd.read_parquet(project / "data/clean/interactions.parquet")
    assert len(clean) == ingest["rows_out"]
    windows = json.loads((project / "data/split/windows.json").read_text())
    test = pd.read_parquet(project / "data/split/test.parquet")
    assert test.timestamp.min() >= pd.Timestamp(windows["test_start"]) and test.timestamp.max() < pd.Timestamp(
        windows["as_of"]
    )
    recs = pd.read_parquet(project / "data/recommendations/test.parquet")
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert recs.groupby("customer_id").size().max() == params["recommend"]["k"]
    assert (recs["reasons"] != "").mean() > 0.9 and (recs["sources"] != "").all()  # explained
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert evaluation["customers"] == recs.customer_id.nunique()
    assert 0 < evaluation["ranker"]["ndcg@10"] <= 1
    assert set(evaluation["sources"]) == set(params["candidates"]["sources"])


def test_the_online_store_serves_the_latest_snapshot(project):
    customers = pd.read_parquet(project / "data/features/customer.parquet")
    latest = customers.loc[customers.event_timestamp == customers.event_timestamp.max()].iloc[0]
    shoprec = str(Path(sys.executable).parent / "shoprec")
    out = run([shoprec, "features", "online", "--customer", latest.customer_id], project)
    profile = json.JSONDecoder().raw_decode(out[out.index("[") :])[0][0]
    assert profile["rfm_tier"] == latest.rfm_tier and profile["recency_days"] == latest.recency_days
    online = json.loads((project / "metrics/feature_store.json").read_text())["rows_online"]
    latest_count = (customers.event_timestamp == customers.event_timestamp.max()).sum()
    assert latest_count <= online["customer"] <= customers.customer_id.nunique()


def test_summary_names_the_outputs_and_the_figures(project):
    out = run([str(Path(sys.executable).parent / "shoprec"), "summary"], project)
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert f"{evaluation['ranker']['ndcg@10']:.4f}" in out
    assert "data/recommendations/test.parquet" in out
    drift = json.loads((project / "metrics/drift.json").read_text())
    assert f"drift      {drift['first_screen']['headline']}" in out  # the first screen's sentence
    assert "realised   nothing served before this as-of date" in out  # a plain repro: nothing published earlier


def test_a_changed_param_reruns_only_what_depends_on_it(own_project):
    params = yaml.safe_load((own_project / "params.yaml").read_text())
    params["evaluate"]["ks"] = [5, 10, 15, 20]
    (own_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run([sys.executable, "-m", "dvc", "repro"], own_project)
    assert "Running stage 'evaluate'" in out and "Running stage 'gate'" in out
    assert "Running stage 'ingest'" not in out and "Running stage 'train'" not in out
    assert "Running stage 'report'" not in out
    assert "ndcg@15" in json.loads((own_project / "metrics/evaluate.json").read_text())["ranker"]
