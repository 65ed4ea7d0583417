"""The shape of params.yaml: one pydantic model per section, checked when the file loads.

Every key a step reads is declared here with its type and allowed range, and nothing else is
accepted, so a misspelt key or a bad value fails at once, in one line naming the key, in the CLI,
the DVC stage and the Airflow task alike (as bad input: no retry). The defaults live in
params.yaml only: a key is optional here only where params.yaml leaves it out on purpose (the
mapped format's `columns`, the commented-out sources). Two sections keep an open part, each
checked against what they feed: a source's settings (by `candidates.build_sources`: every argument
of the source's constructor must be written, so none of its defaults applies) and the LightGBM
parameters under `ranker` (against LightGBM's own list).
"""

from __future__ import annotations

import difflib
import functools
import typing
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipelines.core.errors import InputError


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    return value


PosInt = Annotated[int, Field(gt=0), BeforeValidator(_no_bool)]
NonNegInt = Annotated[int, Field(ge=0), BeforeValidator(_no_bool)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Data(Section):
    raw: str
    format: Literal["online_retail", "mapped"]
    columns: dict[str, str] | None = None
    cancel_prefix: str | None = None


class Synthetic(Section):
    seed: int
    rows: PosInt


class Ingest(Section):
    max_quantity: PosFloat
    exclude_items: list[str]


class Events(Section):
    log: str
    max_batch: PosInt
    max_skew_seconds: NonNegInt


class Split(Section):
    as_of: str | date | None  # YAML reads an unquoted 2011-11-10 as a date
    test_days: PosInt
    valid_days: PosInt
    train_cutoffs: NonNegInt
    cutoff_step_days: PosInt | None


class Features(Section):
    every_days: Annotated[int, Field(ge=1, lt=35)]  # below the feature views' 35-day TTL
    snapshots: Literal["calendar", "latest"]
    active_days: PosInt
    clusters: PosInt
    keywords: NonNegInt
    seed: int
    repo: str
    store: Literal["local", "production"]
    online_write_batch_size: PosInt
    materialize_workers: PosInt


class Compute(Section):
    backend: Literal["local", "dask"]
    threads: PosInt
    scheduler: str | None
    workers: PosInt
    threads_per_worker: PosInt
    memory_limit: str


class Selection(Section):
    mean_per_customer: PosInt
    activity_power: NonNegFloat
    min_per_customer: PosInt
    max_per_customer: PosInt
    rrf_k: NonNegFloat
    grid: list[float]
    rounds: PosInt
    tune_customers: PosInt


class Candidates(Section):
    sources: dict[str, dict[str, Any]]
    selection: Selection | None  # null keeps the whole union
    reuse_model: str | None  # a trained model's directory (the daily run): its selection, the test window only


class Ranker(Section):
    """Our keys; any other key is a LightGBM parameter (checked against LightGBM's own list)."""

    model_config = ConfigDict(extra="allow")
    k: PosInt
    max_customers: PosInt
    n_estimators: PosInt
    early_stopping_rounds: NonNegInt
    seed: int
    refit_factor: PosFloat | None


class Recommend(Section):
    k: PosInt
    contributions: Literal["path", "shap"]


class MonitorInputs(Section):
    days: PosInt
    reference_days: PosInt
    max_z: PosFloat
    min_relative_change: PosFloat
    max_rows_factor: Annotated[float, Field(gt=1)]
    min_share_change: Share
    min_rows: NonNegInt
    repriced_by: PosFloat
    shock_p_value: Share
    shock_ratio: PosFloat
    shock_min_expected: PosFloat


class Monitor(Section):
    inputs: MonitorInputs
    sample_rows: PosInt
    seed: int
    drift_method: str | None
    drift_threshold: float | None
    k: PosInt
    recall_k: PosInt
    workspace: str
    run_key: str | None


class Gate(Section):
    min_metrics: dict[str, float]
    beat_sources_on: str | None
    max_drift_share: Share
    block_on_inputs: list[str]
    compare_on: list[str]
    max_regression: Share
    min_realised: dict[str, float]


class Segments(Section):
    new_customer_days: PosInt
    countries: NonNegInt
    metrics: list[str]


class Evaluate(Section):
    ks: list[int]
    max_customers: PosInt | None  # the test window's customers: a seeded sample of at most this many
    segments: Segments


class ColdStart(Section):
    window_days: PosInt
    min_customers: PosInt


class Publish(Section):
    k: PosInt
    dir: str
    keep: PosInt
    store: Literal["sqlite", "redis"]
    redis_url: str
    redis_namespace: str
    write_batch_size: PosInt
    max_basket: PosInt
    rerank_candidates: NonNegInt
    rerank_versions: PosInt
    refresh_days: NonNegInt
    reuse_lists: str | None  # a copy of the live version's lists (the daily run): due customers are ranked again
    cold_start: ColdStart


class Params(Section):
    data: Data
    synthetic: Synthetic
    ingest: Ingest
    events: Events
    split: Split
    features: Features
    compute: Compute
    candidates: Candidates
    ranker: Ranker
    recommend: Recommend
    monitor: Monitor
    gate: Gate
    evaluate: Evaluate
    publish: Publish


# LightGBM parameters shoprec sets from its own keys (pipelines/ranking/model.py): not settable under ranker
RESERVED = ("num_iterations", "early_stopping_round", "seed", "objective", "metric", "eval_at")


@functools.cache
def _lightgbm_aliases() -> dict[str, list[str]]:
    """LightGBM's own table of parameter names, {name: [aliases]} (LGBM_DumpParamAliases), read from its
    library without importing the lightgbm package, which imports scikit-learn (0.8 s in every step)."""
    import ctypes
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("lightgbm")
    where = spec.submodule_search_locations if spec is not None else None
    library = next((f for p in where or () for f in Path(p, "lib").glob("lib_lightgbm.*")), None)
    if library is None:
        raise RuntimeError("lightgbm's library (lightgbm/lib/lib_lightgbm.*) not found: is lightgbm installed?")
    lib = ctypes.cdll.LoadLibrary(str(library))
    needed, size = ctypes.c_int64(0), 1 << 16
    while True:
        buffer = ctypes.create_string_buffer(size)
        if lib.LGBM_DumpParamAliases(ctypes.c_int64(size), ctypes.byref(needed), buffer) != 0:
            raise RuntimeError(f"{library}: LGBM_DumpParamAliases failed")
        if needed.value <= size:
            return json.loads(buffer.value.decode())
        size = needed.value


@functools.cache
def _lightgbm_keys(main: tuple[str, ...] | None = None) -> frozenset[str]:
    """Every parameter name and alias LightGBM knows (of the `main` parameters only, if given)."""
    table = _lightgbm_aliases()
    return frozenset(n for key, aliases in table.items() if main is None or key in main for n in (key, *aliases))


def _one_line(error: ValidationError, where: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        *parent, last = key.split(".")
        model: Any = Params
        for part in parent:
            field = model.model_fields.get(part) if isinstance(model, type) else None
            kinds = typing.get_args(field.annotation) or (field.annotation,) if field is not None else ()
            model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
        known = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
        close = difflib.get_close_matches(last, known, n=1)
        hint = f" (did you mean {'.'.join([*parent, close[0]])}?)" if close else ""
        return f"{where}: unknown key {key}{hint}"
    if first["type"] == "missing":
        return f"{where}: {key} is missing"
    return f"{where}: {key}: {first['msg']} (got {first.get('input')!r})"


def validate(params: dict[str, Any], where: str = "params") -> dict[str, Any]:
    """`params` checked against the models (InputError names the first bad key) and coerced to their
    types (e.g. `k: "20"` becomes 20; True is no number here)."""
    try:
        model = Params.model_validate(params)
        ranker = model.ranker
    except ValidationError as exc:
        raise InputError(_one_line(exc, where)) from None
    extra = set(ranker.model_extra or {})
    reserved = sorted(extra & _lightgbm_keys(RESERVED))
    if reserved:
        raise InputError(
            f"{where}: ranker.{reserved[0]} is set by shoprec itself (n_estimators, early_stopping_rounds, seed, k)"
        )
    unknown = sorted(extra - _lightgbm_keys())
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*Ranker.model_fields, *_lightgbm_keys()], n=1)
        hint = f" (did you mean ranker.{close[0]}?)" if close else ""
        raise InputError(f"{where}: unknown key ranker.{unknown[0]}: neither shoprec's nor a LightGBM parameter{hint}")
    return model.model_dump()
