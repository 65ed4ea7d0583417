"""The Feast repo end to end on hand-made purchases: point-in-time joins without leakage, TTL,
materialisation (incremental) and online reads, in the local configuration (SQLite, DuckDB)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from pipelines.data.split import Windows
from pipelines.features.history import EVENT_TS
from pipelines.features.store import (
    _SNAPSHOTS,
    _inside,
    _views,
    forget,
    historical_features,
    materialize,
    online_features,
    scratch_store,
)
from tests.conftest import feature_project, interactions, scratch_database

pytestmark = pytest.mark.e2e

BASE = pd.Timestamp("2011-01-01")
TEXT = {"A": "RED HEART HOLDER", "B": "BLUE MUG", "C": "PAPER BAG", "D": "GREEN MUG"}
PRICE = {"A": 2.0, "B": 5.0, "C": 1.0, "D": 3.0}
ROWS = [
    ("c1", "A", 5, "o1"),
    ("c1", "A", 20, "o2"),
    ("c1", "B", 20, "o2"),
    ("c1", "A", 50, "o3"),
    ("c1", "C", 65, "o4"),
    ("c2", "B", 10, "o5"),
    ("c2", "D", 60, "o6"),
    ("c3", "C", 30, "o7"),
    ("c3", "A", 90, "o8"),
]


def day(n: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=n)


def clean(rows: list[tuple]) -> pd.DataFrame:
    df = interactions(rows)
    df["description"] = df["item_id"].map(TEXT)
    df["unit_price"] = df["item_id"].map(PRICE)
    df["quantity"] = 2.0
    return df


WINDOWS = Windows(train_start=day(0), valid_start=day(60), test_start=day(80), as_of=day(100))
PAIRS = pd.DataFrame({"customer_id": ["c1", "c1", "c2", "c3"], "item_id": ["A", "D", "B", "C"]})


def entities(at: pd.Timestamp) -> pd.DataFrame:
    return PAIRS.assign(event_timestamp=at)


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("SHOPREC_FEATURE_STORE", raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    fs, _ = feature_project(tmp_path_factory.mktemp("feast"), clean(ROWS), WINDOWS)
    return fs


def test_point_in_time_values_are_hand_computed(store):
    got = historical_features(store, entities(day(80))).set_index(["customer_id", "item_id"])
    c1a = got.loc[("c1", "A")]
    assert c1a["orders_365d"] == 4 and c1a["orders_30d"] == 2  # orders on days 5, 20, 50, 65; [50, 80) holds 2
    assert c1a["recency_days"] == 15 and c1a["tenure_days"] == 75
    assert c1a["spend_365d"] == pytest.approx(2 * (2 + 2 + 5 + 2 + 1))
    assert c1a["times_bought"] == 3 and c1a["units_bought"] == 6
    assert c1a["mean_repurchase_interval_days"] == pytest.approx(22.5)  # (50 - 5) / 2
    assert c1a["days_since_last_purchase"] == pytest.approx(30)  # computed at request time: day 80 - day 50
    assert c1a["repurchase_due_ratio"] == pytest.approx(30 / 22.5)
    assert c1a["buyers_90d"] == 1 and c1a["units_90d"] == 6  # A in [-10, 80): c1 on days 5, 20 and 50
    assert np.isnan(got.loc[("c1", "D"), "times_bought"])  # never bought
    assert got.loc[("c3", "C"), "times_bought"] == 1


def test_retrievals_leave_no_views_in_duckdb(store):
    # Feast registers each entity frame and source as a DuckDB view: a step retrieving partition after
    # partition would keep every partition's rows unless they are dropped
    import ibis

    con = ibis.get_backend().con
    before = _views(con)
    for at in (day(45), day(80), day(90)):
        assert len(historical_features(store, entities(at))) == len(PAIRS)
    assert _views(con) == before
    with ThreadPoolExecutor(3) as pool:  # threads of one process (a dask worker) share the connection
        frames = list(pool.map(lambda at: historical_features(store, entities(at)), [day(45), day(80), day(90)] * 2))
    assert [len(f) for f in frames] == [len(PAIRS)] * 6 and _views(con) == before


def test_joined_once_per_key_as_feast_joins_every_row(store):
    # repeated customers, pairs and timestamps; c9 is unknown; the rows are not in key order
    rows = pd.concat([entities(day(80)), entities(day(45)), entities(day(80))[::-1]], ignore_index=True)
    rows = pd.concat(
        [rows, pd.DataFrame({"customer_id": ["c9"], "item_id": ["A"], EVENT_TS: [day(80)]})], ignore_index=True
    )
    got = historical_features(store, rows.set_index(np.arange(100, 100 + len(rows))))
    frame = rows.reset_index(drop=True).assign(**{EVENT_TS: pd.to_datetime(rows[EVENT_TS]).dt.tz_localize("UTC")})
    frame = frame.assign(as_of=frame[EVENT_TS], _row=range(len(frame)))
    with _inside(store):  # Feast alone, every row joined: the reference
        direct = store.get_historical_features(entity_df=frame, features=store.get_feature_service("ranker")).to_df()
    direct = direct.sort_values("_row").reset_index(drop=True)[got.columns]
    pd.testing.assert_frame_equal(got.drop(columns=EVENT_TS), direct.drop(columns=EVENT_TS))
    assert (got[EVENT_TS] == direct[EVENT_TS]).all()
    assert got.loc[0, "orders_365d"] == 4 and got.loc[4, "orders_365d"] != got.loc[0, "orders_365d"]  # c1 at 80, 45


def test_events_at_or_after_the_entity_timestamp_never_reach_the_join(store, tmp_path):
    at = day(80)
    before = historical_features(store, entities(at))
    planted = ROWS + [
        ("c1", "A", 80, "p1"),  # exactly at the entity timestamp
        ("c1", "D", 80.125, "p2"),  # three hours later
        ("c2", "B", 85, "p3"),
        ("c3", "C", 95, "p4"),
        ("c9", "A", 81, "p5"),  # a brand-new customer buying A
    ]
    leaky, _ = feature_project(tmp_path, clean(planted), WINDOWS)
    after = historical_features(leaky, entities(at))
    pd.testing.assert_frame_equal(before, after)
    # The control: a later join does see the planted events, so the comparison above can fail.
    later = historical_features(leaky, entities(day(93))).set_index(["customer_id", "item_id"])
    assert later.loc[("c1", "D"), "times_bought"] == 1
    assert later.loc[("c1", "A"), "orders_30d"] == 3  # o4 (day 65), p1 and p2 (day 80) in [63, 93)
    assert later.loc[("c1", "A"), "buyers_7d"] == 1  # c3 on day 90
    assert later.loc[("c1", "A"), "units_30d"] == 6  # c1 (day 80), c9 (day 81), c3 (day 90)


def test_a_snapshot_gives_each_row_what_the_join_of_that_row_gives(store):
    # scoring joins partition after partition at one time: each group of views is retrieved once for
    # every entity its sources hold; unknown customers and pairs get what Feast gives them
    _SNAPSHOTS.clear()
    parts = [
        pd.concat([entities(day(80)), entities(day(80))[::-1]], ignore_index=True),
        pd.DataFrame({"customer_id": ["c9", "c2", "c1"], "item_id": ["A", "Z", "C"], EVENT_TS: day(80)}),
    ]
    for rows in parts:
        got = historical_features(store, rows.set_index(np.arange(7, 7 + len(rows))), snapshot=True)
        pd.testing.assert_frame_equal(got, historical_features(store, rows), check_dtype=False)  # ints may be floats
    assert len(_SNAPSHOTS) == 3  # customer, product, customer x product: retrieved once for both parts
    later = entities(day(90))
    snap, plain = historical_features(store, later, snapshot=True), historical_features(store, later)
    pd.testing.assert_frame_equal(snap, plain, check_dtype=False)
    assert len(_SNAPSHOTS) == 3  # another time replaces each group's snapshot, not beside it
    assert all(key[3] == day(90).tz_localize("UTC") for key in _SNAPSHOTS)
    assert historical_features(store, parts[1], snapshot=True).loc[0, "customer_id"] == "c9"


def test_a_value_older_than_the_ttl_is_not_served(tmp_path):
    fs, params = feature_project(tmp_path, clean(ROWS), WINDOWS)
    customer = pd.read_parquet(tmp_path / "data" / "features" / "customer.parquet")
    # c2 stops appearing in snapshots after day 40, as a customer gone quiet would.
    customer = customer.loc[(customer["customer_id"] != "c2") | (customer[EVENT_TS] <= day(40).tz_localize("UTC"))]
    tables = {
        n: pd.read_parquet(tmp_path / "data" / "features" / f"{n}.parquet") for n in ("product", "customer_product")
    }
    fs = scratch_store(tmp_path, {"customer": customer, **tables}, params)
    ttl = fs.get_feature_view("customer").ttl
    assert ttl == pd.Timedelta(days=35)
    last = customer.loc[customer["customer_id"] == "c2", EVENT_TS].max()
    rows = pd.DataFrame(
        {"customer_id": "c2", "item_id": "B", "event_timestamp": [last + ttl, last + ttl + pd.Timedelta(days=1)]}
    )
    got = historical_features(fs, rows)
    for i in (0, 1):  # each time alone through the snapshot: the same
        one = historical_features(fs, rows.iloc[[i]], snapshot=True)
        pd.testing.assert_frame_equal(one, got.iloc[[i]].reset_index(drop=True), check_dtype=False)
    assert got.loc[0, "orders_365d"] == 1  # exactly at the TTL: still served
    assert np.isnan(got.loc[1, "orders_365d"])  # a day later: expired
    assert got.loc[1, "times_bought"] == 1  # the customer x product view has its own, longer TTL


def test_materialize_is_incremental_and_online_reads_match_offline(tmp_path):
    fs, _ = feature_project(tmp_path, clean(ROWS), WINDOWS)
    first = materialize(fs, day(90))
    assert first["customer"]["rows"] == 3 and first["customer_product"]["rows"] == 6  # (c3, A) is stamped day 91
    second = materialize(fs, WINDOWS.as_of)
    assert second["customer_product"]["rows"] == 1 and not second["customer_product"]["reloaded"]  # only (c3, A)
    assert second["customer_product"]["from"] == day(90).tz_localize("UTC").isoformat()
    assert all(r["rows"] == 0 for r in materialize(fs, WINDOWS.as_of).values())  # nothing new

    profile = online_features(fs, pd.DataFrame({"customer_id": ["c1", "nobody"]}), "customer_profile")
    offline = historical_features(fs, entities(WINDOWS.as_of)).set_index("customer_id")
    assert profile.loc[0, "recency_days"] == offline.loc["c1", "recency_days"].iloc[0] == 35
    assert profile.loc[0, "rfm_tier"] in {"champion", "loyal", "promising", "at_risk", "hibernating"}
    keywords = profile.loc[0, "profile_keywords"].split()
    assert len(keywords) == 3 and set(keywords) <= {"red", "heart", "holder", "blue", "mug", "paper", "bag"}
    assert profile.loc[1].drop("customer_id").isna().all()  # an unknown customer gets nulls, not an error

    pairs = online_features(fs, PAIRS, "ranker", as_of=day(110))
    c1a = pairs.set_index(["customer_id", "item_id"]).loc[("c1", "A")]
    assert c1a["days_since_last_purchase"] == pytest.approx(60)  # day 110 - day 50, at request time
    assert online_features(fs, PAIRS.head(1), "ranker", as_of=day(120)).loc[0, "days_since_last_purchase"] == 70

    # The next days' purchases arrive and the sources are rebuilt. Customer x product rows are stamped
    # at purchases, so the rows the last load read are unchanged and only the new one loads; customer
    # snapshots are stamped back from as_of, so with a new as_of that view reloads its TTL window.
    more = ROWS + [("c1", "D", 103, "o9")]
    later = Windows(train_start=day(0), valid_start=day(70), test_start=day(90), as_of=day(107))
    fs2, _ = feature_project(tmp_path, clean(more), later)
    third = materialize(fs2, later.as_of)
    assert third["customer_product"]["rows"] == 1 and not third["customer_product"]["reloaded"]
    assert third["customer_product"]["online"] == 8 and third["customer"]["reloaded"]
    row = online_features(fs2, pd.DataFrame({"customer_id": ["c1"], "item_id": ["D"]}), "ranker", as_of=day(107))
    assert row.loc[0, "times_bought"] == 1 and row.loc[0, "days_since_last_purchase"] == 4

    # An earlier purchase is corrected (c2 bought B on day 12, not 10): a row the last load read changed,
    # so the whole window reloads and the online store holds what the new sources say.
    fixed = [(c, i, 12 if o == "o5" else d, o) for c, i, d, o in more]
    fs3, _ = feature_project(tmp_path, clean(fixed), later)
    fourth = materialize(fs3, later.as_of)
    assert fourth["customer_product"]["reloaded"] and fourth["customer_product"]["rows"] == 8
    row = online_features(fs3, pd.DataFrame({"customer_id": ["c2"], "item_id": ["B"]}), "ranker", as_of=day(107))
    assert row.loc[0, "days_since_last_purchase"] == 95


def test_a_load_killed_half_way_is_done_again_in_full(tmp_path, monkeypatch):
    from feast import FeatureStore

    fs, _ = feature_project(tmp_path, clean(ROWS), WINDOWS)
    materialize(fs, WINDOWS.as_of)
    fixed = [(c, i, 12 if o == "o5" else d, o) for c, i, d, o in ROWS]  # a corrected purchase: a reload starts
    fs2, _ = feature_project(tmp_path, clean(fixed), WINDOWS)
    original = FeatureStore.materialize

    def killed(self, *args, feature_views=None, **kwargs):
        if feature_views == ["customer_product"]:
            raise KeyboardInterrupt
        return original(self, *args, feature_views=feature_views, **kwargs)

    monkeypatch.setattr(FeatureStore, "materialize", killed)
    with pytest.raises(KeyboardInterrupt):
        materialize(fs2, WINDOWS.as_of)
    monkeypatch.undo()
    # The sources go back to what was loaded first, but the killed load may have written some rows.
    fs3, _ = feature_project(tmp_path, clean(ROWS), WINDOWS)
    again = materialize(fs3, WINDOWS.as_of)["customer_product"]
    assert again.get("reloaded") and again["rows"] == 7


@pytest.fixture
def production_env(services):
    """A scratch PostgreSQL database for the SQL registry and a unique project (hence Redis key prefix)."""
    import uuid

    return {
        "SHOPREC_FEAST_PROJECT": f"shoprec_test_{uuid.uuid4().hex[:8]}",
        "SHOPREC_FEAST_REGISTRY_URL": scratch_database(),
        "SHOPREC_FEAST_REDIS": "127.0.0.1:6379,db=0",
    }


@pytest.mark.services
def test_production_configuration_on_redis_and_postgresql(tmp_path, production_env):
    import redis

    from pipelines.features.store import LoadedDigests, open_store

    fs, params = feature_project(tmp_path, clean(ROWS), WINDOWS, store="production", env=production_env)
    project = production_env["SHOPREC_FEAST_PROJECT"]
    try:
        assert type(fs._get_provider().online_store).__name__ == "RedisOnlineStore"
        assert type(fs.registry).__name__ == "SqlRegistry"
        report = materialize(fs, WINDOWS.as_of)
        assert report["customer_product"]["rows"] == 7

        # A second process sees the same registry (PostgreSQL) and online values (Redis).
        other = open_store(params, env=production_env)
        assert sorted(v.name for v in other.list_feature_views()) == ["customer", "customer_product", "product"]
        profile = online_features(other, pd.DataFrame({"customer_id": ["c1"]}), "customer_profile")
        assert profile.loc[0, "recency_days"] == 35
        pairs = online_features(other, PAIRS, "ranker", as_of=day(110)).set_index(["customer_id", "item_id"])
        assert pairs.loc[("c1", "A"), "days_since_last_purchase"] == pytest.approx(60)
        assert np.isnan(pairs.loc[("c1", "D"), "times_bought"])
        assert all(r["rows"] == 0 for r in materialize(other, WINDOWS.as_of).values())  # state lives in PostgreSQL
        # The next run, in its own directory, shares the store: what was loaded is known there (Redis).
        nxt, _ = feature_project(tmp_path / "next", clean(ROWS), WINDOWS, store="production", env=production_env)
        assert all(r["rows"] == 0 and r["writers"] == 0 for r in materialize(nxt, WINDOWS.as_of).values())
        # One Redis hash per entity key, suffixed with the project: 3 customers, 4 items, 7 pairs.
        assert len(redis_keys(project)) == 14
        # A quantity is corrected: the rows keep their stamps, so the reload must overwrite (Feast's
        # own writer keeps a stored value unless the new row's stamp is later).
        fixed = clean(ROWS)
        fixed.loc[fixed["order_id"] == "o5", "quantity"] = 5.0
        corrected, _ = feature_project(tmp_path / "fixed", fixed, WINDOWS, store="production", env=production_env)
        assert materialize(corrected, WINDOWS.as_of)["customer_product"]["reloaded"]
        row = online_features(
            corrected, pd.DataFrame({"customer_id": ["c2"], "item_id": ["B"]}), "ranker", as_of=day(100)
        )
        assert row.loc[0, "units_bought"] == 5.0
    finally:
        forget(fs)
    assert redis_keys(project) == []
    assert not redis.Redis(host="127.0.0.1", port=6379).exists(LoadedDigests(fs).key)  # forgotten with the project


@pytest.mark.services
def test_forgetting_a_project_leaves_the_others_in_the_shared_registry(tmp_path, production_env):
    """Feast's teardown deletes every project of the registry: a test or run tearing its own down
    would wipe another's objects mid-run (its next apply then fails on the version history)."""
    ours, _ = feature_project(tmp_path / "ours", clean(ROWS), WINDOWS, store="production", env=production_env)
    theirs_env = {**production_env, "SHOPREC_FEAST_PROJECT": production_env["SHOPREC_FEAST_PROJECT"] + "_b"}
    theirs, params = feature_project(tmp_path / "theirs", clean(ROWS), WINDOWS, store="production", env=theirs_env)
    try:
        materialize(ours, WINDOWS.as_of)
        materialize(theirs, WINDOWS.as_of)
        forget(ours)
        assert redis_keys(production_env["SHOPREC_FEAST_PROJECT"]) == []
        assert sorted(v.name for v in theirs.registry.list_feature_views(theirs.project, allow_cache=False)) == [
            "customer",
            "customer_product",
            "product",
        ]
        assert len(redis_keys(theirs_env["SHOPREC_FEAST_PROJECT"])) == 14
        again, _ = feature_project(tmp_path / "ours", clean(ROWS), WINDOWS, store="production", env=production_env)
        assert materialize(again, WINDOWS.as_of)["customer_product"]["rows"] == 7  # a fresh project again
        forget(again)
    finally:
        forget(theirs)


