"""LightGBM LambdaRank ranker: orders each customer's candidates from the sources' scores and
ranks, the Feast features and context (pipelines/ranking_data.py).

Trained on the candidates of the training cutoffs (labels: purchases in the window after each),
with early stopping on the validation cutoff; with `ranker.refit_factor`, then trained again on the
training and validation cutoffs together with that many times the trees early stopping chose (the
validation window is the newest before the test: its labels are the most like the test's).
Customers with no positive among their candidates are left out of training and early stopping:
LambdaRank has nothing to learn from a list with no relevant item (they are still scored and
evaluated). Deterministic for a given seed on the local backend; on dask (lightgbm.dask,
data-parallel) the trees also depend on how rows fall on workers.
Nothing is assumed about which source wins: the model learns it from the data at hand.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines import schema as s
from pipelines.compute import LOCAL, Backend, DaskBackend, open_backend
from pipelines.errors import InputError
from pipelines.explain import DEFAULT_METHOD, contribution_method, explain
from pipelines.files import run_starts, write_csv, write_json, write_parquet
from pipelines.ranking_data import feature_table, groups, labelled_windows, training_windows
from pipelines.split import read_split, read_windows

if TYPE_CHECKING:
    import lightgbm as lgb

log = logging.getLogger(__name__)
KIND = "lightgbm_lambdarank"
RRF_K = 60.0
TRAINING_KEYS = ("k", "n_estimators", "early_stopping_rounds", "seed", "max_customers", "refit_factor")
RANK_CUSTOMERS = 2_000  # customers ranked per partition: bounds the feature table held (~600k rows)


def source_sizes(source_params: dict[str, Any]) -> dict[str, int]:
    """Candidates per customer of each configured source (what its ranks are relative to)."""
    return {name: int(settings["n"]) for name, settings in source_params.items()}


def rank_features(cands: pd.DataFrame, sizes: dict[str, int], rrf_k: float = RRF_K) -> np.ndarray:
    """One column per source: 1 / (rrf_k + rank) for its proposals, 0 otherwise (a source's own order)."""
    cols = [
        np.where(cands[f"{name}_rank"].to_numpy() <= n, 1.0 / (rrf_k + cands[f"{name}_rank"].to_numpy()), 0.0)
        for name, n in sizes.items()
    ]
    return np.column_stack(cols) if cols else np.zeros((len(cands), 0))


def top_k(cands: pd.DataFrame, scores: np.ndarray, k: int, positive_only: bool = True) -> pd.DataFrame:
    """The k best-scored candidates per customer, ties broken by item id (only score > 0 if positive_only).

    The index of the result holds the row positions in `cands`.
    """
    frame = pd.DataFrame({s.CUSTOMER: cands[s.CUSTOMER].to_numpy(), s.ITEM: cands[s.ITEM].to_numpy(), "score": scores})
    if positive_only:
        frame = frame[frame["score"] > 0]
    frame = frame.sort_values([s.CUSTOMER, "score", s.ITEM], ascending=[True, False, True], kind="stable")
    frame["rank"] = frame.groupby(s.CUSTOMER, sort=False).cumcount() + 1
    return frame[frame["rank"] <= k][[s.CUSTOMER, s.ITEM, "rank", "score"]]


def lgb_params(ranker_params: dict[str, Any]) -> dict[str, Any]:
    """LightGBM settings from `ranker` params (everything but our own keys), made deterministic."""
    params = {k: v for k, v in ranker_params.items() if k not in TRAINING_KEYS}
    k = int(ranker_params.get("k", 10))
    params.update(
        objective="lambdarank",
        metric="ndcg",
        eval_at=[k],
        seed=int(ranker_params.get("seed", 42)),
        deterministic=True,
        force_row_wise=True,
        verbosity=-1,
    )
    return params


def _with_positives(x: pd.DataFrame, y: np.ndarray, cands: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    keep = pd.Series(y, index=cands.index).groupby(cands[s.CUSTOMER].to_numpy()).transform("max").to_numpy() > 0
    return x[keep].reset_index(drop=True), y[keep], groups(cands[keep])


def fit(
    train: list[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]],
    valid: tuple[pd.DataFrame, pd.DataFrame, np.ndarray],
    ranker_params: dict[str, Any],
    backend: Backend = LOCAL,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """Fit on (candidates, features, labels) of the training cutoffs; stop early on the validation one;
    with `refit_factor`, fit again on both with round(best iteration x factor) trees.

    On the dask backend, `lightgbm.dask` trains data-parallel on the workers (the training rows split
    at customer boundaries) in chunks of trees, and `ValidationCurve` applies LightGBM's early
    stopping rule between them (`_boost_dask`).
    """
    parts = [_with_positives(x, y, c) for c, x, y in train]
    x_train = pd.concat([p[0] for p in parts], ignore_index=True)
    y_train, g_train = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
    x_valid, y_valid, g_valid = _with_positives(valid[1], valid[2], valid[0])
    params = lgb_params(ranker_params)
    k = int(ranker_params.get("k", 10))
    rounds, patience = int(ranker_params.get("n_estimators", 500)), int(ranker_params.get("early_stopping_rounds", 50))
    if rounds < 1:
        raise InputError(f"params: ranker.n_estimators must be at least 1, not {rounds}")
    started = time.perf_counter()
    if isinstance(backend, DaskBackend):
        curve = ValidationCurve(x_valid, y_valid, g_valid, k, patience)
        booster = _boost_dask(backend, params, (x_train, y_train, g_train), curve, rounds)
        booster.best_iteration, best_score = curve.best, float(curve.best_score)
    else:
        booster = _boost_local(params, (x_train, y_train, g_train), (x_valid, y_valid, g_valid), rounds, patience)
        best_score = float(booster.best_score["valid"][f"ndcg@{k}"])
    stopped_at = int(booster.best_iteration)
    factor = ranker_params.get("refit_factor")
    if factor:  # the newest labels matter most: learn from the validation cutoff too, with as many trees as it chose
        trees = max(1, round(stopped_at * float(factor)))
        rows = (
            pd.concat([x_train, x_valid], ignore_index=True),
            np.concatenate([y_train, y_valid]),
            np.concatenate([g_train, g_valid]),
        )
        if isinstance(backend, DaskBackend):
            booster = _boost_dask(backend, params, rows, ValidationCurve(x_valid, y_valid, g_valid, k, 0), trees)
        else:
            booster = _boost_local(params, rows, None, trees, 0)
        booster.best_iteration = trees
    info = {
        "kind": KIND,
        "features": list(x_train.columns),
        "best_iteration": int(booster.best_iteration),
        "early_stopping_iteration": stopped_at,
        "refit_on_valid": bool(factor),
        f"valid_ndcg@{k}_positive_lists": best_score,
        "train_rows": len(x_train),
        "train_customers": len(g_train),
        "train_positive_rate": float(y_train.mean()) if len(y_train) else 0.0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return booster, info


def _boost_local(params: dict[str, Any], train: tuple, valid: tuple | None, rounds: int, patience: int) -> lgb.Booster:
    """lightgbm.train in this process, early stopping on NDCG@k of the validation lists (`rounds` trees without)."""
    import lightgbm as lgb

    dtrain = lgb.Dataset(train[0], train[1], group=train[2], free_raw_data=False)
    if valid is None:
        return lgb.train({k: v for k, v in params.items() if k not in ("metric", "eval_at")}, dtrain, rounds)
    dvalid = lgb.Dataset(valid[0], valid[1], group=valid[2], reference=dtrain)
    return lgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        valid_sets=[dvalid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def _boost_dask(
    backend: DaskBackend, params: dict[str, Any], train: tuple, curve: ValidationCurve, rounds: int
) -> lgb.Booster:
    """lightgbm.dask on the cluster: one partition per worker, each a whole number of customers' lists.

    lightgbm.dask has no early stopping, so the trees come in chunks of `curve.patience`, each chunk
    continuing the previous booster (`init_model`, a seed of its own), until the validation curve
    stops (LightGBM's rule), `rounds` trees are built or a chunk adds none (no split left). Without
    patience (early stopping off, as LightGBM reads `early_stopping_rounds <= 0`), one chunk of `rounds`.
    """
    import dask.array as da
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMRanker

    x, y, g = train
    bounds = np.searchsorted(np.cumsum(g), np.linspace(0, len(y), backend.workers + 1)[1:-1], side="right")
    group_parts = [part for part in np.split(g, bounds) if len(part)]
    ends = np.cumsum([part.sum() for part in group_parts])
    rows = list(zip(np.r_[0, ends[:-1]], ends, strict=True))
    scatter = backend.client.scatter  # the parts go to the workers directly, not through the task graph
    x_dask = dd.from_delayed(scatter([x.iloc[a:b] for a, b in rows]), meta=x.iloc[:0], verify_meta=False)
    y_parts, g_parts = scatter([y[a:b] for a, b in rows]), scatter(group_parts)
    y_dask = da.concatenate([da.from_delayed(f, (b - a,), y.dtype) for f, (a, b) in zip(y_parts, rows, strict=True)])
    g_dask = da.concatenate([da.from_delayed(f, (len(p),), g.dtype) for f, p in zip(g_parts, group_parts, strict=True)])
    settings = {key: v for key, v in params.items() if key not in ("num_threads", "eval_at", "metric", "seed")}
    chunk = curve.patience if curve.patience > 0 else rounds
    booster: lgb.Booster | None = None
    while booster is None or (not curve.stopped and curve.trees < rounds):
        model = DaskLGBMRanker(
            client=backend.client,
            n_estimators=min(chunk, rounds - curve.trees),
            seed=int(params["seed"]) + curve.trees,
            **settings,
        )
        with warnings.catch_warnings():  # each worker's threads replace num_threads; lightgbm.dask says so for n_jobs
            warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
            model.fit(x_dask, y_dask, group=g_dask, init_model=booster)
        booster, before = model.booster_, curve.trees
        curve.extend(booster)
        if curve.trees == before:  # no tree added: nothing left to split
            break
    return booster


class ListNdcg:
    """LightGBM's ndcg@k of lists (labels y, list sizes g) for any scores: gains 2**label - 1, ties in
    score kept in row order, a list without gain scores 1.

    What does not depend on the scores (ideal DCG, discounts) is computed once. Each call sorts by
    score, then stably by list (a radix sort for up to 65,536 lists), the order a lexsort gives.
    """

    def __init__(self, y: np.ndarray, g: np.ndarray, k: int) -> None:
        g = np.asarray(g, dtype=np.int64)
        self.lists = len(g)
        self.gain = np.power(2.0, np.asarray(y, dtype=np.float64)) - 1.0
        self.qid = np.repeat(np.arange(len(g)), g).astype(np.min_scalar_type(max(len(g) - 1, 0)))
        position = np.arange(len(self.gain)) - np.repeat(np.cumsum(g) - g, g)
        self.discount = np.where(position < k, 1.0 / np.log2(position + 2.0), 0.0)
        self.idcg = self._dcg(np.lexsort((-self.gain, self.qid)))

    def _dcg(self, order: np.ndarray) -> np.ndarray:
        """Per list, the DCG of the rows in `order` (grouped by list)."""
        return np.bincount(self.qid, weights=self.gain[order] * self.discount, minlength=self.lists)

    def __call__(self, scores: np.ndarray) -> float:
        if self.lists == 0:
            return 0.0
        order = np.argsort(-scores, kind="stable")
        dcg = self._dcg(order[np.argsort(self.qid[order], kind="stable")])
        found = self.idcg > 0
        return float(np.mean(np.where(found, dcg / np.where(found, self.idcg, 1.0), 1.0)))


class ValidationCurve:
    """NDCG@k of validation lists (x, y, g) tree by tree, under LightGBM's early-stopping rule: the best
    iteration so far, until `patience` trees in a row bring no improvement (never with patience <= 0)."""

    def __init__(self, x: pd.DataFrame, y: np.ndarray, g: np.ndarray, k: int, patience: int) -> None:
        self.x, self.ndcg, self.patience = x, ListNdcg(y, g, k), patience
        self.values: np.ndarray | None = None  # x as the booster reads it, built once
        self.raw = np.zeros(len(y))
        self.trees, self.best, self.best_score, self.stopped = 0, 0, -np.inf, False

    def extend(self, booster: lgb.Booster) -> None:
        """Add the booster's trees after the ones already seen (the booster continues the earlier ones)."""
        if self.values is None:
            self.values = self.x[booster.feature_name()].to_numpy(dtype=np.float64)
        for i in range(self.trees, booster.num_trees()):
            self.raw += booster.predict(self.values, start_iteration=i, num_iteration=1, raw_score=True)
            self.trees = i + 1
            current = self.ndcg(self.raw)
            if current > self.best_score:
                self.best, self.best_score = i + 1, current
            elif self.patience > 0 and i + 1 - self.best >= self.patience:
                self.stopped = True
                return


def importance(booster: lgb.Booster) -> pd.DataFrame:
    """Total gain per feature, largest first (a DVC bar plot)."""
    gain = booster.feature_importance("gain", iteration=booster.best_iteration)
    frame = pd.DataFrame({"feature": booster.feature_name(), "gain": np.round(gain, 3)})
    return frame.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def score(booster: lgb.Booster, x: pd.DataFrame) -> np.ndarray:
    return booster.predict(x[booster.feature_name()], num_iteration=booster.best_iteration)


def recommend(
    booster: lgb.Booster,
    cands: pd.DataFrame,
    x: pd.DataFrame,
    source_names: list[str],
    k: int,
    scores: np.ndarray | None = None,
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:
    """Top k per customer with score, the sources that proposed each item and why it ranks there
    (`method`: the feature contributions, see `explain`)."""
    recs = top_k(cands, score(booster, x) if scores is None else scores, k, positive_only=False)
    rows = recs.index.to_numpy()
    why = explain(booster, x.iloc[rows], cands.iloc[rows], source_names, method)
    return pd.concat([recs.reset_index(drop=True), why.reset_index(drop=True)], axis=1)


def train_stage(
    cands_dir: str | Path,
    split_dir: str | Path,
    model_dir: str | Path,
    plots_dir: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The train step: LightGBM on every training cutoff, early stopping on validation; model, importance,
    and a sample of the training inputs with scores and labels (the drift reference)."""
    from pipelines.features.store import applied_store

    cands_dir, split_dir, model_dir = Path(cands_dir), Path(split_dir), Path(model_dir)
    w = read_windows(split_dir / "windows.json")
    frame = read_split(split_dir, ("train", "valid"), columns=[s.CUSTOMER, s.ITEM, s.TS])  # for the labels
    names = list(params["candidates"]["sources"])
    cands = {n: cands_dir / f"{n}.parquet" for n in w.label_windows() if n != "test"}
    labelled = labelled_windows(cands, frame, w, names, applied_store(params["features"]), params["ranker"])
    train = training_windows(labelled)
    with open_backend(params.get("compute")) as backend:
        booster, info = fit(train, labelled["valid"], params["ranker"], backend)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "ranker.lgb"), num_iteration=booster.best_iteration)
    info["sources"] = names
    log.info("ranker: trained in %.1f s", info.pop("seconds"))  # not in the model file: same data, same bytes
    write_json(info, model_dir / "ranker.json")
    write_csv(importance(booster), Path(plots_dir) / "feature_importance.csv")
    sample = params["monitor"]
    reference = reference_sample(booster, train, int(sample["sample_rows"]), int(sample["seed"]))
    write_parquet(reference, model_dir / "reference.parquet")  # the drift reference travels with the model
    log.info("ranker: %s", info)
    return info


def load(model_dir: str | Path) -> tuple[lgb.Booster, dict[str, Any]]:
    import lightgbm as lgb

    model_dir = Path(model_dir)
    return lgb.Booster(model_file=str(model_dir / "ranker.lgb")), json.loads((model_dir / "ranker.json").read_text())


def rank_part(
    part: tuple[int, pd.DataFrame],
    booster: lgb.Booster,
    source_names: list[str],
    cutoff: pd.Timestamp,
    store: dict[str, Any],
    k: int,
    sample_share: float = 0.0,
    seed: int = 0,
    reasons: str | None = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One partition (index, candidates of whole customers): Feast features at `cutoff` (`store`: a
    `store_spec`), scores, the top k per customer (with sources and reasons from the `reasons`
    contributions, none if None), and a seeded `sample_share` of the scored rows (the drift sample)."""
    from pipelines.features.store import process_store

    index, cands = part
    x = feature_table(cands, cutoff, source_names, process_store(store))
    scores = score(booster, x)
    if reasons is not None:
        recs = recommend(booster, cands, x, source_names, k, scores, reasons)
    else:
        recs = top_k(cands, scores, k, positive_only=False).reset_index(drop=True)
    sample = monitoring_sample(cands, x, scores, round(sample_share * len(cands)), seed + index)
    return recs, sample


def ranking_args(model_dir: str | Path, feature_params: dict[str, Any], cutoff: pd.Timestamp, k: int) -> dict:
    """What every partition of `rank_part` shares: the model, its sources, the cutoff, the store, k.
    Applies the feature repo once, here: the partitions only read the registry."""
    from pipelines.features.store import applied_store, store_spec

    booster, info = load(model_dir)
    applied_store(feature_params)
    return {
        "booster": booster,
        "source_names": info["sources"],
        "cutoff": cutoff,
        "store": store_spec(feature_params),
        "k": k,
    }


def rank(
    model_dir: str | Path,
    parts: Iterable[pd.DataFrame],
    rows: int,
    cutoff: pd.Timestamp,
    feature_params: dict[str, Any],
    k: int,
    backend: Backend = LOCAL,
    sample_rows: int = 0,
    seed: int = 0,
    reasons: str | None = DEFAULT_METHOD,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank candidates with a saved model, partition by partition on `backend` (`rows` in all): the top k
    per customer (with reasons from the `reasons` contributions, none if None), and a seeded sample of
    about `sample_rows` scored rows (each partition contributes its share, rounded).

    Each partition joins its own features, so memory holds one partition's feature table, not all.
    """
    shared = ranking_args(model_dir, feature_params, cutoff, k)
    share = min(1.0, sample_rows / rows) if rows else 0.0
    results = list(backend.map(rank_part, enumerate(parts), sample_share=share, seed=seed, reasons=reasons, **shared))
    recs, samples = zip(*results, strict=True)
    return pd.concat(recs, ignore_index=True), pd.concat(samples, ignore_index=True)


def customer_partitions(
    path: str | Path, customers: int = RANK_CUSTOMERS, columns: list[str] | None = None
) -> tuple[Iterator[pd.DataFrame], int]:
    """A candidates file (rows grouped by customer; its `columns` and the customer's, all by default)
    in partitions of `customers` whole customers (at least one), and its row count. The file is read
    row group by row group as the partitions are taken, so memory holds about a partition and a row
    group, whatever the file's size. A customer whose rows are not one run raises InputError when its
    row group is read."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return _partitions(file, Path(path), customers, columns), file.metadata.num_rows


def _partitions(file: Any, path: Path, customers: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    """The partitions of `customer_partitions`; each run of a customer's rows is checked to be its only one."""
    import pyarrow as pa

    customers, seen, last = max(int(customers), 1), set(), None
    columns = columns if columns is None or s.CUSTOMER in columns else [s.CUSTOMER, *columns]
    buffer = file.schema_arrow.empty_table().select(columns or file.schema_arrow.names)
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=columns)
        column = table.column(s.CUSTOMER)
        firsts = column.take(run_starts(column)).to_pylist()  # the customer of each run
        firsts = firsts[1:] if firsts and firsts[0] == last else firsts  # a run going on from the last group
        if seen.intersection(firsts) or len(set(firsts)) < len(firsts):
            raise InputError(f"{path}: candidates are not grouped by customer")
        seen.update(firsts)
        last = column[-1].as_py() if len(column) else last
        buffer = pa.concat_tables([buffer, table])
        starts = run_starts(buffer.column(s.CUSTOMER))
        while len(starts) > customers:  # a run follows the first `customers` ones, so those are whole
            yield buffer.slice(0, starts[customers]).to_pandas()
            buffer, starts = buffer.slice(starts[customers]), starts[customers:] - starts[customers]
    yield buffer.to_pandas()  # the last customers (an empty file: one empty partition)


def reference_sample(
    booster: lgb.Booster, train: list[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]], rows: int, seed: int
) -> pd.DataFrame:
    """The drift reference: a seeded sample of the training cutoffs' rows, scored, with labels
    (only the sampled rows are gathered and scored)."""
    sizes = np.array([len(c) for c, _, _ in train])
    picked = np.sort(np.random.default_rng(seed).choice(sizes.sum(), min(rows, sizes.sum()), replace=False))
    window = np.searchsorted(np.cumsum(sizes), picked, side="right")
    offset = picked - (np.cumsum(sizes) - sizes)[window]
    parts = [
        (c.iloc[offset[window == i]], x.iloc[offset[window == i]], y[offset[window == i]])
        for i, (c, x, y) in enumerate(train)
    ]
    cands, x = (pd.concat(p, ignore_index=True) for p in zip(*[(c, x) for c, x, _ in parts], strict=True))
    y = np.concatenate([y for *_, y in parts])
    return scored_rows(cands, x, score(booster, x), y)


def scored_rows(
    cands: pd.DataFrame, x: pd.DataFrame, scores: np.ndarray, label: np.ndarray | None = None
) -> pd.DataFrame:
    """Scored rows as drift is measured on them: customer, item, model inputs, score (and label)."""
    frame = pd.concat([cands[[s.CUSTOMER, s.ITEM]].reset_index(drop=True), x.reset_index(drop=True)], axis=1)
    frame["score"] = scores
    if label is not None:
        frame["label"] = label
    return frame


def monitoring_sample(cands: pd.DataFrame, x: pd.DataFrame, scores: np.ndarray, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of `rows` scored rows, in their original order."""
    frame = scored_rows(cands, x, scores)
    return frame.sample(n=min(rows, len(frame)), random_state=seed).sort_index().reset_index(drop=True)


def recommend_stage(
    cands_dir: str | Path,
    split_dir: str | Path,
    model_dir: str | Path,
    out_path: str | Path,
    sample_path: str | Path,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The recommend step: score the test cutoff's candidates; write the top k per customer with reasons,
    and a sample of the scored inputs for drift monitoring (`sample_path`)."""
    method = contribution_method(params)
    w = read_windows(Path(split_dir) / "windows.json")
    parts, rows = customer_partitions(Path(cands_dir) / "test.parquet")
    monitor = params["monitor"]
    with open_backend(params.get("compute")) as backend:
        recs, sample = rank(
            model_dir,
            parts,
            rows,
            w.test_start,
            params["features"],
            int(params["recommend"]["k"]),
            backend,
            int(monitor["sample_rows"]),
            int(monitor["seed"]),
            method,
        )
    write_parquet(recs, out_path)
    write_parquet(sample, sample_path)
    return recs
