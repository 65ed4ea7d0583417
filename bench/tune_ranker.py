"""Search the ranker's LightGBM parameters on a validation window, then check the best on an earlier one.

    .venv/bin/python bench/tune_ranker.py --data ../shared/data/online_retail.parquet \
        --tune-as-of 2011-11-10 --check-as-of 2011-10-11 --budget-seconds 1200

Each `--*-as-of` cuts the export there and runs the backtest's preparation once (candidates, Feast
features, labelled cutoffs: `pipelines.evaluation.backtest.prepare`); its "test" window is then a
validation window before the real test window (on UCI, 2011-11-10 is the test window's start), so
nothing here looks at the test window. Optuna (TPE, seeded) samples LightGBM parameters within the
time budget; each trial trains the ranker exactly as the pipeline does (early stopping on the
cutoff before, then the refit of `ranker.refit_factor`) and scores NDCG@10 on the tune window.
params.yaml's ranker is trial 0. The best trial and params.yaml are then scored on the check window,
where the search never looked: a gain that holds there is a gain, one that does not is the search
fitting the tune window's noise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.core import schema as s
from pipelines.core.config import load_params, override
from pipelines.data.split import window
from pipelines.evaluation.backtest import Prepared, prepare
from pipelines.evaluation.metrics import ranking_metrics
from pipelines.ranking.dataset import training_windows
from pipelines.ranking.lists import top_k
from pipelines.ranking.model import fit, predict

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("ndcg@10", "recall@20")


def space(trial: Any) -> dict[str, Any]:
    """The LightGBM parameters searched (the rest of `ranker` stays as params.yaml has it)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 1000, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        "lambdarank_truncation_level": trial.suggest_int("lambdarank_truncation_level", 10, 60),
    }


def score(prep: Prepared, ranker: dict[str, Any]) -> dict[str, float]:
    """Train as the pipeline does and score the prepared window's test lists."""
    booster, _ = fit(training_windows(prep.inputs), prep.inputs["valid"], ranker)
    cands, x, _ = prep.inputs["test"]
    recs = top_k(cands, predict(booster, x), 20)
    test = window(prep.cleaned, prep.windows.test_start, prep.windows.as_of)
    truth = test[test[s.CUSTOMER].isin(cands[s.CUSTOMER].unique())]
    return {m: ranking_metrics(recs, truth, int(m.split("@")[1]))[m] for m in METRICS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tune-as-of", required=True, help="The search scores the test_days before this date")
    ap.add_argument("--check-as-of", required=True, help="The best trial is checked on the test_days before this")
    ap.add_argument("--test-days", type=int, default=30)
    ap.add_argument("--budget-seconds", type=float, default=1200.0, help="Stop starting trials after this long")
    ap.add_argument("--max-trials", type=int, default=200)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Override a param first")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tune_ranker.json")
    args = ap.parse_args()

    import optuna

    params = override(load_params(ROOT / "params.yaml"), args.set)
    scratch = Path(tempfile.mkdtemp(prefix="shoprec-tune-"))
    started = time.perf_counter()
    tune = prepare(args.data, args.test_days, scratch / "tune", params, args.tune_as_of)
    check = prepare(args.data, args.test_days, scratch / "check", params, args.check_as_of)
    print(f"prepared both windows in {time.perf_counter() - started:.0f} s", flush=True)

    base = dict(params["ranker"])
    trials: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        tried = space(trial)
        result = score(tune, {**base, **tried})
        trials.append({"number": trial.number, "params": tried, **result})
        print(f"trial {trial.number}: ndcg@10 {result['ndcg@10']:.4f} {tried}", flush=True)
        return result["ndcg@10"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(base["seed"])))
    defaults = {k: base[k] for k in ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction")}
    study.enqueue_trial(
        {
            **defaults,
            "bagging_fraction": 1.0,
            "lambda_l2": 1e-3,
            "lambdarank_truncation_level": base["lambdarank_truncation_level"],
        }
    )
    search_started = time.perf_counter()
    study.optimize(objective, n_trials=args.max_trials, timeout=args.budget_seconds)
    best = next(t for t in trials if t["number"] == study.best_trial.number)
    report = {
        "data": str(args.data),
        "tune_as_of": args.tune_as_of,
        "check_as_of": args.check_as_of,
        "trials": len(trials),
        "search_s": round(time.perf_counter() - search_started, 1),
        "best_params": best["params"],
        "params_yaml": {"tune": score(tune, base), "check": score(check, base)},
        "best": {"tune": {m: best[m] for m in METRICS}, "check": score(check, {**base, **best["params"]})},
        "all_trials": trials,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "all_trials"}, indent=2, default=str))


if __name__ == "__main__":
    main()
