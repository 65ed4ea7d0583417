"""Reading input tables and writing outputs atomically (a reader sees old or new, never half)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# The candidates' selection weights: written by the candidates step, kept with the model by train, read
# by score and by the daily run's candidates (`candidates.reuse_model`).
SELECTION_FILE = "selection.json"
READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".xlsx": "excel"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet, CSV or XLSX file as strings-and-numbers, with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unsupported file type '{path.suffix}' (use .parquet, .csv or .xlsx)")
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        elif kind == "csv":
            _refuse_binary(path)
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        else:
            df = pd.read_excel(path, dtype=str)
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types; all mean "cannot read this file"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot be read as {kind} ({reason})") from None
    if df.empty:
        raise InputError(f"{path}: no data rows")
    return df


def _refuse_binary(path: Path) -> None:
    head = path.open("rb").read(8192)
    if b"\x00" in head:
        raise InputError(f"{path}: looks like a binary file, not CSV text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut by the 8 KiB window is fine
            raise InputError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


@contextmanager
def _temporary(path: Path) -> Iterator[str]:
    """A temporary file beside `path` that replaces it when the block ends without error. The path is
    made absolute first: a partition's thread may be inside the feature repo (`store._inside`) when
    the block ends."""
    path = path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic(path: Path, write: Any) -> None:
    with _temporary(path) as tmp:
        write(tmp)


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame to Parquet atomically, then give Arrow's conversion buffers back (its memory
    pool keeps them otherwise, on top of what the step holds next)."""
    import pyarrow as pa

    _atomic(Path(path), lambda tmp: df.to_parquet(tmp, index=False))
    pa.default_memory_pool().release_unused()


@contextmanager
def parquet_parts(path: str | Path) -> Iterator[Callable[[pd.DataFrame | pa.Table], None]]:
    """Write DataFrames (or Arrow tables) of the same columns and dtypes one after another into one
    Parquet file (a row group each, up to pyarrow's row group size), so no more than one is in memory;
    the file appears, whole, when the block ends without error. Yields the function that writes a frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    columns: pd.DataFrame | None = None  # the columns, for a file of no rows

    def write(frame: pd.DataFrame | pa.Table) -> None:
        nonlocal writer, columns
        arrow = isinstance(frame, pa.Table)
        empty = frame.schema.empty_table().to_pandas() if arrow else frame.iloc[:0]
        columns = empty if columns is None else columns
        if list(empty.columns) != list(columns.columns):
            raise ValueError(f"{path}: a part has columns {list(empty.columns)}, not {list(columns.columns)}")
        if len(frame):
            if arrow:
                table = frame.cast(writer.schema) if writer else frame
            else:
                table = pa.Table.from_pandas(frame, schema=writer.schema if writer else None, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)

    with _temporary(Path(path)) as tmp:
        try:
            yield write
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            (columns if columns is not None else pd.DataFrame()).to_parquet(tmp, index=False)


def sha256(paths: list[Path]) -> str:
    """One hash of the files' names and bytes (a model's, a published version's content)."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame to CSV atomically."""
    _atomic(Path(path), lambda tmp: df.to_csv(tmp, index=False))


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically, pretty-printed with sorted keys (stable diffs for DVC)."""
    write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def run_starts(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Positions where a run of equal values starts in an Arrow column (empty for an empty column)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    changes = pc.not_equal(values[1:], values[:-1]).to_numpy(zero_copy_only=False)
    return np.r_[0, np.flatnonzero(changes) + 1]
