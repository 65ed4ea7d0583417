"""Drift of the ranker's inputs, compared like with like, with a one-line verdict per feature.

The reference is a sample of the training cutoffs' rows, the current sample the rows scored now, so
the two are weeks apart. Some features move over such a gap by construction, not because anything
changed: they are compared in a form that does not (`FORMS`):
- `history`: features that grow with the history behind the cutoff (an item's age, a customer's
  tenure, days since a customer last bought an item) as a share of that history's length (days from
  the data's first day);
- `volume`: features whose level moves with the shop's volume and season, or with how long its
  customers have been buying (popularity, units and buyers in a window, source scores that count
  purchases, a customer's orders and spend per window, distinct items, repurchase interval)
  relative to their mean at the same cutoff, so a Christmas that doubles every count, or a young
  shop's customers piling up history, leaves them alone and a change in their shape still shows.
  Counts are first spread evenly within their unit (seeded uniform jitter): a count divided by a
  mean would otherwise land its atoms in other histogram bins than the reference's, a false drift.
Every other feature is compared as it is. Evidently's DataDriftPreset tests each (PSI by default)
on the monitored forms; `verdicts` says per feature what was compared, the figure and why it is or
is not alarming. A year-ago reference (the same weeks of the previous year) needs a training cutoff
a year back with a year of history before it: neither the UCI data nor the default has that.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

KEY_COLUMNS = (s.CUSTOMER, s.ITEM, s.AS_OF, "score", "label")
MAX_CATEGORY_CODES = 10  # integer-valued features with at most this many values are categories (tier, cluster)
HISTORY, VOLUME = "history", "volume"
FORMS: dict[str, str] = {
    **dict.fromkeys(("age_days", "tenure_days", "days_since_last_purchase"), HISTORY),
    **dict.fromkeys(
        (
            "popularity_score",
            "trending_score",
            "country_popularity_score",
            "item_cf_score",
            "units_7d",
            "buyers_7d",
            "units_30d",
            "buyers_30d",
            "units_90d",
            "buyers_90d",
            "orders_30d",
            "spend_30d",
            "orders_90d",
            "spend_90d",
            "orders_365d",
            "spend_365d",
            "distinct_items",
            "mean_repurchase_interval_days",
        ),
        VOLUME,
    ),
}
SAID = {
    HISTORY: "as a share of the history before its cutoff, since it grows with time by construction",
    VOLUME: "relative to its mean at the same cutoff, since its level moves with the shop's volume and season",
}


def monitored(sample: pd.DataFrame, data_start: pd.Timestamp) -> pd.DataFrame:
    """The sample with each feature in `FORMS` in its monitored form (needs the rows' `as_of`)."""
    out, rng = sample.copy(), np.random.default_rng(0)
    as_of = pd.to_datetime(out[s.AS_OF])
    span = ((as_of - data_start) / pd.Timedelta(days=1)).clip(lower=1.0)
    for column, form in FORMS.items():
        if column not in out:
            continue
        values = out[column].astype("float64")
        if form == HISTORY:
            out[column] = values / span
        else:
            if (values.dropna() == values.dropna().round()).all():  # a count: spread each unit evenly (seeded)
                values = values + rng.uniform(-0.5, 0.5, len(values))
            mean = values.groupby(as_of).transform("mean")
            out[column] = values / mean.where(mean != 0)
    return out


def drift_columns(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], list[str], list[str], list[str]]:
    """(numerical features, categorical features, features that lost every value in the current sample:
    drifted, features without values in the reference: not measured)."""
    features = [c for c in reference.columns if c not in KEY_COLUMNS]
    unmeasured = [c for c in features if reference[c].notna().sum() == 0]
    lost = [c for c in features if c not in unmeasured and (c not in current or current[c].notna().sum() == 0)]
    kept = [c for c in features if c not in unmeasured and c not in lost]

    def is_code(col: pd.Series) -> bool:
        values = col.dropna()
        return bool((values == values.round()).all() and values.nunique() <= MAX_CATEGORY_CODES)

    categorical = [c for c in kept if is_code(reference[c])]
    return [c for c in kept if c not in categorical], categorical, lost, unmeasured


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    data_start: pd.Timestamp,
    max_share: float,
    method: dict[str, Any],
    timestamp: datetime | None = None,
) -> tuple[Snapshot, dict[str, Any]]:
    """DataDriftPreset over the ranker's input features in their monitored forms (current vs the training
    reference), score drift and label-rate drift; and a summary: share and names of the drifted
    features, rates, and a verdict line per feature.

    `method` ({"method": "psi", "threshold": 0.2}) sets the test of every column; empty lets Evidently choose.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    from pipelines.monitoring.reports import ran_at

    reference, current = monitored(reference, data_start), monitored(current, data_start)
    numerical, categorical, lost, unmeasured = drift_columns(reference, current)
    features = numerical + categorical
    extra = [c for c in ("label",) if c in current]
    definition = DataDefinition(numerical_columns=[*numerical, "score"], categorical_columns=[*categorical, *extra])
    keep = [*features, "score", *extra]
    metrics = [  # the preset tests each column and the share (Evidently's test is share < max_share)
        DataDriftPreset(columns=features, drift_share=max_share, **method),
        *[ValueDrift(column=c, **method) for c in ("score", *extra)],
    ]
    floats = {c: "float64" for c in [*features, "score"]}
    snapshot = Report(metrics, tags=["drift"], include_tests=True).run(
        Dataset.from_pandas(current[keep].astype(floats), definition),
        Dataset.from_pandas(reference[keep].astype(floats), definition),
        timestamp=timestamp,
        metadata=ran_at(),
        name="Drift of the ranker's inputs",
    )
    verdict = drifted_columns(snapshot)
    drifted = [c for c in features if c in verdict] + lost  # a feature gone empty has drifted
    n = len(features) + len(lost)
    summary = {
        "features": n,
        "drifted": len(drifted),
        "share": len(drifted) / n if n else 0.0,
        "drifted_features": sorted(drifted),
        "lost_features": lost,
        "not_measured": unmeasured,
        "verdicts": verdicts(snapshot, features, verdict, lost, unmeasured, method),
        "score_drift": {"drifted": "score" in verdict, "value": column_drift(snapshot, "score")},
        "reference_rows": len(reference),
        "current_rows": len(current),
        "reference_label_rate": float(reference["label"].mean()) if "label" in reference else None,
        "current_label_rate": float(current["label"].mean()) if "label" in current else None,
    }
    if "label" in current:
        summary["label_drift"] = {"drifted": "label" in verdict, "value": column_drift(snapshot, "label")}
    return snapshot, summary


def verdicts(
    snapshot: Snapshot,
    features: list[str],
    drifted: set[str],
    lost: list[str],
    unmeasured: list[str],
    method: dict[str, Any],
) -> dict[str, str]:
    """One line per feature: the form it was compared in, its drift figure, and whether that alarms."""
    test = f"{method['method'].upper()} threshold {method['threshold']:g}" if method else "Evidently's test"
    lines = {}
    for column in features:
        form = f", {SAID[FORMS[column]]}" if column in FORMS else ", as it is"
        value = column_drift(snapshot, column)
        state = "DRIFTED: its distribution moved (see its histogram in drift.html)" if column in drifted else "stable"
        lines[column] = f"{column}{form}: drift {value:.3f} ({test}): {state}"
    for column in lost:
        lines[column] = f"{column}: DRIFTED: no values now (reference had them): a broken feature source"
    for column in unmeasured:
        lines[column] = f"{column}: not measured: no values in the reference (the history is too short for it)"
    return lines


def column_drift(snapshot: Snapshot, column: str) -> float:
    """The drift score Evidently measured for one column."""
    for result in snapshot.metric_results.values():
        params = result.metric_value_location.metric.params
        if params.get("type", "").endswith(":ValueDrift") and params.get("column") == column:
            return float(result.value)
    raise KeyError(column)


def drifted_columns(snapshot: Snapshot) -> set[str]:
    """Columns whose value-drift test failed (Evidently's own verdict for its chosen method)."""
    return {
        test["metric_config"]["params"]["column"]
        for test in snapshot.dict()["tests"]
        if test["status"] == "FAIL" and "Value Drift" in test.get("name", "")
    }
