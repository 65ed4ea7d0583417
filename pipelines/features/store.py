"""Feast glue: the configuration (local or production), apply, materialisation, point-in-time
training retrieval and the online reads serving uses.

`feature_repo/` holds the definitions; `feature_store.yaml` is the local configuration (SQLite
online store, file registry under data/feast) and `feature_store.production.yaml` the production
one (Redis online store, SQL registry on PostgreSQL), chosen by `features.store` or the
`SHOPREC_FEATURE_STORE` environment variable.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from pipelines.core import schema as s
from pipelines.core.config import CHECKOUT
from pipelines.core.errors import InputError
from pipelines.core.files import write_json
from pipelines.features.history import EVENT_TS, SNAPSHOT_TTL, SNAPSHOT_VIEWS

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_contents import RepoContents

log = logging.getLogger(__name__)

KINDS = {"local": "feature_store.yaml", "production": "feature_store.production.yaml"}
PRODUCTION_DEFAULTS = {
    "SHOPREC_FEAST_PROJECT": "shoprec",
    "SHOPREC_FEAST_REGISTRY_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "SHOPREC_FEAST_REDIS": "127.0.0.1:6379,db=0",
}
AS_OF = "as_of"  # the request-time field of the on-demand view
PARALLEL_ROWS = 100_000  # rows to write below which a view is written in this process (writers take seconds to start)
# Third-party warnings Feast's calls raise on every run, about Feast's own use of its dependencies:
# nothing a shoprec user can act on (feast 0.67 with ibis 10 / duckdb 1.4).
KNOWN_WARNINGS = (
    (".*fetch_arrow_table.* is deprecated", DeprecationWarning),
    ("On demand feature view is an experimental feature", RuntimeWarning),
)
_FEAST_LOCK = threading.RLock()  # one thread at a time in Feast's process-wide state: cwd, sys.path, DuckDB


def store_kind(params: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """`SHOPREC_FEATURE_STORE` (from `env`, default the environment) if set, else `features.store` (local)."""
    kind = (os.environ if env is None else env).get("SHOPREC_FEATURE_STORE") or params["store"]
    if kind not in KINDS:
        raise InputError(f"features.store / SHOPREC_FEATURE_STORE must be one of {sorted(KINDS)}, not {kind!r}")
    return kind


def definitions(params: dict[str, Any]) -> Path:
    """The feature definitions a scratch store copies: `features.repo` as given, or (relative and not
    found from the working directory) inside this checkout of shoprec, which ships them. Only for
    copying: a project's own store always opens `features.repo` from the working directory."""
    given = Path(params["repo"])
    where = (given,) if given.is_absolute() else (given, CHECKOUT / given)
    for path in where:
        if path.is_dir():
            return path.resolve()
    raise InputError(f"features.repo: {given} not found (looked in {', '.join(str(p) for p in where)})")


def open_store(params: dict[str, Any], env: dict[str, str] | None = None) -> FeatureStore:
    """A FeatureStore over `features.repo` in the chosen configuration.

    ${VAR}s in the YAML come from `env` (default: the environment), production ones falling back
    to PRODUCTION_DEFAULTS (the CI services on 127.0.0.1).
    """
    from feast import FeatureStore
    from feast.repo_config import MaterializationConfig, RepoConfig

    repo = Path(params["repo"]).resolve()
    kind = store_kind(params, env)
    path = repo / KINDS[kind]
    if not path.is_file():
        raise InputError(f"{path}: Feast configuration not found (features.repo = {params.get('repo')!r})")
    variables = {**PRODUCTION_DEFAULTS, **(os.environ if env is None else env)}
    text = path.read_text()
    for name, value in variables.items():
        text = text.replace("${" + name + "}", value)
    raw = yaml.safe_load(text)
    if kind == "local":  # relative paths are relative to the repo, whatever the working directory
        raw["registry"] = _anchored(repo, raw["registry"])
        raw["online_store"]["path"] = _anchored(repo, raw["online_store"]["path"])
    raw["materialization"] = MaterializationConfig(
        pull_latest_features=True, online_write_batch_size=int(params["online_write_batch_size"])
    )
    return FeatureStore(config=RepoConfig(repo_path=repo, **raw))


def _anchored(repo: Path, path: str) -> str:
    full = (repo / path).resolve()
    full.parent.mkdir(parents=True, exist_ok=True)
    return str(full)


