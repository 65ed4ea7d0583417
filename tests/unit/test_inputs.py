"""Input drift on a hand-made stationary shop: quiet when nothing changes, and each planted change
alarms on its first day, named."""

import numpy as np
import pandas as pd
import pytest

from pipelines.core import schema as s
from pipelines.monitoring.inputs import input_drift

pytestmark = pytest.mark.unit

AS_OF = pd.Timestamp("2011-03-01")
PARAMS = {
    "days": 1,
    "reference_days": 28,
    "max_z": 6.0,
    "min_relative_change": 0.25,
    "max_rows_factor": 2.0,
    "min_share_change": 0.02,
    "min_rows": 50,
    "repriced_by": 0.2,
    "shock_p_value": 1e-6,
    "shock_ratio": 5.0,
    "shock_min_expected": 0.5,
}


def shop(seed: int = 0, days: int = 60, orders_per_day: int = 60) -> pd.DataFrame:
    """Orders of 5 lines a day over 100 items (prices fixed per item, two categories), 90% UK."""
    rng = np.random.default_rng(seed)
    items = np.array([f"i{n}" for n in range(100)])
    price = dict(zip(items, np.round(rng.uniform(1, 10, 100), 2), strict=True))
    popularity = 1 / np.arange(1, 101) ** 0.5
    rows = []
    for day in pd.date_range(AS_OF - pd.Timedelta(days=days), AS_OF - pd.Timedelta(days=1)):
        for o in range(orders_per_day):
            picked = rng.choice(items, 5, replace=False, p=popularity / popularity.sum())
            country = "United Kingdom" if rng.random() < 0.9 else "Germany"
            for item in picked:
                rows.append((f"{day:%j}-{o}", f"c{rng.integers(500)}", item, day + pd.Timedelta(hours=10),
                             float(rng.integers(1, 13)), price[item], country, int(item[1:]) % 2))  # fmt: skip
    frame = pd.DataFrame(rows, columns=[s.ORDER, s.CUSTOMER, s.ITEM, s.TS, s.QUANTITY, s.PRICE, s.COUNTRY, s.CATEGORY])
    frame[s.CATEGORY] = frame[s.CATEGORY].map({0: "candles", 1: "mugs"})
    return frame


LAST = shop()
LAST_DAY = LAST[s.TS] >= AS_OF - pd.Timedelta(days=1)


def alarms(frame: pd.DataFrame) -> dict[str, str]:
    result = input_drift(frame, AS_OF, PARAMS)
    return {c["input"]: c["line"] for c in result["checks"] if c["alarm"]}


def test_a_stationary_shop_raises_no_alarm_on_any_day():
    for seed in range(3):
        frame = shop(seed)
        for back in range(5):  # five consecutive days
            as_of = AS_OF - pd.Timedelta(days=back)
            assert input_drift(frame[frame[s.TS] < as_of], as_of, PARAMS)["alarms"] == [], (seed, back)


def test_all_quantities_one_alarms_on_quantity():
    broken = LAST.copy()
    broken.loc[LAST_DAY, s.QUANTITY] = 1.0
    found = alarms(broken)
    assert list(found) == ["quantity"] and "geometric mean quantity per line" in found["quantity"]


def test_a_repriced_category_is_named():
    moved = LAST.copy()
    moved.loc[LAST_DAY & (LAST[s.CATEGORY] == "mugs"), s.PRICE] *= 1.5
    found = alarms(moved)
    assert "repriced_share" in found and "(category: mugs)" in found["repriced_share"]


def test_a_new_country_is_named():
    arrivals = LAST[LAST_DAY].sample(frac=0.1, random_state=1).assign(**{s.COUNTRY: "Japan"})
    found = alarms(pd.concat([LAST[~LAST_DAY], LAST[LAST_DAY].drop(arrivals.index), arrivals]))
    assert list(found) == ["new_country_share"] and found["new_country_share"].endswith(": Japan")


def test_a_catalogue_swap_alarms_on_new_items():
    swapped = LAST.copy()
    swapped.loc[LAST_DAY, s.ITEM] = "new-" + swapped.loc[LAST_DAY, s.ITEM]
    found = alarms(swapped)
    assert "new_item_share" in found and "new items" in found["new_item_share"]


def test_a_demand_shock_names_the_items():
    day = LAST[LAST_DAY]
    extra = pd.concat([day[day[s.ITEM] == "i20"].head(1)] * 40, ignore_index=True)
    extra[s.ORDER] = [f"x{n}" for n in range(40)]
    found = alarms(pd.concat([LAST, extra], ignore_index=True))
    assert "demand_shock" in found and "i20 (" in found["demand_shock"]


def test_a_missing_day_alarms_but_a_day_the_shop_never_trades_does_not():
    assert list(alarms(LAST[~LAST_DAY])) == ["rows"]  # nothing came in on a trading day
    weekday = LAST[s.TS].dt.weekday == (AS_OF - pd.Timedelta(days=1)).weekday()
    first_order = LAST[s.ORDER].str.endswith("-0")
    quiet = LAST[~weekday | (first_order & ~LAST_DAY)]  # that weekday: one order a week, none on the last day
    assert alarms(quiet) == {}
