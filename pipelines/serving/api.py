"""`shoprec serve`: the HTTP API over the published recommendations (FastAPI).

GET /recommendations/{customer_id}?k=10[&country=...]  the customer's list with score and a short reason,
    re-ranked by the published model after purchases logged since it was scored (`fresh`); a customer
    without one (new, unknown) gets the cold-start list of the country, else the global one
GET /customers/{customer_id}/segment                   the loyalty tier and segment published for the customer
GET /items/{item_id}/similar?k=10                      items bought by the same customers (item CF), filled up
    with the nearest by product text for items too new to have co-purchases (a product page)
POST /baskets/recommendations                          {"items": [...], "k": 10}: what completes a cart, its
    items' similar lists fused, the cart's items left out; the global best sellers when they have none
POST /events                                           one event or {"events": [...]} (purchase, add_to_cart,
    view), appended durably to the event log the next ingest reads; an `Idempotency-Key` header makes
    a retried batch count once (pipelines/data/events.py); purchases then update the Feast online
    features (pipelines/features/fresh.py)
GET /health, GET /version                              liveness of the store; which version is live
Bad input is a 4xx with a one-line message, never a 500; an unreachable store is a 503. Lookups are
sub-millisecond key reads made on the event loop (scale out with --workers). The OpenAPI spec is at
/openapi.json.
"""

import gc
import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import Body, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import InputError
from pipelines.core.schema import GLOBAL
from pipelines.data.events import CUSTOMER_ID, ITEM_ID, EventLog, check_batch, parse_batch
from pipelines.features.fresh import update_online
from pipelines.serving.rerank import Reranker
from pipelines.serving.similar import complete_basket
from pipelines.serving.store import ServingStore

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)
COUNTRY = r"^[A-Za-z .'\-]{1,64}$"