@contextlib.contextmanager
def _known_warnings_ignored() -> Iterator[None]:
    with warnings.catch_warnings():
        for message, category in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message, category)
        yield


@contextlib.contextmanager
def _inside(store: FeatureStore) -> Iterator[None]:
    """Work from inside the repo, as the feast CLI does: its modules import each other by bare name
    (else each loads twice) and the offline store resolves the sources' relative paths from there.
    The working directory is the process's: threads (of a dask worker) take turns."""
    repo = str(store.config.repo_path)
    with _FEAST_LOCK, _known_warnings_ignored():
        sys.path.insert(0, repo)
        try:
            with contextlib.chdir(repo):
                yield
        finally:
            sys.path.remove(repo)


def repo_contents(store: FeatureStore) -> RepoContents:
    """The repo's Feast objects (only the files .feastignore leaves in)."""
    from feast.repo_operations import parse_repo

    with _inside(store):
        return parse_repo(Path(store.config.repo_path))


def apply(store: FeatureStore, every_days: int) -> RepoContents:
    """Register the repo's objects (and drop those removed from it) once their TTLs pass `check_ttls`."""
    from feast.repo_operations import apply_total_with_repo_instance

    contents = repo_contents(store)
    check_ttls(contents.feature_views, every_days)
    _forget_foreign_tables(store)
    printed = io.StringIO()  # feast prints the whole registry diff; keep it for --verbose only
    with contextlib.redirect_stdout(printed), _known_warnings_ignored():
        apply_total_with_repo_instance(store, store.project, store.registry, contents, skip_source_validation=True)
    log.debug("feast apply:\n%s", printed.getvalue())
    return contents


def check_ttls(views: list[Any], every_days: int) -> None:
    """Snapshots must not expire before the next one, and a join must not reach past what
    `features.snapshots: latest` builds."""
    for view in views:
        if view.ttl and view.ttl <= timedelta(days=every_days):
            raise InputError(
                f"features.every_days = {every_days} but feature view '{view.name}' has a TTL of {view.ttl.days} days: "
                "snapshots would expire before the next one"
            )
        if view.name in SNAPSHOT_VIEWS and (not view.ttl or view.ttl > SNAPSHOT_TTL):
            ttl = f"a TTL of {view.ttl.days} days" if view.ttl else "no TTL"
            raise InputError(
                f"feature view '{view.name}' has {ttl}: a join would reach past the {SNAPSHOT_TTL.days} days "
                "`features.snapshots: latest` builds snapshots for (SNAPSHOT_TTL)"
            )


def _forget_foreign_tables(store: FeatureStore) -> None:
    """Forget, without dropping, the registry's SQLite tables that live in another file than this
    store's online database: a registry copied with its project (`cp -r`, a test's copy) names the
    original's tables, and Feast's apply would drop them there as infrastructure no longer wanted."""
    from feast.infra.infra_object import Infra
    from feast.infra.online_stores.sqlite import SqliteTable

    if store.config.online_store.type != "sqlite":
        return
    ours = Path(store.config.online_store.path).resolve()
    infra = store.registry.get_infra(store.project)
    kept = [o for o in infra.infra_objects if not (isinstance(o, SqliteTable) and Path(o.path).resolve() != ours)]
    if len(kept) < len(infra.infra_objects):
        log.info("features: forgetting %d online tables of another store", len(infra.infra_objects) - len(kept))
        store.registry.update_infra(Infra(infra_objects=kept), store.project, commit=True)


def forget(store: FeatureStore) -> None:
    """Remove this store's project: its materialisation digests first (a forget stopped half-way is
    followed by full loads), its online values, its registry rows. `FeatureStore.teardown` (Feast
    0.67) deletes every project of the registry, so a run or test tearing its own project down would
    wipe the others sharing the PostgreSQL registry. (Feast's Redis teardown removes the keys ending
    in the project's name: projects must not end in another's name.)"""
    LoadedDigests(store).forget()
    with _inside(store):
        store._get_provider().teardown_infra(store.project, store.list_feature_views(), store.list_entities())
    forget_registry(store.registry, store.project)


