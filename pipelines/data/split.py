"""Temporal split: train / validation / test windows ending at an as-of date.

test = [as_of - test_days, as_of), validation = the `valid_days` before it, train =
everything earlier. Rows at or after `as_of` belong to no window, so nothing after a
window's end can leak into it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.core.files import write_json, write_parquet

WINDOWS = ("train", "valid", "test")


@dataclass(frozen=True)
class Windows:
    """Window boundaries; each window is [start, end).

    `train_cutoffs` (oldest first) start the ranker's training label windows, each `label_days`
    long (the validation window's length); the newest ends at valid_start. Cutoffs closer than
    `label_days` give overlapping label windows: more training lists from the same history.
    """

    train_start: pd.Timestamp
    valid_start: pd.Timestamp
    test_start: pd.Timestamp
    as_of: pd.Timestamp
    train_cutoffs: tuple[pd.Timestamp, ...] = ()

    @property
    def label_days(self) -> pd.Timedelta:
        return self.test_start - self.valid_start

    def bounds(self, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        edges = {
            "train": (self.train_start, self.valid_start),
            "valid": (self.valid_start, self.test_start),
            "test": (self.test_start, self.as_of),
        }
        return edges[name]

    def label_windows(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        """Every cutoff's label window by name: train_1 (oldest) ... train_n, valid, test."""
        out = {f"train_{i}": (c, c + self.label_days) for i, c in enumerate(self.train_cutoffs, start=1)}
        return {**out, "valid": self.bounds("valid"), "test": self.bounds("test")}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v.isoformat() for k, v in asdict(self).items() if k != "train_cutoffs"}
        out["train_cutoffs"] = [c.isoformat() for c in self.train_cutoffs]
        return out


def make_windows(timestamps: pd.Series, split_params: dict[str, Any]) -> Windows:
    """Windows from the data's time range and `split` params (as_of: null = the day after the last event)."""
    first, last = timestamps.min(), timestamps.max()
    as_of = (
        pd.Timestamp(split_params["as_of"]) if split_params.get("as_of") else last.normalize() + pd.Timedelta(days=1)
    )
    test_start = as_of - pd.Timedelta(days=int(split_params["test_days"]))
    valid_days = int(split_params["valid_days"])
    valid_start = test_start - pd.Timedelta(days=valid_days)
    n_cutoffs, step = int(split_params["train_cutoffs"]), int(split_params["cutoff_step_days"] or valid_days)
    if n_cutoffs and step < 1:
        raise InputError(f"params: split.cutoff_step_days must be at least 1, not {step}")
    newest = valid_start - pd.Timedelta(days=valid_days)
    cutoffs = tuple(newest - pd.Timedelta(days=step * i) for i in range(n_cutoffs - 1, -1, -1))
    earliest = cutoffs[0] if cutoffs else valid_start
    if earliest <= first:
        raise InputError(
            f"split: the train window is empty: data starts {first.date()} but the first cutoff is {earliest.date()} "
            f"(as_of {as_of.date()}, test_days {split_params['test_days']}, valid_days {valid_days}, "
            f"train_cutoffs {split_params['train_cutoffs']}, cutoff_step_days {step})"
        )
    return Windows(first.normalize(), valid_start, test_start, as_of, cutoffs)


def window(df: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    """Rows with start <= timestamp < end (no lower bound when start is None)."""
    ts = df[s.TS]
    mask = ts < end if start is None else (ts >= start) & (ts < end)
    return df.loc[mask]


def warm_customers(history: pd.DataFrame, future: pd.DataFrame) -> pd.Index:
    """Customers with purchases both in the history and in the future window (the evaluated ones)."""
    return pd.Index(sorted(set(history[s.CUSTOMER]) & set(future[s.CUSTOMER])), name=s.CUSTOMER)


def evaluated_customers(history: pd.DataFrame, future: pd.DataFrame, max_customers: int | None) -> pd.Index:
    """The test window's evaluated customers: the warm ones, a seeded sample of at most `max_customers`
    (`evaluate.max_customers`; seed 0, so the same customers whatever the ranker's seed)."""
    return sample_customers(warm_customers(history, future), max_customers, 0)


def sample_customers(customers: pd.Index, max_customers: int | None, seed: int) -> pd.Index:
    """At most `max_customers` of `customers`: a seeded sample, in their order (None, or no more: all)."""
    if max_customers is None or len(customers) <= max_customers:
        return customers
    keep = np.random.default_rng(seed).choice(customers.to_numpy(), int(max_customers), replace=False)
    return customers[customers.isin(keep)]


def split(
    clean_path: str | Path, out_dir: str | Path, split_params: dict[str, Any], metrics_path: str | Path
) -> dict[str, Any]:
    """The split step: write one Parquet file per window plus `windows.json`."""
    df = pd.read_parquet(clean_path)
    w = make_windows(df[s.TS], split_params)
    out_dir = Path(out_dir)
    summary: dict[str, Any] = {"windows": w.as_dict(), "rows_after_as_of": int((df[s.TS] >= w.as_of).sum())}
    for name in WINDOWS:
        part = window(df, *w.bounds(name))
        if part.empty:
            raise InputError(
                f"{clean_path}: the {name} window {w.bounds(name)[0].date()}..{w.bounds(name)[1].date()} has no rows"
            )
        write_parquet(part, out_dir / f"{name}.parquet")
        summary[name] = {
            "rows": len(part),
            "customers": int(part[s.CUSTOMER].nunique()),
            "items": int(part[s.ITEM].nunique()),
        }
    write_json(w.as_dict(), out_dir / "windows.json")
    write_json(summary, metrics_path)
    return summary


def read_split(
    split_dir: str | Path, names: tuple[str, ...] = WINDOWS, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows of the named windows written by the split step (their `columns`, all by default),
    concatenated in that order."""
    frames = [pd.read_parquet(Path(split_dir) / f"{n}.parquet", columns=columns) for n in names]
    return pd.concat(frames, ignore_index=True)


def read_windows(path: str | Path) -> Windows:
    """Windows written by the split step."""
    raw = json.loads(Path(path).read_text())
    cutoffs = tuple(pd.Timestamp(c) for c in raw.pop("train_cutoffs", []))
    return Windows(**{k: pd.Timestamp(v) for k, v in raw.items()}, train_cutoffs=cutoffs)
