"""The recommend step: the test cutoff's candidates ranked with the trained model (top k with reasons)
and a sample of the scored inputs for drift monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.compute import open_backend
from pipelines.core.files import write_parquet
from pipelines.core.partitions import customer_partitions
from pipelines.data.split import read_windows
from pipelines.ranking.explain import contribution_method
from pipelines.ranking.inference import rank


def recommend_stage(
    cands_dir: str | Path,
    split_dir: str | Path,
    model_dir: str | Path,
    out_path: str | Path,
    sample_path: str | Path,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The recommend step: score the test cutoff's candidates; write the top k per customer with reasons,
    and a sample of the scored inputs for drift monitoring (`sample_path`)."""
    method = contribution_method(params)
    w = read_windows(Path(split_dir) / "windows.json")
    parts, rows = customer_partitions(Path(cands_dir) / "test.parquet")
    monitor = params["monitor"]
    with open_backend(params["compute"]) as backend:
        recs, sample = rank(
            model_dir,
            parts,
            rows,
            w.test_start,
            params["features"],
            int(params["recommend"]["k"]),
            backend,
            int(monitor["sample_rows"]),
            int(monitor["seed"]),
            method,
        )
    write_parquet(recs, out_path)
    write_parquet(sample, sample_path)
    return recs