def forget_registry(registry: Any, project: str) -> None:
    """Delete `project` from `registry`, if it is there, with its feature views' version history on a
    SQL registry (a table Feast's delete_project leaves, 0.67)."""
    from feast.errors import ProjectNotFoundException, ProjectObjectNotFoundException

    with contextlib.suppress(ProjectNotFoundException, ProjectObjectNotFoundException):
        registry.delete_project(project)
    if hasattr(registry, "write_engine"):
        from feast.infra.registry.sql import feature_view_version_history as history
        from sqlalchemy import delete

        with registry.write_engine.begin() as conn:
            conn.execute(delete(history).where(history.c.project_id == project))


def store_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The store's whole configuration as resolved here: params with an absolute repo, and the environment
    variables that choose and configure it (a dask worker may have another working directory and env)."""
    env = {k: v for k, v in os.environ.items() if k == "SHOPREC_FEATURE_STORE" or k.startswith("SHOPREC_FEAST_")}
    return {"params": {**params, "repo": str(Path(params["repo"]).resolve())}, "env": env}


def process_store(spec: dict[str, Any]) -> FeatureStore:
    """One store per process and `store_spec`, opened without applying: for the partitions of a step
    (possibly on dask workers) after the step has applied the repo."""
    return _process_store(json.dumps(spec, sort_keys=True, default=str))


@functools.cache
def _process_store(key: str) -> FeatureStore:
    spec = json.loads(key)
    return open_store(spec["params"], env=spec["env"])


def applied_store(params: dict[str, Any]) -> FeatureStore:
    """The configured store with the repo applied (idempotent): what every step that reads features opens."""
    store = open_store(params)
    apply(store, int(params["every_days"]))
    return store


def materialize(store: FeatureStore, end: pd.Timestamp, workers: int = 1) -> dict[str, Any]:
    """Load the online store with the latest values up to `end`; per view the rows written, rows/s and
    the entities the online store holds a value of for `end` (`online`: a row within the view's TTL).

    Incremental: a view loads only the rows stamped after its last materialisation when its source's
    rows stamped up to then are the ones that load read (`_digest`, kept beside the online store by
    `LoadedDigests`): the next day's rebuilt sources add the day's rows. When an earlier row changed
    (late or corrected data, other feature params, snapshots stamped at other dates), the view's
    whole TTL window is reloaded, so the online store never keeps values the sources no longer hold.
    A Redis online store is written by `redis_writer.write_rows` (Feast's bytes, without Feast's
    row-by-row conversion), with `workers` processes for a view with at least PARALLEL_ROWS rows to
    write (entities with a row in the interval); SQLite by Feast's `materialize` (one writer).
    """
    end = _utc(end)
    loaded = LoadedDigests(store)
    report: dict[str, Any] = {}
    for view in store.list_feature_views():
        source = pd.read_parquet(Path(store.config.repo_path) / view.batch_source.path)
        hashes = pd.util.hash_pandas_object(source[sorted(source.columns)], index=False).to_numpy()
        ttl = view.ttl or timedelta(days=3650)
        since = _materialized_until(view)
        kept = since is not None and loaded.read(view.name) == _digest(view, source, hashes, since)
        start = since if kept else end - ttl
        window = _latest(view, source, end - ttl, end)  # what the online store holds for `end` once loaded
        entry = {"from": start.isoformat(), "to": end.isoformat(), "online": len(window)}
        if start >= end:
            report[view.name] = {"rows": 0, "seconds": 0.0, **entry, "writers": 0}
            continue
        loaded.write(view.name, None)  # a load killed half-way leaves no digest: the next one reloads
        on_redis = store.config.online_store.type == "redis"
        latest = _latest(view, source, start, end) if kept else window
        rows = len(latest)
        writers = workers if on_redis and rows >= PARALLEL_ROWS else 1
        t0 = time.perf_counter()
        if on_redis:
            _write_redis(store, view, latest, writers)
            store.registry.apply_materialization(view, store.project, start.to_pydatetime(), end.to_pydatetime())
        else:
            with _inside(store):
                store.materialize(
                    start_date=start.to_pydatetime(), end_date=end.to_pydatetime(), feature_views=[view.name]
                )
        seconds = time.perf_counter() - t0
        report[view.name] = {
            "rows": rows,
            "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds) if seconds > 0 else None,
            **entry,
            "reloaded": not kept,
            "writers": writers,
        }
        loaded.write(view.name, _digest(view, source, hashes, end))
    return report


def _digest(view: Any, source: pd.DataFrame, hashes: Any, until: pd.Timestamp) -> str:
    """The view's definition (features, TTL) and its source's rows stamped up to `until`, whatever their
    order: their columns, count and summed row hashes."""
    mask = (source[EVENT_TS] <= until).to_numpy()
    total = int(hashes[mask].sum(dtype="uint64"))  # wraps around: an order-free checksum
    definition = ",".join(f"{f.name}:{f.dtype}" for f in view.features) + f";ttl={view.ttl}"
    return f"{definition}|{','.join(sorted(source.columns))}:{int(mask.sum())}:{total:016x}"


class LoadedDigests:
    """Each view's `_digest` at the end of its last load, kept where the online store is, so that every
    run sharing the store shares it: a Redis hash beside Feast's keys, or a JSON file beside SQLite's database.
    """

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        config = store.config.online_store
        self.key = f"shoprec:materialized:{store.project}:digests"  # not ending in the project, as Feast's own keys do
        sqlite = config.type == "sqlite"
        self.path = Path(config.path).with_name(f"materialized-{store.project}.json") if sqlite else None

    def _redis(self) -> Any:
        return self.store._get_provider().online_store._get_client(self.store.config.online_store)

    def _file(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path is not None and self.path.is_file() else {}

    def read(self, view: str) -> str | None:
        if self.path is not None:
            return self._file().get(view)
        digest = self._redis().hget(self.key, view)
        return None if digest is None else digest.decode()

    def forget(self) -> None:
        """Forget every view's digest: the next load of each is a full one."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        else:
            self._redis().delete(self.key)

    def write(self, view: str, digest: str | None) -> None:
        """Record `view`'s digest (None: forget it)."""
        if self.path is not None:
            digests = {k: v for k, v in {**self._file(), view: digest}.items() if v is not None}
            write_json(digests, self.path)
        elif digest is None:
            self._redis().hdel(self.key, view)
        else:
            self._redis().hset(self.key, view, digest)


def _write_redis(store: FeatureStore, view: Any, latest: pd.DataFrame, workers: int) -> None:
    """`latest` (each entity's latest row in the interval) into the Redis online store, split by
    entity among `workers` processes when more than one (the conversion takes one core per writer)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import numpy as np

    from pipelines.features.redis_writer import write_rows

    if workers == 1:
        with _inside(store):
            write_rows(store, view, latest)
        return
    parts = np.array_split(np.arange(len(latest)), workers)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:  # no inherited connections
        done = [pool.submit(_write_part, store.config, view.name, latest.iloc[part]) for part in parts]
        for future in done:
            future.result()


def _write_part(config: Any, view_name: str, rows: pd.DataFrame) -> None:
    """One writer of `_write_redis`, in its own process: `rows` into the store `config` describes."""
    from feast import FeatureStore

    from pipelines.features.redis_writer import write_rows

    store = FeatureStore(config=config)
    with _inside(store):
        write_rows(store, store.get_feature_view(view_name), rows)


def _materialized_until(view: Any) -> pd.Timestamp | None:
    intervals = view.materialization_intervals
    return _utc(max(i[1] for i in intervals)) if intervals else None


def _latest(view: Any, source: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Each entity's latest row of `source` (the view's) stamped in [start, end]: what materialisation writes."""
    keys = [field.name for field in view.entity_columns]
    frame = source.loc[(source[EVENT_TS] >= start) & (source[EVENT_TS] <= end)]
    return frame.sort_values(EVENT_TS, kind="stable").drop_duplicates(keys, keep="last")


def _utc(ts: Any) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def scratch_store(
    root: str | Path, tables: dict[str, pd.DataFrame], params: dict[str, Any], env: dict[str, str] | None = None
) -> FeatureStore:
    """A store in `root`: a copy of `features.repo` with `tables` as its sources, applied.

    For in-memory runs (backtest, benchmarks, tests) that must not touch the project's store.
    Local unless `params` and `env` ask for production (env default: none, so never by accident).
    """
    import shutil

    from pipelines.core.files import write_parquet

    root = Path(root)
    repo = root / "feature_repo"
    source = definitions(params)
    if repo.resolve() != source:
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(source, repo, ignore=shutil.ignore_patterns("__pycache__"))
    for name, frame in tables.items():
        write_parquet(frame, root / "data" / "features" / f"{name}.parquet")
    store = open_store({**params, "repo": str(repo)}, env={} if env is None else env)
    apply(store, int(params["every_days"]))
    return store


def historical_features(
    store: FeatureStore,
    entities: pd.DataFrame,
    service: str = "ranker",
    chunk_rows: int = 500_000,
    snapshot: bool = False,
) -> pd.DataFrame:
    """Point-in-time join of `service` onto customer x item rows stamped `event_timestamp` (the cutoff).

    The request time of the on-demand view is the row's own timestamp. Rows come back in the
    order given, with the feature columns added. Each group of views joined on the same keys
    (customer; item; customer x item) is retrieved once per distinct key and timestamp, not once
    per row: a customer's snapshot is joined once, not once per candidate item. The joins run
    `chunk_rows` distinct rows at a time, which bounds memory whatever the training set's size.

    `snapshot`, for a step that joins partition after partition at one timestamp (scoring): each
    group is retrieved once per process for every entity its sources hold (`_snapshot`), and each
    call only looks its rows up; an entity the sources do not hold gets what Feast gives any such
    entity at that time. The same values as without it (an integer feature may come back as a float).
    """
    missing = [c for c in (s.CUSTOMER, s.ITEM, EVENT_TS) if c not in entities]
    if missing:
        raise InputError(f"historical features: entity rows lack column(s) {missing}")
    out = entities.reset_index(drop=True).copy()
    ts = pd.to_datetime(out[EVENT_TS])
    out[EVENT_TS] = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    one_time = out[EVENT_TS].nunique() == 1
    columns = [out]
    with _inside(store):
        for keys, refs, views in _retrievals(store, service):
            by = out[[*keys, EVENT_TS]]
            if snapshot and one_time and all(set(keys) == {c.name for c in v.entity_columns} for v in views):
                known, feats = _snapshot(store, keys, refs, views, out[EVENT_TS].iloc[0], chunk_rows)
                at = known.get_indexer(pd.MultiIndex.from_frame(by[keys]) if len(keys) > 1 else by[keys[0]])
                at[at < 0] = len(feats) - 1  # the last row: an entity the sources do not hold
            else:
                feats = _retrieve(store, by.drop_duplicates(ignore_index=True), refs, chunk_rows)
                at = by.groupby([*keys, EVENT_TS], sort=False).ngroup().to_numpy()  # drop_duplicates' order
            columns.append(feats.iloc[at].reset_index(drop=True))
    return pd.concat(columns, axis=1)[[*entities.columns, *service_features(store, service)]]


def _retrieve(store: FeatureStore, rows: pd.DataFrame, refs: list[str], chunk_rows: int) -> pd.DataFrame:
    """Feast's point-in-time join of `refs` for distinct entity rows (keys, event_timestamp), in their
    order, `chunk_rows` at a time; the request time of an on-demand view is the row's timestamp."""
    rows = rows.assign(**{AS_OF: rows[EVENT_TS], "_row": range(len(rows))})
    names = [ref.split(":", 1)[1] for ref in refs]
    parts = []
    for lo in range(0, max(len(rows), 1), chunk_rows):
        with _dropping_duckdb_views():
            job = store.get_historical_features(entity_df=rows.iloc[lo : lo + chunk_rows], features=refs)
            parts.append(job.to_df().sort_values("_row")[names])
    return pd.concat(parts, ignore_index=True)


_SNAPSHOTS: dict[tuple, tuple[pd.Index, pd.DataFrame]] = {}  # this process's, one per group of views
UNKNOWN_ENTITY = "\x00shoprec:unknown"  # a key no source holds


def _snapshot(
    store: FeatureStore, keys: list[str], refs: list[str], views: list[Any], when: pd.Timestamp, chunk_rows: int
) -> tuple[pd.Index, pd.DataFrame]:
    """Every entity of the views' source files joined at `when` (retrieved once per process while the
    files are unchanged): their keys, and their features with one more row last, an unknown entity's."""
    import pyarrow.parquet as pq

    paths = [Path(store.config.repo_path, v.batch_source.path).resolve() for v in views]
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    key = (str(store.config.repo_path), tuple(keys), tuple(refs), when, stamp)
    if key not in _SNAPSHOTS:
        _SNAPSHOTS.pop(next((k for k in _SNAPSHOTS if k[:3] == key[:3]), None), None)  # one time per group
        held = pd.concat([pq.read_table(p, columns=keys).to_pandas() for p in paths]).drop_duplicates()
        rows = pd.concat([held, pd.DataFrame({k: [UNKNOWN_ENTITY] for k in keys})], ignore_index=True)
        feats = _retrieve(store, rows.assign(**{EVENT_TS: when}), refs, chunk_rows)
        known = pd.MultiIndex.from_frame(held) if len(keys) > 1 else pd.Index(held[keys[0]])
        _SNAPSHOTS[key] = (known, feats)
    return _SNAPSHOTS[key]


@contextlib.contextmanager
def _dropping_duckdb_views() -> Iterator[None]:
    """Drop the views a retrieval leaves in ibis's default DuckDB connection (Feast's offline store
    registers each entity frame and source there and never drops them, so a process retrieving
    partition after partition would keep every partition's rows). One retrieval at a time per
    process: the connection is shared, and another thread's views must not be dropped mid-query."""
    import ibis

    with _FEAST_LOCK:
        con = ibis.get_backend().con
        before = _views(con)
        try:
            yield
        finally:
            for name in _views(con) - before:
                con.execute('DROP VIEW IF EXISTS "{}"'.format(name.replace('"', '""')))


def _views(con: Any) -> set[str]:
    """The user views of a DuckDB connection."""
    return {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def _retrievals(store: FeatureStore, service: str) -> list[tuple[list[str], list[str], list[Any]]]:
    """The service's feature references grouped by the entity keys their views join on (an on-demand
    view joins on the keys of the views it reads): [(keys, ["view:feature", ...], [batch views]), ...]."""
    views = {view.name: view for view in store.list_feature_views()}
    groups: dict[tuple[str, ...], tuple[list[str], dict[str, Any]]] = {}
    for projection in store.get_feature_service(service).feature_view_projections:
        if projection.name in views:
            sources = [views[projection.name]]
        else:
            odfv = store.get_on_demand_feature_view(projection.name)
            sources = [views[p.name] for p in odfv.source_feature_view_projections.values()]
        keys = tuple(sorted({field.name for view in sources for field in view.entity_columns}))
        refs, batch = groups.setdefault(keys, ([], {}))
        refs.extend(f"{projection.name_to_use()}:{f.name}" for f in projection.features)
        batch.update((view.name, view) for view in sources)
    return [(list(keys), refs, list(batch.values())) for keys, (refs, batch) in groups.items()]


def service_features(store: FeatureStore, service: str) -> list[str]:
    """The feature names a service returns (without the inputs its on-demand views pull in)."""
    return [f.name for p in store.get_feature_service(service).feature_view_projections for f in p.features]


def online_features(
    store: FeatureStore, rows: pd.DataFrame, service: str = "ranker", as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Online values of `service` for entity rows (customer_id, and item_id for customer x product services)."""
    frame = rows.reset_index(drop=True).copy()
    needs_time = any(
        p.name == "customer_product_recency" for p in store.get_feature_service(service).feature_view_projections
    )
    if needs_time:
        frame[AS_OF] = _utc(as_of if as_of is not None else pd.Timestamp.now(tz="UTC")).to_pydatetime()
    response = store.get_online_features(
        features=store.get_feature_service(service), entity_rows=frame.to_dict("records")
    )
    return response.to_df()[[*rows.columns, *service_features(store, service)]]


def materialize_stage(
    params: dict[str, Any], as_of: pd.Timestamp, metrics_path: str | Path | None, state_path: str | Path | None = None
) -> dict[str, Any]:
    """`shoprec features materialize`: apply the repo, then load the online store up to `as_of`.

    The summary goes to `metrics_path` (tracked in git) and to `state_path`, a DVC output beside the
    store: on a fresh clone, where the store is empty, its absence makes DVC run the stage.
    """
    store = applied_store(params)
    report = materialize(store, as_of, int(params["materialize_workers"]))
    log.info("features: materialised into the %s online store: %s", store_kind(params), report)
    summary = {
        "store": store_kind(params),
        "as_of": _utc(as_of).isoformat(),
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "rows_materialized": {name: r["rows"] for name, r in report.items()},
        "rows_online": {name: r["online"] for name, r in report.items()},
    }
    for path in (metrics_path, state_path):
        if path is not None:
            write_json(summary, path)
    return summary
