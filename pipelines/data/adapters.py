"""Adapters: a source table (UCI Online Retail or any mapped export) -> canonical columns.

A format is a mapping from canonical column to source column; the UCI Online Retail
layout is one named preset, a shop's own export is another mapping in `params.yaml`.
Values are coerced strictly: a value that cannot be read is an error, not a silent NaN.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipelines.core import schema as s
from pipelines.core.errors import InputError

ONLINE_RETAIL = {
    "columns": {
        s.ORDER: "InvoiceNo",
        s.ITEM: "StockCode",
        s.DESCRIPTION: "Description",
        s.QUANTITY: "Quantity",
        s.TS: "InvoiceDate",
        s.PRICE: "UnitPrice",
        s.CUSTOMER: "CustomerID",
        s.COUNTRY: "Country",
        s.CATEGORY: "Category",  # not in the UCI file; the synthetic generator adds it
    },
    "cancel_prefix": "C",
}


def resolve_format(data_params: dict[str, Any]) -> dict[str, Any]:
    """The column mapping and options for `data.format` (`online_retail` or `mapped`)."""
    fmt = data_params["format"]
    if fmt == "online_retail":
        return ONLINE_RETAIL
    if fmt == "mapped":
        columns = data_params.get("columns") or {}
        unknown = sorted(set(columns) - set(s.COLUMNS))
        if unknown:
            raise InputError(
                f"params: data.columns names unknown canonical column(s) {unknown}; known: {list(s.COLUMNS)}"
            )
        return {"columns": columns, "cancel_prefix": data_params.get("cancel_prefix")}
    raise InputError(f"params: data.format must be 'online_retail' or 'mapped', not {fmt!r}")


class Canonical(NamedTuple):
    """A source mapped onto the canonical columns."""

    frame: pd.DataFrame
    absent: list[str]  # optional columns the source does not have
    numeric_ids: set[str]  # id columns whose source values were numbers (e.g. a float CustomerID)


def to_canonical(raw: pd.DataFrame, fmt: dict[str, Any], source: str) -> Canonical:
    """Rename, coerce and type a raw table.

    Rows are kept as they are (dirty ones included): cleaning is ingest's job. Adds a boolean
    `cancelled` column from the order-id prefix when the format has one.
    """
    mapping: dict[str, str] = fmt["columns"]
    missing = [f"'{mapping.get(c, c)}' ({c})" for c in s.REQUIRED if mapping.get(c, c) not in raw.columns]
    if missing:
        found = ", ".join(map(str, raw.columns[:12]))
        raise InputError(f"{source}: required column {' and '.join(missing)} missing; found: {found}")

    out = pd.DataFrame(index=raw.index)
    absent: list[str] = []
    for col in s.COLUMNS:
        src = mapping.get(col, col)
        if src in raw.columns:
            out[col] = raw[src]
        else:
            out[col] = np.nan
            absent.append(col)

    out[s.CUSTOMER] = _ids(out[s.CUSTOMER])
    out[s.ITEM] = _ids(out[s.ITEM])
    out[s.TS] = _timestamps(out[s.TS], source, mapping.get(s.TS, s.TS))
    for col in (s.QUANTITY, s.PRICE):
        if col not in absent:
            out[col] = _numbers(out[col], source, mapping.get(col, col))
    if s.QUANTITY in absent:
        out[s.QUANTITY] = 1.0
    for col in (s.COUNTRY, s.DESCRIPTION, s.CATEGORY):
        out[col] = _texts(out[col])
    out[s.ORDER] = _ids(out[s.ORDER]) if s.ORDER not in absent else None

    prefix = fmt.get("cancel_prefix")
    orders = out[s.ORDER].astype("string")
    out["cancelled"] = orders.str.startswith(prefix).fillna(False).astype(bool) if prefix else False
    if s.ORDER in absent:  # a basket is a customer's lines at one moment
        out[s.ORDER] = out[s.CUSTOMER].astype("string") + "@" + out[s.TS].astype("string")
    numeric_ids = {c for c in (s.CUSTOMER, s.ITEM) if pd.api.types.is_numeric_dtype(raw[mapping.get(c, c)])}
    return Canonical(out, absent, numeric_ids)


def _ids(col: pd.Series) -> pd.Series:
    """Ids as strings; numeric ids (e.g. a float CustomerID with NaNs) lose the trailing '.0'."""
    if pd.api.types.is_numeric_dtype(col) and (col.dropna() % 1 == 0).all():
        col = col.astype("Int64")
    return _texts(col)


def _texts(col: pd.Series) -> pd.Series:
    """Stripped strings as objects; blanks and missing values become None.

    Each distinct value is stripped once and its rows share the result: a column repeats few values
    (items, countries, descriptions) over many rows."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).astype("string").str.strip()
    present = (text.notna() & (text != "")).fillna(False).astype(bool)
    stripped = np.append(text.astype(object).where(present, None).to_numpy(dtype=object), None)  # -1: missing
    return pd.Series(stripped[codes], index=col.index, dtype=object)


def _numbers(col: pd.Series, source: str, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    text = col.astype("string").str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna() & text.notna() & (text != "")
    if bad.any():
        raise InputError(
            f"{source}: column '{name}' has {int(bad.sum())} non-numeric value(s) "
            f"(wrong type; first: {text[bad].iloc[0]!r})"
        )
    return parsed.astype(float)


def _timestamps(col: pd.Series, source: str, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        text = col.astype("string").str.strip()
        try:
            parsed = pd.to_datetime(text, format="ISO8601", errors="raise", utc=True)
        except (ValueError, TypeError):
            parsed = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
        bad = parsed.isna() & text.notna() & (text != "")
        if bad.any():
            raise InputError(
                f"{source}: column '{name}' has {int(bad.sum())} unparseable timestamp(s) "
                f"(first: {text[bad].iloc[0]!r})"
            )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    missing = parsed.isna()
    if missing.any():
        raise InputError(f"{source}: column '{name}' has {int(missing.sum())} missing timestamp(s)")
    return parsed.astype("datetime64[ns]")