@pytest.mark.services
def test_writers_in_parallel_load_what_materialize_loads(tmp_path, production_env, monkeypatch):
    import pipelines.features.store as feature_store

    monkeypatch.setattr(feature_store, "PARALLEL_ROWS", 5)  # customer x product's 7 rows: in parallel on Redis
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "nobody"]})
    pairs = interactions(ROWS)[["customer_id", "item_id"]].drop_duplicates()  # all 7 pairs
    reads = {}
    for kind, env in (("local", None), ("production", production_env)):
        fs, _ = feature_project(tmp_path / kind, clean(ROWS), WINDOWS, store=kind, env=env)
        try:
            report = materialize(fs, WINDOWS.as_of, workers=2)
            parallel = 2 if kind == "production" else 1  # SQLite takes one writer
            assert report["customer_product"]["writers"] == parallel and report["customer_product"]["rows"] == 7
            assert report["customer"]["writers"] == report["product"]["writers"] == 1  # 3 and 4 rows
            reads[kind] = (
                online_features(fs, pairs, "ranker", as_of=day(110)),
                online_features(fs, customers, "customer_profile"),
            )
            again = materialize(fs, WINDOWS.as_of, workers=2)
            assert all(r["rows"] == 0 and r["writers"] == 0 for r in again.values())  # the interval was recorded
            if kind == "production":
                assert len(redis_keys(env["SHOPREC_FEAST_PROJECT"])) == 14
        finally:
            if kind == "production":
                forget(fs)
    for serial, parallel in zip(reads["local"], reads["production"], strict=True):
        pd.testing.assert_frame_equal(serial, parallel)


