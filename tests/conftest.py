"""Shared fixtures: tiny hand-made interactions, the real Online Retail file, a small synthetic file."""

from __future__ import annotations

import contextlib
import os
import socket
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


SERVICES = {"PostgreSQL": ("127.0.0.1", 5432), "Redis": ("127.0.0.1", 6379)}


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def services() -> dict[str, tuple[str, int]]:
    """PostgreSQL and Redis on 127.0.0.1: skipped where absent, a failure under REQUIRE_SERVICES=1 (CI)."""
    missing = [f"{name} ({host}:{port})" for name, (host, port) in SERVICES.items() if not _listening(host, port)]
    if missing:
        message = f"service(s) not reachable: {', '.join(missing)}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    return SERVICES


def scratch_database(name: str = "shoprec_test") -> str:
    """Create PostgreSQL database `name` on 127.0.0.1 unless it exists (another xdist worker may be
    creating it at the same moment) and return its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(f"CREATE DATABASE {name}")  # unless a concurrent test just did
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic raw file in the Online Retail layout (about 20k rows)."""
    from pipelines.data.synthetic import generate

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


def feature_project(root: Path, clean: pd.DataFrame, windows, store: str = "local", env: dict | None = None):
    """A copy of feature_repo/ under `root` with sources built from `clean`, applied: (store, params)."""
    from pipelines.features.build import build_features
    from pipelines.features.store import scratch_store
    from tests.helpers import shipped

    repo = str(root / "feature_repo")
    params = shipped("features", repo=repo, every_days=7, active_days=365, clusters=2, store=store)
    if not (root / "feature_repo").exists():
        import shutil

        shutil.copytree(ROOT / "feature_repo", root / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    return scratch_store(root, build_features(clean, windows, params), params, env), params
