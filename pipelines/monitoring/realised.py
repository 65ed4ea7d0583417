"""Realised performance: what the lists served since the last publish achieved on the purchases that followed.

The offline figures (evaluate) score a holdout the model never saw; these score what customers were
actually shown. The served version is the live one if its data ends before this run's as-of date (a
rollback's), else the newest published one that does; its window runs from its as-of date to this
one's. Every customer who bought in the window counts:
one with a personal list is scored on it, one without on the global cold-start list the API falls
back to. Figures overall and per loyalty tier (the served version's segments; `new` for customers
it did not know), as a DVC metric, an Evidently run (tag `realised`) and a gate check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core import schema as s
from pipelines.core.files import write_json
from pipelines.evaluation.metrics import ranking_metrics

log = logging.getLogger(__name__)
NEW = "new"  # the tier of customers the served version did not know


def served_version(publish_dir: str | Path, as_of: pd.Timestamp) -> tuple[str, pd.Timestamp] | None:
    """The version served before `as_of` (`Releases.before`: the live one if its data ends before, else
    the newest kept one that does) and its as-of date (None if there is none)."""
    from pipelines.serving.publish import Releases

    releases = Releases(publish_dir)
    version = releases.before(as_of)
    return (version, releases.as_of(version)) if version else None


def served_lists(recs: pd.DataFrame, cold: pd.DataFrame, purchasers: pd.Index) -> pd.DataFrame:
    """What each purchaser was shown: the personal list, or the global cold-start list without one."""
    personal = recs[recs[s.CUSTOMER].isin(purchasers)][[s.CUSTOMER, s.ITEM, "rank"]]
    rest = purchasers.difference(pd.Index(personal[s.CUSTOMER].unique()))
    fallback = cold.loc[cold["country"] == s.GLOBAL, [s.ITEM, "rank"]]
    filled = pd.DataFrame(
        {
            s.CUSTOMER: rest.repeat(len(fallback)),
            s.ITEM: list(fallback[s.ITEM]) * len(rest),
            "rank": list(fallback["rank"]) * len(rest),
        }
    )
    return pd.concat([personal, filled], ignore_index=True)


def realised(shown: pd.DataFrame, tiers: pd.Series, purchases: pd.DataFrame, k: int, recall_k: int) -> dict[str, Any]:
    """Hit rate and NDCG at `k`, recall at `recall_k` of the lists `shown` to the purchasers (`served_lists`)
    on `purchases`, overall and per tier."""
    truth = purchases[[s.CUSTOMER, s.ITEM]].drop_duplicates()
    purchasers = pd.Index(truth[s.CUSTOMER].unique())

    def figures(customers: pd.Index) -> dict[str, float]:
        part, lists = truth[truth[s.CUSTOMER].isin(customers)], shown[shown[s.CUSTOMER].isin(customers)]
        at_k, at_recall = ranking_metrics(lists, part, k), ranking_metrics(lists, part, recall_k)
        return {
            "customers": len(customers),
            f"hitrate@{k}": at_k[f"hitrate@{k}"],
            f"ndcg@{k}": at_k[f"ndcg@{k}"],
            f"recall@{recall_k}": at_recall[f"recall@{recall_k}"],
        }

    tier = tiers.reindex(purchasers).fillna(NEW).astype(str)
    return {
        "purchasers": len(purchasers),
        "overall": figures(purchasers),
        "segments": {name: figures(pd.Index(group.index)) for name, group in tier.groupby(tier, sort=True)},
    }


def realised_stage(clean_path: str | Path, split_dir: str | Path, metrics_path: str | Path, params: dict[str, Any]):
    """The realised step: score the served version's lists on the purchases since its as-of date; write
    the figures (a DVC metric) and add an Evidently run. Before any earlier publish it says so."""
    from pipelines.data.split import read_windows, window
    from pipelines.monitoring.reports import add_runs, quality_report

    monitor = params["monitor"]
    k, recall_k = int(monitor["k"]), int(monitor["recall_k"])
    as_of = read_windows(Path(split_dir) / "windows.json").as_of
    served = served_version(params["publish"]["dir"], as_of)
    if served is None:
        result = {"served_version": None, "as_of": str(as_of), "reason": "no version published before this as-of date"}
        write_json(result, metrics_path)
        log.info("realised: nothing served before %s to measure", as_of.date())
        return result
    version, served_as_of = served
    directory = Path(params["publish"]["dir"]) / "versions" / version
    clean = pd.read_parquet(clean_path, columns=[s.CUSTOMER, s.ITEM, s.TS])
    purchases = window(clean, served_as_of, as_of)
    recs = pd.read_parquet(directory / "recommendations.parquet", columns=[s.CUSTOMER, s.ITEM, "rank"])
    cold = pd.read_parquet(directory / "cold_start.parquet", columns=["country", s.ITEM, "rank"])
    tiers = pd.read_parquet(directory / "segments.parquet", columns=[s.CUSTOMER, "tier"]).set_index(s.CUSTOMER)["tier"]
    purchasers = pd.Index(purchases[s.CUSTOMER].unique())
    shown = served_lists(recs, cold, purchasers)  # once: for our figures and for Evidently's run
    result = {
        "served_version": version,
        "served_as_of": str(served_as_of),
        "as_of": str(as_of),
        "days": round((as_of - served_as_of) / pd.Timedelta(days=1), 2),
        "with_personal_list": int(purchasers.isin(recs[s.CUSTOMER]).sum()),
        **realised(shown, tiers, purchases, k, recall_k),
    }
    write_json(result, metrics_path)
    if result["purchasers"]:
        snapshot = quality_report(
            shown, purchases, window(clean, None, served_as_of), k, recall_k, as_of.to_pydatetime(), tag="realised"
        )
        key = monitor["run_key"] and f"{monitor['run_key']}#realised"
        add_runs(monitor["workspace"], [snapshot], k, recall_k, key)
    overall = result["overall"]
    log.info(
        "realised: version %s, %d purchasers in %.1f days: ndcg@%d %.4f, hitrate@%d %.4f",
        version,
        result["purchasers"],
        result["days"],
        k,
        overall[f"ndcg@{k}"],
        k,
        overall[f"hitrate@{k}"],
    )
    return result