@pytest.mark.services
def test_the_redis_writer_writes_the_bytes_feasts_writer_writes(tmp_path, production_env, monkeypatch):
    """Every kind of value the views hold, with the cases a per-distinct-value conversion could merge
    or mangle (-0.0 and 0.0, NaN, NaT, None, non-ASCII keys, large and negative ints, infinities),
    in chunks of 4 rows."""
    import redis

    from pipelines.features import redis_writer
    from pipelines.features.redis_writer import write_rows

    monkeypatch.setattr(redis_writer, "CHUNK_ROWS", 4)

    fs, _ = feature_project(tmp_path, clean(ROWS), WINDOWS, store="production", env=production_env)
    at = pd.Timestamp("2011-03-01 10:30:15", tz="UTC")
    rows = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "çüß", "c1", "c4", "c5"],
            "item_id": ["A", "A", "B", "ü€", "A", "B"],
            "times_bought": [1, -5, 2**40, 0, 3, 1],
            "units_bought": [0.0, -0.0, np.nan, np.inf, 2.5, 2.5],
            "first_purchase": [at, at - pd.Timedelta(days=3), pd.NaT, at, at, at],
            "last_purchase": [at, at, pd.NaT, at + pd.Timedelta(seconds=1), at, at],
            "mean_repurchase_interval_days": [np.nan, 1e-300, 3.0, -1.5, 3.0, np.nan],
            EVENT_TS: [at, at, at - pd.Timedelta(days=1), at, at, at],
        }
    )
    by_type = {"Float64": [1.5, np.nan], "Int64": [3, 0], "String": ["mugs", None]}  # customer: no timestamps
    schema = fs.get_feature_view("customer").features
    customers = pd.DataFrame({f.name: by_type[str(f.dtype)] for f in schema}).assign(
        customer_id=["c1", "çüß"], rfm_tier=["loyal", "çà"], **{EVENT_TS: at}
    )
    client = redis.Redis(host="127.0.0.1", port=6379)
    project = production_env["SHOPREC_FEAST_PROJECT"].encode()
    written = {}
    try:
        for how in ("feast", "shoprec"):
            for view, frame in (("customer_product", rows), ("customer", customers)):
                with _inside(fs):
                    if how == "feast":
                        fs.write_to_online_store(view, frame)
                    else:
                        write_rows(fs, fs.get_feature_view(view), frame)
            keys = redis_keys(project.decode())
            written[how] = {key: client.hgetall(key) for key in keys}
            client.delete(*keys)
        assert len(written["feast"]) == 8
        assert written["shoprec"] == written["feast"]
    finally:
        forget(fs)


