"""The CLI's own output: a step's summary is one line of its headline figures."""

import pytest

from pipelines.cli import _show

pytestmark = pytest.mark.unit


def test_a_summary_is_one_line_of_the_first_figures(capsys):
    _show({"test": {"recall": 0.123456, "pairs": 12, "ids": [1, 2]}, "model": "m", "ok": True}, limit=3)
    assert capsys.readouterr().out == "test.recall=0.1235, test.pairs=12, model=m, ... (1 more)\n"
    _show({"published": False, "reason": None})
    assert capsys.readouterr().out == "published=False, reason=None\n"
