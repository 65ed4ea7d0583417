"""Scale benchmark: every DVC stage on synthetic data at growing sizes, on both compute backends.

    .venv/bin/python bench/scale.py --rows 1000000 3000000 10000000 --backends local dask --write-docs

For each size, a work directory gets the project's params (synthetic.rows = the size, the production
stores: Redis online store, Feast registry on PostgreSQL, recommendations published to Redis) and
runs each stage's command from dvc.yaml in order, as `dvc repro` would. The stages before
`candidates` do not depend on the backend and run once per size; the rest run once per backend.
Per stage: wall time and the peak RSS of the stage's whole process tree (dask workers included),
sampled every 0.2 s. Results go to a JSON file (appended, so sizes can be run separately), a plot
and, with --write-docs, the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED = ("generate", "ingest", "split", "features", "materialize")  # the same on both backends
GIB = 1024**3


def stage_commands() -> dict[str, str]:
    """Each dvc.yaml stage's command, in pipeline order, with `${data.raw}` filled in."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {
        name: " ".join(spec["cmd"].split()).replace("${data.raw}", "data/raw/synthetic.parquet")
        for name, spec in stages.items()
    }


def peak_rss(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    """Sample the summed RSS of `proc` and its descendants until `stop`; keep the maximum in out[0]."""
    while not stop.is_set():
        try:
            tree = [proc, *proc.children(recursive=True)]
            total = 0
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
            out[0] = max(out[0], total)
        except psutil.NoSuchProcess:
            return
        stop.wait(0.2)


def run_stage(name: str, cmd: str, cwd: Path, env: dict[str, str], log: Path) -> dict[str, float]:
    """Run one stage's command; its wall time and peak RSS. A failing stage stops the benchmark."""
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n### {name}: {cmd}\n")
        out.flush()
        child = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=peak_rss, args=(psutil.Process(child.pid), stop, peak), daemon=True)
        sampler.start()
        code = child.wait()
        stop.set()
        sampler.join()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{name} failed (exit {code}); see {log}")
    print(f"  {name:<12} {seconds:8.1f} s  {peak[0] / GIB:6.2f} GiB", flush=True)
    return {"seconds": round(seconds, 1), "peak_rss_gib": round(peak[0] / GIB, 3)}


