"""A candidates file read in partitions of whole customers, row group by row group (bounded memory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.files import run_starts

if TYPE_CHECKING:
    import pyarrow as pa

RANK_CUSTOMERS = 2_000  # customers ranked per partition: bounds the feature table held (~600k rows)


def groups_in_order(keys: Any) -> tuple[np.ndarray, list[tuple[Any, int, int]]]:
    """What `groupby(keys, sort=False)` iterates, as positions: the row order that puts each key's rows
    together (keys in order of first appearance, rows in their order; missing keys dropped) and
    (key, start, end) of each group in that order. Per-group work then slices arrays instead of
    building a DataFrame per group."""
    codes, uniques = pd.factorize(np.asarray(keys))
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]  # a missing key is in no group
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return order, [(uniques[g], int(bounds[g]), int(bounds[g + 1])) for g in range(len(uniques))]


def customer_partitions(
    path: str | Path, customers: int = RANK_CUSTOMERS, columns: list[str] | None = None, only: pa.Array | None = None
) -> tuple[Iterator[pd.DataFrame], int]:
    """A candidates file (rows grouped by customer; its `columns` and the customer's, all by default)
    in partitions of `customers` whole customers (at least one), and its row count. The file is read
    row group by row group as the partitions are taken, so memory holds about a partition and a row
    group, whatever the file's size. With `only` (customer ids), the rows of those customers only,
    picked before they become frames (`of_customers`; the row count stays the file's). A customer whose
    rows (among those picked) are not one run raises InputError when its row group is read."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return _partitions(file, Path(path), customers, columns, only), file.metadata.num_rows


def _partitions(
    file: Any, path: Path, customers: int, columns: list[str] | None, only: pa.Array | None
) -> Iterator[pd.DataFrame]:
    """The partitions of `customer_partitions`; each run of a customer's rows is checked to be its only one."""
    import pyarrow as pa

    customers, seen, last = max(int(customers), 1), set(), None
    columns = columns if columns is None or s.CUSTOMER in columns else [s.CUSTOMER, *columns]
    buffer = file.schema_arrow.empty_table().select(columns or file.schema_arrow.names)
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=columns)
        table = table if only is None else of_customers(table, only)
        column = table.column(s.CUSTOMER)
        firsts = column.take(run_starts(column)).to_pylist()  # the customer of each run
        firsts = firsts[1:] if firsts and firsts[0] == last else firsts  # a run going on from the last group
        if seen.intersection(firsts) or len(set(firsts)) < len(firsts):
            raise InputError(f"{path}: candidates are not grouped by customer")
        seen.update(firsts)
        last = column[-1].as_py() if len(column) else last
        buffer = pa.concat_tables([buffer, table])
        starts = run_starts(buffer.column(s.CUSTOMER))
        while len(starts) > customers:  # a run follows the first `customers` ones, so those are whole
            yield buffer.slice(0, starts[customers]).to_pandas()
            buffer, starts = buffer.slice(starts[customers]), starts[customers:] - starts[customers]
    yield buffer.to_pandas()  # the last customers (an empty file: one empty partition)


def of_customers(table: pa.Table, customers: pa.Array) -> pa.Table:
    """The rows of `table` whose customer is one of `customers` (string ids), in their order."""
    import pyarrow.compute as pc

    return table.filter(pc.is_in(table.column(s.CUSTOMER), value_set=customers))