class FastJSON(JSONResponse):
    """JSON rendered by orjson, for the hot path: the store's entries are plain JSON already, so the
    documented response model (below) is not re-validated on every request."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Item(BaseModel):
    item_id: str
    score: float
    reason: str
    sources: list[str]


class Recommendations(BaseModel):
    customer_id: str
    version: str
    cold_start: bool
    fresh: bool  # reflects every purchase logged since the version's as-of date (false: re-ranking failed)
    items: list[Item]


class SimilarItem(BaseModel):
    item_id: str
    score: float
    source: str


class Similar(BaseModel):
    item_id: str
    version: str
    items: list[SimilarItem]


class BasketItem(BaseModel):
    item_id: str
    score: float
    because: list[str]


class BasketAnswer(BaseModel):
    version: str
    fallback: bool
    items: list[BasketItem]


class Accepted(BaseModel):
    accepted: int
    first_seq: int
    last_seq: int
    duplicate: bool
    online_updated: bool | None = None  # purchases written to the Feast online store (None: no store)


class Segment(BaseModel):
    customer_id: str
    version: str
    tier: str
    segment: int | None = None
    rfm_score: int | None = None
    profile_keywords: str | None = None
    recency_days: float | None = None
    orders_365d: int | None = None


def create_app(
    store: ServingStore,
    publish_dir: str | Path,
    max_k: int,
    max_basket: int,
    events: EventLog | None = None,
    event_params: dict[str, Any] | None = None,
    online: "FeatureStore | None" = None,
) -> FastAPI:
    """The API over `store`; `publish_dir` holds the versions' manifests and models; lists have at
    most `max_k` items, baskets at most `max_basket`. With an event log (and the `events` params),
    POST /events appends to it, a customer's list is re-ranked after their logged purchases
    (pipelines/serving/rerank.py), and with a Feast store (`online`) purchases update the online
    features at once (pipelines/features/fresh.py)."""
    rerank = Reranker(store, events, publish_dir) if events is not None else None
    app = FastAPI(
        title="shoprec",
        version="1",
        description="Published, explained recommendations, loyalty segments, similar items and cart completion.",
    )

    @app.exception_handler(RequestValidationError)
    async def one_line(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"][1:]) or str(first["loc"][0])
        return JSONResponse({"detail": f"{where}: {first['msg']}"}, status_code=422)

    def unreachable(exc: Exception) -> HTTPException:
        return HTTPException(503, f"serving store unreachable: {type(exc).__name__}: {exc}")

    def lookup(kind: str, key: str, version: str | None = None) -> tuple[str | None, Any]:
        try:
            return store.get(kind, key, version)
        except Exception as exc:  # the store's client raises its own types: all mean unreachable
            raise unreachable(exc) from None

    def live_or_503() -> str:
        try:
            version = store.live()
        except Exception as exc:
            raise unreachable(exc) from None
        if version is None:
            raise HTTPException(503, "nothing published yet: run the pipeline (dvc repro) or `shoprec publish`")
        return version

    @app.get("/recommendations/{customer_id}", response_class=FastJSON, responses={200: {"model": Recommendations}})
    async def recommendations(
        customer_id: Annotated[str, PathParam(pattern=CUSTOMER_ID, description="Pseudonymised customer id.")],
        k: Annotated[int, Query(ge=1, le=max_k, description="How many items.")] = min(10, max_k),
        country: Annotated[str | None, Query(pattern=COUNTRY, description="For a new customer's list.")] = None,
    ) -> FastJSON:
        version, items = lookup("rec", customer_id)
        if version is None:
            live_or_503()
        cold, fresh = items is None, True
        if cold and country:
            items = lookup("cold", country, version)[1]
        if items is None:
            items = lookup("cold", GLOBAL, version)[1]
        if not cold and rerank is not None:
            items, fresh = rerank(version, customer_id, items, k)
        items = (items or [])[:k]
        return FastJSON(
            {"customer_id": customer_id, "version": version, "cold_start": cold, "fresh": fresh, "items": items}
        )

    @app.get("/customers/{customer_id}/segment", response_model=Segment)
    def segment(
        customer_id: Annotated[str, PathParam(pattern=CUSTOMER_ID, description="Pseudonymised customer id.")],
    ) -> dict[str, Any]:
        version, seg = lookup("segment", customer_id)
        if version is None:
            live_or_503()
        if seg is None:
            raise HTTPException(404, f"customer {customer_id}: not in the published version {version}")
        return {**seg, "version": version}

    @app.get("/items/{item_id}/similar", response_class=FastJSON, responses={200: {"model": Similar}})
    async def similar(
        item_id: Annotated[str, PathParam(pattern=ITEM_ID, description="Item id (stock code).")],
        k: Annotated[int, Query(ge=1, le=max_k, description="How many items.")] = min(10, max_k),
    ) -> FastJSON:
        version, items = lookup("similar", item_id)
        if version is None:
            live_or_503()
        if items is None:
            raise HTTPException(404, f"item {item_id}: no similar items in the published version {version}")
        return FastJSON({"item_id": item_id, "version": version, "items": items[:k]})

    class Basket(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: Annotated[list[Annotated[str, Field(pattern=ITEM_ID)]], Field(min_length=1, max_length=max_basket)]
        k: Annotated[int, Field(ge=1, le=max_k)] = min(10, max_k)

    @app.post("/baskets/recommendations", response_class=FastJSON, responses={200: {"model": BasketAnswer}})
    async def basket(body: Basket) -> FastJSON:
        cart = list(dict.fromkeys(body.items))
        version, first = lookup("similar", cart[0])  # the live version; the other items are read in it
        if version is None:
            live_or_503()
        lists = [(cart[0], first), *((item, lookup("similar", item, version)[1]) for item in cart[1:])]
        items = complete_basket(lists, body.k)
        fallback = not items
        if fallback:  # nothing known about the cart's items: what sells now
            best = lookup("cold", GLOBAL, version)[1] or []
            in_cart = set(cart)
            items = [
                {"item_id": i["item_id"], "score": i["score"], "because": []}
                for i in best
                if i["item_id"] not in in_cart
            ][: body.k]
        return FastJSON({"version": version, "fallback": fallback, "items": items})

    if events is not None:
        max_batch = int(event_params["max_batch"])
        max_skew = timedelta(seconds=int(event_params["max_skew_seconds"]))
        online_lock = threading.Lock()  # Feast's online store takes one writer at a time

        @app.post("/events", response_model=Accepted)
        def post_events(
            body: Annotated[Any, Body(description='One event, or {"events": [...]}.')],
            idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
        ) -> dict[str, Any]:
            try:
                batch = parse_batch(body)
                check_batch(batch, max_batch, max_skew)
            except InputError as exc:
                raise HTTPException(422, str(exc)) from None
            answer = events.append(batch, idempotency_key)
            if online is not None and not answer["duplicate"]:
                try:
                    with online_lock:
                        update_online(online, batch)
                    answer["online_updated"] = True
                except Exception as exc:  # the events are logged: the next run catches the features up
                    seqs = f"{answer['first_seq']}-{answer['last_seq']}"
                    log.warning("events %s: online features not updated: %s: %s", seqs, type(exc).__name__, exc)
                    answer["online_updated"] = False
            return answer

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": live_or_503()}

    @app.get("/version")
    def version() -> dict[str, Any]:
        live = live_or_503()
        path = Path(publish_dir) / "versions" / live / "manifest.json"
        m = json.loads(path.read_text()) if path.is_file() else {}
        return {
            "version": live,
            "model_sha256": m.get("model", {}).get("sha256"),
            "as_of": m.get("data_window", {}).get("as_of"),
            "ndcg@10": m.get("metrics", {}).get("ranker", {}).get("ndcg@10"),
            "gate": m.get("gate", {}).get("decision"),
        }

    return app


def app_from_params() -> FastAPI:
    """The app over the store configured in the parameters file (`$SHOPREC_PARAMS`): `shoprec serve`."""
    from pipelines.core.config import load_params
    from pipelines.features.store import open_store
    from pipelines.serving.store import open_serving_store

    params = load_params()
    p = params["publish"]
    events = EventLog(params["events"]["log"])
    online = open_store(params["features"])
    app = create_app(
        open_serving_store(p), p["dir"], int(p["k"]), int(p["max_basket"]), events, params["events"], online
    )
    # The start-up objects (Feast, FastAPI, LightGBM) are permanent: keep the collector off them and
    # collect the young generation less often. Full collections over them stalled re-ranked requests
    # for 50-70 ms (p99 71.5 -> 13.4 ms at 1,150-1,280 req/s, bench/serve.py --endpoint reranked -c8).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    return app
