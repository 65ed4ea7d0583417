"""Benchmark: recommendation quality of shoprec against each of its sources and peer libraries.

    .venv/bin/python bench/quality.py --data ../shared/data/online_retail.parquet
    .venv/bin/python bench/quality.py --data ../shared/data/online_retail.parquet --variant first-purchases

Protocol: clean as ingest does; test window = the last 30 days; evaluated customers = those
with purchases both before and inside it; relevant = the distinct items they bought inside it
(repeat purchases count). NDCG@10 (binary gains), Recall@20, HitRate@10 and catalogue coverage
of the top-10 lists. shoprec runs `shoprec backtest` (candidates + LightGBM ranker); each source
alone ranks the same candidates; the peers fit on the same history: popularity, buy-again,
implicit's ALS, BPR, cosine and BM25 item-kNN (with and without filtering items the customer
already bought) and EASE; and the next-basket peers of bench/peers.py (buy-again filled with
popularity, TIFU-KNN, UP-CF@r), each with its parameters tuned on the validation window (the
`split.valid_days` before the test window) and refitted on the whole history before the test.

`--variant first-purchases` keeps only each customer's first purchase of each item and drops the
item text: a dataset of a different nature (no repeat purchases, no content), where buy-again
has nothing to offer and the ranker must learn other signals. `--write-docs` replaces the
matching table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from peers import tuned_peers
from threadpoolctl import threadpool_limits

from pipelines.core import schema as s
from pipelines.core.config import load_params, override
from pipelines.data.ingest import clean, load_canonical
from pipelines.data.split import make_windows, warm_customers, window
from pipelines.evaluation.backtest import backtest
from pipelines.evaluation.metrics import catalogue_coverage, paired_bootstrap, per_customer, ranking_metrics

ROOT = Path(__file__).resolve().parents[1]
K = 20
UCI = "online_retail.parquet"  # its tables keep the variant's name alone in docs/benchmarks.md
COLUMNS = ("ndcg@10", "recall@20", "hitrate@10", "coverage@10")


def first_purchases(raw: pd.DataFrame) -> pd.DataFrame:
    """The variant: each customer's first purchase of each item only, no item text."""
    raw = raw.sort_values("InvoiceDate", kind="stable")
    out = raw[~raw.duplicated(["CustomerID", "StockCode"]) | raw["CustomerID"].isna()].copy()
    out["Description"] = None
    return out


def top_lists(scores: np.ndarray, users: np.ndarray, items: pd.Index, k: int = K) -> pd.DataFrame:
    """Top-k items per row of a dense score block, as a recommendations frame."""
    idx = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    idx, part = np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1)
    frame = pd.DataFrame(
        {
            s.CUSTOMER: np.repeat(users, idx.shape[1]),
            s.ITEM: items.to_numpy()[idx.ravel()],
            "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(users)),
            "score": part.ravel(),
        }
    )
    return frame[np.isfinite(frame["score"])]


def peers(
    history: pd.DataFrame, customers: pd.Index, valid_start: pd.Timestamp, test_start: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    """Top-K lists of every peer baseline for `customers`, fitted on `history` (the rows before `test_start`);
    the next-basket peers are tuned on [valid_start, test_start) first."""
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    users, items = pd.Index(sorted(history[s.CUSTOMER].unique())), pd.Index(sorted(history[s.ITEM].unique()))
    counts = history.groupby([s.CUSTOMER, s.ITEM]).size()
    rows = users.get_indexer(counts.index.get_level_values(0))
    cols = items.get_indexer(counts.index.get_level_values(1))
    ui = sp.csr_matrix((counts.to_numpy(np.float32), (rows, cols)), shape=(len(users), len(items)))
    target = users.get_indexer(customers)
    out: dict[str, pd.DataFrame] = {}

    pop = np.asarray((ui > 0).sum(axis=0)).ravel().astype(np.float64)
    seen = ui[target].toarray() > 0
    out["popularity"] = top_lists(np.tile(pop, (len(target), 1)), customers.to_numpy(), items)
    out["popularity (unseen only)"] = top_lists(np.where(seen, -np.inf, pop), customers.to_numpy(), items)
    last = history.groupby([s.CUSTOMER, s.ITEM])[s.TS].max().astype("int64") / 1e18
    again = sp.csr_matrix(((counts + last.reindex(counts.index)).to_numpy(), (rows, cols)), shape=ui.shape)
    out["buy-again (count, then recency)"] = top_lists(
        np.where(seen, again[target].toarray(), -np.inf), customers.to_numpy(), items
    )

    conf = ui.copy()
    conf.data = np.log1p(conf.data).astype(np.float32)
    als = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15, "random_state": 0}
    bpr = {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100, "random_state": 0}
    models = {
        "implicit ALS": lambda: AlternatingLeastSquares(**als),
        "implicit BPR": lambda: BayesianPersonalizedRanking(**bpr),
        "implicit cosine item-kNN": lambda: CosineRecommender(K=200),
        "implicit BM25 item-kNN": lambda: BM25Recommender(K=200),
    }
    for name, make in models.items():
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
            model.fit(conf, show_progress=False)
            for filtered in (True, False):
                ids, scores = model.recommend(target, conf[target], N=K, filter_already_liked_items=filtered)
                label = f"{name} ({'unseen only' if filtered else 'all items'})"
                out[label] = pd.DataFrame(
                    {
                        s.CUSTOMER: np.repeat(customers.to_numpy(), ids.shape[1]),
                        s.ITEM: items.to_numpy()[np.clip(ids.ravel(), 0, None)],
                        "rank": np.tile(np.arange(1, ids.shape[1] + 1), len(target)),
                        "score": scores.ravel(),
                    }
                )[ids.ravel() >= 0]

    binary = (ui > 0).astype(np.float64)
    gram = (binary.T @ binary).toarray()
    gram[np.diag_indices_from(gram)] += 500.0  # lambda of EASE (Steck 2019)
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    ease = binary[target] @ b
    out["EASE (all items)"] = top_lists(np.asarray(ease), customers.to_numpy(), items)
    out["EASE (unseen only)"] = top_lists(np.where(seen, -np.inf, ease), customers.to_numpy(), items)
    out.update(tuned_peers(history, customers, valid_start, test_start))
    return out


