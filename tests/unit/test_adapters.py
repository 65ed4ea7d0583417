"""Adapters: the UCI layout and a mapped export onto the canonical columns, strict coercion."""

import pandas as pd
import pytest

from pipelines.core import schema as s
from pipelines.core.errors import InputError
from pipelines.data.adapters import ONLINE_RETAIL, resolve_format, to_canonical

pytestmark = pytest.mark.unit


def uci(**overrides):
    base = {
        "InvoiceNo": ["536365", "C536366", "536367"],
        "StockCode": ["85123A", "71053", "84406B"],
        "Description": ["WHITE HANGING HEART", " METAL LANTERN ", None],
        "Quantity": [6, -6, 8],
        "InvoiceDate": ["2010-12-01 08:26:00", "2010-12-01 08:28:00", "2010-12-01 08:34:00"],
        "UnitPrice": [2.55, 3.39, 2.75],
        "CustomerID": [17850.0, None, 13047.0],
        "Country": ["United Kingdom", "France", "United Kingdom"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_online_retail_maps_every_column_and_flags_cancellations():
    out, absent, numeric_ids = to_canonical(uci(), ONLINE_RETAIL, "f.parquet")
    assert list(out.columns) == [*s.COLUMNS, "cancelled"]
    assert absent == [s.CATEGORY]
    assert numeric_ids == {s.CUSTOMER}
    assert out[s.CUSTOMER].tolist() == ["17850", None, "13047"]  # float ids lose '.0'
    assert out["cancelled"].tolist() == [False, True, False]
    assert out[s.DESCRIPTION].tolist() == ["WHITE HANGING HEART", "METAL LANTERN", None]
    assert out[s.TS].dtype == "datetime64[ns]"
    assert out[s.QUANTITY].tolist() == [6.0, -6.0, 8.0]


def test_mapped_export_needs_only_customer_item_timestamp():
    raw = pd.DataFrame({"user": ["a", "b"], "sku": [1, 2], "ts": ["2011-01-01T10:00:00Z", "2011-01-02T10:00:00+01:00"]})
    fmt = resolve_format({"format": "mapped", "columns": {"customer_id": "user", "item_id": "sku", "timestamp": "ts"}})
    out, absent, numeric_ids = to_canonical(raw, fmt, "shop.csv")
    assert set(absent) == {s.ORDER, s.QUANTITY, s.PRICE, s.COUNTRY, s.DESCRIPTION, s.CATEGORY}
    assert numeric_ids == {s.ITEM}
    assert out[s.ITEM].tolist() == ["1", "2"]
    assert out[s.QUANTITY].tolist() == [1.0, 1.0]
    assert out[s.TS].tolist() == [pd.Timestamp("2011-01-01 10:00"), pd.Timestamp("2011-01-02 09:00")]  # UTC
    assert out[s.ORDER].iloc[0].startswith("a@")  # a basket = one customer at one moment
    assert not out["cancelled"].any()


def test_mapped_unknown_canonical_column_is_refused():
    with pytest.raises(InputError, match="unknown canonical column"):
        resolve_format({"format": "mapped", "columns": {"user": "customer"}})


def test_unknown_format_is_refused():
    with pytest.raises(InputError, match="data.format"):
        resolve_format({"format": "excel-ish"})


def test_missing_required_column_names_it():
    with pytest.raises(InputError, match=r"f.csv: required column 'CustomerID' \(customer_id\) missing"):
        to_canonical(uci().drop(columns="CustomerID"), ONLINE_RETAIL, "f.csv")


def test_non_numeric_quantity_names_column_and_count():
    raw = uci(Quantity=["6", "six", "many"]).astype({"Quantity": object})
    with pytest.raises(InputError, match=r"f.csv: column 'Quantity' has 2 non-numeric value\(s\)"):
        to_canonical(raw, ONLINE_RETAIL, "f.csv")


def test_unparseable_dates_name_column_and_count():
    raw = uci(InvoiceDate=["2010-12-01 08:26:00", "yesterday", "2010-13-45"])
    with pytest.raises(InputError, match=r"column 'InvoiceDate' has 2 unparseable timestamp"):
        to_canonical(raw, ONLINE_RETAIL, "f.csv")


def test_other_date_layouts_are_parsed():
    raw = uci(InvoiceDate=["12/1/2010 8:26", "12/1/2010 8:28", "12/1/2010 8:34"])  # the UCI xlsx/csv layout
    out = to_canonical(raw, ONLINE_RETAIL, "f.csv").frame
    assert out[s.TS].iloc[0] == pd.Timestamp("2010-12-01 08:26")