def project(work: Path, rows: int, redis_db: int) -> dict:
    """A work directory with the feature repo and params for `rows`; returns the params."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "feature_repo", work / "feature_repo", dirs_exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"]["rows"] = rows
    params["features"]["store"] = "production"
    params["publish"].update(store="redis", redis_url=f"redis://127.0.0.1:6379/{redis_db}")
    params["publish"]["redis_namespace"] = f"shoprec:scale:{rows}"
    params["gate"]["max_regression"] = 1.0  # the second backend's model is judged, not compared with the first's
    return params


def write_params(work: Path, params: dict, backend: str) -> None:
    params["compute"]["backend"] = backend
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dataset(work: Path) -> dict[str, int]:
    import pandas as pd

    clean = pd.read_parquet(work / "data/clean/interactions.parquet", columns=["customer_id", "item_id"])
    return {"clean_rows": len(clean), "customers": clean["customer_id"].nunique(), "items": clean["item_id"].nunique()}


def bench_size(rows: int, backends: list[str], root: Path, redis_db: int) -> dict:
    import redis

    work = root / f"rows-{rows}"
    if work.exists():
        shutil.rmtree(work)
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}").flushdb()
    params = project(work, rows, redis_db)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DO_NOT_TRACK": "1",
        "SHOPREC_FEAST_PROJECT": f"scale_{rows}",
        "SHOPREC_FEAST_REDIS": f"127.0.0.1:6379,db={redis_db}",
    }
    commands, log = stage_commands(), work / "bench.log"
    result: dict = {"rows": rows, "stages": {}, "backends": {}}
    print(f"rows {rows:,}", flush=True)
    write_params(work, params, backends[0])
    for name in SHARED:
        result["stages"][name] = run_stage(name, commands[name], work, env, log)
    result.update(dataset(work))
    for backend in backends:
        print(f" backend {backend}", flush=True)
        write_params(work, params, backend)
        stages = {name: run_stage(name, cmd, work, env, log) for name, cmd in commands.items() if name not in SHARED}
        evaluation = json.loads((work / "metrics/evaluate.json").read_text())
        result["backends"][backend] = {"stages": stages, "ranker": evaluation["ranker"]}
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}").flushdb()  # free the server's memory
    return result


def totals(r: dict, backend: str) -> tuple[float, float]:
    """Whole-pipeline wall time and the largest stage peak RSS on `backend`."""
    stages = {**r["stages"], **r["backends"][backend]["stages"]}
    return sum(v["seconds"] for v in stages.values()), max(v["peak_rss_gib"] for v in stages.values())


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    backends = [b for b in ("local", "dask") if any(b in r["backends"] for r in results)]
    for backend in backends:
        rs = sorted((r for r in results if backend in r["backends"]), key=lambda r: r["rows"])
        x = [r["rows"] / 1e6 for r in rs]
        ax_t.plot(x, [totals(r, backend)[0] / 60 for r in rs], marker="o", label=f"whole pipeline ({backend})")
        for stage in ("candidates", "train"):
            ax_t.plot(
                x,
                [r["backends"][backend]["stages"][stage]["seconds"] / 60 for r in rs],
                ls="--",
                marker=".",
                label=f"{stage} ({backend})",
            )
        ax_m.plot(x, [totals(r, backend)[1] for r in rs], marker="o", label=f"largest stage peak ({backend})")
    rs = sorted(results, key=lambda r: r["rows"])
    ax_t.plot(
        [r["rows"] / 1e6 for r in rs],
        [r["stages"]["features"]["seconds"] / 60 for r in rs],
        ls=":",
        marker=".",
        label="features (both)",
    )
    first = rs[0]
    if backends and backends[0] in first["backends"]:
        base = totals(first, backends[0])[0] / 60
        xs = [r["rows"] / 1e6 for r in rs]
        ax_t.plot(xs, [base * x / xs[0] for x in xs], color="grey", lw=0.8, label="linear from the smallest")
    ax_m.axhline(8, color="red", lw=0.8, label="target: 8 GiB")
    ax_t.set(xlabel="raw interactions (millions)", ylabel="wall time (minutes)", title="Wall time")
    ax_m.set(xlabel="raw interactions (millions)", ylabel="GiB", title="Peak RSS (stage process tree)")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def table(results: list[dict]) -> str:
    """Markdown: per size and backend, every stage's wall time and peak RSS, and the totals."""
    rs = sorted(results, key=lambda r: r["rows"])
    backends = [b for b in ("local", "dask") if any(b in r["backends"] for r in rs)]
    cols = [(r, b) for r in rs for b in backends if b in r["backends"]]
    head = "| stage | " + " | ".join(f"{r['rows'] / 1e6:g}M {b}" for r, b in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    lines.append(
        "| clean rows / customers / items | "
        + " | ".join(f"{r['clean_rows']:,} / {r['customers']:,} / {r['items']:,}" for r, _ in cols)
        + " |"
    )
    names = list(stage_commands())
    for name in names:
        cells = []
        for r, b in cols:
            v = r["stages"].get(name) or r["backends"][b]["stages"][name]
            shared = " (shared)" if name in r["stages"] else ""
            cells.append(f"{v['seconds']:,.0f} s, {v['peak_rss_gib']:.2f} GiB{shared}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **whole pipeline** | "
        + " | ".join("**{:,.0f} s**, peak **{:.2f} GiB**".format(*totals(r, b)) for r, b in cols)
        + " |"
    )
    lines.append(
        "| ranker ndcg@10 / recall@20 (test window) | "
        + " | ".join(
            "{:.4f} / {:.4f}".format(r["backends"][b]["ranker"]["ndcg@10"], r["backends"][b]["ranker"]["recall@20"])
            for r, b in cols
        )
        + " |"
    )
    for b in backends:
        sized = [r for r in rs if b in r["backends"]]
        if len(sized) >= 2:
            t0, t1 = totals(sized[0], b)[0], totals(sized[-1], b)[0]
            lines.append(
                f"\n{b}: time at {sized[-1]['rows'] / 1e6:g}M / time at {sized[0]['rows'] / 1e6:g}M = "
                f"**{t1 / t0:.1f}** for {sized[-1]['rows'] / sized[0]['rows']:.0f}x the rows."
            )
    return "\n".join(lines)


def write_docs(results: list[dict]) -> None:
    doc = ROOT / "docs/benchmarks.md"
    text = doc.read_text()
    begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
    block = f"{begin}\n{table(results)}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += f"\n{block}\n"
    doc.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--backends", nargs="+", default=["local", "dask"], choices=["local", "dask"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/shoprec-scale"))
    ap.add_argument("--results", type=Path, default=ROOT / "bench/results/scale.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs/img/scale.png")
    ap.add_argument("--redis-db", type=int, default=3, help="a Redis database the benchmark may flush")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    results = json.loads(args.results.read_text()) if args.results.exists() else []
    for rows in args.rows:
        r = bench_size(rows, args.backends, args.work, args.redis_db)
        results = [old for old in results if old["rows"] != rows] + [r]
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
        plot(results, args.plot)
        if args.write_docs:
            write_docs(results)
    print(table(results))


if __name__ == "__main__":
    main()
