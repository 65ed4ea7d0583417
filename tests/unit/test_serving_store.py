"""The serving store: versions are written whole before they go live, readers see one version, old
versions drop cleanly. SQLite here; the same contract on the real Redis (marked services)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from pipelines.core.errors import InputError
from pipelines.serving.store import RedisStore, SqliteStore


def entries(version: str, n: int = 3) -> list[tuple[str, str]]:
    return [(f"c{i}", json.dumps([{"item_id": f"{version}-{i}"}])) for i in range(n)]


def contract(store) -> None:
    assert store.live() is None and store.get("rec", "c0") == (None, None)
    assert store.write("v1", "rec", entries("v1"), batch_size=2) == 3
    with pytest.raises(InputError, match="not completely written"):
        store.set_live("v1")
    store.complete("v1")
    store.set_live("v1")
    assert store.get("rec", "c1") == ("v1", [{"item_id": "v1-1"}])
    assert store.get("rec", "nobody") == ("v1", None)  # the live version, no entry
    store.write("v2", "rec", entries("v2", 2), batch_size=10)
    store.write("v2", "cand", entries("v2", 1), batch_size=10)
    store.write("v1", "cand", entries("v1", 1), batch_size=10)
    assert store.count("v1", "cand") == 1 and store.count("v1", "rec") == 3
    store.drop_kind("v1", "cand")  # an older kept version gives up its re-ranking entries, not its lists
    assert store.count("v1", "cand") == 0
    assert store.get("cand", "c0", "v1")[1] is None and store.get("rec", "c0", "v1")[1] == [{"item_id": "v1-0"}]
    assert store.get("rec", "c1") == ("v1", [{"item_id": "v1-1"}])  # v2 is written but not live
    store.complete("v2")
    assert store.versions() == ["v1", "v2"]
    store.set_live("v2")
    assert store.get("rec", "c1") == ("v2", [{"item_id": "v2-1"}]) and store.get("rec", "c2") == ("v2", None)
    store.set_live("v1")  # a rollback is one pointer move
    assert store.get("rec", "c2") == ("v1", [{"item_id": "v1-2"}])
    store.drop("v2")
    assert store.versions() == ["v1"]
    assert store.get("rec", "c0", "v2")[1] is None and store.get("cand", "c0", "v2")[1] is None  # every kind dropped
    with pytest.raises(InputError):
        store.set_live("v2")
    # A daily version starts as a copy of the one it builds on; some entries go, some are written anew.
    store.write("v3", "cand", entries("v3", 1), batch_size=10)  # left by a killed attempt
    assert store.copy("v1", "v3", "rec") == 3
    assert store.copy("v1", "v3", "cand") == 0  # v1 has no candidates: neither has v3 then
    store.delete("v3", "rec", ["c0", "c2", "nobody"], batch_size=2)
    store.write("v3", "rec", [("c2", json.dumps([{"item_id": "v3-2"}]))], batch_size=10)
    store.complete("v3")
    got = [store.get("rec", f"c{i}", "v3")[1] for i in range(3)]
    assert got == [None, [{"item_id": "v1-1"}], [{"item_id": "v3-2"}]]
    assert store.get("cand", "c0", "v3")[1] is None
    assert store.get("rec", "c0", "v1")[1] == [{"item_id": "v1-0"}]  # the source is untouched


@pytest.mark.unit
def test_sqlite_store_contract(tmp_path):
    contract(SqliteStore(tmp_path / "serving.db"))


@pytest.mark.unit
def test_sqlite_store_is_shared_between_connections(tmp_path):
    writer, reader = SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")
    writer.write("v1", "cold", [("*", json.dumps([1]))], batch_size=1)
    writer.complete("v1")
    writer.set_live("v1")
    assert reader.get("cold", "*") == ("v1", [1])


@pytest.mark.services
def test_redis_store_contract(services):
    store = RedisStore(os.environ.get("SHOPREC_REDIS_URL", "redis://127.0.0.1:6379/0"), f"shoprec-test:{uuid.uuid4()}")
    try:
        contract(store)
    finally:
        keys = list(store.client.scan_iter(f"{store.ns}:*"))
        if keys:
            store.client.delete(*keys)
    assert list(store.client.scan_iter(f"{store.ns}:*")) == []
