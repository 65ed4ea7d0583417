"""Benchmark: a 7-day backfill of shoprec_daily through Airflow's scheduler, then a re-run of one day.

    .venv/bin/python bench/backfill.py --rows 15000 --from-date 2011-11-21 --days 7

In a scratch project (the project's params and feature repo, seeded synthetic data of `--rows` raw
rows) and a scratch AIRFLOW_HOME over the production configuration (a fresh PostgreSQL metadata
database on `--server`, the LocalExecutor): `airflow dags test shoprec_weekly_retrain` publishes a
model at the day before; `airflow standalone` starts (scheduler, API server, DAG processor);
the daily DAG is unpaused (its scheduled run for today fails at once: the data ends in 2011) and
`airflow backfill create` asks for the `--days` daily runs; the script waits for them and reports
each run's state. Then it re-runs one day with `airflow dags test` and checks that the
run's data, models and metrics are byte-identical and that the publish was a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from pipelines.orchestration.airflow_env import airflow_env, cli_json

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def digest(run: Path) -> dict[str, str]:
    files = [p for d in ("data", "models", "metrics") for p in sorted((run / d).rglob("*")) if p.is_file()]
    files = [p for p in files if p.suffix != ".db"]  # the run's Feast registry and online store: stores, not outputs
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=15000)
    ap.add_argument("--from-date", default="2011-11-21")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--port", type=int, default=8093)
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--database", default="shoprec_airflow_bench")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shoprec-backfill-"))
    shutil.copy(ROOT / "params.yaml", work)
    shutil.copytree(ROOT / "feature_repo", work / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    import psycopg

    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as c:  # the production metadata database
        c.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {args.database}")
    db = f"{args.server.replace('postgresql://', 'postgresql+psycopg://')}/{args.database}"
    env = {**os.environ, **airflow_env(work / ".airflow", args.port, production=True, db=db)}
    env["SHOPREC_PROJECT"] = str(work)
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"

    def run(*cmd: str) -> str:
        res = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        return res.stdout

    run(str(BIN / "shoprec"), "generate", "--out", "data/raw/synthetic.parquet", "--rows", str(args.rows))
    run("airflow", "db", "migrate")
    first = date.fromisoformat(args.from_date)
    started = time.perf_counter()
    run("airflow", "dags", "test", "shoprec_weekly_retrain", str(first - timedelta(days=1)))
    weekly_s = time.perf_counter() - started
    log = (work / "standalone.log").open("w")
    server = subprocess.Popen(["airflow", "standalone"], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/v2/monitor/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("airflow standalone did not come up") from None
                time.sleep(2)
        last = first + timedelta(days=args.days - 1)
        run("airflow", "dags", "unpause", "shoprec_daily")  # a paused DAG's backfill runs stay queued
        started = time.perf_counter()
        run("airflow", "backfill", "create", "--dag-id", "shoprec_daily", "--from-date", str(first),
            "--to-date", str(last), "--max-active-runs", "1")  # fmt: skip
        while True:
            listed = cli_json(run("airflow", "dags", "list-runs", "shoprec_daily", "-o", "json"))
            runs = [r for r in listed if r["run_id"].startswith("backfill__")]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= args.days or time.perf_counter() - started > 3600:
                break
            time.sleep(10)
        backfill_s = time.perf_counter() - started
    finally:  # the scheduler, API server, DAG processor and triggerer with it: a leftover would keep the port
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    one = work / "runs" / "shoprec_daily" / str(first + timedelta(days=args.days // 2))
    before = digest(one)
    started = time.perf_counter()
    run("airflow", "dags", "test", "shoprec_daily", one.name)
    rerun_s = time.perf_counter() - started
    result = {
        "rows": args.rows,
        "weekly_seconds": round(weekly_s, 1),
        "backfill_seconds": round(backfill_s, 1),
        "runs": sorted((r["logical_date"][:10], r["state"]) for r in runs),
        "published_versions": [v["version"] for v in json.loads((work / "published/index.json").read_text())],
        "rerun_day": one.name,
        "rerun_seconds": round(rerun_s, 1),
        "rerun_identical": digest(one) == before,
        "rerun_publish": json.loads((one / "reports/publish.json").read_text()),
        "workdir": str(work),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
