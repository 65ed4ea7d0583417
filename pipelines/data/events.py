"""Events in: purchases, add-to-cart and views posted to the API (`POST /events`), checked, and appended
durably to the event log that the next `ingest` reads beside the export: the loop from serving back
to training.

The log is a SQLite file in WAL mode with `synchronous=FULL`: a batch is acknowledged only after its
transaction is on disk, so a crash or restart loses no acknowledged event. A batch may carry an
idempotency key (the `Idempotency-Key` header): a retried batch with a key already seen is
acknowledged again with the first answer and appended nothing, so no event is counted twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.core import schema as s
from pipelines.core.errors import InputError

CUSTOMER_ID = r"^[A-Za-z0-9_.:\-]{1,128}$"  # pseudonymised ids, as the API serves and takes them
ITEM_ID = r"^[^\s].{0,127}$"
EVENT_COLUMNS = ("seq", "type", s.CUSTOMER, s.ITEM, s.TS, s.ORDER, s.QUANTITY, s.PRICE)


class Event(BaseModel):
    """One event, in the canonical names; `timestamp` is ISO 8601 (without a zone: UTC)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["purchase", "add_to_cart", "view"]
    customer_id: Annotated[str, Field(pattern=CUSTOMER_ID, description="Pseudonymised, as served.")]
    item_id: Annotated[str, Field(pattern=ITEM_ID)]
    timestamp: datetime
    order_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    quantity: Annotated[float, Field(gt=0, le=1e6)] | None = None
    unit_price: Annotated[float, Field(gt=0, le=1e9)] | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_batch(body: Any) -> list[Event]:
    """One event or `{"events": [...]}` as events; InputError naming the first bad field."""
    if isinstance(body, dict) and "events" in body and len(body) == 1:
        items = body["events"]
    elif isinstance(body, dict):
        items = [body]
    else:
        raise InputError('body: expected one event or {"events": [...]}')
    if not isinstance(items, list):
        raise InputError("events: expected a list of events")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Event.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError(f"events[{i}]{'.' + field if field else ''}: {first['msg']}") from None
    return out


def check_batch(events: list[Event], max_batch: int, max_skew: timedelta, now: datetime | None = None) -> None:
    """InputError naming the first problem: an empty or oversized batch, an event from the future."""
    if not events:
        raise InputError("events: the batch is empty")
    if len(events) > max_batch:
        raise InputError(f"events: {len(events)} events in one batch, at most {max_batch}")
    latest = (now or datetime.now(UTC)) + max_skew
    for i, event in enumerate(events):
        if event.timestamp > latest:
            raise InputError(f"events[{i}].timestamp: {event.timestamp.isoformat()} is in the future")


class Purchase(NamedTuple):
    """A logged purchase, as re-ranking reads it (`EventLog.purchases_since`)."""

    item_id: str
    timestamp: datetime  # UTC
    order_id: str  # `event-<seq>` where the event had none, as ingest makes it
    quantity: float  # 1 where the event had none
    unit_price: float | None


class EventLog:
    """The append-only event log (one SQLite file; writers take turns, readers never block them)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,"
            " customer_id TEXT NOT NULL, item_id TEXT NOT NULL, timestamp TEXT NOT NULL, order_id TEXT,"
            " quantity REAL, unit_price REAL, received TEXT NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS batches (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
        self._db.execute("CREATE INDEX IF NOT EXISTS by_customer ON events (customer_id, type)")
        self._readers = threading.local()

    def append(self, events: list[Event], key: str | None = None) -> dict[str, Any]:
        """Append the batch in one durable transaction; with a `key` seen before, the first answer again."""
        received = datetime.now(UTC).isoformat()
        rows = [
            (e.type, e.customer_id, e.item_id, e.timestamp.isoformat(), e.order_id, e.quantity, e.unit_price, received)
            for e in events
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if key is not None:
                    seen = self._db.execute("SELECT answer FROM batches WHERE key = ?", (key,)).fetchone()
                    if seen is not None:
                        self._db.execute("COMMIT")
                        return {**json.loads(seen[0]), "duplicate": True}
                cursor = self._db.executemany(
                    "INSERT INTO events (type, customer_id, item_id, timestamp, order_id, quantity, unit_price,"
                    " received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
                answer = {"accepted": cursor.rowcount, "first_seq": last - len(rows) + 1, "last_seq": last}
                if key is not None:
                    self._db.execute("INSERT INTO batches (key, answer) VALUES (?, ?)", (key, json.dumps(answer)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {**answer, "duplicate": False}

    def purchases_since(self, customer: str, as_of: datetime) -> list[Purchase]:
        """The customer's logged purchases after `as_of` (UTC), oldest first: one indexed query on a
        read connection of the calling thread (readers never wait for the writer)."""
        db = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        rows = db.execute(
            "SELECT seq, item_id, timestamp, order_id, quantity, unit_price FROM events"
            " WHERE customer_id = ? AND type = 'purchase' ORDER BY seq",
            (customer,),
        ).fetchall()
        out = []
        for seq, item, ts, order, quantity, price in rows:
            when = datetime.fromisoformat(ts)
            if when > as_of:
                out.append(Purchase(item, when, order or f"event-{seq}", quantity or 1.0, price))
        return out

    def close(self) -> None:
        self._db.close()


def read_events(path: str | Path, types: tuple[str, ...] = ("purchase",)) -> pd.DataFrame:
    """The logged events of `types`, oldest first, in the canonical columns (empty if there is no log)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        marks = ", ".join("?" for _ in types)
        frame = pd.read_sql_query(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE type IN ({marks}) ORDER BY seq", db, params=types
        )
    frame[s.TS] = pd.to_datetime(frame[s.TS], utc=True).dt.tz_localize(None)
    return frame.astype({s.QUANTITY: float, s.PRICE: float})


def as_interactions(events: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """Logged purchases as clean interaction rows beside `clean` (the export's, pseudonymised): an order
    id of its own where the event had none, quantity 1 where it had none, the item's last known price
    and text and the customer's last known country. A purchase the export already holds (same order
    and item) is left out, so an export that catches up with the events counts each purchase once."""
    if events.empty:
        return clean.iloc[:0]
    rows = events.assign(
        **{
            s.ORDER: events[s.ORDER].where(events[s.ORDER].notna(), "event-" + events["seq"].astype(str)),
            s.QUANTITY: events[s.QUANTITY].fillna(1.0).astype(float),
        }
    )
    known = pd.MultiIndex.from_frame(clean[[s.ORDER, s.ITEM]])
    rows = rows[~pd.MultiIndex.from_frame(rows[[s.ORDER, s.ITEM]]).isin(known)]
    latest = clean.sort_values(s.TS, kind="stable")
    item = latest.groupby(s.ITEM)[[s.PRICE, s.DESCRIPTION, s.CATEGORY]].last()
    country = latest.groupby(s.CUSTOMER)[s.COUNTRY].last()
    rows[s.PRICE] = rows[s.PRICE].fillna(rows[s.ITEM].map(item[s.PRICE])).astype(float)
    rows[s.DESCRIPTION] = rows[s.ITEM].map(item[s.DESCRIPTION])
    rows[s.CATEGORY] = rows[s.ITEM].map(item[s.CATEGORY])
    rows[s.COUNTRY] = rows[s.CUSTOMER].map(country)
    return rows[list(s.COLUMNS)].astype({c: clean[c].dtype for c in s.COLUMNS if c in clean})
