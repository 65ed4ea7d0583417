"""Seeded synthetic purchase data in the UCI Online Retail layout (the embedded default).

Structure a recommender can learn from: customers with latent category tastes, a loyalty
level that sets how often they buy and how often they re-buy their staple items, a
country that shifts their taste; items with descriptions, categories, prices, a launch
date and a long-tailed popularity; seasonality (a Christmas peak, summer categories);
customers and items appearing over time. And the dirt of a real export: guest orders
without a customer id, cancellations ("C" orders, negative quantities), exact duplicate
lines, zero prices, non-positive quantities, missing descriptions, absurd quantities.

Generation streams customer chunks to the output file, so size is bounded only by disk:
it stops at the `rows` target, at a customer boundary; 10M+ rows work in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.errors import InputError

CATEGORIES = {  # name: (base price, seasonal peak day-of-year or None)
    "MUG": (2.55, None),
    "BAG": (1.65, None),
    "CANDLE HOLDER": (2.95, 330),
    "CHRISTMAS DECORATION": (0.85, 335),
    "CARD": (0.42, 340),
    "LUNCH BOX": (1.95, 250),
    "CUSHION COVER": (3.75, None),
    "CAKE STAND": (10.95, None),
    "NOTEBOOK": (1.65, 245),
    "WALL CLOCK": (8.50, None),
    "METAL SIGN": (2.10, None),
    "BUNTING": (4.95, 170),
    "TEA SET": (4.95, None),
    "PHOTO FRAME": (2.55, None),
    "DOORMAT": (7.95, None),
    "GARDEN PARASOL": (5.95, 180),
}
COLOURS = [
    "RED",
    "PINK",
    "BLUE",
    "GREEN",
    "IVORY",
    "WHITE",
    "BLACK",
    "GOLD",
    "SILVER",
    "PURPLE",
    "YELLOW",
    "ORANGE",
    "PASTEL",
    "VINTAGE",
    "ANTIQUE",
    "ROSE",
    "MINT",
    "CREAM",
    "GREY",
    "NAVY",
]
PATTERNS = [
    "RETROSPOT",
    "SPOTTY",
    "PAISLEY",
    "HEART",
    "STAR",
    "FLORAL",
    "STRIPE",
    "BIRD",
    "OWL",
    "REGENCY",
    "DOILY",
    "GINGHAM",
    "SKULL",
    "ROSES",
    "LOVE",
    "SPACEBOY",
    "DOLLY GIRL",
    "WOODLAND",
    "SNOWFLAKE",
    "BUTTERFLY",
    "CIRCUS",
    "KITCHEN",
    "PARTY",
    "GARDEN",
    "POLKADOT",
    "JUNGLE",
    "LEAF",
    "ANCHOR",
    "TOADSTOOL",
    "BAROQUE",
]
SIZES = ["", "SMALL ", "LARGE ", "JUMBO "]
COUNTRIES = {
    "United Kingdom": 0.88,
    "Germany": 0.025,
    "France": 0.022,
    "EIRE": 0.015,
    "Spain": 0.01,
    "Netherlands": 0.01,
    "Belgium": 0.008,
    "Switzerland": 0.007,
    "Portugal": 0.006,
    "Australia": 0.005,
    "Norway": 0.004,
    "Italy": 0.004,
    "Sweden": 0.004,
}
LOYALTY = np.array([0.50, 0.30, 0.15, 0.05])  # occasional, regular, loyal, VIP
ORDERS_PER_YEAR = np.array([1.2, 3.5, 9.0, 24.0])  # Poisson rate by loyalty level
REPEAT_SHARE = np.array([0.20, 0.30, 0.40, 0.50])  # lines that re-buy a staple item
PACKS = np.array([1, 2, 3, 4, 6, 8, 12, 24])


@dataclass(frozen=True)
class SyntheticCatalogue:
    """Items sorted by (category, launch day), with the arrays sampling needs."""

    codes: np.ndarray
    descriptions: np.ndarray
    category: np.ndarray  # category index per item
    price: np.ndarray
    pack: np.ndarray
    launch: np.ndarray  # day index; < 0 means on sale before the period
    cum_weight: np.ndarray  # global cumulative popularity, categories laid end to end
    cat_start: np.ndarray  # first item index of each category
    cat_launch: list[np.ndarray]  # launch days per category (sorted), for prefix look-ups


def generate(out: str | Path, params: dict[str, Any]) -> dict[str, Any]:
    """The generate step: write synthetic raw data (Parquet or CSV by suffix); returns a summary."""
    p = _settings(params)
    rng = np.random.default_rng(p["seed"])
    days = (p["end"] - p["start"]).days + 1
    cat = _catalogue(rng, p["items"], days)
    # More customers than needed; generation stops at the row target, at a customer boundary.
    n_customers = max(20, int(1.5 * p["rows"] / _rows_per_customer(p, days)))
    customer_rng = np.random.default_rng([p["seed"], 1])
    customers = _customers(customer_rng, n_customers, days, p)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    writer, rows, used, order_offset = None, 0, 0, 0
    chunk = max(1, int(400_000 / _rows_per_customer(p, days)))
    try:
        for i, lo in enumerate(range(0, n_customers, chunk)):
            sel = slice(lo, min(lo + chunk, n_customers))
            frame = _purchases(np.random.default_rng([p["seed"], 2, i]), cat, customers, sel, days, p, order_offset)
            order_offset += int(frame.attrs["orders"])
            remaining = p["rows"] - rows
            full = len(frame) > remaining
            if full:
                per_customer = frame.groupby("_customer").size()
                frame = frame[frame["_customer"].isin(per_customer.index[per_customer.cumsum() <= remaining])]
            rows += len(frame)
            used += frame["_customer"].nunique()
            writer = _write_chunk(frame.drop(columns="_customer"), tmp, writer)
            if full:
                break
    finally:
        if writer is not None and hasattr(writer, "close"):
            writer.close()
    tmp.replace(out)
    return {
        "rows": rows,
        "customers": used,
        "items": len(cat.codes),
        "start": str(p["start"].date()),
        "end": str(p["end"].date()),
        "path": str(out),
    }


# The generator's model of a shop, not pipeline params: params.yaml's `synthetic` section sets the
# seed and the size (rows); tests and benchmarks may also vary the shape (e.g. a stationary shop).
SHAPE: dict[str, Any] = {
    "items": None,
    "start": "2010-12-01",
    "end": "2011-12-09",
    "lines_per_order": 9.0,
    "seasonality": 1.0,  # the yearly season's amplitude (0: stationary)
    "guest_share": 0.2,
    "new_customer_share": 0.55,
    "new_item_share": 0.35,
    "cancel_share": 0.015,
    "duplicate_share": 0.01,
    "zero_price_share": 0.002,
    "bad_quantity_share": 0.002,
    "missing_description_share": 0.003,
    "outlier_share": 0.00002,
}


def _settings(params: dict[str, Any]) -> dict[str, Any]:
    known = ["seed", "rows", *SHAPE]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"params: unknown synthetic setting(s) {unknown}; known: {known}")
    missing = [key for key in ("seed", "rows") if key not in params]
    if missing:
        raise InputError(f"params: synthetic.{missing[0]} is missing")
    p = {**SHAPE, **params}
    p["start"], p["end"] = pd.Timestamp(p["start"]), pd.Timestamp(p["end"])
    if p["end"] <= p["start"]:
        raise InputError("params: synthetic.end must be after synthetic.start")
    if int(p["rows"]) < 100:
        raise InputError(f"params: synthetic.rows must be at least 100, not {p['rows']}")
    p["rows"] = int(p["rows"])
    if p["items"] is None:  # about 4,000 items per 400k rows, growing with the square root of size
        p["items"] = int(np.clip(4000 * np.sqrt(p["rows"] / 400_000), 200, 50_000))
    return p


def _rows_per_customer(p: dict[str, Any], days: int) -> float:
    """Expected raw rows per customer, to turn the `rows` target into a customer count."""
    active_years = days / 365 * (1 - p["new_customer_share"] / 2)
    orders = 1 + float(LOYALTY @ ORDERS_PER_YEAR) * active_years
    dirt = 1 + p["cancel_share"] + p["duplicate_share"]
    return orders * p["lines_per_order"] * dirt


def _catalogue(rng: np.random.Generator, n_items: int, days: int) -> SyntheticCatalogue:
    names = list(CATEGORIES)
    cat = np.sort(rng.integers(0, len(names), n_items))
    launch = np.where(rng.random(n_items) < 0.65, -1, rng.integers(0, days, n_items))
    order = np.lexsort((launch, cat))
    cat, launch = cat[order], launch[order]
    descriptions = np.empty(n_items, dtype=object)
    for c, name in enumerate(names):
        idx = np.flatnonzero(cat == c)
        combos = len(COLOURS) * len(PATTERNS) * len(SIZES)
        picks = rng.permutation(max(combos, len(idx)))[: len(idx)]
        descriptions[idx] = [
            f"{SIZES[k // (len(COLOURS) * len(PATTERNS)) % len(SIZES)]}{COLOURS[k % len(COLOURS)]} "
            f"{PATTERNS[k // len(COLOURS) % len(PATTERNS)]} {name}" + (f" {k // combos + 1}" if k >= combos else "")
            for k in picks
        ]
    base = np.array([CATEGORIES[n][0] for n in names])
    price = np.round(base[cat] * rng.lognormal(0.0, 0.35, n_items), 2).clip(0.19)
    numbers = rng.permutation(np.arange(10000, 10000 + max(n_items, 80000)))[:n_items]
    suffix = np.where(rng.random(n_items) < 0.3, rng.choice(list("ABCDEFGHJKLMNPRSTW"), n_items), "")
    codes = np.array([f"{n}{s}" for n, s in zip(numbers, suffix, strict=True)], dtype=object)
    weight = np.empty(n_items)
    cat_start = np.searchsorted(cat, np.arange(len(names)))
    for c in range(len(names)):
        idx = np.flatnonzero(cat == c)
        weight[idx] = 1.0 / (rng.permutation(len(idx)) + 1.0) ** 0.9 if len(idx) else 0
    return SyntheticCatalogue(
        codes=codes,
        descriptions=descriptions,
        category=cat,
        price=price,
        pack=rng.choice(PACKS, n_items, p=[0.3, 0.1, 0.05, 0.1, 0.2, 0.05, 0.15, 0.05]),
        launch=launch,
        cum_weight=np.cumsum(weight),
        cat_start=cat_start,
        cat_launch=[launch[cat == c] for c in range(len(names))],
    )


def _customers(rng: np.random.Generator, n: int, days: int, p: dict[str, Any]) -> dict[str, np.ndarray]:
    names = list(COUNTRIES)
    probs = np.array(list(COUNTRIES.values()))
    country = rng.choice(len(names), n, p=probs / probs.sum())
    n_cat = len(CATEGORIES)
    country_bias = np.random.default_rng([p["seed"], 3]).gamma(0.5, 0.4, (len(names), n_cat))
    taste = rng.gamma(0.25 + country_bias[country], 1.0)
    taste /= taste.sum(axis=1, keepdims=True)
    loyalty = rng.choice(len(LOYALTY), n, p=LOYALTY)
    join = np.where(rng.random(n) < p["new_customer_share"], rng.integers(0, days, n), 0)
    return {
        "country": country,
        "taste": taste,
        "loyalty": loyalty,
        "join": join,
        "guest": rng.random(n) < p["guest_share"],
        "n_staples": 2 + rng.poisson(2 + 3 * loyalty),
    }


def _season(days: int, start: pd.Timestamp, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Daily demand (overall) and per-category seasonal multipliers, both by day index; `amplitude`
    scales the yearly season (0: a stationary shop, only the weekly rhythm left)."""
    doy = (start + pd.to_timedelta(np.arange(days), "D")).dayofyear.to_numpy()
    weekday = (start + pd.to_timedelta(np.arange(days), "D")).weekday.to_numpy()
    overall = (1 + 1.2 * np.exp(-(((doy - 320) / 35.0) ** 2))) * np.where(weekday == 5, 0.05, 1.0)
    peaks = [peak for _, peak in CATEGORIES.values()]
    per_cat = np.ones((days, len(peaks)))
    for c, peak in enumerate(peaks):
        if peak is not None:
            dist = np.minimum(np.abs(doy - peak), 365 - np.abs(doy - peak))
            per_cat[:, c] = 0.25 + 4.0 * np.exp(-((dist / 30.0) ** 2))
    if amplitude != 1.0:
        yearly = overall / np.where(weekday == 5, 0.05, 1.0)
        overall = (1 + amplitude * (yearly - 1)) * np.where(weekday == 5, 0.05, 1.0)
        per_cat = 1 + amplitude * (per_cat - 1)
    return overall, per_cat


