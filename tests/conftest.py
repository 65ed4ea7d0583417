"""Shared fixtures: tiny hand-made interactions, the real Online Retail file, a small synthetic file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = Path(os.environ.get("SHOPREC_ONLINE_RETAIL", ROOT.parent / "shared" / "data" / "online_retail.parquet"))


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    """The real UCI Online Retail file (override with $SHOPREC_ONLINE_RETAIL); required in CI."""
    if not ONLINE_RETAIL.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{ONLINE_RETAIL}: the Online Retail data is missing (set SHOPREC_ONLINE_RETAIL)")
        pytest.skip(f"{ONLINE_RETAIL} not found")
    return ONLINE_RETAIL


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic raw file in the Online Retail layout (about 20k rows)."""
    from pipelines.synth import generate

    path = tmp_path_factory.mktemp("synthetic") / "raw.parquet"
    generate(path, {"seed": 7, "rows": 20_000})
    return path


def interactions(rows: list[tuple]) -> pd.DataFrame:
    """Clean canonical interactions from (customer, item, day, order) tuples; day 0 = 2011-01-01."""
    base = pd.Timestamp("2011-01-01")
    return pd.DataFrame(
        {
            "order_id": [str(r[3]) for r in rows],
            "customer_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [base + pd.Timedelta(days=r[2]) for r in rows],
            "quantity": 1.0,
            "unit_price": 1.0,
            "country": "United Kingdom",
            "description": None,
            "category": None,
        }
    )