def as_str(frame: pd.DataFrame) -> pd.DataFrame:
    """Customer and item ids as text (the backtest gives numeric ids back as numbers)."""
    return frame.assign(**{c: frame[c].astype(str) for c in (s.CUSTOMER, s.ITEM)})


def decomposition(lists: dict[str, pd.DataFrame], truth: pd.DataFrame, history: pd.DataFrame) -> str:
    """Where each list's NDCG@10 comes from: repurchases (items the customer bought before the test
    window) or items new to the customer; and what ordering the repurchases perfectly would reach."""
    keys = [s.CUSTOMER, s.ITEM]
    bought, truth = as_str(history[keys].drop_duplicates()), as_str(truth)
    relevant = truth[keys].drop_duplicates()
    repeats = relevant.merge(bought, on=keys)
    oracle = repeats.assign(rank=repeats.groupby(s.CUSTOMER).cumcount() + 1, score=0.0)
    lines = [
        f"Relevant items the customer had bought before: {len(repeats) / len(relevant):.1%}. Ordering exactly "
        f"those first (an oracle that knows which repurchases happen) reaches NDCG@10 "
        f"{ranking_metrics(oracle, truth, 10)['ndcg@10']:.4f}.",
        "",
        "| model | ndcg@10 | from repurchases | from items new to the customer |",
        "|---|---|---|---|",
    ]
    for name, recs in lists.items():
        recs = as_str(recs)
        total = ranking_metrics(recs, truth, 10)["ndcg@10"]
        repeat = ranking_metrics(recs.merge(bought, on=keys), truth, 10)["ndcg@10"]
        lines.append(f"| {name} | {total:.4f} | {repeat:.4f} | {total - repeat:.4f} |")
    return "\n".join(lines)


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| model | " + " | ".join(c.replace("coverage", "coverage") for c in COLUMNS) + " |"]
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    best = {c: max(r[c] for r in rows.values()) for c in COLUMNS}
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["ndcg@10"]):
        cells = [f"**{r[c]:.4f}**" if r[c] == best[c] else f"{r[c]:.4f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--variant", choices=["as-is", "first-purchases"], default="as-is")
    ap.add_argument("--test-days", type=int, default=30)
    ap.add_argument(
        "--as-of",
        help="Cut the data at this date first: with the real test window's start (e.g. 2011-11-10 on UCI), "
        "the run scores a validation window, the place to measure changes",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a param as dvc exp run -S does, e.g. --set ranker.num_leaves=63 (repeatable)",
    )
    ap.add_argument("--out", type=Path, help="Backtest output directory (default: a temporary one)")
    ap.add_argument("--write-docs", action="store_true", help="Replace this variant's table in docs/benchmarks.md")
    args = ap.parse_args()
    if args.write_docs and (args.as_of or args.set):
        ap.error("--write-docs records the test window with params.yaml as it is; drop --as-of and --set")
    params = override(load_params(ROOT / "params.yaml"), args.set)
    out = args.out or Path(tempfile.mkdtemp(prefix="shoprec-quality-"))
    data = args.data
    if args.variant == "first-purchases":
        data = out / "first_purchases.parquet"
        out.mkdir(parents=True, exist_ok=True)
        first_purchases(pd.read_parquet(args.data)).to_parquet(data, index=False)

    started = time.perf_counter()
    metrics = backtest(data, args.test_days, 10, out, params, args.as_of)
    backtest_s = time.perf_counter() - started
    rows = {"**shoprec** (candidates + LightGBM ranker)": metrics["ranker"]}
    rows.update({f"shoprec source alone: {n}": m for n, m in metrics["sources"].items()})

    raw, _, _ = load_canonical(data, params.get("data", {}))
    cleaned = clean(raw, params.get("ingest", {})).frame
    if args.as_of:
        cleaned = window(cleaned, None, pd.Timestamp(args.as_of))
    w = make_windows(cleaned[s.TS], {**params["split"], "as_of": args.as_of, "test_days": args.test_days})
    history, test = window(cleaned, None, w.test_start), window(cleaned, w.test_start, w.as_of)
    customers = warm_customers(history, test)
    truth = test[test[s.CUSTOMER].isin(customers)]
    n_items = cleaned[s.ITEM].nunique()
    started = time.perf_counter()
    lists = peers(history, customers, w.valid_start, w.test_start)
    for name, recs in lists.items():
        m = {**ranking_metrics(recs, truth, 10), **ranking_metrics(recs, truth, 20)}
        rows[name] = {**m, "coverage@10": catalogue_coverage(recs, 10, n_items)}
    peers_s = time.perf_counter() - started

    best_other = max((r for n, r in rows.items() if not n.startswith("**")), key=lambda r: r["ndcg@10"])
    best_peer = max(lists, key=lambda n: rows[n]["ndcg@10"])
    ours = pd.read_parquet(out / "recommendations.parquet").rename(columns={"user_id": s.CUSTOMER, "item_id": s.ITEM})
    where = decomposition({"shoprec": ours, best_peer: lists[best_peer]}, truth, history)
    ndcg = [per_customer(as_str(recs), as_str(truth), 10)["ndcg@10"] for recs in (ours, lists[best_peer])]
    low, high = paired_bootstrap(*ndcg)
    summary = {
        "variant": args.variant,
        "as_of": w.as_of.date().isoformat(),
        "overrides": args.set,
        "customers": len(customers),
        "shoprec_ndcg@10": metrics["ranker"]["ndcg@10"],
        "best_competitor_ndcg@10": best_other["ndcg@10"],
        "ratio": metrics["ranker"]["ndcg@10"] / best_other["ndcg@10"],
        "best_peer": best_peer,
        "ratio_to_best_peer": ndcg[0].mean() / ndcg[1].mean(),  # the same customers as its interval
        "ratio_to_best_peer_95ci": [round(low, 4), round(high, 4)],
        "recall@20_at_least_every_competitor": all(
            metrics["ranker"]["recall@20"] >= r["recall@20"] for n, r in rows.items() if not n.startswith("**")
        ),
        "backtest_s": round(backtest_s, 1),
        "ranker_fit_s": metrics["model"]["seconds"],
        "peers_s": round(peers_s, 1),
    }
    text = table(rows) + "\n\n" + where
    print(text)
    print(json.dumps(summary, indent=2))
    (out / "quality.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    if args.write_docs:
        write_docs(args.variant if args.data.name == UCI else f"{args.data.stem}:{args.variant}", text, summary)


def write_docs(key: str, text: str, summary: dict) -> None:
    """Replace the block between this table's markers in docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    begin, end = f"<!-- quality:{key}:begin -->", f"<!-- quality:{key}:end -->"
    doc = path.read_text()
    low, high = summary["ratio_to_best_peer_95ci"]
    peer = summary["best_peer"].split(" (")[0]
    block = (
        f"{begin}\n{text}\n\n{summary['customers']} customers; shoprec / best competitor NDCG@10 = "
        f"{summary['ratio']:.3f}x; Recall@20 at least every competitor's: "
        f"{'yes' if summary['recall@20_at_least_every_competitor'] else 'no'}; shoprec / best peer ({peer}) "
        f"NDCG@10 = {summary['ratio_to_best_peer']:.3f}x (95% paired bootstrap over customers {low:.3f}-{high:.3f}x); "
        f"backtest {summary['backtest_s']} s (ranker fit {summary['ranker_fit_s']} s), "
        f"peers {summary['peers_s']} s.\n{end}"
    )
    if begin in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc += f"\n{block}\n"
    path.write_text(doc)


if __name__ == "__main__":
    main()
