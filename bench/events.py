"""Benchmark: a burst of events into POST /events with the server killed and restarted in the middle.

    make run                 # a project to serve (params.yaml, published/)
    .venv/bin/python bench/events.py --events 10000 --batch 10 --clients 8

Starts `shoprec serve` on a free loopback port over a scratch event log and a copy of the Feast
store (the purchases update its online features), and sends `--events`
purchases (each with its own order id) in batches of `--batch` from `--clients` threads, each
batch with an Idempotency-Key. Half-way through, the server is killed (SIGKILL: no clean
shutdown) and started again; a client retries a batch with the same key until it is acknowledged.
Afterwards the log must hold every acknowledged event exactly once. Prints the counts, the rate
and the time the restart cost as JSON and a Markdown row; exits 1 if an event is lost or doubled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import free_port, wait_ready  # noqa: E402


def post(base: str, batch: list[dict], key: str) -> dict:
    body = json.dumps({"events": batch}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    request = urllib.request.Request(base + "/events", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="shoprec-events-"))
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["events"]["log"] = str(scratch / "events.db")
    # the purchases update a copy of the project's Feast store, not the project's own
    shutil.copytree(params["features"]["repo"], scratch / "feature_repo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree("data/feast", scratch / "data/feast")
    params["features"]["repo"] = str(scratch / "feature_repo")
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        str(Path(sys.executable).parent / "shoprec"),
        "serve",
        "--port",
        str(port),
        "--params",
        str(scratch / "params.yaml"),
    ]
    log = (scratch / "serve.log").open("w")

    def start() -> subprocess.Popen:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_ready(base, server)
        return server

    now = datetime.now(UTC).isoformat()
    events = [
        {
            "type": "purchase",
            "customer_id": f"burst-{i % 500}",
            "item_id": "85123A",
            "timestamp": now,
            "order_id": f"b{i}",
        }
        for i in range(args.events)
    ]
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    acknowledged: list[int] = [0] * len(batches)
    retries = [0]
    lock = threading.Lock()
    server = start()
    half = len(batches) // 2

    def send(n: int) -> None:
        while True:
            try:
                answer = post(base, batches[n], f"burst-{n}")
                acknowledged[n] = answer["accepted"]
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                with lock:
                    retries[0] += 1
                time.sleep(0.05)

    started = time.monotonic()
    with ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(send, n) for n in range(half)]
        for f in futures:
            f.result()
        killed = time.monotonic()
        server.send_signal(signal.SIGKILL)
        server.wait()
        rest = [pool.submit(send, n) for n in range(half, len(batches))]
        server = start()  # the clients retry while it starts
        back = time.monotonic()
        for f in rest:
            f.result()
    elapsed = time.monotonic() - started
    server.terminate()
    server.wait(timeout=30)

    with sqlite3.connect(scratch / "events.db") as db:
        logged = db.execute("SELECT count(*), count(DISTINCT order_id) FROM events").fetchone()
    result = {
        "events": args.events,
        "batch": args.batch,
        "clients": args.clients,
        "acknowledged": sum(acknowledged),
        "logged": logged[0],
        "distinct_logged": logged[1],
        "retries": retries[0],
        "seconds": round(elapsed, 1),
        "events_per_second": round(args.events / elapsed),
        "restart_seconds": round(back - killed, 1),
    }
    print(json.dumps(result, indent=2))
    print(
        f"| {args.events:,} | {args.batch} | {args.clients} | {result['acknowledged']:,} | {result['logged']:,} | "
        f"{result['distinct_logged']:,} | {result['retries']} | {result['events_per_second']:,} | "
        f"{result['restart_seconds']} |"
    )
    if not (result["acknowledged"] == result["logged"] == result["distinct_logged"] == args.events):
        raise SystemExit("bench/events: an acknowledged event is missing or logged twice")


if __name__ == "__main__":
    main()
