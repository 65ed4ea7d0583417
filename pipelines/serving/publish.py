"""Publish step: after a passing gate, the scored recommendations, cold-start lists and loyalty
segments go out as a new version; serving switches to it atomically; the last versions are kept.

Layout under `publish.dir` (default `published/`):
  versions/<version>/  model/, recommendations.parquet, cold_start.parquet, segments.parquet,
                       similar.parquet, candidates.parquet (re-ranking), manifest.json
  current -> versions/<version>   (a symlink, switched with one rename: the published model for the gate)
  index.json                     the kept versions in the order they were first published
  serving.db                     the SQLite serving store (or Redis in production, pipelines/serving/store.py)

A version id is the as-of date and a hash of what is published, so publishing the same thing twice
is a no-op and a publish killed half-way is finished by running it again. Order of a publish: the
version directory (written beside, renamed into place), the store entries, the index, then the
store's live pointer and the `current` link. A reader sees the old version until the pointer moves.
The gate's decision names the model it judged; publishing another model is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.files import SELECTION_FILE, sha256, write_json
from pipelines.core.partitions import groups_in_order
from pipelines.serving.store import ServingStore, open_serving_store

log = logging.getLogger(__name__)
FILES = (
    "recommendations.parquet",
    "cold_start.parquet",
    "segments.parquet",
    "similar.parquet",
    "candidates.parquet",
)
CARRIED = ("rec", "cand")  # the kinds a daily run's version carries over from the version it builds on
MODEL_FILES = ("ranker.lgb", "ranker.json", "reference.parquet", SELECTION_FILE)
KEYS_AT_ONCE = 10_000  # lists whose rows are made at once: bounds the dicts held beside their JSON


def payloads(
    recs: pd.DataFrame,
    cold: pd.DataFrame,
    segments: pd.DataFrame,
    similar: pd.DataFrame,
    cands: Path,
    customers: set[str] | None = None,
    threads: int = 1,
) -> dict[str, Iterable[tuple[str, str]]]:
    """Store entries (key, JSON) per kind: a customer's list, a country's cold-start list, a customer's
    segment, an item's similar items, a customer's candidates with their model inputs (re-ranking).
    With `customers`, the lists and candidates of only those customers (the rest are carried over);
    the candidates' entries are made on `threads` threads.

    The re-ranking entries are made as they are written, from the `cands` file read partition by
    partition of whole customers: at 10M interactions they are 22M rows of model inputs, far more
    than memory holds as one frame beside their JSON."""

    recs = recs if customers is None else recs.loc[recs[s.CUSTOMER].isin(customers)]
    recs = recs.sort_values([s.CUSTOMER, "rank"]).assign(reason=recs["reasons"].str.split("; ").str[0].fillna(""))
    cold = cold.sort_values(["country", "rank"]).assign(sources="country_popularity")
    seg = segments.astype(object).where(segments.notna(), None)
    similar = similar.sort_values([s.ITEM, "rank"])
    return {
        "rec": _json_lists(recs, s.CUSTOMER, _listed),
        "cold": _json_lists(cold, "country", _listed),
        "segment": [(r[s.CUSTOMER], json.dumps(r, default=str)) for r in seg.to_dict("records")],
        "similar": [(str(i), entry) for i, entry in _json_lists(similar, s.ITEM, _similar)],
        "cand": candidate_entries(cands, customers, threads),
    }


def candidate_entries(path: Path, customers: set[str] | None = None, threads: int = 1) -> Iterator[tuple[str, str]]:
    """The re-ranking entries of a candidates file (customer, item, the model's inputs), customer by
    customer; with `customers`, only theirs. Partitions are packed on `threads` threads (zlib and
    numpy release the GIL: two threads halve the 55 s of 10M interactions' entries)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.core.compute import LocalBackend
    from pipelines.core.partitions import customer_partitions

    if s.CUSTOMER not in pq.read_schema(path).names:  # publish.rerank_candidates: 0 (score writes no columns)
        return
    only = None if customers is None else pa.array(list(customers), pa.string())
    for entries in LocalBackend(threads).map(_part_entries, customer_partitions(path, only=only)[0]):
        yield from entries


def _part_entries(part: pd.DataFrame) -> list[tuple[str, str]]:
    from pipelines.serving.rerank import candidate_payloads

    return candidate_payloads(part, [c for c in part.columns if c not in (s.CUSTOMER, s.ITEM)])


def _listed(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A list's rows as served: item, score, reason, the sources that proposed it."""
    return [
        {"item_id": item, "score": round(score, 4), "reason": reason, "sources": [x for x in sources.split(",") if x]}
        for item, score, reason, sources in zip(
            frame[s.ITEM].astype(str).tolist(),
            frame["score"].astype(float).tolist(),
            frame["reason"].astype(str).tolist(),
            frame["sources"].astype(str).tolist(),
            strict=True,
        )
    ]


def _similar(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """An item's similar items as served: item, score, the source that found it."""
    return [
        {"item_id": item, "score": round(score, 4), "source": source}
        for item, score, source in zip(
            frame[s.SIMILAR].astype(str).tolist(),
            frame["score"].astype(float).tolist(),
            frame["source"].astype(str).tolist(),
            strict=True,
        )
    ]


def _json_lists(
    frame: pd.DataFrame, key: str, rows: Callable[[pd.DataFrame], list[dict[str, Any]]]
) -> list[tuple[Any, str]]:
    """(key, JSON list of its `rows`) per value of `key`, as a groupby(sort=False) would give them: the
    rows are made for `KEYS_AT_ONCE` keys at a time and sliced per key, not a frame per key."""
    order, groups = groups_in_order(frame[key])
    out = []
    for first in range(0, len(groups), KEYS_AT_ONCE):
        chunk = groups[first : first + KEYS_AT_ONCE]
        lo = chunk[0][1]
        made = rows(frame.iloc[order[lo : chunk[-1][2]]])
        out.extend((k, json.dumps(made[start - lo : end - lo])) for k, start, end in chunk)
    return out


class Releases:
    """The versions on disk, the `current` link and the index of kept versions."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    def index(self) -> list[dict[str, str]]:
        path = self.root / "index.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def as_of(self, version: str) -> pd.Timestamp | None:
        """The as-of date of a version's data (from its manifest), None if unknown."""
        path = self.versions_dir / version / "manifest.json"
        return pd.Timestamp(json.loads(path.read_text())["data_window"]["as_of"]) if path.is_file() else None

    def current(self) -> str | None:
        link = self.root / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def before(self, day: pd.Timestamp) -> str | None:
        """The version a run of `day` builds on: the live one if its data ends before `day`, else the
        last published of those with the latest as-of date before `day` (a re-run of a day finds its own
        version live); None if there is none."""
        live = self.current()
        earlier = [(a, v["version"]) for v in self.index() if (a := self.as_of(v["version"])) is not None and a < day]
        if live is not None and live in {v for _, v in earlier}:
            return live
        return max(reversed(earlier), key=lambda pair: pair[0])[1] if earlier else None  # ties: the last

    def stage(self, version: str, files: dict[str, Path], manifest: dict[str, Any]) -> Path:
        """Write the version directory beside its place, then rename it in (a no-op if it is there)."""
        final = self.versions_dir / version
        if (final / "manifest.json").is_file():
            return final
        tmp = self.versions_dir / f".tmp-{version}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "model").mkdir(parents=True)
        for name, path in files.items():
            shutil.copy2(path, tmp / name)
        write_json(manifest, tmp / "manifest.json")
        shutil.rmtree(final, ignore_errors=True)  # a directory without a manifest is a killed write
        os.rename(tmp, final)
        return final

    def switch(self, version: str) -> None:
        """Point `current` at the version with one atomic rename of a new link over the old one."""
        tmp = self.root / f".current-{os.getpid()}"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.root / "current")

    def record(self, version: str) -> None:
        """Add the version to the index (once), before it goes live: what is live is always indexed."""
        index = self.index()
        if version not in [v["version"] for v in index]:
            index.append({"version": version, "published_at": datetime.now(UTC).isoformat(timespec="seconds")})
            write_json(index, self.root / "index.json")

    def prune(self, keep: int, rerank_versions: int, store: ServingStore) -> list[str]:
        """Keep the newest `keep` indexed versions and the live one; drop everything else from the index
        first, then from the store and disk (so a killed prune never leaves an indexed, emptied version).
        Of the kept versions, only the newest `rerank_versions` and the live one keep their re-ranking
        entries (`cand`, most of a version's size); the others serve their lists as published."""
        index, live = self.index(), store.live()
        kept = newest(index, keep, live)
        names = {v["version"] for v in kept}
        if len(kept) < len(index):
            write_json(kept, self.root / "index.json")
        dropped = sorted({v["version"] for v in index} - names)
        for version in sorted(set(store.versions()) - names):  # also orphans of killed publishes
            store.drop(version)
        for version in sorted(names - {v["version"] for v in newest(kept, rerank_versions, live)}):
            store.drop_kind(version, "cand")
        for path in self.versions_dir.iterdir() if self.versions_dir.is_dir() else []:
            if path.name not in names:  # also .tmp-* left by killed publishes
                shutil.rmtree(path, ignore_errors=True)
        return dropped


def newest(index: list[dict[str, str]], n: int, live: str | None) -> list[dict[str, str]]:
    """The last `n` versions of `index` and the live one, in index order."""
    return [v for i, v in enumerate(index) if i >= len(index) - n or v["version"] == live]


def manifest(
    version: str, model_sha: str, model_info: dict, windows: dict, params: dict, evaluation: dict, gate: dict
) -> dict[str, Any]:
    """What a version is: model hash, data window, params, metrics and the gate's decision."""
    params_text = json.dumps(params, sort_keys=True, default=str)
    return {
        "version": version,
        "model": {"sha256": model_sha, **{k: model_info[k] for k in ("kind", "best_iteration", "sources")}},
        "data_window": windows,
        "params": params,
        "params_sha256": hashlib.sha256(params_text.encode()).hexdigest(),
        "metrics": {"customers": evaluation["customers"], "ranker": evaluation["ranker"]},
        "gate": gate,
    }


def publish(
    scored_dir: str | Path,
    model_dir: str | Path,
    gate: dict[str, Any],
    windows: dict[str, Any],
    evaluation: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Publish a new version if the gate passed; returns what happened (published, version, reason).

    Order, each step safe to interrupt and finished by a rerun: the version directory, the store
    entries, the index, the store's live pointer, the `current` link, then pruning.
    """
    p = params["publish"]
    keep = int(p["keep"])
    if keep < 1:
        raise InputError(f"params: publish.keep must be at least 1, not {keep}")
    if not gate.get("passed"):
        failed = [c["detail"] for c in gate.get("checks", []) if not c["passed"]]
        log.warning("publish: skipped, the gate blocked it: %s", "; ".join(failed))
        return {"published": False, "reason": "gate blocked: " + "; ".join(failed)}
    scored_dir, model_dir = Path(scored_dir), Path(model_dir)
    files = {name: scored_dir / name for name in FILES} | {f"model/{n}": model_dir / n for n in MODEL_FILES}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise InputError(f"publish: missing input file(s): {', '.join(missing)}")
    model_sha = sha256([model_dir / "ranker.lgb"])
    if gate.get("model_sha256") != model_sha:
        raise InputError(
            f"publish: the gate's decision is about model {str(gate.get('model_sha256'))[:12]}, not {model_dir} "
            f"({model_sha[:12]}): run `shoprec gate` on this model first"
        )
    content = sha256([files[name] for name in FILES] + [model_dir / "ranker.lgb"])
    version = f"{pd.Timestamp(windows['as_of']):%Y%m%d}-{content[:10]}"
    releases, store = Releases(p["dir"]), open_serving_store(p)
    indexed = version in [v["version"] for v in releases.index()]
    live = store.live()
    if live == version and releases.current() == version and indexed:
        return {"published": False, "version": version, "reason": "already live"}
    newer = releases.as_of(live) if live else None
    if newer is not None and newer > pd.Timestamp(windows["as_of"]):
        return {  # re-running an older date (a backfill) never replaces newer lists; a rollback can
            "published": False,
            "version": version,
            "reason": f"a newer version is live: {live} (as of {newer.date()})",
        }
    info = json.loads((model_dir / "ranker.json").read_text())
    published = {k: params[k] for k in ("candidates", "ranker", "features", "recommend", "publish") if k in params}
    releases.stage(version, files, manifest(version, model_sha, info, windows, published, evaluation, gate))
    carried: dict[str, Any] = {}
    batch, threads = int(p["write_batch_size"]), int(params["compute"]["threads"])
    if version not in store.versions():
        store.drop(version)  # entries a killed attempt wrote: the version is written from scratch
        frames = [pd.read_parquet(files[name]) for name in FILES if name != "candidates.parquet"]
        base = carried_over(frames[0], pd.Timestamp(windows["as_of"]), p, store)
        for kind, entries in payloads(*frames, files["candidates.parquet"], base and base.ranked, threads).items():
            if base and kind in CARRIED:
                copied = store.copy(base.version, version, kind)
                if kind == "rec" and copied != base.listed:  # pruned (by another DAG's publish) meanwhile
                    raise RuntimeError(f"publish: version {base.version} changed while it was copied: run again")
                if kind == "cand" and not copied:  # the base gave its re-ranking entries up (`prune`)
                    entries = candidate_entries(files["candidates.parquet"], None, threads)  # every customer's
                store.delete(version, kind, sorted(base.ranked | base.gone), batch)
            store.write(version, kind, entries, batch)
        store.complete(version)
        carried = {"carried_from": base.version, "customers_carried": base.carried} if base else {}
    else:  # published before (the same outputs again): its re-ranking entries may have been given up since
        restore_reranking(releases, store, version, batch, threads)
    releases.record(version)
    store.set_live(version)
    releases.switch(version)
    dropped = releases.prune(keep, int(p["rerank_versions"]), store)
    log.info("publish: version %s is live (dropped: %s) %s", version, ", ".join(dropped) or "none", carried)
    return {"published": True, "version": version, "dropped": dropped, **carried}


@dataclass(frozen=True)
class Base:
    """The version a daily run's kept lists come from: the new version starts as a copy of its lists and
    candidates (`CARRIED`); those of the customers `ranked` again are written anew, those `gone` removed."""

    version: str
    ranked: set[str]
    gone: set[str]
    carried: int
    listed: int  # customers with a list in `version`


def carried_over(recs: pd.DataFrame, as_of: pd.Timestamp, p: dict[str, Any], store: ServingStore) -> Base | None:
    """The `Base` of a version whose lists were partly kept from `publish.reuse_lists` (rows scored before
    `as_of`, copied row for row from that version's copy there), if the store still holds that version."""
    from pipelines.serving.refresh import LISTS, MANIFEST, SCORED

    reuse = Path(p["reuse_lists"]) if p.get("reuse_lists") else None
    if reuse is None or SCORED not in recs or not (reuse / MANIFEST).is_file():
        return None
    version = json.loads((reuse / MANIFEST).read_text())["version"]
    old = recs[SCORED] < as_of
    if not old.any() or version not in store.versions():
        return None
    customers = set(recs[s.CUSTOMER])
    ranked = set(recs.loc[~old, s.CUSTOMER])
    listed = set(pd.read_parquet(reuse / LISTS, columns=[s.CUSTOMER])[s.CUSTOMER])
    return Base(version, ranked, listed - customers, len(customers) - len(ranked), len(listed))


def rollback(params: dict[str, Any]) -> dict[str, Any]:
    """Make the version published before the live one (in the index: first publication order) live again."""
    p = params["publish"]
    releases, store = Releases(p["dir"]), open_serving_store(p)
    order = [v["version"] for v in releases.index()]
    current = store.live()
    if current not in order or order.index(current) == 0:
        raise InputError(f"publish: no version before {current or 'nothing'} to roll back to (kept: {order})")
    previous = order[order.index(current) - 1]
    store.set_live(previous)
    releases.switch(previous)
    restored = restore_reranking(
        releases, store, previous, int(p["write_batch_size"]), int(params["compute"]["threads"])
    )
    log.info("publish: rolled back from %s to %s (re-ranking entries restored: %d)", current, previous, restored)
    return {"rolled_back_from": current, "live": previous, "rerank_entries_restored": restored}


def restore_reranking(releases: Releases, store: ServingStore, version: str, batch: int, threads: int) -> int:
    """Write a kept version's re-ranking entries again from its directory if the store gave them up
    (`Releases.prune`: not among the newest `publish.rerank_versions`); how many were written."""
    if store.count(version, "cand"):
        return 0
    path = releases.versions_dir / version / "candidates.parquet"
    return store.write(version, "cand", candidate_entries(path, None, threads), batch)


def publish_stage(
    scored_dir: str | Path,
    model_dir: str | Path,
    gate_path: str | Path,
    split_dir: str | Path,
    evaluation_path: str | Path,
    out_path: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The publish step: read the gate's decision and the run's records; publish; write what happened."""
    result = publish(
        scored_dir,
        model_dir,
        json.loads(Path(gate_path).read_text()),
        json.loads((Path(split_dir) / "windows.json").read_text()),
        json.loads(Path(evaluation_path).read_text()),
        params,
    )
    write_json(result, out_path)
    return result
