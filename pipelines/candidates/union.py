"""Union of all sources: one row per customer x item, each source's score and rank as columns."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.candidates.base import SCORE, CandidateSource, build_sources, rank_within_groups
from pipelines.candidates.matrix import MatrixSource, SharedMatrices
from pipelines.candidates.selection import budgets, fit_weights, select
from pipelines.core import schema as s
from pipelines.core.compute import LOCAL, Backend, open_backend
from pipelines.core.errors import InputError
from pipelines.core.files import SELECTION_FILE, parquet_parts, write_json
from pipelines.data.split import (
    Windows,
    evaluated_customers,
    read_split,
    read_windows,
    sample_customers,
    warm_customers,
    window,
)

KEYS = [s.CUSTOMER, s.ITEM]
CHUNK = 1000  # customers per union pass: bounds memory at any data size (union also holds chunk x items bytes)


@dataclass(frozen=True)
class Pool:
    """Every source's proposals for a set of customers on integer keys: one row per customer x item,
    key = customer code x len(items) + item code (codes: places in the sorted ids), rows by key;
    `columns` holds each source's `<source>_score` and `<source>_rank` per row."""

    customers: pd.Index
    items: pd.Index
    keys: np.ndarray
    columns: dict[str, np.ndarray]

    @property
    def n_items(self) -> int:
        return max(len(self.items), 1)  # the key's base (1 without items: no key holds one)

    def customer_codes(self) -> np.ndarray:
        return self.keys // self.n_items

    def rows_of(self, pairs: pd.DataFrame) -> np.ndarray:
        """Each customer x item of `pairs`: its row here, -1 if none."""
        customer, item = self.customers.get_indexer(pairs[s.CUSTOMER]), self.items.get_indexer(pairs[s.ITEM])
        key = customer.astype(np.int64) * self.n_items + item
        at = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        hit = (customer >= 0) & (item >= 0) & (self.keys[at] == key) if len(self.keys) else np.zeros(len(key), bool)
        return np.where(hit, at, -1)

    def take(self, mask: np.ndarray) -> Pool:
        return Pool(self.customers, self.items, self.keys[mask], {k: v[mask] for k, v in self.columns.items()})

    def frame(self) -> pd.DataFrame:
        ids = {
            s.CUSTOMER: self.customers.to_numpy()[self.customer_codes()],
            s.ITEM: self.items.to_numpy()[self.keys % self.n_items],
        }
        return pd.DataFrame({**ids, **self.columns})


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Places of `values` in `index` (-1 if absent); a categorical column maps its categories once."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return index.get_indexer(values.cat.categories)[values.cat.codes.to_numpy()]
    return index.get_indexer(values)


def _ids(values: pd.Series) -> np.ndarray:
    """The distinct ids a column may hold (a categorical column's categories)."""
    return (values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else values).to_numpy(dtype=object)


