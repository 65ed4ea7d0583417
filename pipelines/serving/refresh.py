"""Which published lists a daily run keeps: a customer's list is scored again only when it is due.

With `publish.reuse_lists` (the daily run: `prepare` copies the live version's lists there), score
ranks again only the customers whose list is due: a purchase since their list was scored, no list
yet, or a list more than `publish.refresh_days` old. The others keep their published list and
re-ranking candidates row for row, with the date they were scored (`scored_as_of`). Nothing is kept
when the live lists were made another way: another model, other list settings (`SETTINGS`), or an
as-of date after the run's (a backfill).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.files import sha256

log = logging.getLogger(__name__)
LISTS, CANDIDATES, MANIFEST = "recommendations.parquet", "candidates.parquet", "manifest.json"
REUSED = (LISTS, CANDIDATES, MANIFEST)  # what a daily run copies from the live version
SCORED = "scored_as_of"  # the as-of date a customer's list was ranked at
# What a list depends on besides the model and the customer's purchases: kept lists need the same.
SETTINGS = (
    ("publish", "k"),
    ("publish", "rerank_candidates"),
    ("recommend", "contributions"),
    ("candidates", "sources"),
    ("candidates", "selection"),
    *(("features", key) for key in ("every_days", "active_days", "clusters", "keywords", "seed")),
)


@dataclass(frozen=True)
class Kept:
    """The published lists (in `directory`) of `customers`, to be written again as they are."""

    directory: Path
    customers: pd.Index
    published_as_of: pd.Timestamp  # the scored date of lists published before `SCORED` was written

    def copy(self, write: Callable[[Any], None], write_candidates: Callable[[Any], None]) -> dict[str, int]:
        """Write the kept customers' lists and re-ranking candidates, row group by row group (bounded
        memory); returns how many rows of each were written (`recommendations`, `rerank_candidates`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipelines.core.partitions import of_customers

        keep = pa.array(self.customers.astype(str), pa.string())
        counts = {"recommendations": 0, "rerank_candidates": 0}
        for name, out, count in (
            (LISTS, write, "recommendations"),
            (CANDIDATES, write_candidates, "rerank_candidates"),
        ):
            file = pq.ParquetFile(self.directory / name)
            if s.CUSTOMER not in file.schema_arrow.names:  # publish.rerank_candidates: 0
                continue
            for group in range(file.num_row_groups):
                table = file.read_row_group(group)
                table = of_customers(table, keep)
                if name == LISTS and SCORED not in table.column_names:
                    stamp = pa.scalar(self.published_as_of.to_pydatetime(), pa.timestamp("ns"))
                    table = table.append_column(SCORED, pa.repeat(stamp, len(table)))
                if len(table):
                    out(table)
                    counts[count] += len(table)
        return counts


def list_settings(params: dict[str, Any]) -> dict[str, Any]:
    return {f"{section}.{key}": params.get(section, {}).get(key) for section, key in SETTINGS}


def kept_lists(
    history: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, model_dir: str | Path, params: dict[str, Any]
) -> Kept | None:
    """The published lists `customers` keep at `as_of` (None: none is kept, every customer is ranked)."""
    import pyarrow.parquet as pq

    p = params["publish"]
    if not p.get("reuse_lists"):
        return None
    directory = Path(p["reuse_lists"])
    missing = [name for name in REUSED if not (directory / name).is_file()]
    if missing:
        raise InputError(f"publish.reuse_lists: {directory} has no {', '.join(missing)} (a live version's copy)")
    manifest = json.loads((directory / MANIFEST).read_text())
    published_as_of = pd.Timestamp(manifest["data_window"]["as_of"])
    why = _made_otherwise(manifest, published_as_of, as_of, model_dir, params)
    if why:
        log.info("score: the published lists of %s are not kept: %s", manifest["version"], why)
        return None
    names = pq.read_schema(directory / LISTS).names
    lists = pd.read_parquet(directory / LISTS, columns=[s.CUSTOMER, *([SCORED] if SCORED in names else [])])
    lists = lists.drop_duplicates(s.CUSTOMER).set_index(s.CUSTOMER)
    scored = (lists[SCORED] if SCORED in lists else pd.Series(published_as_of, index=lists.index)).reindex(customers)
    last = history.groupby(s.CUSTOMER, observed=True)[s.TS].max().reindex(customers)
    fresh = scored.notna() & (scored <= as_of) & (last < scored)
    fresh &= as_of - scored <= pd.Timedelta(days=int(p["refresh_days"]))
    kept = customers[fresh.to_numpy()]
    log.info("score: %d of %d customers keep their lists of %s", len(kept), len(customers), manifest["version"])
    return Kept(directory, kept, published_as_of) if len(kept) else None


def _made_otherwise(
    manifest: dict[str, Any], published_as_of: pd.Timestamp, as_of: pd.Timestamp, model_dir: str | Path, params: dict
) -> str | None:
    """Why the published lists cannot be kept (None: they can)."""
    if manifest["model"]["sha256"] != sha256([Path(model_dir) / "ranker.lgb"]):
        return "another model"
    ours, theirs = list_settings(params), list_settings(manifest["params"])
    changed = [key for key in ours if ours[key] != theirs[key]]
    if changed:
        return f"other settings ({', '.join(changed)})"
    if published_as_of > as_of:
        return f"they are as of {published_as_of.date()}, after {as_of.date()}"
    return None
