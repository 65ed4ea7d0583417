"""Reading Parquet/CSV/XLSX exports and atomic writes."""

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.core.errors import InputError
from pipelines.core.files import parquet_parts, read_table, write_json, write_parquet

pytestmark = pytest.mark.unit
FRAME = pd.DataFrame({"CustomerID": ["17850", "13047"], "StockCode": ["85123A", "71053"]})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_every_supported_format_reads_back(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    {
        ".csv": lambda: FRAME.to_csv(path, index=False),
        ".parquet": lambda: FRAME.to_parquet(path),
        ".xlsx": lambda: FRAME.to_excel(path, index=False),
    }[suffix]()
    assert read_table(path).astype(str).equals(FRAME)


def test_unsupported_suffix_and_directory_are_refused(tmp_path):
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(InputError, match=r"unsupported file type '.json'"):
        read_table(tmp_path / "t.json")
    with pytest.raises(InputError, match="not a file"):
        read_table(tmp_path)


def test_latin1_csv_is_refused_with_the_offset(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("CustomerID,StockCode\n1,caf\xe9 mug\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_table(path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.parquet"
    write_parquet(FRAME, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):  # pyarrow.ArrowInvalid
        write_parquet(pd.DataFrame({"bad": [object()]}), path)  # pyarrow cannot write a bare object
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_json_is_stable(tmp_path):
    write_json({"b": 1, "a": 2}, tmp_path / "m.json")
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_parquet_parts_writes_the_frames_in_order_and_keeps_the_columns_of_none(tmp_path):
    path = tmp_path / "parts.parquet"
    with parquet_parts(path) as write:
        write(FRAME.iloc[:0])  # an empty partition first
        write(FRAME.iloc[:1])
        write(FRAME.iloc[1:])
    pd.testing.assert_frame_equal(pd.read_parquet(path), FRAME)
    assert pq.ParquetFile(path).num_row_groups == 2  # one per non-empty frame, not concatenated first
    with parquet_parts(path) as write:
        write(FRAME.iloc[:0])
    assert list(pd.read_parquet(path).columns) == list(FRAME.columns) and len(pd.read_parquet(path)) == 0


def test_parquet_parts_failing_midway_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "parts.parquet"
    write_parquet(FRAME, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="partition 2"), parquet_parts(path) as write:
        write(FRAME)
        raise RuntimeError("partition 2 failed")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["parts.parquet"]


def test_parts_land_where_asked_even_if_the_working_directory_moves_meanwhile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with parquet_parts("out/parts.parquet") as write:
        write(pd.DataFrame({"a": [1, 2]}))
        monkeypatch.chdir(tmp_path / "elsewhere")  # as a partition's thread inside the feature repo does
    assert pd.read_parquet(tmp_path / "out/parts.parquet")["a"].tolist() == [1, 2]
    assert not (tmp_path / "elsewhere/out").exists()
