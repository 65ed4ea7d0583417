"""Drift of the input data itself: the latest day's purchases against the weeks before, one check per property.

The ranker's features summarise months of history, so a broken export or a sudden change in the shop
moves them little on its first day; the purchases of that day show it at once. Each property is a
figure per day (rows, lines per order, quantity and price per line, the share of lines of items or
countries never seen before, of repriced items) and the latest day is compared with the reference
days before it: rows with the same weekday only (shops are weekly), the other figures with every day
that has enough lines to judge. A figure alarms when it is further from the reference days' median
than `max_z` robust deviations (1.4826 x MAD) and than `min_relative_change` of the median (and, for
shares, `min_share_change`): noise of a stationary shop stays inside, a planted change does not.
A demand shock (a few items bought far more than their reference rate) is a Poisson test per item.
Every check reads as one line: what it measured, against what, and whether that alarms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import schema as s

DAY = "day"
MAD_SCALE = 1.4826  # MAD x this estimates a normal standard deviation


def daily_figures(lines: pd.DataFrame, reference_prices: pd.Series, repriced_by: float) -> pd.DataFrame:
    """One row per day of `lines` (with `day`, `new_item` and `new_country` flags): each property's figure."""
    by_day = lines.groupby(DAY)
    figures = pd.DataFrame({"rows": by_day.size()})
    if s.ORDER in lines:
        figures["lines_per_order"] = by_day.size() / by_day[s.ORDER].nunique()
    if s.QUANTITY in lines:
        figures["quantity"] = np.exp(np.log(lines[s.QUANTITY]).groupby(lines[DAY]).mean())
    if s.PRICE in lines:
        figures["unit_price"] = np.exp(np.log(lines[s.PRICE]).groupby(lines[DAY]).mean())
        figures["repriced_share"] = repriced(lines, reference_prices, repriced_by).groupby(lines[DAY]).mean()
    figures["new_item_share"] = by_day["new_item"].mean()
    if s.COUNTRY in lines:
        figures["new_country_share"] = by_day["new_country"].mean()
    return figures


def repriced(lines: pd.DataFrame, reference_prices: pd.Series, by: float) -> pd.Series:
    """Whether each line's price differs by more than `by` (relative) from its item's reference median
    price (False for items without one)."""
    ref = lines[s.ITEM].map(reference_prices)
    return ((lines[s.PRICE] - ref).abs() > by * ref).fillna(False).astype(bool)


def first_seen(clean: pd.DataFrame, column: str) -> pd.Series:
    """The first day each value of `column` was bought."""
    return clean.groupby(column, observed=True)[s.TS].min().dt.floor("D")


def input_drift(clean: pd.DataFrame, as_of: pd.Timestamp, params: dict[str, Any]) -> dict[str, Any]:
    """The checks of the last `days` before `as_of` against the `reference_days` before them."""
    days, ref_days = int(params["days"]), int(params["reference_days"])
    start, ref_start = as_of - pd.Timedelta(days=days), as_of - pd.Timedelta(days=days + ref_days)
    lines = clean[(clean[s.TS] >= ref_start) & (clean[s.TS] < as_of)].copy()
    lines[DAY] = lines[s.TS].dt.floor("D")
    lines["new_item"] = lines[DAY].to_numpy() == lines[s.ITEM].map(first_seen(clean, s.ITEM)).to_numpy()
    if s.COUNTRY in lines:
        countries = lines[s.COUNTRY].fillna("")
        seen = first_seen(clean.assign(**{s.COUNTRY: clean[s.COUNTRY].fillna("")}), s.COUNTRY)
        lines["new_country"] = lines[DAY].to_numpy() == countries.map(seen).to_numpy()
    reference = lines[lines[DAY] < start]
    current = lines[lines[DAY] >= start]
    prices = reference.groupby(s.ITEM)[s.PRICE].median() if s.PRICE in lines else pd.Series(dtype=float)
    figures = daily_figures(lines, prices, float(params["repriced_by"]))
    every_day = pd.date_range(ref_start, as_of - pd.Timedelta(days=1), freq="D")
    figures = figures.reindex(every_day).fillna({"rows": 0})
    ref_figures, cur_figures = figures[figures.index < start], figures[figures.index >= start]
    checks = [
        _check(name, cur_figures, ref_figures, params, current, reference)
        for name in figures.columns
        if name in PROPERTIES
    ]
    checks.append(_demand_shock(current, reference, ref_days, params))
    alarms = [c for c in checks if c["alarm"]]
    return {
        "days": [str(d.date()) for d in cur_figures.index],
        "reference_days": ref_days,
        "current_rows": len(current),
        "reference_rows": len(reference),
        "checks": checks,
        "alarms": [c["input"] for c in alarms],
    }


# property: (what it is, the input column it reads, its scale). Levels are compared as logs (a relative
# change); shares as they are, with an absolute floor; rows as logs, by weekday, within a factor.
PROPERTIES: dict[str, tuple[str, str, str]] = {
    "rows": ("rows per day", s.ITEM, "rows"),
    "lines_per_order": ("lines per order", s.ORDER, "level"),
    "quantity": ("geometric mean quantity per line", s.QUANTITY, "level"),
    "unit_price": ("geometric mean unit price", s.PRICE, "level"),
    "repriced_share": ("share of lines of repriced items", s.PRICE, "share"),
    "new_item_share": ("share of lines of items never sold before", s.ITEM, "share"),
    "new_country_share": ("share of lines from countries never seen before", s.COUNTRY, "share"),
}


