"""Request-time re-ranking: the patched model inputs equal what the online store holds after the same
purchases (features/fresh.py and the on-demand recency view), the API re-ranks a customer's list after
their logged purchases, and falls back to the published list (`fresh: false`) when it cannot."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.core import schema as s
from pipelines.data.events import EventLog, Purchase
from pipelines.features.fresh import fresh_rows
from pipelines.serving.api import create_app
from pipelines.serving.rerank import candidate_payloads, decode, pack, patch
from pipelines.serving.store import SqliteStore
from tests.helpers import shipped

pytestmark = pytest.mark.unit
AS_OF = datetime(2011, 6, 1, tzinfo=UTC)
CUSTOMER_COLS = ["recency_days", *(f"{k}_{w}" for k in ("orders", "spend") for w in ("30d", "90d", "365d"))]
FEATURES = [
    "item_cf_score",
    *CUSTOMER_COLS,
    "distinct_items",
    "times_bought",
    "units_bought",
    "mean_repurchase_interval_days",
    "days_since_last_purchase",
    "repurchase_due_ratio",
]


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def test_patched_rows_equal_the_online_rows_after_the_same_purchases():
    customer = {"recency_days": 10.0, "orders_30d": 2, "orders_90d": 3, "orders_365d": 5}
    customer |= {"spend_30d": 100.0, "spend_90d": 150.0, "spend_365d": 300.0, "distinct_items": 4}
    pairs = pd.DataFrame(  # A bought twice, B once, C never (no online row)
        {
            s.CUSTOMER: ["c", "c", "c"],
            s.ITEM: ["A", "B", "C"],
            "times_bought": [2, 1, np.nan],
            "units_bought": [5.0, 1.0, np.nan],
            "first_purchase": [ts("2011-03-01"), ts("2011-05-20"), pd.NaT],
            "last_purchase": [ts("2011-05-01"), ts("2011-05-20"), pd.NaT],
            "mean_repurchase_interval_days": [61.0, np.nan, np.nan],
        }
    )
    bought = [
        Purchase("A", ts("2011-06-05").to_pydatetime(), "o1", 2.0, 3.0),
        Purchase("C", ts("2011-06-05").to_pydatetime(), "o1", 1.0, 4.0),
        Purchase("A", ts("2011-06-08").to_pydatetime(), "o2", 1.0, 3.0),
    ]

    def on_demand(frame: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:  # feature_repo's recency view
        days = (at - pd.to_datetime(frame["last_purchase"], utc=True)).dt.total_seconds() / 86400.0
        return frame.assign(days_since_last_purchase=days, repurchase_due_ratio=days / frame[FEATURES[-3]])

    def rows(c: dict, p: pd.DataFrame, at: pd.Timestamp) -> np.ndarray:
        p = on_demand(p, at).assign(item_cf_score=[0.5, 0.4, 0.3], **c)
        return p[FEATURES].to_numpy(np.float64)

    snapshot = rows(customer, pairs, pd.Timestamp(AS_OF))
    frame = pd.DataFrame(bought).rename(columns={"item_id": s.ITEM, "timestamp": s.TS, "order_id": s.ORDER})
    frame = frame.assign(**{s.CUSTOMER: "c", "spend": frame[s.QUANTITY] * frame["unit_price"]})
    online_c, online_p = fresh_rows(pd.DataFrame([{s.CUSTOMER: "c", **customer}]), pairs.iloc[:2], frame)
    after = pd.concat([online_p, pairs.iloc[1:2]]).set_index(s.ITEM).loc[["A", "B", "C"]].reset_index()
    expected = rows(online_c.iloc[0][[*CUSTOMER_COLS, "distinct_items"]].to_dict(), after, ts("2011-06-08"))

    got = patch(snapshot, FEATURES, ["A", "B", "C"], bought, AS_OF)
    np.testing.assert_allclose(got, expected, rtol=1e-9, equal_nan=True)
    assert got[0, FEATURES.index("times_bought")] == 4  # two orders of A since as_of


def test_candidate_entries_round_trip():
    kept = pd.DataFrame({s.CUSTOMER: ["c", "c", "d"], s.ITEM: ["A", "B", "A"], "f": [1.5, 2.5, 3.5], "g": [0, 1, 2]})
    entries = dict(candidate_payloads(kept, ["f", "g"]))
    items, x = decode(json.loads(entries["c"]), 2)
    assert items == ["A", "B"]
    np.testing.assert_array_equal(x, [[1.5, 0.0], [2.5, 1.0]])


def test_candidate_entries_are_lossless_and_compact():
    rng = np.random.default_rng(0)
    rows, own, varying = 100, 17, 36  # the ranker's shape: a customer's own features repeat down the rows
    x = np.hstack([np.tile(rng.normal(size=own), (rows, 1)), rng.normal(size=(rows, varying))]).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, -1] = np.arange(rows)  # a rank column
    names = [f"f{i}" for i in range(own + varying)]
    kept = pd.DataFrame(x, columns=names).assign(**{s.CUSTOMER: "c", s.ITEM: [f"i{r}" for r in range(rows)]})
    entry = json.loads(dict(candidate_payloads(kept, names))["c"])
    items, back = decode(entry, len(names))
    assert items == kept[s.ITEM].tolist()
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back.astype(np.float32).view(np.uint32), x.view(np.uint32))  # bit for bit
    assert len(entry["x"]) < 0.75 * len(base64.b64encode(x.tobytes()))
    one = dict(candidate_payloads(kept.iloc[:1].assign(**{s.CUSTOMER: "d"}), names))["d"]  # a one-row customer
    np.testing.assert_array_equal(decode(json.loads(one), len(names))[1], back[:1])
    with pytest.raises(TypeError, match="float32"):
        pack(x.astype(np.float64))


def test_purchases_since_reads_the_customers_purchases_after_as_of(tmp_path):
    from pipelines.data.events import Event

    log = EventLog(tmp_path / "events.db")
    stamp = {"customer_id": "c", "item_id": "A"}
    log.append(
        [
            Event(type="purchase", timestamp="2011-05-31T23:00:00Z", **stamp),  # before as_of
            Event(type="view", timestamp="2011-06-02T10:00:00Z", **stamp),
            Event(type="purchase", timestamp="2011-06-02T10:00:00Z", **{**stamp, "customer_id": "d"}),
            Event(type="purchase", timestamp="2011-06-03T10:00:00Z", quantity=2, unit_price=1.5, **stamp),
        ]
    )
    got = log.purchases_since("c", AS_OF)
    assert got == [Purchase("A", datetime(2011, 6, 3, 10, tzinfo=UTC), "event-4", 2.0, 1.5)]
    log.close()


@pytest.fixture
def served(tmp_path):
    """A published version whose model scores times bought first, then item_cf; candidates X > Y > Z."""
    names = ["item_cf_score", "times_bought", "days_since_last_purchase", "recency_days"]
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.random(400), rng.integers(0, 4, 400), rng.random(400) * 50, rng.random(400) * 50])
    booster = lgb.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(x, x[:, 1] + 0.5 * x[:, 0], feature_name=names),
        num_boost_round=30,
    )
    version = tmp_path / "versions" / "v1"
    (version / "model").mkdir(parents=True)
    booster.save_model(str(version / "model" / "ranker.lgb"))
    (version / "manifest.json").write_text(json.dumps({"data_window": {"as_of": "2011-06-01T00:00:00"}}))
    kept = pd.DataFrame(
        {s.CUSTOMER: "c", s.ITEM: ["X", "Y", "Z"], names[0]: [0.9, 0.6, 0.3], names[1]: 0.0, names[2]: np.nan}
    ).assign(recency_days=5.0)
    store = SqliteStore(tmp_path / "serving.db")
    published = [{"item_id": i, "score": 1.0, "reason": f"why {i}", "sources": ["item_cf"]} for i in ("X", "Y")]
    store.write("v1", "rec", [("c", json.dumps(published))], 10)
    store.write("v1", "cand", candidate_payloads(kept, names), 10)
    store.complete("v1")
    store.set_live("v1")
    log = EventLog(tmp_path / "events.db")
    app = create_app(store, tmp_path, 20, 50, events=log, event_params=shipped("events"))
    yield TestClient(app), log
    log.close()


def buy(client: TestClient, item: str, order: str, day: str) -> None:
    event = {"type": "purchase", "customer_id": "c", "item_id": item, "timestamp": day, "order_id": order}
    assert client.post("/events", json=event).status_code == 200


def test_a_purchase_re_ranks_the_list_as_the_model_says(served):
    client, _ = served
    before = client.get("/recommendations/c?k=2").json()
    assert before["fresh"] and [i["item_id"] for i in before["items"]] == ["X", "Y"]
    buy(client, "Z", "o1", "2011-06-03T10:00:00Z")
    buy(client, "Z", "o2", "2011-06-04T10:00:00Z")
    after = client.get("/recommendations/c?k=2").json()
    assert after["fresh"] and [i["item_id"] for i in after["items"]] == ["Z", "X"]
    assert after["items"][0]["reason"] == "moved up by your purchases since 2011-06-01"
    assert after["items"][0]["sources"] == ["item_cf"]
    assert after["items"][1]["reason"] == "why X"  # a published item keeps its reason


def test_an_unreadable_event_log_answers_the_published_list_not_fresh(served, monkeypatch):
    client, log = served
    buy(client, "Z", "o1", "2011-06-03T10:00:00Z")

    def broken(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(log, "purchases_since", broken)
    answer = client.get("/recommendations/c?k=2")
    assert answer.status_code == 200
    assert not answer.json()["fresh"] and [i["item_id"] for i in answer.json()["items"]] == ["X", "Y"]


def test_a_version_without_re_ranking_entries_answers_its_list_not_fresh_and_says_why(served, tmp_path, caplog):
    client, _ = served
    buy(client, "Z", "o1", "2011-06-03T10:00:00Z")
    SqliteStore(tmp_path / "serving.db").drop_kind("v1", "cand")  # given up by an older version (publish.prune)
    answer = client.get("/recommendations/c?k=2").json()
    assert not answer["fresh"] and [i["item_id"] for i in answer["items"]] == ["X", "Y"]
    assert "holds no re-ranking entry" in caplog.text
    client.get("/recommendations/c?k=2")
    assert caplog.text.count("holds no re-ranking entry") == 1  # said once per version, not on every request
