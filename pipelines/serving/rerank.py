"""Request-time re-ranking: a customer who bought since the nightly run gets their published
candidates re-scored by the published model with the features those purchases changed.

Score keeps each customer's top `publish.rerank_candidates` candidates with their model inputs
(`candidates.parquet`); publish stores them as one entry per customer (kind `cand`: item ids and the
float32 feature rows). At request time the customer's purchases since the version's as-of date come
from the event log (one indexed query); `patch` applies them to the rows the way the Feast online
store sees them after `POST /events` (pipelines/features/fresh.py: recency, order and spend counts,
distinct items; the pair's times and units bought, interval, and the on-demand days since last
purchase and due ratio at the request's time, the customer's latest purchase); the model re-scores
the rows and the top k go out. A customer without purchases since as_of gets the published list: the
model would give the same order.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.data.events import Purchase

if TYPE_CHECKING:
    import lightgbm as lgb

    from pipelines.data.events import EventLog
    from pipelines.serving.store import ServingStore

log = logging.getLogger(__name__)
WINDOWS = ("30d", "90d", "365d")  # a fresh purchase falls in every window (as in features/fresh.py)
DAY = 86400.0
INTERVAL = "mean_repurchase_interval_days"


def candidate_payloads(kept: pd.DataFrame, features: list[str]) -> list[tuple[str, str]]:
    """Store entries (customer, JSON) of `kept` (customer, item, the model's `features`):
    the item ids and the rows (`pack`), best first."""
    import orjson

    from pipelines.core.partitions import groups_in_order

    order, groups = groups_in_order(kept[s.CUSTOMER])
    x = np.ascontiguousarray(kept[features].to_numpy(np.float32)[order])
    items = kept[s.ITEM].astype(str).to_numpy()[order].tolist()
    return [(str(c), orjson.dumps({"items": items[lo:hi], "x": pack(x[lo:hi])}).decode()) for c, lo, hi in groups]


def pack(x: np.ndarray) -> str:
    """Float32 rows, lossless and compact: the column-major bytes split into byte planes, zlib, base64.
    A customer's own features are one value down a column and ranks are small numbers, so a
    customer's 100 rows of 53 inputs take about a third of their raw 21 KB."""
    if x.dtype != np.float32:
        raise TypeError(f"pack takes float32 rows, not {x.dtype}")
    planes = np.ascontiguousarray(x.T, dtype="<f4").view(np.uint8).reshape(-1, 4).T
    return base64.b64encode(zlib.compress(planes.tobytes(), 1)).decode()


def decode(entry: dict[str, Any], n_features: int) -> tuple[list[str], np.ndarray]:
    """(item ids, feature rows) of a `cand` entry."""
    planes = np.frombuffer(zlib.decompress(base64.b64decode(entry["x"])), dtype=np.uint8).reshape(4, -1)
    columns = np.ascontiguousarray(planes.T).view("<f4").reshape(n_features, len(entry["items"]))
    return entry["items"], columns.T.astype(np.float64)


def _known(value: float) -> float:
    """A feature value, 0 where the store has none (NaN)."""
    return 0.0 if np.isnan(value) else float(value)


def patch(
    x: np.ndarray, features: Sequence[str], items: Sequence[str], bought: Sequence[Purchase], as_of: datetime
) -> np.ndarray:
    """The candidates' rows (`x`, columns `features`, rows `items`) after the customer's purchases
    since `as_of` (UTC), at the time of the latest one."""
    x, col = x.copy(), {name: i for i, name in enumerate(features)}
    now = max(p.timestamp for p in bought)
    shift = max((now - as_of).total_seconds() / DAY, 0.0)
    orders = len({p.order_id for p in bought})
    spend = sum(p.quantity * (p.unit_price or 0.0) for p in bought)
    times, days, interval = col.get("times_bought"), col.get("days_since_last_purchase"), col.get(INTERVAL)
    known = {item for item, t in zip(items, x[:, times], strict=True) if t > 0} if times is not None else set()
    add = {f"orders_{w}": orders for w in WINDOWS} | {f"spend_{w}": spend for w in WINDOWS}
    add["distinct_items"] = len({p.item_id for p in bought} - known)
    for name, value in add.items():
        if name in col:
            c = col[name]
            x[:, c] = np.where(np.isnan(x[:, c]), 0.0, x[:, c]) + value
    if "recency_days" in col:
        x[:, col["recency_days"]] = 0.0
    if days is not None:  # every last purchase is `shift` days further back at the request's time
        x[:, days] += shift
    row_of = {item: r for r, item in enumerate(items)}
    per_item: dict[str, list[Purchase]] = {}
    for p in bought:
        per_item.setdefault(p.item_id, []).append(p)
    for item, ps in per_item.items():
        r = row_of.get(item)
        if r is None:
            continue
        last = max(p.timestamp for p in ps)
        old_times = _known(x[r, times]) if times is not None else 0.0
        new_times = old_times + len({p.order_id for p in ps})
        if times is not None:
            x[r, times] = new_times
        if "units_bought" in col:
            x[r, col["units_bought"]] = _known(x[r, col["units_bought"]]) + sum(p.quantity for p in ps)
        if interval is not None:
            first = min(p.timestamp for p in ps)
            if old_times > 0 and days is not None and not np.isnan(x[r, days]):
                before = x[r, days] + (old_times - 1) * _known(x[r, interval])  # days from first to now
                first = now - timedelta(days=float(before))
            span = (last - first).total_seconds() / DAY
            x[r, interval] = span / (new_times - 1) if new_times >= 2 else np.nan
        if days is not None:
            x[r, days] = (now - last).total_seconds() / DAY
    due = col.get("repurchase_due_ratio")
    if due is not None and days is not None and interval is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            x[:, due] = x[:, days] / x[:, interval]
    return x


def reranked(
    booster: lgb.Booster,
    features: list[str],
    entry: dict[str, Any],
    bought: Sequence[Purchase],
    as_of: datetime,
    published: list[dict[str, Any]],
    k: int,
) -> list[dict[str, Any]]:
    """The top k of a `cand` entry re-scored after `bought`; an item of the published list keeps its
    reason and sources, one the purchases moved in says so and names the sources that proposed it.
    `features`: the booster's feature names (LightGBM builds the list anew on every call to ask)."""
    items, x = decode(entry, len(features))
    scores = booster.predict(patch(x, features, items, bought, as_of), num_threads=1)
    order = np.lexsort((np.asarray(items), -scores))[:k]
    before = {i["item_id"]: i for i in published}
    col = {f: i for i, f in enumerate(features)}
    scored = [f for f in features if f.endswith("_score")]
    moved = f"moved up by your purchases since {as_of.date().isoformat()}"
    out = []
    for r in order:
        known = before.get(items[r])
        sources = known["sources"] if known else [f.removesuffix("_score") for f in scored if x[r, col[f]] > 0]
        reason = known["reason"] if known else moved
        out.append({"item_id": items[r], "score": round(float(scores[r]), 4), "reason": reason, "sources": sources})
    return out


class Reranker:
    """Re-ranks a customer's published list at request time (see the module docstring). The model of
    the live version is loaded once from `publish_dir`; any failure answers the published list, not fresh."""

    def __init__(self, store: ServingStore, events: EventLog, publish_dir: str | Path) -> None:
        self.store, self.events, self.dir = store, events, Path(publish_dir)
        self._models: dict[str, tuple[lgb.Booster, list[str], datetime]] = {}
        self._without_entries: set[str] = set()  # versions already logged as holding no `cand` entry
        self._lock = threading.Lock()

    def model(self, version: str) -> tuple[lgb.Booster, list[str], datetime]:
        with self._lock:
            if version not in self._models:
                import lightgbm as lgb

                root = self.dir / "versions" / version
                as_of = json.loads((root / "manifest.json").read_text())["data_window"]["as_of"]
                booster = lgb.Booster(model_file=str(root / "model" / "ranker.lgb"))
                as_of = pd.Timestamp(as_of, tz="UTC").to_pydatetime()
                self._models = {version: (booster, booster.feature_name(), as_of)}
            return self._models[version]

    def __call__(self, version: str, customer: str, published: list[dict[str, Any]], k: int) -> tuple[list, bool]:
        """(the customer's top k now, whether it reflects every purchase logged since as_of)."""
        try:
            booster, features, as_of = self.model(version)
            bought = self.events.purchases_since(customer, as_of)
            if not bought:
                return published[:k], True
            entry = self.store.get("cand", customer, version)[1]
            if entry is None:  # publish.rerank_candidates: 0, or given up by an older version (publish.prune)
                if version not in self._without_entries:  # once per version, not once per request
                    self._without_entries.add(version)
                    msg = "re-ranking in %s: the version holds no re-ranking entry (first for %s): lists as published"
                    log.warning(msg, version, customer)
                return published[:k], False
            return reranked(booster, features, entry, bought, as_of, published, k), True
        except Exception as exc:  # the event log, the store or the model: the published list still holds
            log.warning("re-ranking %s in %s: %s: %s", customer, version, type(exc).__name__, exc)
            return published[:k], False
