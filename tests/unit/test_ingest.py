"""Ingest: cleaning rules, the quality summary, and one-line errors that leave earlier outputs intact."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.core import schema as s
from pipelines.core.config import load_params
from pipelines.data.adapters import ONLINE_RETAIL, to_canonical
from pipelines.data.ingest import clean, ingest
from tests.conftest import ROOT

pytestmark = pytest.mark.unit
PARAMS = load_params(ROOT / "params.yaml")


def raw_rows() -> pd.DataFrame:
    """One row per cleaning rule plus two good rows (one of them duplicated) and an absurd quantity."""
    rows = [
        ("1", "A", "good", 2, "2011-01-01 10:00:00", 1.5, 1.0, "UK"),
        ("1", "B", "good too", 1, "2011-01-01 10:00:00", 2.0, 1.0, "UK"),
        ("1", "B", "good too", 1, "2011-01-01 10:00:00", 2.0, 1.0, "UK"),  # duplicate
        ("2", "A", "guest", 1, "2011-01-02 10:00:00", 1.5, None, "UK"),  # missing_customer
        ("C3", "A", "cancel", -2, "2011-01-03 10:00:00", 1.5, 1.0, "UK"),  # cancelled
        ("4", "A", "return", -1, "2011-01-04 10:00:00", 1.5, 1.0, "UK"),  # non_positive_quantity
        ("5", "A", "free", 1, "2011-01-05 10:00:00", 0.0, 1.0, "UK"),  # non_positive_price
        ("6", "POST", "postage", 1, "2011-01-06 10:00:00", 18.0, 1.0, "UK"),  # excluded_item
        ("7", "A", "paper craft", 80995, "2011-01-07 10:00:00", 2.1, 1.0, "UK"),  # capped quantity
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ],
    )


def test_each_rule_drops_its_row_and_counts_it():
    canon = to_canonical(raw_rows(), ONLINE_RETAIL, "f").frame
    out, dropped, capped = clean(canon, {"max_quantity": 10000, "exclude_items": ["POST"]})
    assert dropped == {
        "missing_customer": 1,
        "missing_item": 0,
        "cancelled": 1,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "excluded_item": 1,
        "duplicate": 1,
    }
    assert capped == 1  # the 80995 line is a purchase all the same: kept, its quantity capped
    assert out[s.ITEM].tolist() == ["A", "B", "A"]
    assert out[s.QUANTITY].tolist() == [2.0, 1.0, 10000.0]
    assert list(out.columns) == list(s.COLUMNS)


def test_ingest_writes_pseudonymised_parquet_and_quality_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY", "test-key")
    src = tmp_path / "raw.csv"
    raw_rows().to_csv(src, index=False)
    summary = ingest(src, tmp_path / "out", PARAMS, tmp_path / "q.json")
    out = pd.read_parquet(tmp_path / "out" / "interactions.parquet")
    assert summary["rows_in"] == 9 and summary["rows_out"] == 4  # POST is kept: exclude_items is empty by default
    assert summary["rows_capped_quantity"] == 1
    assert summary["rows_in"] == summary["rows_out"] + sum(summary["rows_dropped"].values())
    assert json.loads((tmp_path / "q.json").read_text()) == json.loads(json.dumps(summary))
    assert out[s.CUSTOMER].nunique() == 1 and out[s.CUSTOMER].iloc[0] != "1"
    assert summary["dropped_features"] == {s.CATEGORY: s.FEATURES_NEEDING[s.CATEGORY]}


def test_without_optional_columns_the_dropped_features_are_named(tmp_path):
    src = tmp_path / "shop.csv"
    pd.DataFrame({"user": ["u1", "u2"], "sku": ["a", "b"], "at": ["2011-01-01", "2011-01-02"]}).to_csv(src, index=False)
    params = {
        **PARAMS,
        "data": {"format": "mapped", "columns": {"customer_id": "user", "item_id": "sku", "timestamp": "at"}},
    }
    summary = ingest(src, tmp_path / "out", params)
    assert summary["rows_out"] == 2
    assert set(summary["dropped_features"]) == {s.ORDER, s.QUANTITY, s.PRICE, s.COUNTRY, s.DESCRIPTION, s.CATEGORY}


def _bad_inputs(tmp_path):
    good = raw_rows()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (tmp_path / "not.parquet").write_text("InvoiceNo,StockCode\n1,2\n")
    (tmp_path / "header_only.csv").write_text(",".join(good.columns) + "\n")
    good.drop(columns="StockCode").to_csv(tmp_path / "no_item.csv", index=False)
    good.assign(Quantity=["x"] * len(good)).to_csv(tmp_path / "bad_qty.csv", index=False)
    good.assign(InvoiceDate=["31/31/2011"] * 3 + list(good.InvoiceDate[3:])).to_csv(
        tmp_path / "bad_dates.csv", index=False
    )
    return {
        "missing.csv": "file not found",
        "empty.csv": "file is empty",
        "binary.csv": "binary file",
        "not.parquet": "cannot be read as parquet",
        "header_only.csv": "no data rows",
        "no_item.csv": "required column 'StockCode' (item_id) missing",
        "bad_qty.csv": "column 'Quantity' has 9 non-numeric value(s)",
        "bad_dates.csv": "column 'InvoiceDate' has 3 unparseable timestamp(s)",
    }


def test_bad_inputs_get_one_line_errors_and_keep_earlier_outputs(tmp_path):
    good = tmp_path / "good.csv"
    raw_rows().to_csv(good, index=False)
    out, metrics = tmp_path / "out", tmp_path / "quality.json"
    runner = CliRunner()

    def run_ingest(data):
        args = ["ingest", "--data", str(data), "--out", str(out), "--metrics", str(metrics)]
        return runner.invoke(app, [*args, "--params", str(ROOT / "params.yaml")])

    ok = run_ingest(good)
    assert ok.exit_code == 0, ok.output
    before = ((out / "interactions.parquet").read_bytes(), metrics.read_bytes())
    for name, message in _bad_inputs(tmp_path).items():
        res = run_ingest(tmp_path / name)
        assert res.exit_code == 2, (name, res.output)
        lines = [line for line in res.stderr.splitlines() if line.startswith("shoprec: error:")]
        assert len(lines) == 1 and message in lines[0] and name in lines[0], (name, res.stderr)
        assert "Traceback" not in res.output
        assert ((out / "interactions.parquet").read_bytes(), metrics.read_bytes()) == before, name
    assert sorted(p.name for p in out.iterdir()) == ["interactions.parquet"]  # no temp files left behind


def test_the_real_command_prints_no_traceback(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "ingest",
            "--data",
            str(tmp_path / "nope.parquet"),
            "--out",
            str(tmp_path),
            "--params",
            str(ROOT / "params.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "shoprec ingest: running",
        f"shoprec: error: {tmp_path / 'nope.parquet'}: file not found",
    ]
