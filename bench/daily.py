"""The daily DAG's run at scale: its stages (no train), laid out and run as its Airflow tasks run them,
in a work directory bench/scale.py left (its raw data, params and published model).

    .venv/bin/python bench/daily.py --work /tmp/shoprec-scale/rows-10000000

`prepare` (pipelines/orchestration/runs.py) lays out runs/shoprec_daily/<as_of>/ in the work directory
from its params, as the DAG's first task does, then every stage of shoprec_daily runs with `run_stage`,
as its task would: it loads the size's production Feast store (Redis, PostgreSQL registry) that the
scale run loaded, cuts its candidates with the published model's selection (`candidates.reuse_model`),
keeps the published lists of customers with nothing new (`publish.reuse_lists`) and publishes to the
work directory's serving store. The as-of date is the scale run's (then it is also the published
version's: `realised` finds no version before it, and every customer is ranked), or `--as-of`: after
`bench/scale.py --as-of 2011-12-09`, `--as-of 2011-12-10` is the next day's run, on a day of new purchases.
Per stage: wall time and the peak RSS of the stage's process tree (this script's own process included,
about 0.1 GiB), and the Redis server's used memory after it (the stores the run reads and publishes to).
Results are appended to bench/results/daily.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import GIB, feast_env, head, redis_used_gib, sampled  # noqa: E402

from pipelines.core.files import SELECTION_FILE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DAG = "shoprec_daily"


def run_daily(work: Path, as_of: str | None = None, redis_db: int = 3) -> dict:
    """Prepare the daily run at `as_of` (default: the work directory's as-of date) and run its stages in order."""
    import redis

    from pipelines.orchestration.runs import prepare, run_stage
    from pipelines.orchestration.tasks import dag_stages

    rows = int(work.name.removeprefix("rows-"))
    os.environ.update(DO_NOT_TRACK="1", **feast_env(rows, redis_db))  # the scale run's Feast store, shared
    as_of = as_of or json.loads((work / "data/split/windows.json").read_text())["as_of"]
    run = prepare(work, DAG, datetime.fromisoformat(as_of))
    backend = run.params["compute"]["backend"]
    result: dict = {"rows": rows, "commit": head(), "as_of": as_of[:10], "backend": backend, "stages": {}}
    result["run"] = str(run.root)
    print(f"{DAG} at {rows:,} rows, as of {as_of[:10]}, {backend} backend, in {run.root}", flush=True)
    server = redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}")
    for name in dag_stages(DAG):
        started = time.perf_counter()
        with sampled(psutil.Process()) as peak:
            run_stage(run, name)
        seconds = time.perf_counter() - started
        used = redis_used_gib(server)
        result["stages"][name] = {
            "seconds": round(seconds, 1),
            "peak_rss_gib": round(peak[0] / GIB, 3),
            "redis_used_gib": used,
        }
        print(f"  {name:<12} {seconds:8.1f} s  {peak[0] / GIB:6.2f} GiB  Redis {used:6.2f} GiB", flush=True)
    result["seconds"] = round(sum(v["seconds"] for v in result["stages"].values()), 1)
    result["peak_rss_gib"] = max(v["peak_rss_gib"] for v in result["stages"].values())
    print(f"  total        {result['seconds']:8.1f} s  {result['peak_rss_gib']:6.2f} GiB", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="a size's work directory from bench/scale.py")
    ap.add_argument("--results", type=Path, default=ROOT / "bench/results/daily.json")
    ap.add_argument("--redis-db", type=int, default=3, help="the Redis database bench/scale.py ran with")
    ap.add_argument(
        "--as-of",
        help="the run's date (default: the scale run's as-of); a day after it when bench/scale.py ran with "
        "--as-of a day before the data's end, so the published lists are a day old and the day brings purchases",
    )
    args = ap.parse_args()
    model = args.work / "published/current/model"
    if not (model / "ranker.lgb").is_file():
        sys.exit(f"{args.work}: no published model: run bench/scale.py for this size first")
    if not (model / SELECTION_FILE).is_file():
        sys.exit(
            f"{model}: no {SELECTION_FILE} (trained before train kept it): run bench/scale.py again from this checkout"
        )
    result = run_daily(args.work.resolve(), args.as_of, args.redis_db)
    earlier = json.loads(args.results.read_text()) if args.results.is_file() else []
    args.results.write_text(json.dumps([*earlier, result], indent=1) + "\n")


if __name__ == "__main__":
    main()
