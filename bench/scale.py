"""Scale benchmark: every DVC stage on synthetic data at growing sizes, on both compute backends.

    .venv/bin/python bench/scale.py --rows 1000000 3000000 10000000 --backends local dask --write-docs

For each size, a work directory gets the project's params (synthetic.rows = the size, the production
stores: Redis online store, Feast registry on PostgreSQL, recommendations published to Redis) and
runs each stage's command from dvc.yaml in order, as `dvc repro` would. The stages before
`candidates` do not depend on the backend and run once per size; the rest run once per backend.
Per stage: wall time and the peak RSS of the stage's whole process tree (dask workers included),
sampled every 0.2 s, and the Redis server's used memory after the stage (the Feast online store and
the published versions, which no stage's RSS counts). Results go to a JSON file (appended, so sizes
can be run separately), a plot and, with --write-docs, the table in docs/benchmarks.md.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import yaml

if TYPE_CHECKING:
    import redis

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED = ("generate", "ingest", "split", "features", "materialize")  # the same on both backends
GIB = 1024**3
BACKENDS = ("local", "dask")  # the order of the table's columns


def stage_commands() -> dict[str, str]:
    """Each dvc.yaml stage's command, in pipeline order, with `${data.raw}` filled in."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {
        name: " ".join(spec["cmd"].split()).replace("${data.raw}", "data/raw/synthetic.parquet")
        for name, spec in stages.items()
    }


def stage_outputs(names: list[str]) -> list[str]:
    """What the named dvc.yaml stages write (outs, metrics, plots), as paths relative to the project."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = []
    for name in names:
        for kind in ("outs", "metrics", "plots"):
            for entry in stages[name].get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


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


@contextlib.contextmanager
def sampled(proc: psutil.Process) -> Iterator[list[int]]:
    """The peak summed RSS of `proc` and its descendants while the block runs, in the yielded [bytes]."""
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(proc, stop, peak), daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def redis_used_gib(server: redis.Redis) -> float:
    """The memory the Redis server uses (all its databases), in GiB."""
    return round(server.info("memory")["used_memory"] / GIB, 3)


def run_stage(
    name: str, cmd: str, cwd: Path, env: dict[str, str], log: Path, server: redis.Redis | None = None
) -> dict[str, float | str]:
    """Run one stage's command; its wall time, peak RSS and commit, and with `server` the memory the Redis
    server uses after it (the Feast online store and the published versions; not in the stage's RSS).
    A failing stage stops the benchmark."""
    commit, started = head(), time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n### {name}: {cmd}\n")
        out.flush()
        child = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with sampled(psutil.Process(child.pid)) as peak:
            code = child.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{name} failed (exit {code}); see {log}")
    out = {"seconds": round(seconds, 1), "peak_rss_gib": round(peak[0] / GIB, 3), "commit": commit}
    line = f"  {name:<12} {seconds:8.1f} s  {peak[0] / GIB:6.2f} GiB"
    if server is not None:
        out["redis_used_gib"] = redis_used_gib(server)
        line += f"  Redis {out['redis_used_gib']:6.2f} GiB"
    print(line, flush=True)
    return out


def head() -> str:
    """The short commit of the checkout whose code the stages run, "-dirty" if its code or params differ."""
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    code = ["pipelines", "params.yaml", "dvc.yaml", "feature_repo"]
    changed = subprocess.run(["git", "status", "--porcelain", "--", *code], cwd=ROOT, capture_output=True, text=True)
    return git.stdout.strip() + ("-dirty" if changed.stdout.strip() else "")


def resumable(work: Path, run: dict, backend: str, redo: str | None = None) -> dict:
    """The stages of an unfinished `backend` run whose outputs are still in `work`: those --resume keeps.
    With `redo`, that stage and the later ones are not kept, even from a complete run (to measure again)."""
    if redo:
        order = list(stage_commands())
        kept = {name: v for name, v in run.get("stages", {}).items() if order.index(name) < order.index(redo)}
        run = {**run, "complete": False, "stages": kept}
    if run.get("complete"):
        raise SystemExit(f"--resume: the {backend} run in {work} is complete; nothing to resume")
    last = yaml.safe_load((work / "params.yaml").read_text())["compute"]["backend"]
    if run.get("stages") and last != backend:
        raise SystemExit(f"--resume: {work} last ran the {last} backend; its outputs are not the {backend} run's")
    missing = [path for path in stage_outputs(list(run.get("stages", {}))) if not (work / path).exists()]
    if missing:
        raise SystemExit(f"--resume: {len(missing)} output(s) of the measured stages are gone from {work}: {missing}")
    return run.get("stages", {})


def project(work: Path, rows: int, redis_db: int, as_of: str | None = None) -> dict:
    """A work directory with the feature repo and params for `rows` (and split.as_of); returns the params."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "feature_repo", work / "feature_repo", dirs_exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"]["rows"] = rows
    params["split"]["as_of"] = as_of
    params["features"]["store"] = "production"
    params["publish"].update(store="redis", redis_url=f"redis://127.0.0.1:6379/{redis_db}")
    params["publish"]["redis_namespace"] = f"shoprec:scale:{rows}"
    params["gate"]["max_regression"] = 1.0  # the second backend's model is judged, not compared with the first's
    return params


