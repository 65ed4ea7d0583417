"""Materialisation into Feast's Redis online store without Feast's row-by-row conversion.

Feast turns every row into protobuf objects in Python (about 14k rows/s per core, 280 s of
core time for 7.7M customer x item rows). The bytes it writes depend on few distinct values
per column, so `write_rows` converts each distinct value once, with Feast's own converters, and
assembles the keys and hashes with arrays: the Redis contents are byte for byte the ones
`FeatureStore.write_to_online_store` writes (tests/e2e/test_feature_store.py compares them).

Unlike Feast's writer, a row is written whatever the timestamp the store holds for its entity:
materialisation writes each entity's latest row of the sources, so a reload after changed data
(same stamps, other values) replaces what the store holds instead of keeping it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core.errors import InputError


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values of `values`, telling apart what serialises apart (-0.0 and 0.0)."""
    if values.dtype.kind in "fmM":  # by bit pattern: factorize takes -0.0 == 0.0 and drops NaN/NaT
        _, first, codes = np.unique(values.view(f"i{values.dtype.itemsize}"), return_index=True, return_inverse=True)
        return codes.ravel(), values[first]
    if pd.api.types.infer_dtype(values, skipna=True) != "string":  # factorize merges 1, 1.0 and True
        return np.arange(len(values)), values
    codes, uniques = pd.factorize(values, use_na_sentinel=False)  # None and NaN: both null strings to Feast
    return codes, np.asarray(uniques, dtype=object)


def _per_distinct(values: np.ndarray, serialise: Callable[[np.ndarray], list[bytes]]) -> np.ndarray:
    """Each value's bytes, from one call of `serialise` on the distinct values."""
    codes, uniques = _distinct(values)
    return np.array(serialise(uniques), dtype=object)[codes]


def _column_bytes(values: np.ndarray, value_type: Any) -> np.ndarray:
    """Each value's serialised ValueProto, as Feast serialises it."""
    from feast.type_map import python_values_to_proto_values

    return _per_distinct(
        values, lambda uniques: [p.SerializeToString() for p in python_values_to_proto_values(uniques, value_type)]
    )


def _entity_parts(values: np.ndarray, value_type: Any) -> np.ndarray:
    """Each entity value's part of a serialised entity key (format version 3: type, length, bytes)."""
    from feast.infra.key_encoding_utils import _serialize_val
    from feast.type_map import python_values_to_proto_values

    def parts(uniques: np.ndarray) -> list[bytes]:
        out = []
        for proto in python_values_to_proto_values(uniques, value_type):
            raw, kind = _serialize_val(proto.WhichOneof("val"), proto, entity_key_serialization_version=3)
            out.append(struct.pack("<II", kind, len(raw)) + raw)
        return out

    return _per_distinct(values, parts)


def redis_keys(project: str, join_keys: dict[str, Any], table: Any) -> list[bytes]:
    """Feast's Redis key of each row of the arrow `table`: its serialised entity key (version 3, join
    keys sorted by name) followed by the project."""
    names = sorted(join_keys)
    head = struct.pack("<I", len(names)) + b"".join(
        struct.pack("<II", 2, len(name.encode())) + name.encode()
        for name in names  # 2: ValueType.STRING
    )
    parts = [_entity_parts(table.column(n).to_numpy(zero_copy_only=False), join_keys[n]) for n in names]
    tail = project.encode()
    return [b"".join((head, *row, tail)) for row in zip(*parts, strict=True)]


CHUNK_ROWS = 200_000  # rows converted at a time: a writer holds one chunk's keys and bytes, not all


def write_rows(store: Any, view: Any, rows: pd.DataFrame) -> None:
    """Write `rows` (the view's entity columns, features and event timestamp; one row per entity) into
    `store`'s Redis online store, CHUNK_ROWS at a time, `online_write_batch_size` rows per round trip."""
    import pyarrow as pa
    from feast.infra.online_stores.redis import _versioned_fv_name

    config = store.config
    if config.entity_key_serialization_version != 3 or view.batch_source.field_mapping:
        raise InputError(
            f"feature view '{view.name}': the Redis writer writes entity keys of serialization version 3 "
            "from sources without a field mapping"
        )
    client = store._get_provider().online_store._get_client(config.online_store)
    join_keys = {column.name: column.dtype.to_value_type() for column in view.entity_columns}
    name = _versioned_fv_name(view, config)
    batch = config.materialization_config.online_write_batch_size or CHUNK_ROWS
    expire = config.online_store.key_ttl_seconds
    for start in range(0, len(rows), CHUNK_ROWS):
        table = pa.Table.from_pandas(rows.iloc[start : start + CHUNK_ROWS], preserve_index=False).combine_chunks()
        keys = redis_keys(config.project, join_keys, table)
        fields = _fields(table, view, name)
        for lo in range(0, len(keys), batch):
            with client.pipeline(transaction=False) as pipe:
                columns = [(field, data[lo : lo + batch]) for field, data in fields]
                for i, key in enumerate(keys[lo : lo + batch]):
                    pairs = []
                    for field, data in columns:
                        pairs += (field, data[i])
                    pipe.execute_command("HSET", key, *pairs)
                    if expire:
                        pipe.expire(key, expire)
                pipe.execute()


def _fields(table: Any, view: Any, name: str) -> list[tuple[bytes, np.ndarray]]:
    """(Redis hash field, each row's bytes) of the rows' event timestamp and features, as Feast names
    and serialises them (`name`: the view's name as its Redis fields carry it)."""
    from feast.infra.online_stores.helpers import _mmh3
    from feast.utils import _coerce_datetime, make_tzaware
    from google.protobuf.timestamp_pb2 import Timestamp

    def stamp(value: Any) -> bytes:
        ts = Timestamp()
        ts.FromDatetime(make_tzaware(_coerce_datetime(value)))
        return ts.SerializeToString()

    times = table.column(view.batch_source.timestamp_field).to_numpy(zero_copy_only=False)
    fields = [
        (f"_ts:{name}".encode(), _per_distinct(times, lambda uniques: [stamp(v) for v in pd.to_datetime(uniques)]))
    ]
    for feature in view.features:
        values = table.column(feature.name).to_numpy(zero_copy_only=False)
        fields.append((_mmh3(f"{name}:{feature.name}"), _column_bytes(values, feature.dtype.to_value_type())))
    return fields
