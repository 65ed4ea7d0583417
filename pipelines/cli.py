"""The `shoprec` command line: one command per pipeline step, over the functions in `pipelines/`.

Step modules are imported inside the commands so that `shoprec --help` stays fast.
Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from pipelines.core.errors import ERROR_PREFIX, InputError

app = typer.Typer(
    help="shoprec: explained, monitored recommendations from purchase history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ParamsOpt = typer.Option(Path("params.yaml"), "--params", help="Parameters file.")


def step(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One progress line when the command starts (stderr); InputError as one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        typer.echo(f"shoprec {fn.__name__.replace('_', ' ')}: running", err=True)
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"{ERROR_PREFIX} {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:  # Feast logs every registry refresh at INFO
        logging.getLogger("feast").setLevel(logging.WARNING)


def _params(path: Path) -> dict[str, Any]:
    from pipelines.core.config import load_params

    return load_params(path)


def _show(obj: Any, limit: int = 8) -> None:
    """A step's summary in one line: its first `limit` figures (all of them are in its metrics file)."""
    figures = list(_figures(obj))
    shown = [f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in figures[:limit]]
    text = ", ".join(shown)
    typer.echo(text + (f", ... ({len(figures) - limit} more)" if len(figures) > limit else ""))


def _figures(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every scalar in nested mappings."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _figures(value, f"{prefix}{key}.")
    elif isinstance(obj, str | int | float | bool) or obj is None:
        yield prefix.rstrip("."), obj


@app.command()
@step
def generate(
    out: Path = typer.Option(..., help="Output file (.parquet or .csv)."),
    rows: int | None = typer.Option(None, help="Target row count (overrides synthetic.rows)."),
    seed: int | None = typer.Option(None, help="Random seed (overrides synthetic.seed)."),
    params: Path = ParamsOpt,
) -> None:
    """Write seeded synthetic raw data in the Online Retail layout."""
    from pipelines.core.config import section
    from pipelines.data.synthetic import generate as run

    settings = dict(section(_params(params), "synthetic"))
    settings.update({k: v for k, v in (("rows", rows), ("seed", seed)) if v is not None})
    _show(run(out, settings))


@app.command()
@step
def ingest(
    data: Path = typer.Option(..., help="Raw export: Parquet, CSV or XLSX."),
    out: Path = typer.Option(..., help="Output directory for the clean Parquet file."),
    metrics: Path | None = typer.Option(None, help="Data-quality summary JSON (default: OUT/quality.json)."),
    params: Path = ParamsOpt,
) -> None:
    """Validate, clean and pseudonymise a raw export into canonical Parquet."""
    from pipelines.data.ingest import ingest as run

    _show(run(data, out, _params(params), metrics))


@app.command()
@step
def split(
    clean: Path = typer.Option(..., help="Clean interactions Parquet."),
    out: Path = typer.Option(..., help="Output directory for the windows."),
    metrics: Path = typer.Option(..., help="Split summary JSON."),
    params: Path = ParamsOpt,
) -> None:
    """Cut the clean data into train / validation / test windows by the as-of date."""
    from pipelines.core.config import section
    from pipelines.data.split import split as run

    _show(run(clean, out, section(_params(params), "split"), metrics))


features_app = typer.Typer(help="Feast features: build the sources, apply and materialise, read online.")
app.add_typer(features_app, name="features")


@features_app.command("build")
@step
def features_build(
    clean: Path = typer.Option(..., help="Clean interactions Parquet."),
    windows: Path = typer.Option(..., help="windows.json written by `shoprec split`."),
    out: Path = typer.Option(..., help="Output directory of the feature sources."),
    metrics: Path = typer.Option(..., help="Row counts JSON."),
    params: Path = ParamsOpt,
) -> None:
    """Customer, product and customer x product sources, point-in-time correct."""
    from pipelines.core.config import section
    from pipelines.data.split import read_windows
    from pipelines.features.build import features_stage

    _show(features_stage(clean, read_windows(windows), out, section(_params(params), "features"), metrics))


@features_app.command("materialize")
@step
def features_materialize(
    windows: Path | None = typer.Option(None, help="windows.json: materialise up to its as_of."),
    as_of: str | None = typer.Option(None, help="Materialise up to this date instead (default: now)."),
    metrics: Path | None = typer.Option(None, help="Rows-materialised JSON."),
    state: Path | None = typer.Option(None, help="Also write it here, beside the store (a DVC output)."),
    params: Path = ParamsOpt,
) -> None:
    """Apply the feature repo and load the online store incrementally up to the as-of date."""
    import pandas as pd

    from pipelines.core.config import section
    from pipelines.data.split import read_windows
    from pipelines.features.store import materialize_stage

    end = pd.Timestamp(as_of) if as_of else read_windows(windows).as_of if windows else pd.Timestamp.now(tz="UTC")
    _show(materialize_stage(section(_params(params), "features"), end, metrics, state))


@features_app.command("online")
@step
def features_online(
    customer: str = typer.Option(..., help="Customer id (pseudonymised, as stored)."),
    item: list[str] = typer.Option([], help="Item ids: customer x product features for each (repeatable)."),
    as_of: str | None = typer.Option(None, help="Request time for days-since-last-purchase (default: now)."),
    params: Path = ParamsOpt,
) -> None:
    """Print a customer's online profile, or the ranker's features for customer x item pairs."""
    import pandas as pd

    from pipelines.core.config import section
    from pipelines.features.store import online_features, open_store

    store = open_store(section(_params(params), "features"))
    if item:
        rows = pd.DataFrame({"customer_id": customer, "item_id": item})
        frame = online_features(store, rows, "ranker", pd.Timestamp(as_of) if as_of else None)
    else:
        frame = online_features(store, pd.DataFrame({"customer_id": [customer]}), "customer_profile")
    typer.echo(frame.to_json(orient="records", indent=2, date_format="iso"))


@app.command()
@step
def candidates(
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    out: Path = typer.Option(..., help="Output directory for candidates."),
    metrics: Path = typer.Option(..., help="Candidate recall JSON."),
    params: Path = ParamsOpt,
) -> None:
    """Candidates from every configured source at each training cutoff, validation and test (test only,
    with the model's selection, when candidates.reuse_model is set)."""
    from pipelines.candidates.union import candidates_stage, customer_samples
    from pipelines.core.config import section

    p = _params(params)
    _show(candidates_stage(split_dir, out, section(p, "candidates"), metrics, p["compute"], customer_samples(p)))


@app.command()
@step
def train(
    candidates_dir: Path = typer.Option(..., "--candidates", help="Directory written by `shoprec candidates`."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    model: Path = typer.Option(..., help="Output model directory."),
    plots: Path = typer.Option(..., help="Output directory for the feature importance (CSV)."),
    params: Path = ParamsOpt,
) -> None:
    """Fit the LightGBM ranker on the training cutoffs, early stopping on the validation one."""
    from pipelines.ranking.train import train_stage

    _show(train_stage(candidates_dir, split_dir, model, plots, _params(params)))


@app.command()
@step
def recommend(
    candidates_dir: Path = typer.Option(..., "--candidates", help="Directory written by `shoprec candidates`."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    model: Path = typer.Option(..., help="Model directory from `shoprec train`."),
    out: Path = typer.Option(..., help="Output recommendations Parquet."),
    sample: Path = typer.Option(..., help="Output Parquet: a sample of the scored model inputs (drift monitoring)."),
    params: Path = ParamsOpt,
) -> None:
    """Rank the test cutoff's candidates and keep the top k per customer, with reasons."""
    from pipelines.ranking.recommend import recommend_stage

    recs = recommend_stage(candidates_dir, split_dir, model, out, sample, _params(params))
    typer.echo(f"{len(recs)} recommendations for {recs['customer_id'].nunique()} customers -> {out}")


@app.command()
@step
def evaluate(
    recs: Path = typer.Option(..., help="Recommendations Parquet."),
    candidates_file: Path = typer.Option(..., "--candidates", help="The candidates they were ranked from."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    customer_features: Path | None = typer.Option(None, help="Customer feature source (loyalty tiers by segment)."),
    metrics: Path = typer.Option(..., help="Output metrics JSON."),
    segments: Path = typer.Option(..., help="Output JSON: headline metrics by customer segment."),
    plots: Path = typer.Option(..., help="Output directory for the metric@k curves (CSV)."),
    params: Path = ParamsOpt,
) -> None:
    """Score recommendations and each source alone on the test window, overall and by segment."""
    from pipelines.core.config import section
    from pipelines.evaluation.evaluate import evaluate_stage

    p = _params(params)
    result = evaluate_stage(
        recs,
        candidates_file,
        split_dir,
        customer_features,
        {"metrics": metrics, "segments": segments, "plots": plots},
        section(section(p, "candidates"), "sources"),
        section(p, "evaluate"),
        int(section(p, "recommend")["k"]),
    )
    _show(result["ranker"])


@app.command()
@step
def report(
    recs: Path = typer.Option(..., help="Recommendations Parquet."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    reference: Path = typer.Option(..., help="The model's training sample (models/reference.parquet)."),
    current: Path = typer.Option(..., help="The scored sample written by `shoprec recommend`."),
    clean: Path = typer.Option(..., help="Clean interactions Parquet (rows ingested)."),
    out: Path = typer.Option(..., help="Output directory of the HTML and JSON reports."),
    metrics: Path = typer.Option(..., help="Output drift summary JSON."),
    workspace: Path | None = typer.Option(None, help="Evidently workspace to add the runs to (monitor.workspace)."),
    params: Path = ParamsOpt,
) -> None:
    """Evidently reports (quality, drift) as HTML and JSON, and runs in the Evidently workspace."""
    from pipelines.monitoring.reports import report_stage

    p = _params(params)
    if workspace is not None:
        p["monitor"]["workspace"] = str(workspace)
    _show(report_stage(recs, split_dir, reference, current, clean, out, metrics, p))


@app.command()
@step
def realised(
    clean: Path = typer.Option(..., help="Clean interactions Parquet (the purchases since the served version)."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split` (this run's as-of date)."),
    metrics: Path = typer.Option(..., help="Output JSON: what the served lists achieved, overall and per tier."),
    params: Path = ParamsOpt,
) -> None:
    """Score the lists served since the last publish on the purchases that followed them."""
    from pipelines.monitoring.realised import realised_stage

    _show(realised_stage(clean, split_dir, metrics, _params(params)))


@app.command()
@step
def gate(
    evaluation: Path = typer.Option(..., help="Metrics JSON written by `shoprec evaluate`."),
    drift: Path = typer.Option(..., help="Drift summary JSON written by `shoprec report`."),
    realised: Path = typer.Option(..., help="Realised-performance JSON written by `shoprec realised`."),
    model: Path = typer.Option(..., help="The model the evaluation is about (models/)."),
    candidates_file: Path = typer.Option(..., "--candidates", help="Test candidates (the published model ranks them)."),
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    out: Path = typer.Option(..., help="Output decision JSON."),
    params: Path = ParamsOpt,
) -> None:
    """Decide whether the new model and recommendations may be published; log the decision and why."""
    from pipelines.monitoring.gate import gate_stage

    gate_stage(
        json.loads(evaluation.read_text()),
        json.loads(drift.read_text()),
        json.loads(realised.read_text()),
        model,
        candidates_file,
        split_dir,
        out,
        _params(params),
    )


@app.command()
@step
def score(
    split_dir: Path = typer.Option(..., help="Directory written by `shoprec split`."),
    candidates_dir: Path = typer.Option(..., "--candidates", help="Directory written by `shoprec candidates`."),
    customer_features: Path = typer.Option(..., help="Customer feature source (loyalty tiers and segments)."),
    model: Path = typer.Option(..., help="Model directory from `shoprec train`."),
    out: Path = typer.Option(..., help="Output directory: recommendations, cold-start lists, segments."),
    params: Path = ParamsOpt,
) -> None:
    """Today's top k for every known customer, the cold-start lists and the loyalty segments, at as_of."""
    from pipelines.serving.score import score_stage

    _show(score_stage(split_dir, candidates_dir, customer_features, model, out, _params(params)))


@app.command()
@step
def publish(
    scored: Path | None = typer.Option(None, help="Directory written by `shoprec score`."),
    model: Path | None = typer.Option(None, help="Model directory from `shoprec train`."),
    gate_file: Path | None = typer.Option(None, "--gate", help="Decision written by `shoprec gate`."),
    split_dir: Path | None = typer.Option(None, help="Directory written by `shoprec split` (the data window)."),
    evaluation: Path | None = typer.Option(None, help="Metrics written by `shoprec evaluate`."),
    out: Path | None = typer.Option(None, help="Output JSON: what was published, or why not."),
    rollback: bool = typer.Option(False, "--rollback", help="Make the previous version live again instead."),
    params: Path = ParamsOpt,
) -> None:
    """Publish the scored recommendations as a new version if the gate passed (or roll back one version)."""
    from pipelines.serving.publish import publish_stage
    from pipelines.serving.publish import rollback as roll_back

    p = _params(params)
    if rollback:
        _show(roll_back(p))
        return
    given = {"--scored": scored, "--model": model, "--gate": gate_file, "--split-dir": split_dir}
    given |= {"--evaluation": evaluation, "--out": out}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise InputError(f"publish: missing option(s) {', '.join(missing)} (or use --rollback)")
    _show(publish_stage(scored, model, gate_file, split_dir, evaluation, out, p))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    params: Path = ParamsOpt,
) -> None:
    """Serve the published recommendations over HTTP (FastAPI; OpenAPI at /docs and /openapi.json)."""
    import os

    import uvicorn

    os.environ["SHOPREC_PARAMS"] = str(params.resolve())
    uvicorn.run(
        "pipelines.serving.api:app_from_params",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@app.command()
def airflow(
    port: int = typer.Option(8081, help="Port of Airflow's UI and API (127.0.0.1)."),
    home: Path = typer.Option(Path(".airflow"), help="AIRFLOW_HOME: metadata database, logs, password file."),
) -> None:
    """Airflow standalone with shoprec's DAGs and no examples (`make airflow`); the admin's password is
    SHOPREC_AIRFLOW_PASSWORD or one generated and printed once."""
    from pipelines.orchestration.airflow_env import standalone

    standalone(home, port)


@app.command()
@step
def backtest(
    data: Path = typer.Option(..., help="Raw export (e.g. ../shared/data/online_retail.parquet)."),
    test_days: int = typer.Option(30, min=1, help="Length of the test window at the end of the data."),
    k: int = typer.Option(10, min=1, help="Recommendations per customer."),
    out: Path = typer.Option(..., help="Output directory."),
    as_of: str = typer.Option(None, help="Cut the data here first (e.g. at the test start: a validation window)."),
    params: Path = ParamsOpt,
) -> None:
    """Train on all but the last N days; write DIR/recommendations.parquet and DIR/metrics.json."""
    from pipelines.evaluation.backtest import backtest as run

    metrics = run(data, test_days, k, out, _params(params), as_of)
    typer.echo(f"{metrics['customers']} customers evaluated in {metrics['seconds']} s -> {out}/recommendations.parquet")
    _show(metrics["ranker"])


@app.command()
@step
def summary(params: Path = ParamsOpt) -> None:
    """Print what the last pipeline run (in this directory) produced and where its outputs are."""
    from pipelines.orchestration.summary import summarize

    try:
        typer.echo(summarize(Path("."), _params(params)))
    except FileNotFoundError as exc:
        raise InputError(f"{exc.filename}: not found; run `dvc repro` first") from None


if __name__ == "__main__":
    app()