def feast_env(rows: int, redis_db: int) -> dict[str, str]:
    """The production Feast store of a size's runs: its own project (registry) and the benchmark's Redis database."""
    return {"SHOPREC_FEAST_PROJECT": f"scale_{rows}", "SHOPREC_FEAST_REDIS": f"127.0.0.1:6379,db={redis_db}"}


def forget_project(project: str) -> None:
    """Delete the Feast project from the production registry (PostgreSQL), if it is there."""
    from feast.infra.registry.sql import SqlRegistry, SqlRegistryConfig

    from pipelines.features.store import PRODUCTION_DEFAULTS, forget_registry

    url = os.environ.get("SHOPREC_FEAST_REGISTRY_URL", PRODUCTION_DEFAULTS["SHOPREC_FEAST_REGISTRY_URL"])
    forget_registry(SqlRegistry(SqlRegistryConfig(path=url, cache_ttl_seconds=0), project, None), project)


def write_params(work: Path, params: dict, backend: str) -> None:
    params["compute"]["backend"] = backend
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dataset(work: Path) -> dict[str, int]:
    import pandas as pd

    clean = pd.read_parquet(work / "data/clean/interactions.parquet", columns=["customer_id", "item_id"])
    return {"clean_rows": len(clean), "customers": clean["customer_id"].nunique(), "items": clean["item_id"].nunique()}


def bench_size(
    rows: int,
    backends: list[str],
    root: Path,
    redis_db: int,
    save: Callable[[dict], None],
    earlier: dict | None = None,
    resume: bool = False,
    redo: str | None = None,
    as_of: str | None = None,
) -> None:
    """Run every stage at `rows` on each backend; `save(result)` after each stage, so a run stopped
    part-way keeps what it measured (a backend's "complete" says whether it ran to the end).

    With `earlier` (this size's result from an earlier run whose work directory is still there), the
    shared stages are not run again: their outputs and measurements are reused, and what the other
    stages wrote is deleted (a model or published lists left over would change what gate and publish do).
    With `resume` too, the first backend's stages measured by that run are kept as well (outputs and
    figures) and only the rest run: a run stopped between stages goes on where it stopped; `redo` runs
    that stage and the later ones again."""
    import redis

    work = root / f"rows-{rows}"
    reuse = earlier is not None and set(SHARED) <= set(earlier["stages"]) and work.exists()
    flag = "--resume" if resume else "--reuse-shared"
    if earlier is not None and not reuse:
        raise SystemExit(f"{flag}: no complete shared stages for {rows:,} rows in {work} and the results")
    measured = resumable(work, earlier["backends"].get(backends[0], {}), backends[0], redo) if reuse and resume else {}
    if reuse:  # the published deployment too; the online store (flushed below) is read by no later stage
        later = stage_outputs([name for name in stage_commands() if name not in SHARED and name not in measured])
        published = yaml.safe_load((ROOT / "params.yaml").read_text())["publish"]["dir"]
        for target in [work / path for path in [*later, published]]:
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    server = redis.Redis.from_url(f"redis://127.0.0.1:6379/{redis_db}")
    server.flushdb()
    if not reuse:  # the registry too: materialisation intervals left by earlier runs would skip the load
        forget_project(feast_env(rows, redis_db)["SHOPREC_FEAST_PROJECT"])
    params = project(work, rows, redis_db, as_of)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DO_NOT_TRACK": "1",
        **feast_env(rows, redis_db),
    }
    commands, log = stage_commands(), work / "bench.log"
    result: dict = {"rows": rows, "commit": head(), "stages": {}, "backends": {}}
    print(f"rows {rows:,}", flush=True)
    write_params(work, params, backends[0])
    if reuse:
        result.update(commit=earlier["commit"], stages=earlier["stages"])
    else:
        for name in SHARED:
            result["stages"][name] = run_stage(name, commands[name], work, env, log, server)
            save(result)
    result.update(dataset(work))
    for backend in backends:
        print(f" backend {backend}", flush=True)
        write_params(work, params, backend)
        kept = measured if backend == backends[0] else {}
        commit = earlier["backends"][backend].get("commit", earlier["commit"]) if kept else head()
        done = result["backends"][backend] = {"commit": commit, "stages": dict(kept), "complete": False}
        for name, cmd in commands.items():
            if name not in SHARED and name not in done["stages"]:
                done["stages"][name] = run_stage(name, cmd, work, env, log, server)
                save(result)
        done.update(complete=True, ranker=json.loads((work / "metrics/evaluate.json").read_text())["ranker"])
        save(result)
    if as_of is None:  # else bench/daily.py runs the next day on the stores as this run left them
        server.flushdb()  # free the server's memory


def complete(results: list[dict], backend: str) -> list[dict]:
    """The sizes whose run on `backend` went to the end, smallest first."""
    return sorted((r for r in results if r["backends"].get(backend, {}).get("complete")), key=lambda r: r["rows"])


def totals(r: dict, backend: str) -> tuple[float, float]:
    """Wall time of the stages run so far on `backend` and the largest stage peak RSS."""
    stages = [*r["stages"].values(), *r["backends"].get(backend, {}).get("stages", {}).values()]
    return sum(v["seconds"] for v in stages), max((v["peak_rss_gib"] for v in stages), default=0.0)


def plot(results: list[dict], path: Path) -> None:
    """Whole-pipeline and per-stage wall time, and the largest stage peak RSS, against the size (complete runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in BACKENDS:
        rs = complete(results, backend)
        if not rs:
            continue
        x = [r["rows"] / 1e6 for r in rs]
        ax_t.plot(x, [totals(r, backend)[0] / 60 for r in rs], marker="o", label=f"whole pipeline ({backend})")
        for stage in ("candidates", "train", "score"):
            minutes = [r["backends"][backend]["stages"][stage]["seconds"] / 60 for r in rs]
            ax_t.plot(x, minutes, ls="--", marker=".", label=f"{stage} ({backend})")
        ax_m.plot(x, [totals(r, backend)[1] for r in rs], marker="o", label=f"largest stage peak ({backend})")
        if backend == "local":
            built = [
                (v, r["stages"]["features"]["seconds"] / 60)
                for v, r in zip(x, rs, strict=True)
                if "features" in r["stages"]
            ]
            if built:  # a size whose shared stages are being re-measured has no features figure yet
                ax_t.plot(*zip(*built, strict=True), ls=":", marker=".", label="features")
            linear = [totals(rs[0], backend)[0] / 60 * v / x[0] for v in x]
            ax_t.plot(x, linear, color="grey", lw=0.8, label="linear from the smallest (local)")
    ax_m.axhline(6, color="red", lw=0.8, label="target: 6 GiB")
    ax_m.set_ylim(bottom=0)
    ax_t.set_ylim(0, ax_t.get_ylim()[1] * 1.6)  # room above the lines for the legend
    ax_t.set(xlabel="raw interactions (millions)", ylabel="wall time (minutes)", title="Wall time")
    ax_m.set(xlabel="raw interactions (millions)", ylabel="GiB", title="Peak RSS (stage process tree)")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # none until a size's run is complete
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)  # plotted after every stage: an open figure each time added up


def backend_commits(r: dict, backend: str) -> str:
    """The commit(s) the backend's stages ran at, in stage order (a resumed run can span several)."""
    run = r["backends"][backend]
    default = run.get("commit", r["commit"])
    return " + ".join(dict.fromkeys(v.get("commit", default) for v in run["stages"].values())) or default