def _check(
    name: str,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    params: dict[str, Any],
    current_lines: pd.DataFrame,
    reference_lines: pd.DataFrame,
) -> dict[str, Any]:
    """The worst of the current days on one property against its reference days."""
    label, column, scale = PROPERTIES[name]
    min_rows, is_share = int(params["min_rows"]), scale == "share"
    to = {"share": lambda v: v, "level": np.log, "rows": np.log1p}[scale]  # a day may have no rows
    allowed = {
        "share": 0.0,
        "level": np.log1p(float(params["min_relative_change"])),
        "rows": np.log(float(params["max_rows_factor"])),
    }[scale]
    worst: dict[str, Any] | None = None
    for day, value in current[name].items():
        if scale != "rows" and current.at[day, "rows"] < min_rows:
            continue
        same_weekday = reference.index.weekday == day.weekday()
        ref = reference[name][same_weekday if scale == "rows" else reference["rows"] >= min_rows].dropna()
        if ref.empty or pd.isna(value):
            continue
        median = float(ref.median())
        if scale == "rows" and max(float(value), median) < min_rows:
            continue  # a day the shop hardly trades on, as usual
        spread = MAD_SCALE * float((to(ref) - to(median)).abs().median())
        floor = float(params["min_share_change"]) if is_share else 0.0
        tolerance = max(float(params["max_z"]) * spread, allowed, floor)
        excess = abs(to(float(value)) - to(median)) - tolerance
        if worst is None or excess > worst["excess"]:
            worst = {"day": day, "value": float(value), "median": median, "tolerance": tolerance, "excess": excess}
    if worst is None:
        return _result(name, column, False, f"{label}: too few lines to judge", None, None)
    alarm = worst["excess"] > 0
    basis = "the same weekday of the reference days" if scale == "rows" else "the reference days"
    if is_share:
        within = f"±{_fmt(worst['tolerance'], True)}"
    else:
        factor = float(np.exp(worst["tolerance"]))
        within = f"within x/÷{factor:.2f}"
    detail = (
        f"{label}: {_fmt(worst['value'], is_share)} on {worst['day'].date()} vs median "
        f"{_fmt(worst['median'], is_share)} of {basis} ({within}): "
    )
    detail += "ALARM" + _named(name, current_lines, reference_lines, params) if alarm else "stable"
    return _result(name, column, alarm, detail, worst["value"], worst["median"])


def _named(name: str, current: pd.DataFrame, reference: pd.DataFrame, params: dict[str, Any]) -> str:
    """What a share alarm is made of: the new countries, the categories or items repriced, the new items."""
    if name == "new_country_share":
        return ": " + ", ".join(sorted(current.loc[current["new_country"], s.COUNTRY].dropna().unique())[:5])
    if name == "new_item_share":
        return f": {current.loc[current['new_item'], s.ITEM].nunique()} new items"
    if name == "repriced_share":
        prices = reference.groupby(s.ITEM)[s.PRICE].median()
        moved = current[repriced(current, prices, float(params["repriced_by"]))]
        by = s.CATEGORY if s.CATEGORY in moved and moved[s.CATEGORY].notna().any() else s.ITEM
        return f" ({by}: " + ", ".join(map(str, moved[by].value_counts().index[:5])) + ")"
    return ""


def _demand_shock(
    current: pd.DataFrame, reference: pd.DataFrame, ref_days: int, params: dict[str, Any]
) -> dict[str, Any]:
    """Items bought far more often than their reference rate (scaled to the current day's volume) allows."""
    from scipy.stats import poisson

    label = "demand shock (items bought far above their reference rate)"
    if current.empty or reference.empty:
        return _result("demand_shock", s.ITEM, False, f"{label}: too few lines to judge", None, None)
    days = max(1, current[DAY].nunique())
    volume = len(current) / days / (len(reference) / ref_days)
    rate = reference[s.ITEM].value_counts() / ref_days * volume * days
    counts = current[s.ITEM].value_counts()
    known = counts[counts.index.isin(rate.index)]
    expected = rate.reindex(known.index).to_numpy()
    p_value = poisson.sf(known.to_numpy() - 1, expected)  # P(X >= count)
    level = float(params["shock_p_value"]) / max(1, len(rate))  # Bonferroni over the reference's items
    strong = (known.to_numpy() >= float(params["shock_ratio"]) * expected) & (expected >= params["shock_min_expected"])
    shocked = known[(p_value < level) & strong]
    if shocked.empty:
        top = (known / rate.reindex(known.index)).max() if len(known) else 0.0
        return _result("demand_shock", s.ITEM, False, f"{label}: none (largest ratio {top:.1f}x): stable", 0, 0)
    names = ", ".join(f"{item} ({int(n)} vs {rate[item]:.1f} expected)" for item, n in shocked.head(5).items())
    detail = f"{label}: {len(shocked)} items: ALARM: {names}"
    return _result("demand_shock", s.ITEM, True, detail, float(len(shocked)), 0.0)


def _result(
    name: str, column: str, alarm: bool, detail: str, value: float | None, reference: float | None
) -> dict[str, Any]:
    figures = {"value": value, "reference": reference}
    return {"input": name, "column": column, "alarm": bool(alarm), **figures, "line": detail}


def _fmt(value: float, is_share: bool) -> str:
    return f"{100 * value:.1f}%" if is_share else f"{value:,.2f}"