def _purchases(
    rng: np.random.Generator,
    cat: SyntheticCatalogue,
    cust: dict[str, np.ndarray],
    sel: slice,
    days: int,
    p: dict[str, Any],
    order_offset: int,
) -> pd.DataFrame:
    ids = np.arange(sel.start, sel.stop)
    loyalty, join = cust["loyalty"][ids], cust["join"][ids]
    overall, per_cat = _season(days, p["start"], float(p["seasonality"]))

    # Orders: Poisson count over the active period, days drawn by seasonal demand after joining.
    active = (days - join) / 365.0
    n_orders = 1 + rng.poisson(ORDERS_PER_YEAR[loyalty] * active)
    o_cust = np.repeat(np.arange(len(ids)), n_orders)
    cdf = np.cumsum(overall) / overall.sum()
    lo = np.where(join[o_cust] > 0, cdf[join[o_cust] - 1], 0.0)
    o_day = np.searchsorted(cdf, lo + rng.random(len(o_cust)) * (1 - lo)).clip(0, days - 1)
    o_sec = rng.integers(8 * 3600, 19 * 3600, len(o_cust)) // 60 * 60
    n_lines = 1 + rng.poisson(p["lines_per_order"] - 1, len(o_cust))

    # Lines: a staple re-buy or an exploration (category by taste x season, item by popularity).
    l_order = np.repeat(np.arange(len(o_cust)), n_lines)
    l_cust, l_day = o_cust[l_order], o_day[l_order]
    n_cat = len(CATEGORIES)
    item = np.empty(len(l_order), dtype=np.int64)
    weights = cust["taste"][ids][l_cust] * per_cat[l_day]
    c = (
        (rng.random(len(l_order))[:, None] > np.cumsum(weights / weights.sum(1, keepdims=True), 1))
        .sum(1)
        .clip(0, n_cat - 1)
    )
    n_launched = np.zeros(len(l_order), dtype=np.int64)
    for k in range(n_cat):  # items on sale that day: a prefix of the category (sorted by launch)
        in_k = c == k
        n_launched[in_k] = np.searchsorted(cat.cat_launch[k], l_day[in_k], side="right")
    has = n_launched > 0
    first = cat.cat_start[c]
    w_lo = np.where(first > 0, cat.cum_weight[np.maximum(first - 1, 0)], 0.0)
    w_hi = cat.cum_weight[np.maximum(first + n_launched - 1, 0)]
    item[:] = np.searchsorted(cat.cum_weight, w_lo + rng.random(len(l_order)) * (w_hi - w_lo), side="right")
    item[~has] = -1

    staples = _staples(rng, cat, cust, ids)
    k_staple = cust["n_staples"][ids][l_cust]
    pick = staples[l_cust, (rng.random(len(l_order)) * k_staple).astype(int)]
    repeat = (rng.random(len(l_order)) < REPEAT_SHARE[loyalty[l_cust]]) & (cat.launch[pick] <= l_day)
    item = np.where(repeat, pick, item)
    keep = item >= 0
    item, l_order = item[keep], l_order[keep]
    l_cust, l_day = l_cust[keep], l_day[keep]
    # An item appears once per order: repeated draws add to the quantity instead.
    pair = pd.DataFrame({"o": l_order, "i": item}).drop_duplicates()
    item, l_order = pair["i"].to_numpy(), pair["o"].to_numpy()
    l_cust = o_cust[l_order]

    n = len(item)
    ts = p["start"] + pd.to_timedelta(o_day[l_order], "D") + pd.to_timedelta(o_sec[l_order], "s")
    customer_id = np.where(cust["guest"][ids][l_cust], np.nan, 12346.0 + ids[l_cust])
    country = np.array(list(COUNTRIES), dtype=object)[cust["country"][ids][l_cust]]
    frame = pd.DataFrame(
        {
            "InvoiceNo": (536365 + order_offset + l_order).astype(str).astype(object),
            "StockCode": cat.codes[item],
            "Description": cat.descriptions[item],
            "Quantity": (cat.pack[item] * (1 + rng.poisson(0.4 + 0.4 * loyalty[l_cust], n))).astype(np.int64),
            "InvoiceDate": ts,
            "UnitPrice": cat.price[item],
            "CustomerID": customer_id,
            "Country": country,
            "Category": np.array(list(CATEGORIES), dtype=object)[cat.category[item]],
            "_customer": ids[l_cust],  # internal: lets `generate` stop at a customer boundary
        }
    )
    frame = _add_dirt(rng, frame, p)
    frame = frame.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable")
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.attrs["orders"] = len(o_cust)
    return frame.reset_index(drop=True)


