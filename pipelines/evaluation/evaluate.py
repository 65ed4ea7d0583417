"""Evaluate step: ranking and beyond-accuracy metrics of the fused recommendations and of each
source alone, overall and by customer segment (loyalty tier, new vs returning, country group)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.candidates.content import item_texts
from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.files import write_csv, write_json
from pipelines.core.partitions import customer_partitions
from pipelines.data.split import evaluated_customers, read_split, read_windows
from pipelines.evaluation.metrics import (
    ItemVectors,
    average_popularity,
    catalogue_coverage,
    exposure_gini,
    intra_list_diversity,
    item_popularity,
    novelty,
    per_customer_at,
    personalisation,
    ranking_metrics_at,
)
from pipelines.evaluation.segments import customer_segments
from pipelines.ranking.lists import rank_features, source_sizes, top_k

SEGMENT_DIMENSIONS = ("tier", "lifecycle", "country")


@dataclass(frozen=True)
class Catalogue:
    """What the beyond-accuracy metrics measure lists against: the catalogue size, each item's
    popularity among the training customers, and the items' text vectors."""

    n_items: int
    popularity: pd.Series
    vectors: ItemVectors

    @classmethod
    def of(cls, history: pd.DataFrame, n_items: int) -> Catalogue:
        items = pd.Index(history[s.ITEM].unique())
        return cls(n_items, item_popularity(history), ItemVectors.of_texts(item_texts(history, items)))


BEYOND_ACCURACY: dict[str, Callable[[pd.DataFrame, int, Catalogue], float]] = {
    "coverage": lambda lists, k, c: catalogue_coverage(lists, k, c.n_items),
    "diversity": lambda lists, k, c: intra_list_diversity(lists, k, c.vectors),
    "novelty": lambda lists, k, c: novelty(lists, k, c.popularity),
    "personalisation": lambda lists, k, c: personalisation(lists, k),
    "popularity": lambda lists, k, c: average_popularity(lists, k, c.popularity),
    "gini": lambda lists, k, c: exposure_gini(lists, k, c.n_items),
}


def metric_table(
    recs: pd.DataFrame, truth: pd.DataFrame, ks: list[int], catalogue: Catalogue, only: Collection[str] | None = None
) -> dict[str, float]:
    """Ranking metrics at every k over the customers in `truth`, and the beyond-accuracy metrics of their
    lists; with `only` (names such as "ndcg@10"), just those."""
    lists = recs[recs[s.CUSTOMER].isin(truth[s.CUSTOMER].unique())]
    wanted = {k: None if only is None else {m.split("@")[0] for m in only if m.endswith(f"@{k}")} for k in ks}
    ranked = [k for k, names in wanted.items() if names is None or names - set(BEYOND_ACCURACY)]
    out: dict[str, float] = ranking_metrics_at(lists, truth, ranked) if ranked else {}
    for k in ks:
        for name, metric in BEYOND_ACCURACY.items():
            if wanted[k] is None or name in wanted[k]:
                out[f"{name}@{k}"] = metric(lists, k, catalogue)
    return out if only is None else {m: out[m] for m in only}


def model_lists(
    recs: pd.DataFrame, parts: Iterable[pd.DataFrame], sizes: dict[str, int], k: int
) -> dict[str, pd.DataFrame]:
    """The ranker's lists and each source's own top k (by its rank) over the same candidates, given in
    partitions of whole customers (only the lists are kept, not the candidates)."""
    own: dict[str, list[pd.DataFrame]] = {name: [] for name in sizes}
    for cands in parts:
        feats = rank_features(cands, sizes)
        for i, name in enumerate(sizes):
            own[name].append(top_k(cands, feats[:, i], k).reset_index(drop=True))
    return {"ranker": recs, **{name: pd.concat(frames, ignore_index=True) for name, frames in own.items()}}


def evaluate(
    lists: dict[str, pd.DataFrame], truth: pd.DataFrame, ks: list[int], catalogue: Catalogue
) -> dict[str, Any]:
    """Metrics of the ranker's lists and of every source's own lists (`model_lists`) on the same customers."""
    tables = {name: metric_table(model_recs, truth, ks, catalogue) for name, model_recs in lists.items()}
    ranker = tables.pop("ranker")
    return {"customers": int(truth[s.CUSTOMER].nunique()), "ranker": ranker, "sources": tables}


def by_segment(
    lists: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    segments: pd.DataFrame,
    ks: list[int],
    catalogue: Catalogue,
    headline: list[str],
) -> dict[str, Any]:
    """Per dimension and segment: its customer count and the `headline` metrics of every model.

    A ranking metric is a mean over customers of a value each customer has alone (`per_customer`),
    so those are computed once per model and averaged per segment; the beyond-accuracy ones are
    measured on the segment's lists."""
    listwise = [m for m in headline if m.split("@")[0] in BEYOND_ACCURACY]
    by_k = {k: [m for m in headline if m not in listwise and m.endswith(f"@{k}")] for k in ks}
    wanted = [k for k, ms in by_k.items() if ms]
    tables = {name: per_customer_at(recs, truth, wanted) if wanted else {} for name, recs in lists.items()}
    out: dict[str, Any] = {}
    for dim in SEGMENT_DIMENSIONS:
        out[dim] = {}
        for value, members in segments.groupby(dim).groups.items():
            part = truth[truth[s.CUSTOMER].isin(members)]
            row: dict[str, Any] = {"customers": int(part[s.CUSTOMER].nunique())}
            for name, model_recs in lists.items():
                got = metric_table(model_recs, part, ks, catalogue, listwise) if listwise else {}
                for k, table in tables[name].items():
                    inside = table[table.index.isin(members)]
                    got.update({m: float(inside[m].mean()) if len(inside) else 0.0 for m in by_k[k]})
                row[name] = {m: got[m] for m in headline}
            out[dim][str(value)] = row
    return out


def metric_curves(result: dict[str, Any], ks: list[int]) -> dict[str, pd.DataFrame]:
    """Per metric, a table: one row per k, one column for the ranker and each source (DVC plots)."""
    models = {"ranker": result["ranker"], **result["sources"]}
    return {
        metric: pd.DataFrame({"k": ks, **{name: [m[f"{metric}@{k}"] for k in ks] for name, m in models.items()}})
        for metric in ("ndcg", "recall")
    }


def holdout(split_dir: str | Path, max_customers: int | None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(history before the test window, the evaluated customers' test purchases, catalogue size); the
    evaluated customers are those the candidates step generated for (`evaluate.max_customers`)."""
    history, test = read_split(split_dir, ("train", "valid")), read_split(split_dir, ("test",))
    truth = test[test[s.CUSTOMER].isin(evaluated_customers(history, test, max_customers))]
    return history, truth, pd.concat([history[s.ITEM], test[s.ITEM]]).nunique()


def evaluate_stage(
    recs_path: str | Path,
    cands_path: str | Path,
    split_dir: str | Path,
    customer_features_path: str | Path | None,
    out: dict[str, str | Path],
    source_params: dict[str, Any],
    params: dict[str, Any],
    list_length: int,
) -> dict[str, Any]:
    """Read the test window's recommendations (`list_length` per customer), candidates and purchases;
    write the metrics (`out["metrics"]`),
    the segment breakdown (`out["segments"]`) and the metric@k curves (`out["plots"]`)."""
    ks = [int(k) for k in params["ks"]]
    if max(ks) > list_length:
        raise InputError(
            f"params: evaluate.ks goes up to {max(ks)} but recommend.k keeps {list_length} items per customer: "
            "the ranker would be cut shorter than the sources"
        )
    history, truth, n_items = holdout(split_dir, params.get("max_customers"))
    catalogue = Catalogue.of(history, n_items)
    sizes = source_sizes(source_params)
    parts, _ = customer_partitions(cands_path, columns=[s.CUSTOMER, s.ITEM, *(f"{name}_rank" for name in sizes)])
    lists = model_lists(pd.read_parquet(recs_path), parts, sizes, max(ks))
    result = evaluate(lists, truth, ks, catalogue)
    write_json(result, out["metrics"])
    for metric, table in metric_curves(result, ks).items():
        write_csv(table, Path(out["plots"]) / f"{metric}_at_k.csv")
    cutoff = read_windows(Path(split_dir) / "windows.json").test_start
    customers = pd.Index(truth[s.CUSTOMER].unique())
    segments = customer_segments(history, customers, cutoff, customer_features_path, params["segments"])
    write_json(by_segment(lists, truth, segments, ks, catalogue, list(params["segments"]["metrics"])), out["segments"])
    return result