def table(results: list[dict]) -> str:
    """Markdown: per size and backend, every stage's wall time and peak RSS, the totals, the time ratios."""
    rs = sorted(results, key=lambda r: r["rows"])
    cols = [(r, b) for r in rs for b in BACKENDS if b in r["backends"]]
    lines = [
        "| stage | " + " | ".join(f"{r['rows'] / 1e6:g}M {b}" for r, b in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
        "| commit (shared stages / backend's stages) | "
        + " | ".join(f"{r['commit']} / {backend_commits(r, b)}" for r, b in cols)
        + " |",
        "| clean rows / customers / items | "
        + " | ".join(f"{r.get('clean_rows', 0):,} / {r.get('customers', 0):,} / {r.get('items', 0):,}" for r, _ in cols)
        + " |",
    ]
    for name in stage_commands():
        cells = []
        for r, b in cols:
            v = r["stages"].get(name) or r["backends"][b]["stages"].get(name)
            shared = " (shared)" if name in r["stages"] else ""
            cells.append(f"{v['seconds']:,.0f} s, {v['peak_rss_gib']:.2f} GiB{shared}" if v else "not run")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for r, b in cols:
        seconds, peak = totals(r, b)
        done = r["backends"][b].get("complete")
        cells.append(f"**{seconds:,.0f} s**, peak **{peak:.2f} GiB**" if done else f"stopped after {seconds:,.0f} s")
    lines.append("| **whole pipeline** | " + " | ".join(cells) + " |")
    served = [r["backends"][b]["stages"].get("publish", {}).get("redis_used_gib") for r, b in cols]
    if any(v is not None for v in served):  # measured since the serving store's size became a limit
        lines.append(
            "| Redis used memory after publish (Feast online store + published versions) | "
            + " | ".join(f"{v:.2f} GiB" if v is not None else "-" for v in served)
            + " |"
        )
    quality = [r["backends"][b].get("ranker") for r, b in cols]
    lines.append(
        "| ranker ndcg@10 / recall@20 (test window) | "
        + " | ".join(f"{q['ndcg@10']:.4f} / {q['recall@20']:.4f}" if q else "-" for q in quality)
        + " |"
    )
    for b in BACKENDS:
        sized = complete(results, b)
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
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--work", type=Path, default=Path("/tmp/shoprec-scale"))
    ap.add_argument("--results", type=Path, default=ROOT / "bench/results/scale.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs/img/scale.png")
    ap.add_argument("--redis-db", type=int, default=3, help="a Redis database the benchmark may flush")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument(
        "--as-of",
        help="split.as_of (default: the day after the data's last; e.g. a day earlier, so that bench/daily.py "
        "can run the next day's DAG run on the day held back; the Redis stores are then left loaded for it)",
    )
    ap.add_argument(
        "--reuse-shared",
        action="store_true",
        help="keep the shared stages' outputs and figures from an earlier run of the same size (same work dir)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="--reuse-shared, and keep the stages the backend (one) already ran: go on from where a run stopped",
    )
    ap.add_argument(
        "--redo",
        choices=[name for name in stage_commands() if name not in SHARED],
        help="with --resume: run this stage and the later ones again (e.g. after a fix), keeping the earlier ones",
    )
    args = ap.parse_args()
    if args.resume and len(args.backends) != 1:
        ap.error("--resume goes on with one backend's run: give one --backends")
    if args.redo and not args.resume:
        ap.error("--redo goes with --resume")
    results = json.loads(args.results.read_text()) if args.results.exists() else []

    def save(r: dict) -> None:  # a size's other backends, measured by an earlier run, are kept
        nonlocal results
        old = next((o for o in results if o["rows"] == r["rows"]), {"backends": {}})
        kept = {b: {"commit": old["commit"], **v} for b, v in old["backends"].items()}  # each keeps its commit
        merged = {**r, "backends": {**kept, **r["backends"]}}
        results = [o for o in results if o["rows"] != r["rows"]] + [merged]
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))
        plot(results, args.plot)
        if args.write_docs:
            write_docs(results)

    for rows in args.rows:
        reuse = args.reuse_shared or args.resume
        earlier = next((r for r in results if r["rows"] == rows), {"stages": {}, "backends": {}}) if reuse else None
        bench_size(rows, args.backends, args.work, args.redis_db, save, earlier, args.resume, args.redo, args.as_of)
    print(table(results))


if __name__ == "__main__":
    main()
