"""The synthetic generator: the Online Retail layout, its dirt, and the structure a recommender learns from."""

import pandas as pd
import pytest

from pipelines.core.errors import InputError
from pipelines.data.synthetic import generate

pytestmark = pytest.mark.data
UCI_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


@pytest.fixture(scope="module")
def raw(synthetic_path) -> pd.DataFrame:
    return pd.read_parquet(synthetic_path)


def test_layout_and_types_match_online_retail(raw, online_retail_path):
    real = pd.read_parquet(online_retail_path)
    assert list(raw.columns[:8]) == UCI_COLUMNS and list(raw.columns[8:]) == ["Category"]
    assert raw[UCI_COLUMNS].dtypes.to_dict() == real[UCI_COLUMNS].dtypes.to_dict()
    pd.to_datetime(raw.InvoiceDate, format="%Y-%m-%d %H:%M:%S")  # the same string layout


def test_size_tracks_the_target(raw):
    assert 0.97 * 20_000 <= len(raw) <= 20_000  # stops at the target, at a customer boundary


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, synthetic_path):
    again = tmp_path / "again.parquet"
    generate(again, {"seed": 7, "rows": 20_000})
    assert pd.read_parquet(again).equals(pd.read_parquet(synthetic_path))
    other = tmp_path / "other.parquet"
    generate(other, {"seed": 8, "rows": 20_000})
    assert not pd.read_parquet(other).equals(pd.read_parquet(synthetic_path))


def test_every_kind_of_dirt_is_present(raw):
    assert raw.CustomerID.isna().mean() > 0.1  # guest orders
    cancelled = raw.InvoiceNo.str.startswith("C")
    assert cancelled.sum() > 0 and (raw.Quantity[cancelled] < 0).all()
    assert (raw.Quantity[~cancelled] <= 0).sum() > 0  # returns / damages without a 'C'
    assert (raw.UnitPrice <= 0).sum() > 0
    assert raw.duplicated().sum() > 0
    assert raw.Description.isna().sum() > 0


def test_structure_repeat_purchases_seasonality_and_newcomers(raw):
    df = raw[raw.CustomerID.notna() & (raw.Quantity > 0) & ~raw.InvoiceNo.str.startswith("C")].copy()
    df["ts"] = pd.to_datetime(df.InvoiceDate)
    cut = pd.Timestamp("2011-11-01")
    past, future = df[df.ts < cut], df[df.ts >= cut]
    pairs = future[["CustomerID", "StockCode"]].drop_duplicates()
    seen = pairs.merge(past[["CustomerID", "StockCode"]].drop_duplicates(), how="inner")
    assert 0.15 < len(seen) / len(pairs) < 0.6  # repeat purchases, but not only
    per_month = df.groupby(df.ts.dt.month).size()
    assert per_month[11] > 1.8 * per_month[2]  # the Christmas peak
    first_seen = df.groupby("CustomerID").ts.min()
    assert (first_seen > pd.Timestamp("2011-06-01")).mean() > 0.15  # customers keep arriving
    item_first = df.groupby("StockCode").ts.min()
    assert (item_first > pd.Timestamp("2011-06-01")).mean() > 0.1  # so do items
    by_country = df.groupby("Country").size()
    assert by_country.idxmax() == "United Kingdom" and len(by_country) > 5
    # loyalty: the most active customers buy far more often than the median one
    orders = df.groupby("CustomerID").InvoiceNo.nunique()
    assert orders.quantile(0.95) >= 4 * orders.median()


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(InputError, match="unknown synthetic setting"):
        generate(tmp_path / "x.parquet", {"rowz": 10})
    with pytest.raises(InputError, match="at least 100"):
        generate(tmp_path / "x.parquet", {"seed": 1, "rows": 5})
    with pytest.raises(InputError, match="synthetic.seed is missing"):
        generate(tmp_path / "x.parquet", {"rows": 500})
