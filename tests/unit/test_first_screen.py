"""The first screen says what changed, whether it blocks publishing (as the gate would) and what to look at."""

import pandas as pd
import pytest

from pipelines.monitoring.first_screen import first_screen, render_first_screen
from pipelines.monitoring.gate import decide

pytestmark = pytest.mark.unit

GATE = {
    "min_metrics": {},
    "beat_sources_on": None,
    "max_drift_share": 0.5,
    "block_on_inputs": ["quantity"],
    "compare_on": [],
    "max_regression": 0.02,
    "min_realised": {},
}


def check(name: str, column: str, alarm: bool) -> dict:
    return {"input": name, "column": column, "alarm": alarm, "line": f"{name}: {'ALARM' if alarm else 'stable'}"}


def drift(quantity: bool = False, country: bool = False, drifted: tuple = ()) -> dict:
    features = ["age_days", "buyers_7d", "price"]
    return {
        "features": len(features),
        "drifted": len(drifted),
        "share": len(drifted) / len(features),
        "drifted_features": list(drifted),
        "verdicts": {f: f"{f}: {'DRIFTED' if f in drifted else 'stable'}" for f in features},
        "inputs": {
            "days": ["2011-12-09"],
            "reference_days": 28,
            "checks": [check("quantity", "quantity", quantity), check("new_country_share", "country", country)],
        },
    }


def test_nothing_changed_says_so_and_does_not_block():
    screen = first_screen(drift(), GATE)
    assert screen["headline"].startswith("Nothing changed") and not screen["blocks"] and screen["look_at"] == []


def test_a_blocking_input_alarm_blocks_as_the_gate_does():
    d = drift(quantity=True)
    screen = first_screen(d, GATE)
    assert screen["blocks"] and screen["blocking"] == ["input quantity"]
    assert screen["headline"] == "Changed: quantity (quantity): this blocks publishing (input quantity)."
    assert screen["look_at"] == ["quantity: ALARM"]
    assert not decide({}, {}, d, None, GATE)["passed"]  # the gate agrees


def test_other_alarms_are_named_but_do_not_block():
    screen = first_screen(drift(country=True, drifted=("buyers_7d",)), GATE)
    assert not screen["blocks"]
    assert screen["headline"] == (
        "Changed: new_country_share (country); 1 of 3 ranker features (buyers_7d): "
        "this does not block publishing (within the gate's drift limits)."
    )
    assert screen["look_at"] == ["new_country_share: ALARM", "buyers_7d: DRIFTED"]


def test_the_page_leads_with_the_headline_and_lists_alarms_first():
    d = drift(country=True)
    d["first_screen"] = first_screen(d, GATE)
    page = render_first_screen(d, pd.Timestamp("2011-12-10"))
    assert page.index('id="headline"') < page.index('id="look-at"') < page.index('id="inputs"')
    assert "DOES NOT BLOCK" in page
    table = page[page.index('id="inputs"') :]
    assert table.index("new_country_share: ALARM") < table.index("quantity: stable")