def pool(sources: list[CandidateSource], customers: pd.Index) -> Pool:
    """Ask every fitted source for `customers` and join their proposals on integer keys."""
    parts = [src.proposals(customers) for src in sources]
    items = pd.Index(pd.unique(np.concatenate([_ids(p[s.ITEM]) for p in parts] + [[]]))).sort_values()
    cust_index = pd.Index(np.sort(np.asarray(customers, dtype=object)))
    n_items = max(len(items), 1)
    keys = [_codes(p[s.CUSTOMER], cust_index).astype(np.int64) * n_items + _codes(p[s.ITEM], items) for p in parts]
    present = np.zeros(len(cust_index) * n_items, dtype=bool)  # dense over this chunk: O(rows), no sort
    for key in keys:
        present[key] = True
    all_keys = np.flatnonzero(present)
    row_of = np.empty(len(present), dtype=np.int32)  # key -> output row; only the present keys are ever read
    row_of[all_keys] = np.arange(len(all_keys), dtype=np.int32)
    columns = {}
    for src, part, key in zip(sources, parts, keys, strict=True):
        score = np.zeros(len(all_keys))
        rank = np.full(len(all_keys), src.n + 1, dtype=np.int32)
        score[row_of[key]] = part[SCORE].to_numpy()
        rank[row_of[key]] = rank_within_groups(key // n_items)
        columns[f"{src.name}_score"], columns[f"{src.name}_rank"] = score, rank
    return Pool(cust_index, items, all_keys, columns)


def union(sources: list[CandidateSource], customers: pd.Index) -> pd.DataFrame:
    """Ask every fitted source for `customers`; outer-join on customer x item (`pool`).

    Columns `<source>_score` (0 when the source did not propose the item) and `<source>_rank`
    (1 = its best; n + 1 when it did not propose the item). Rows sorted by customer, item.
    """
    return pool(sources, customers).frame()


def fit_sources(history: pd.DataFrame, as_of: pd.Timestamp, source_params: dict[str, Any]) -> list[CandidateSource]:
    """Fit every configured source on the rows of `history` before `as_of`."""
    history = history[history[s.TS] < as_of]  # sources never see the future, whatever they are given
    shared = SharedMatrices(history, as_of)
    sources = build_sources(source_params)
    for src in sources:
        if isinstance(src, MatrixSource):
            src.shared = shared
    fitted = [src.fit(history, as_of) for src in sources]
    for src in fitted:  # the history is not part of a fitted source (it travels to every dask worker)
        if isinstance(src, MatrixSource):
            src.shared = None
    return fitted


def generate_candidates(
    history: pd.DataFrame, as_of: pd.Timestamp, customers: pd.Index, source_params: dict[str, Any]
) -> pd.DataFrame:
    """Fit every configured source on `history` before `as_of` and return their union for `customers`."""
    return union(fit_sources(history, as_of, source_params), customers)


def coverage(candidates: Pool, pairs: pd.DataFrame, source_names: list[str]) -> dict[str, int]:
    """How many of the distinct customer x item `pairs` each source, and the union, proposes."""
    if pairs.empty:  # serving: no future to measure on
        return dict.fromkeys([*source_names, "union"], 0)
    found = candidates.rows_of(pairs)
    found = found[found >= 0]
    counts = {name: int((candidates.columns[f"{name}_score"][found] > 0).sum()) for name in source_names}
    counts["union"] = len(found)
    return counts


def chunk_candidates(
    part: tuple[pd.Index, pd.DataFrame, pd.Series | None],
    sources: list[CandidateSource],
    selection: dict[str, Any] | None,
) -> tuple[pd.DataFrame, dict[str, int], int]:
    """One partition of customers (with their future purchases and budgets): union, coverage, selection.

    Returns the (selected) candidates, each source's and the union's coverage of the future pairs,
    and how many of those pairs the selection keeps.
    """
    customers, pairs, budget = part
    cands = pool(sources, customers)
    covered = coverage(cands, pairs, [src.name for src in sources])
    kept = covered["union"]
    if selection is not None and budget is not None:
        limits = budget.reindex(cands.customers).to_numpy()
        rrf_k = float(selection["rrf_k"])
        cands = cands.take(select(cands.customer_codes(), cands.columns, selection["weights"], limits, rrf_k))
        kept = coverage(cands, pairs, [src.name for src in sources])["union"]
    return cands.frame(), covered, kept


def customer_parts(customers: pd.Index, budget: pd.Series | None) -> list[tuple[pd.Index, pd.Series | None]]:
    """`customers` in consecutive partitions of `CHUNK` (the unit of work on every backend), each with its
    customers' budgets; at least one partition, empty when there are no customers."""
    chunks = [customers[lo : lo + CHUNK] for lo in range(0, len(customers), CHUNK)] or [customers[:0]]
    return [(chunk, budget.reindex(chunk) if budget is not None else None) for chunk in chunks]


def window_candidates(
    sources: list[CandidateSource],
    customers: pd.Index,
    future: pd.DataFrame,
    budget: pd.Series | None,
    selection: dict[str, Any] | None,
    write: Callable[[pd.DataFrame], None],
    backend: Backend = LOCAL,
) -> dict[str, Any]:
    """Union (and budgeted selection) for `customers`, `CHUNK` customers per partition, each partition's
    candidates to `write` in customer order; returns the recall on `future`.

    Partitions run on `backend` (in this process, or as dask tasks with the fitted sources sent to
    each worker once); only the selected rows come back and each goes on to `write` (e.g. a file's
    `parquet_parts`), so memory holds a partition, whatever the data size.
    """
    names = [src.name for src in sources]
    pairs = future.loc[future[s.CUSTOMER].isin(customers), KEYS].drop_duplicates()
    part_of = (np.arange(len(customers)) // CHUNK)[customers.get_indexer(pairs[s.CUSTOMER])]
    pairs_of = {i: frame for i, frame in pairs.groupby(part_of, sort=False)}
    parts = (
        (chunk, pairs_of.get(i, pairs.iloc[:0]), chunk_budget)
        for i, (chunk, chunk_budget) in enumerate(customer_parts(customers, budget))
    )
    covered = dict.fromkeys([*names, "union"], 0)
    kept = rows = 0
    for cands, chunk_covered, chunk_kept in backend.map(chunk_candidates, parts, sources=sources, selection=selection):
        for name, count in chunk_covered.items():
            covered[name] += count
        kept, rows = kept + chunk_kept, rows + len(cands)
        write(cands)
    n = max(len(pairs), 1)
    metrics: dict[str, Any] = {f"recall_{name}": covered[name] / n for name in names}
    metrics.update(pairs=len(pairs), customers=len(customers), recall_union=covered["union"] / n)
    if selection is not None:
        metrics.update(recall_union_before_selection=covered["union"] / n, recall_union=kept / n)
    metrics["candidates_per_customer"] = rows / max(len(customers), 1)
    return metrics


def customer_samples(params: dict[str, Any]) -> dict[str, Any]:
    """`candidates_at_cutoffs`' samples of customers from the params: the learning windows' (the
    ranker's `max_customers` and `seed`) and the test window's (`evaluate.max_customers`)."""
    return {
        "learn_customers": params["ranker"]["max_customers"],
        "seed": int(params["ranker"]["seed"]),
        "test_customers": params["evaluate"].get("max_customers"),
    }


def candidates_at_cutoffs(
    df: pd.DataFrame,
    w: Windows,
    cand_params: dict[str, Any],
    backend: Backend = LOCAL,
    out_dir: Path | None = None,
    learn_customers: int | None = None,
    seed: int = 0,
    trained: dict[str, Any] | None = None,
    test_customers: int | None = None,
) -> dict[str, Any]:
    """Candidates at every cutoff of `w.label_windows()` (train_1..n, valid, test), sources fitted before it.

    Each window's customers are its warm ones (history before it, purchases inside it); the windows
    the ranker learns from (all but test) keep a seeded sample of at most `learn_customers` of them
    (`customer_samples`): the ranker learns from no more, so no more are generated, and their recall
    is measured on that sample. (It is the sample the ranker once drew from a window's candidates
    whenever every warm customer has one, as buy_again gives them.) The test window's customers are
    the evaluated ones (`evaluated_customers`: at most `test_customers`). With a
    `selection` section, the union is cut to per-customer budgets, with source weights tuned
    for recall on a sample of the earliest window's customers (the first training cutoff, or
    validation without one) and applied unchanged to the later windows, so no window's
    candidates are chosen with a later window's purchases. Given the selection a model was
    `trained` with (its selection.json: the daily run), that one is used and only the test window is
    generated: no ranker learns here.
    Returns {name: frame for each window, "selection": weights or None, "metrics": recall per window};
    with an `out_dir`, each window goes to `<out_dir>/<name>.parquet` partition by partition instead
    of into the result.
    """
    source_params, sel = cand_params["sources"], cand_params.get("selection")
    out: dict[str, Any] = {"selection": trained["selection"] if trained else None, "metrics": {}}
    windows = w.label_windows()
    # oldest first: the selection is tuned on the earliest window, before any later label
    for name in windows if trained is None else ["test"]:
        start, end = windows[name]
        history, future = window(df, None, start), window(df, start, end)
        customers = warm_customers(history, future)
        sources = fit_sources(history, start, source_params)
        budget = budgets(history, customers, sel) if sel else None
        if sel and trained is None and out["selection"] is None:
            sample = sample_customers(customers, int(sel["tune_customers"]), 0)
            weights, recall = fit_weights(union(sources, sample), future, list(source_params), budget, sel)
            out["selection"] = {"weights": weights, "rrf_k": float(sel["rrf_k"]), "valid_recall_tuning_sample": recall}
        if name != "test":
            customers = sample_customers(customers, learn_customers, seed)
        else:  # the budgets above are those of every warm customer, sampled or not
            customers = evaluated_customers(history, future, test_customers)
        frames: list[pd.DataFrame] = []
        with parquet_parts(Path(out_dir) / f"{name}.parquet") if out_dir else nullcontext(frames.append) as write:
            out["metrics"][name] = window_candidates(
                sources, customers, future, budget, out["selection"], write, backend
            )
        if out_dir is None:
            out[name] = pd.concat(frames, ignore_index=True)
    return out


def candidates_stage(
    split_dir: str | Path,
    out_dir: str | Path,
    cand_params: dict[str, Any],
    metrics_path: str | Path,
    compute_params: dict[str, Any],
    samples: dict[str, Any],
) -> dict[str, Any]:
    """The candidates step: candidates at every cutoff (`<window>.parquet`), selection weights, recall metrics;
    the per-customer work runs on the `compute` backend; the windows hold `samples` of customers
    (`customer_samples`).
    With `candidates.reuse_model` (the daily run), the test window only, cut with that model's weights."""
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    w = read_windows(split_dir / "windows.json")
    model = cand_params.get("reuse_model")
    trained = model_selection(Path(model), cand_params) if model else None
    df = read_split(split_dir)
    if trained:  # no learning windows: none may be left from an earlier run
        for name in set(w.label_windows()) - {"test"}:
            (out_dir / f"{name}.parquet").unlink(missing_ok=True)
    with open_backend(compute_params) as backend:
        result = candidates_at_cutoffs(df, w, cand_params, backend, out_dir, **samples, trained=trained)
    write_json({"selection": result["selection"]}, out_dir / SELECTION_FILE)
    write_json(result["metrics"], metrics_path)
    return result["metrics"]


def model_selection(model_dir: Path, cand_params: dict[str, Any]) -> dict[str, Any]:
    """What a trained model's candidates were cut with (`<model_dir>/selection.json`, as the candidates
    step wrote it; train keeps it with the model), checked against this run's sources and `selection`."""
    path = model_dir / SELECTION_FILE
    if not path.is_file():
        raise InputError(f"{path}: the model has no candidate selection (trained before it was kept): retrain it")
    selection = read_selection(path)
    if (selection is None) != (cand_params.get("selection") is None):
        state = "without" if selection is None else "with"
        raise InputError(f"{path}: the model was trained {state} a candidate selection, unlike candidates.selection")
    weighted, sources = set(selection["weights"] if selection else cand_params["sources"]), set(cand_params["sources"])
    if weighted != sources:
        raise InputError(
            f"{path}: the model's sources ({', '.join(sorted(weighted))}) are not candidates.sources "
            f"({', '.join(sorted(sources))})"
        )
    return {"selection": selection}


def read_selection(path: Path) -> dict[str, Any] | None:
    """The selection in a `SELECTION_FILE` (None: the whole union was kept)."""
    return json.loads(path.read_text())["selection"]
