"""The keyed store serving reads: published recommendations, cold-start lists, loyalty segments and
similar items, by version, with one pointer to the live version.

A version is written completely under its own keys before the pointer moves to it, and the last
versions stay in the store, so a reader sees the old version or the new one, never a mix, and a
rollback is one pointer move. SQLite (WAL: readers never wait for the writer) by default; Redis in
production (`publish.store: redis` or SHOPREC_SERVING_STORE=redis, SHOPREC_REDIS_URL).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipelines.core.errors import InputError

KINDS = ("rec", "cold", "segment", "similar", "cand")  # every kind publish writes (drop deletes them all)


class ServingStore(Protocol):
    def write(self, version: str, kind: str, entries: Iterable[tuple[str, str]], batch_size: int) -> int: ...
    def copy(self, source: str, version: str, kind: str) -> int: ...
    def delete(self, version: str, kind: str, keys: list[str], batch_size: int) -> None: ...
    def count(self, version: str, kind: str) -> int: ...
    def complete(self, version: str) -> None: ...
    def versions(self) -> list[str]: ...
    def set_live(self, version: str) -> None: ...
    def live(self) -> str | None: ...
    def get(self, kind: str, key: str, version: str | None = None) -> tuple[str | None, Any]: ...
    def drop(self, version: str) -> None: ...
    def drop_kind(self, version: str, kind: str) -> None: ...


def _batches(entries: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    it = iter(entries)
    while batch := list(islice(it, size)):
        yield batch


class SqliteStore:
    """One SQLite file; a reader's lookup is a single statement over the live pointer and the entry."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.executescript(
                """
                CREATE TABLE IF NOT EXISTS entries (version TEXT, kind TEXT, key TEXT, payload TEXT,
                                                    PRIMARY KEY (version, kind, key)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS versions (version TEXT PRIMARY KEY, complete INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS live (id INTEGER PRIMARY KEY CHECK (id = 1), version TEXT NOT NULL);
                """
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:  # one connection per thread (the API serves from a thread pool)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def write(self, version: str, kind: str, entries: Iterable[tuple[str, str]], batch_size: int) -> int:
        c, n = self._conn(), 0
        c.execute("INSERT OR IGNORE INTO versions VALUES (?, 0)", (version,))
        for batch in _batches(entries, batch_size):
            c.execute("BEGIN")
            c.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", [(version, kind, k, p) for k, p in batch]
            )
            c.execute("COMMIT")
            n += len(batch)
        return n

    def copy(self, source: str, version: str, kind: str) -> int:
        """`source`'s entries of `kind` as `version`'s (inside SQLite: nothing crosses to Python); how many."""
        c = self._conn()
        c.execute("INSERT OR IGNORE INTO versions VALUES (?, 0)", (version,))
        c.execute("BEGIN")
        c.execute("DELETE FROM entries WHERE version = ? AND kind = ?", (version, kind))
        sql = "INSERT INTO entries SELECT ?, kind, key, payload FROM entries WHERE version = ? AND kind = ?"
        copied = c.execute(sql, (version, source, kind)).rowcount
        c.execute("COMMIT")
        return copied

    def delete(self, version: str, kind: str, keys: list[str], batch_size: int) -> None:
        c, sql = self._conn(), "DELETE FROM entries WHERE version = ? AND kind = ? AND key = ?"
        for lo in range(0, len(keys), batch_size):
            c.execute("BEGIN")
            c.executemany(sql, [(version, kind, key) for key in keys[lo : lo + batch_size]])
            c.execute("COMMIT")

    def count(self, version: str, kind: str) -> int:
        sql = "SELECT COUNT(*) FROM entries WHERE version = ? AND kind = ?"
        return int(self._conn().execute(sql, (version, kind)).fetchone()[0])

    def complete(self, version: str) -> None:
        self._conn().execute("UPDATE versions SET complete = 1 WHERE version = ?", (version,))

    def versions(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT version FROM versions WHERE complete = 1 ORDER BY version")]

    def set_live(self, version: str) -> None:
        if version not in self.versions():
            raise InputError(f"serving store {self.path}: version {version} is not completely written")
        self._conn().execute("INSERT OR REPLACE INTO live VALUES (1, ?)", (version,))

    def live(self) -> str | None:
        row = self._conn().execute("SELECT version FROM live WHERE id = 1").fetchone()
        return row[0] if row else None

    def get(self, kind: str, key: str, version: str | None = None) -> tuple[str | None, Any]:
        """(live version, entry or None); with `version`, that version's entry (a request's second
        lookup stays on the version of its first)."""
        c = self._conn()
        if version is not None:
            sql = "SELECT ?, payload FROM entries WHERE version = ? AND kind = ? AND key = ?"
            row = c.execute(sql, (version, version, kind, key)).fetchone() or (version, None)
        else:
            sql = (
                "SELECT l.version, e.payload FROM live l LEFT JOIN entries e"
                " ON e.version = l.version AND e.kind = ? AND e.key = ? WHERE l.id = 1"
            )
            row = c.execute(sql, (kind, key)).fetchone()
        if row is None:
            return None, None
        return row[0], orjson.loads(row[1]) if row[1] is not None else None

    def drop(self, version: str) -> None:
        c = self._conn()
        c.execute("BEGIN")
        c.execute("DELETE FROM entries WHERE version = ?", (version,))
        c.execute("DELETE FROM versions WHERE version = ?", (version,))
        c.execute("COMMIT")

    def drop_kind(self, version: str, kind: str) -> None:
        """Delete `version`'s entries of `kind` (the version stays; its reads of `kind` find nothing)."""
        self._conn().execute("DELETE FROM entries WHERE version = ? AND kind = ?", (version, kind))


class RedisStore:
    """Redis hashes per version and kind; the live pointer is one string key. A version stays readable
    while it is kept, so a reader who fetched the pointer just before a switch still reads one version."""

    def __init__(self, url: str, namespace: str = "shoprec:serving") -> None:
        import redis

        self.client, self.ns = redis.Redis.from_url(url), namespace

    def _key(self, version: str, kind: str) -> str:
        return f"{self.ns}:v:{version}:{kind}"

    def write(self, version: str, kind: str, entries: Iterable[tuple[str, str]], batch_size: int) -> int:
        n = 0
        self.client.hsetnx(f"{self.ns}:versions", version, 0)
        for batch in _batches(entries, batch_size):
            self.client.hset(self._key(version, kind), mapping=dict(batch))
            n += len(batch)
        return n

    def copy(self, source: str, version: str, kind: str) -> int:
        """`source`'s hash of `kind` as `version`'s; how many entries. One COPY (Redis 6.2+): nothing
        crosses the network, and Redis serves no other command while it copies (about a second per GB)."""
        self.client.hsetnx(f"{self.ns}:versions", version, 0)
        if not self.client.copy(self._key(source, kind), self._key(version, kind), replace=True):
            self.client.delete(self._key(version, kind))  # `source` has no entries of `kind`
        return self.count(version, kind)

    def delete(self, version: str, kind: str, keys: list[str], batch_size: int) -> None:
        for lo in range(0, len(keys), batch_size):
            self.client.hdel(self._key(version, kind), *keys[lo : lo + batch_size])

    def count(self, version: str, kind: str) -> int:
        return int(self.client.hlen(self._key(version, kind)))

    def complete(self, version: str) -> None:
        self.client.hset(f"{self.ns}:versions", version, 1)

    def versions(self) -> list[str]:
        return sorted(v.decode() for v, done in self.client.hgetall(f"{self.ns}:versions").items() if done == b"1")

    def set_live(self, version: str) -> None:
        if version not in self.versions():
            raise InputError(f"serving store {self.ns}: version {version} is not completely written")
        self.client.set(f"{self.ns}:live", version)

    def live(self) -> str | None:
        value = self.client.get(f"{self.ns}:live")
        return value.decode() if value else None

    def get(self, kind: str, key: str, version: str | None = None) -> tuple[str | None, Any]:
        version = version or self.live()
        if version is None:
            return None, None
        payload = self.client.hget(self._key(version, kind), key)
        return version, orjson.loads(payload) if payload is not None else None

    def drop(self, version: str) -> None:
        self.client.hdel(f"{self.ns}:versions", version)  # first: never a listed version without entries
        self.client.unlink(*[self._key(version, kind) for kind in KINDS])  # freed in Redis's background thread

    def drop_kind(self, version: str, kind: str) -> None:
        """Delete `version`'s entries of `kind` (the version stays; its reads of `kind` find nothing)."""
        self.client.unlink(self._key(version, kind))


def open_serving_store(publish_params: dict[str, Any]) -> ServingStore:
    """The configured store: SQLite under the publish directory, or Redis (env overrides params)."""
    kind = os.environ.get("SHOPREC_SERVING_STORE", publish_params["store"])
    if kind == "sqlite":
        return SqliteStore(Path(publish_params["dir"]) / "serving.db")
    if kind == "redis":
        url = os.environ.get("SHOPREC_REDIS_URL", publish_params["redis_url"])
        return RedisStore(url, publish_params["redis_namespace"])
    raise InputError(f"params: publish.store must be 'sqlite' or 'redis', not {kind!r}")