def _staples(
    rng: np.random.Generator, cat: SyntheticCatalogue, cust: dict[str, np.ndarray], ids: np.ndarray
) -> np.ndarray:
    """Each customer's staple items (category by taste, item uniform in it), padded to a rectangle."""
    width = int(cust["n_staples"][ids].max())
    cum_taste = np.cumsum(cust["taste"][ids], axis=1)
    cats = (rng.random((len(ids), width))[:, :, None] > cum_taste[:, None, :]).sum(-1).clip(0, len(CATEGORIES) - 1)
    start = cat.cat_start[cats]
    end = np.append(cat.cat_start[1:], len(cat.codes))[cats]
    return (start + (rng.random(cats.shape) * np.maximum(end - start, 1)).astype(np.int64)).clip(0, len(cat.codes) - 1)


def _add_dirt(rng: np.random.Generator, f: pd.DataFrame, p: dict[str, Any]) -> pd.DataFrame:
    n = len(f)
    f = f.copy()
    f.loc[rng.random(n) < p["zero_price_share"], "UnitPrice"] = 0.0
    bad_q = rng.random(n) < p["bad_quantity_share"]
    f.loc[bad_q, "Quantity"] = -f.loc[bad_q, "Quantity"]
    f.loc[bad_q & (rng.random(n) < 0.5), "CustomerID"] = np.nan
    f.loc[rng.random(n) < p["missing_description_share"], "Description"] = None
    f.loc[rng.random(n) < p["outlier_share"], "Quantity"] = rng.integers(20_000, 90_000)
    cancel = f[(rng.random(n) < p["cancel_share"]) & (f["Quantity"] > 0)].copy()
    cancel["InvoiceNo"] = "C" + cancel["InvoiceNo"]
    cancel["Quantity"] = -cancel["Quantity"]
    cancel["InvoiceDate"] = cancel["InvoiceDate"] + pd.to_timedelta(rng.integers(1, 72, len(cancel)), "h")
    dupes = f[rng.random(n) < p["duplicate_share"]]
    return pd.concat([f, cancel, dupes], ignore_index=True)


def _write_chunk(frame: pd.DataFrame, path: Path, writer: Any) -> Any:
    if path.name.endswith(".csv.tmp"):
        frame.to_csv(path, mode="a" if writer else "w", header=writer is None, index=False)
        return True
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer
