"""Benchmark: the API's endpoints under load on loopback (goal on 2 cores for precomputed paths: p99 <= 10 ms).

    apt-get install wrk      # the load generator (Debian's package)
    make run                 # something published in published/
    .venv/bin/python bench/serve.py --endpoint recommendations --workers 1 --connections 32 --seconds 30

Starts `shoprec serve` on a free loopback port and drives one endpoint with wrk at the given
concurrency, after a 3 s warm-up:
  recommendations  GET /recommendations/{id}?k=10: 90% published customers at random, 10% unknown (cold start)
  reranked         the same for published customers only, each with a purchase logged since as_of (of
                   their 50th candidate): every request re-ranks the customer's kept candidates
  similar          GET /items/{id}/similar?k=10: items with a published list, at random
  basket           POST /baskets/recommendations: carts of 1-5 such items, k=10
The server reads a scratch event log (empty but for the `reranked` purchases), never the project's.
Prints requests/s, p50 / p90 / p99 latency and the error count as a Markdown row.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import yaml

LUA = {
    "recommendations": """
local ids = {%s}
request = function()
  return wrk.format("GET", "/recommendations/" .. ids[math.random(#ids)] .. "?k=10")
end
""",
    "similar": """
local ids = {%s}
request = function()
  return wrk.format("GET", "/items/" .. ids[math.random(#ids)] .. "/similar?k=10")
end
""",
    "basket": """
local ids = {%s}
request = function()
  local items = {}
  for i = 1, math.random(5) do items[i] = '"' .. ids[math.random(#ids)] .. '"' end
  local body = '{"items": [' .. table.concat(items, ",") .. '], "k": 10}'
  return wrk.format("POST", "/baskets/recommendations", {["Content-Type"] = "application/json"}, body)
end
""",
}
LUA["reranked"] = LUA["recommendations"]


def request_ids(published: Path, endpoint: str) -> list[str]:
    """The ids the endpoint's requests draw from (customers, or items with a similar list), shuffled."""
    rng = random.Random(0)
    if endpoint in ("recommendations", "reranked"):
        customers = pd.read_parquet(published / "current" / "recommendations.parquet")["customer_id"].unique()
        ids = [str(c) for c in customers]
        ids += [f"unknown-{i}" for i in range(len(customers) // 9)] if endpoint == "recommendations" else []
    else:
        ids = [str(i) for i in pd.read_parquet(published / "current" / "similar.parquet")["item_id"].unique()]
        ids = [quote(i, safe="") for i in ids] if endpoint == "similar" else ids  # a path segment
    rng.shuffle(ids)
    return ids


def log_purchases(published: Path, log_path: Path) -> int:
    """A purchase, a day after as_of, of each published customer's 50th candidate (or last): what makes
    every request of `reranked` re-rank."""
    from pipelines.data.events import Event, EventLog

    current = published / "current"
    as_of = pd.Timestamp(json.loads((current / "manifest.json").read_text())["data_window"]["as_of"])
    cands = pd.read_parquet(current / "candidates.parquet", columns=["customer_id", "item_id"])
    picked = cands.groupby("customer_id", sort=False)["item_id"].agg(lambda items: items.iloc[min(49, len(items) - 1)])
    when = (as_of + pd.Timedelta(days=1)).isoformat()
    events = [
        Event(type="purchase", customer_id=str(c), item_id=str(i), timestamp=when, order_id=f"bench-{n}")
        for n, (c, i) in enumerate(picked.items())
    ]
    log = EventLog(log_path)
    for start in range(0, len(events), 1000):
        log.append(events[start : start + 1000])
    log.close()
    return len(events)


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=2).read()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench/serve: the server did not start") from None
            time.sleep(0.2)


def millis(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse(out: str) -> dict[str, float]:
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": millis(pct["50"]),
        "p90_ms": millis(pct["90"]),
        "p99_ms": millis(pct["99"]),
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--published", type=Path, default=Path("published"))
    ap.add_argument("--endpoint", choices=sorted(LUA), default="recommendations")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=30)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve: wrk not found (apt-get install wrk)")
    ids = request_ids(args.published, args.endpoint)
    scratch = Path(tempfile.mkdtemp(prefix="shoprec-serve-"))
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["events"]["log"] = str(scratch / "events.db")
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    logged = log_purchases(args.published, scratch / "events.db") if args.endpoint == "reranked" else 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    shoprec = str(Path(sys.executable).parent / "shoprec")
    server = subprocess.Popen(
        [
            shoprec,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--params",
            str(scratch / "params.yaml"),
        ]
    )
    try:
        wait_ready(base, server)
        if args.endpoint == "reranked":  # the path measured is the re-ranking one, or the run is void
            stale = [
                c for c in ids[:20] if not json.load(urllib.request.urlopen(f"{base}/recommendations/{c}"))["fresh"]
            ]
            if stale:
                raise SystemExit(f"bench/serve: re-ranking failed for {len(stale)} of 20 customers (see the log)")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(LUA[args.endpoint] % ",".join(lua_string(i) for i in ids))
        cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s"]
        subprocess.run([*cmd[:-2], "-d3s", "-s", script.name, base], capture_output=True, check=True)  # warm-up
        out = subprocess.run([*cmd, script.name, base], capture_output=True, text=True, check=True).stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
    result = {
        "endpoint": args.endpoint,
        "workers": args.workers,
        "connections": args.connections,
        "seconds": args.seconds,
        "purchases_logged": logged,
        **parse(out),
    }
    print(json.dumps(result, indent=2))
    print(
        f"| {args.endpoint} | {args.workers} | {args.connections} | {result['rps']:,.0f} | {result['p50_ms']:.1f} | "
        f"{result['p90_ms']:.1f} | {result['p99_ms']:.1f} | {result['errors']} |"
    )


if __name__ == "__main__":
    main()
