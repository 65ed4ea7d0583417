"""Events in: POST /events checks each event (one-line 422s), appends it durably once per idempotency
key, and the next ingest reads the logged purchases beside the export (the loop back to training)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.core import schema as s
from pipelines.data.events import EventLog, read_events
from pipelines.data.ingest import ingest
from pipelines.serving.api import create_app
from pipelines.serving.store import SqliteStore
from tests.helpers import SHIPPED, shipped
from tests.unit.test_ingest import raw_rows

pytestmark = pytest.mark.unit
EVENTS = shipped("events", max_batch=3)


def purchase(i: int = 0, **changes: object) -> dict:
    return {"type": "purchase", "customer_id": f"c{i}", "item_id": "A", "timestamp": "2011-01-09T10:00:00", **changes}


@pytest.fixture
def api(tmp_path):
    log = EventLog(tmp_path / "events.db")
    app = create_app(
        SqliteStore(tmp_path / "serving.db"), tmp_path, max_k=20, max_basket=50, events=log, event_params=EVENTS
    )
    yield TestClient(app), log
    log.close()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (purchase(type="refund"), "events[0].type: Input should be 'purchase', 'add_to_cart' or 'view'"),
        ({"events": [purchase(), purchase(quantity=0)]}, "events[1].quantity: Input should be greater than 0"),
        (
            {"events": [purchase(timestamp="yesterday")]},
            "events[0].timestamp: Input should be a valid datetime or date, input is too short",
        ),
        ({"events": [{k: v for k, v in purchase().items() if k != "item_id"}]}, "events[0].item_id: Field required"),
        (purchase(colour="red"), "events[0].colour: Extra inputs are not permitted"),
        ({"events": [purchase(i) for i in range(4)]}, "events: 4 events in one batch, at most 3"),
        ({"events": []}, "events: the batch is empty"),
        ([purchase()], 'body: expected one event or {"events": [...]}'),
    ],
)
def test_bad_events_get_a_one_line_422_and_nothing_is_logged(api, tmp_path, body, detail):
    client, _ = api
    res = client.post("/events", json=body)
    assert res.status_code == 422 and res.json() == {"detail": detail}
    assert read_events(tmp_path / "events.db", ("purchase", "view", "add_to_cart")).empty


def test_an_event_from_the_future_is_rejected(api):
    client, _ = api
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    res = client.post("/events", json=purchase(timestamp=later))
    assert res.status_code == 422 and res.json()["detail"].startswith("events[0].timestamp: ")
    assert res.json()["detail"].endswith(" is in the future")


def test_a_retried_batch_is_logged_once_and_acknowledged_again(api, tmp_path):
    client, _ = api
    batch = {"events": [purchase(1), purchase(2, type="view")]}
    first = client.post("/events", json=batch, headers={"Idempotency-Key": "b-1"})
    again = client.post("/events", json=batch, headers={"Idempotency-Key": "b-1"})
    other = client.post("/events", json=purchase(3))  # no key: always appended
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json() == {"accepted": 2, "first_seq": 1, "last_seq": 2, "duplicate": False, "online_updated": None}
    assert again.json() == {**first.json(), "duplicate": True}
    logged = read_events(tmp_path / "events.db", ("purchase", "view"))
    assert logged["seq"].tolist() == [1, 2, 3] and logged["type"].tolist() == ["purchase", "view", "purchase"]
    assert read_events(tmp_path / "events.db")["customer_id"].tolist() == ["c1", "c3"]  # purchases by default


def test_acknowledged_events_survive_a_restart(tmp_path):
    from pipelines.data.events import Event

    log = EventLog(tmp_path / "events.db")
    log.append([Event(**purchase(1))], key="k")
    log.close()  # a restart: a new process opens the same file
    reopened = EventLog(tmp_path / "events.db")
    assert reopened.append([Event(**purchase(1))], key="k")["duplicate"]  # the key survived too
    reopened.close()
    assert read_events(tmp_path / "events.db")[s.CUSTOMER].tolist() == ["c1"]


def test_the_next_ingest_reads_the_logged_purchases_beside_the_export(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY", "test-key")
    raw = tmp_path / "raw.csv"
    raw_rows().to_csv(raw, index=False)
    params = {**SHIPPED, "events": {**SHIPPED["events"], "log": str(tmp_path / "events.db")}}
    ingest(raw, tmp_path / "out", params, tmp_path / "q.json")  # no log yet: the export alone
    customer = pd.read_parquet(tmp_path / "out" / "interactions.parquet")[s.CUSTOMER].iloc[0]  # as served
    log = EventLog(tmp_path / "events.db")
    client = TestClient(create_app(SqliteStore(tmp_path / "s.db"), tmp_path, 20, 50, events=log, event_params=EVENTS))
    batch = [
        purchase(customer_id=customer, item_id="B", timestamp="2011-01-05T08:30:00+02:00"),  # 06:30 UTC
        purchase(customer_id=customer, item_id="A", order_id="1"),  # the export's order 1 already has A
        {**purchase(customer_id=customer, item_id="B"), "type": "view"},  # views do not become purchases
    ]
    assert client.post("/events", json={"events": batch}).json()["accepted"] == 3
    log.close()

    summary = ingest(raw, tmp_path / "out", params, tmp_path / "q.json")
    out = pd.read_parquet(tmp_path / "out" / "interactions.parquet")
    assert summary["rows_from_events"] == 1 and summary["rows_out"] == 5  # the export's 4 and one event
    assert out.equals(out.sort_values([s.TS, s.ORDER, s.ITEM]).reset_index(drop=True))  # in time order
    assert out[s.ORDER].iloc[-1] != "event-1"  # merged into the export's days, not appended
    (row,) = out[out[s.ORDER] == "event-1"].itertuples(index=False)
    assert (row.customer_id, row.item_id, row.quantity) == (customer, "B", 1.0)
    assert row.timestamp == pd.Timestamp("2011-01-05 06:30:00")
    assert (row.unit_price, row.country, row.description) == (2.0, "UK", "good too")  # the last known ones


class UnreachableOnline:
    """A Feast store whose online store is down: every call raises, as a client does."""

    def __getattr__(self, name: str):
        raise ConnectionError("online store down")


def test_an_unreachable_online_store_never_loses_an_acknowledged_event(tmp_path):
    log = EventLog(tmp_path / "events.db")
    app = create_app(
        SqliteStore(tmp_path / "s.db"), tmp_path, 20, 50, events=log, event_params=EVENTS, online=UnreachableOnline()
    )
    res = TestClient(app).post("/events", json=purchase(timestamp=datetime.now(UTC).isoformat()))
    assert res.status_code == 200 and res.json()["online_updated"] is False and res.json()["accepted"] == 1
    assert len(read_events(tmp_path / "events.db")) == 1
    log.close()
