"""The train step: the ranker fitted on the training cutoffs' candidates and features, saved with its
feature importance and drift reference."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from pipelines.core import schema as s
from pipelines.core.compute import open_backend
from pipelines.core.errors import InputError
from pipelines.core.files import SELECTION_FILE, write_csv, write_json, write_parquet
from pipelines.data.split import read_split, read_windows
from pipelines.monitoring.samples import reference_sample
from pipelines.ranking.dataset import labelled_windows, training_windows
from pipelines.ranking.model import INFO_FILE, MODEL_FILE, fit, importance

log = logging.getLogger(__name__)


def train_stage(
    cands_dir: str | Path,
    split_dir: str | Path,
    model_dir: str | Path,
    plots_dir: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The train step: LightGBM on every training cutoff, early stopping on validation; model, importance,
    a sample of the training inputs with scores and labels (the drift reference), and the candidates'
    selection weights (the daily run's candidates reuse them: `candidates.reuse_model`)."""
    from pipelines.features.store import applied_store

    if params["features"]["snapshots"] != "calendar":
        raise InputError(
            f"features.snapshots is {params['features']['snapshots']!r}: the feature sources hold no snapshots at "
            "the training cutoffs; train needs calendar"
        )
    cands_dir, split_dir, model_dir = Path(cands_dir), Path(split_dir), Path(model_dir)
    w = read_windows(split_dir / "windows.json")
    frame = read_split(split_dir, ("train", "valid"), columns=[s.CUSTOMER, s.ITEM, s.TS])  # for the labels
    names = list(params["candidates"]["sources"])
    cands = {n: cands_dir / f"{n}.parquet" for n in w.label_windows() if n != "test"}
    labelled = labelled_windows(cands, frame, w, names, applied_store(params["features"]))
    train = training_windows(labelled)
    with open_backend(params["compute"]) as backend:
        booster, info = fit(train, labelled["valid"], params["ranker"], backend)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE), num_iteration=booster.best_iteration)
    info["sources"] = names
    log.info("ranker: trained in %.1f s", info.pop("seconds"))  # not in the model file: same data, same bytes
    write_json(info, model_dir / INFO_FILE)
    shutil.copyfile(cands_dir / SELECTION_FILE, model_dir / SELECTION_FILE)  # the daily run cuts candidates alike
    write_csv(importance(booster), Path(plots_dir) / "feature_importance.csv")
    sample = params["monitor"]
    cutoffs = [w.label_windows()[name][0] for name in labelled if name.startswith("train_")]  # training_windows' order
    reference = reference_sample(booster, train, cutoffs, int(sample["sample_rows"]), int(sample["seed"]))
    write_parquet(reference, model_dir / "reference.parquet")  # the drift reference travels with the model
    log.info("ranker: %s", info)
    return info
