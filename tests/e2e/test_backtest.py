"""`shoprec backtest` on a shop's own export (`data.format: mapped`): only customer, item and time named,
odd column names, CSV, string ids; the contract holds and the ranker beats its best single source."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

COLUMNS = {"customer_id": "shopper", "item_id": "sku", "timestamp": "ordered_at", "quantity": "qty"}


def test_backtest_reads_a_mapped_export_with_only_the_required_columns(synthetic_path, tmp_path):
    raw = pd.read_parquet(synthetic_path).dropna(subset=["CustomerID"])
    raw = raw[~raw["InvoiceNo"].astype(str).str.startswith("C")]  # a mapped export without cancel marks
    export = pd.DataFrame(
        {
            "shopper": "u-" + raw["CustomerID"].astype(int).astype(str),
            "sku": "sku-" + raw["StockCode"].astype(str),
            "ordered_at": pd.to_datetime(raw["InvoiceDate"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "qty": raw["Quantity"],
        }
    )
    export.to_csv(tmp_path / "export.csv", index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] = {"raw": "export.csv", "format": "mapped", "columns": COLUMNS, "cancel_prefix": None}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    shoprec = str(Path(sys.executable).parent / "shoprec")
    run([shoprec, "backtest", "--data", "export.csv", "--out", "bt", "--params", "params.yaml"], tmp_path)

    recs = pd.read_parquet(tmp_path / "bt" / "recommendations.parquet")
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs["user_id"].str.startswith("u-").all() and recs["item_id"].str.startswith("sku-").all()
    assert set(recs["item_id"]) <= set(export["sku"])
    assert recs.groupby("user_id")["rank"].max().max() == 10
    metrics = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    best = max(m["ndcg@10"] for m in metrics["sources"].values())
    assert metrics["ranker"]["ndcg@10"] >= best, (metrics["ranker"]["ndcg@10"], best)