def redis_keys(project: str) -> list[bytes]:
    import redis

    return redis.Redis(host="127.0.0.1", port=6379).keys(f"*{project}".encode())


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """(store, params, root) materialised at as_of, shared by the tests that only add to it."""
    root = tmp_path_factory.mktemp("materialized")
    fs, params = feature_project(root, clean(ROWS), WINDOWS)
    materialize(fs, WINDOWS.as_of)
    return fs, params, root


def test_purchase_events_posted_to_the_api_update_the_online_features_at_once(materialized, tmp_path):
    from fastapi.testclient import TestClient

    from pipelines.data.events import EventLog
    from pipelines.serving.api import create_app
    from pipelines.serving.store import SqliteStore
    from tests.helpers import shipped

    fs = materialized[0]
    log = EventLog(tmp_path / "events.db")
    api = TestClient(create_app(SqliteStore(tmp_path / "s.db"), tmp_path, 20, 50, log, shipped("events"), online=fs))
    who = pd.DataFrame({"customer_id": ["c1", "c9"], "item_id": ["A", "B"]})
    before = online_features(fs, who, "ranker", as_of=day(110)).set_index("customer_id")
    bought = {"type": "purchase", "customer_id": "c1"}
    events = [
        {
            **bought,
            "item_id": "D",
            "timestamp": day(101).isoformat(),
            "order_id": "o10",
            "quantity": 2,
            "unit_price": 3,
        },
        {**bought, "item_id": "A", "timestamp": day(102).isoformat(), "order_id": "o11"},
        {"type": "purchase", "customer_id": "c9", "item_id": "B", "timestamp": day(101).isoformat()},
        {"type": "view", "customer_id": "c2", "item_id": "A", "timestamp": day(101).isoformat()},  # not a purchase
    ]
    answer = api.post("/events", json={"events": events}).json()
    assert answer["accepted"] == 4 and answer["online_updated"] is True, answer
    log.close()

    after = online_features(fs, who, "ranker", as_of=day(110)).set_index("customer_id")
    assert after.loc["c1", "recency_days"] == 0 and before.loc["c1", "recency_days"] == 35
    assert after.loc["c1", "orders_365d"] == before.loc["c1", "orders_365d"] + 2
    assert after.loc["c1", "rfm_tier"] == before.loc["c1", "rfm_tier"]  # the rest of the row is kept
    assert after.loc["c9", "recency_days"] == 0 and after.loc["c9", "orders_30d"] == 1  # a new customer
    pairs = pd.DataFrame({"customer_id": ["c1", "c1", "c9", "c2"], "item_id": ["A", "D", "B", "A"]})
    got = online_features(fs, pairs, "ranker", as_of=day(110)).set_index(["customer_id", "item_id"])
    # (c1, A): bought on days 5, 20 and 50 (orders o1-o3), then o11 on day 102
    assert got.loc[("c1", "A"), "times_bought"] == 4 and got.loc[("c1", "A"), "days_since_last_purchase"] == 8
    assert got.loc[("c1", "A"), "mean_repurchase_interval_days"] == pytest.approx((102 - 5) / 3)
    assert got.loc[("c1", "D"), "times_bought"] == 1 and got.loc[("c1", "D"), "units_bought"] == 2
    assert got.loc[("c1", "D"), "days_since_last_purchase"] == 9
    assert got.loc[("c9", "B"), "times_bought"] == 1
    assert pd.isna(got.loc[("c2", "A"), "times_bought"])  # a view is not a purchase


def test_applying_a_copied_project_leaves_the_original_online_store_alone(materialized, tmp_path):
    """A project copied with its registry (cp -r): applying the copy must not drop the original's tables."""
    import shutil

    from pipelines.features.store import apply, open_store

    fs, params, root = materialized
    shutil.copytree(root, tmp_path / "copy")
    copy = open_store({**params, "repo": str(tmp_path / "copy" / "feature_repo")})
    apply(copy, int(params["every_days"]))
    for store in (fs, copy):  # both still serve the materialised rows (c2 last bought on day 60)
        profile = online_features(store, pd.DataFrame({"customer_id": ["c2"]}), "customer_profile")
        assert profile.loc[0, "recency_days"] == 40
