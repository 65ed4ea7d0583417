"""Benchmark: candidate recall and cost, side by side with the `implicit` library's own models.

    .venv/bin/python bench/candidates.py --data ../shared/data/online_retail.parquet
    .venv/bin/python bench/candidates.py --data /tmp/shoprec-10m.parquet --skip-implicit

Test window = the last `--test-days` days. Reports per-source and union recall on the test
window's warm customers, candidates per customer, the wall time of generating every
candidate (all sources, union, selection) at the test cutoff, the time `implicit`'s ALS,
BM25 and cosine item-kNN take to fit and recommend for the same customers with the settings
of our `als` and `item_cf` sources (factors, neighbours, n), and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from threadpoolctl import threadpool_limits

from pipelines.candidates.matrix import user_items
from pipelines.candidates.selection import budgets
from pipelines.candidates.union import candidates_at_cutoffs, customer_samples, fit_sources, window_candidates
from pipelines.core.config import load_params
from pipelines.data.ingest import clean, load_canonical
from pipelines.data.split import make_windows, warm_customers, window


def implicit_side_by_side(history, as_of, customers, sources: dict) -> dict[str, float]:
    """Seconds for implicit's own models, with our sources' settings, to fit and recommend for `customers`."""
    ui = user_items(history, as_of)
    rows, _ = ui.rows(customers)
    als, item_cf = sources["als"], sources["item_cf"]
    models = {
        "implicit_als": (
            lambda: AlternatingLeastSquares(
                factors=als["factors"],
                regularization=als["regularization"],
                alpha=als["alpha"],
                iterations=als["iterations"],
                random_state=0,
            ),
            als["n"],
        ),
        "implicit_bm25_item_knn": (lambda: BM25Recommender(K=item_cf["neighbours"]), item_cf["n"]),
        "implicit_cosine_item_knn": (lambda: CosineRecommender(K=item_cf["neighbours"]), item_cf["n"]),
    }
    out = {}
    for name, (make, n) in models.items():
        started = time.perf_counter()
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
            model.fit(ui.matrix, show_progress=False)
            model.recommend(rows, ui.matrix[rows], N=n, filter_already_liked_items=True)
        out[name] = round(time.perf_counter() - started, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--test-days", type=int, default=30)
    ap.add_argument("--skip-implicit", action="store_true")
    args = ap.parse_args()
    params = load_params(args.params)
    cand_params = params["candidates"]

    started = time.perf_counter()
    df = clean(load_canonical(args.data, params["data"]).frame, params["ingest"]).frame
    w = make_windows(df["timestamp"], {**params["split"], "as_of": None, "test_days": args.test_days})
    load_s = time.perf_counter() - started

    started = time.perf_counter()
    result = candidates_at_cutoffs(df, w, cand_params, **customer_samples(params))  # as the candidates step
    both_windows_s = time.perf_counter() - started

    # the test window alone, timed: fit every source, union and select for its warm customers
    history, future = window(df, None, w.test_start), window(df, w.test_start, w.as_of)
    customers = warm_customers(history, future)
    started = time.perf_counter()
    sources = fit_sources(history, w.test_start, cand_params["sources"])
    fit_s = time.perf_counter() - started
    budget = budgets(history, customers, cand_params["selection"]) if cand_params.get("selection") else None
    parts: list = []  # kept in memory, as the stage would write them
    metrics = window_candidates(sources, customers, future, budget, result["selection"], parts.append)
    generate_s = time.perf_counter() - started

    report = {
        "data": str(args.data),
        "rows_clean": len(df),
        "test_window": [str(w.test_start.date()), str(w.as_of.date())],
        "test": metrics,
        "selection": result["selection"],
        "seconds": {
            "load_and_clean": round(load_s, 1),
            "both_windows_with_tuning": round(both_windows_s, 1),
            "test_fit_sources": round(fit_s, 1),
            "test_generate_all": round(generate_s, 1),
        },
    }
    if not args.skip_implicit:
        times = implicit_side_by_side(history, w.test_start, customers, cand_params["sources"])
        report["seconds"].update(times)
        report["seconds"]["ours_over_implicit"] = round(generate_s / sum(times.values()), 2)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=2, default=lambda x: float(x) if isinstance(x, np.floating) else str(x)))


if __name__ == "__main__":
    main()
