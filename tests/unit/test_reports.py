"""The shared Evidently workspace: reports take turns, so concurrent runs keep each other's entries."""

import fcntl
import json
import threading

import pytest

from pipelines.monitoring.reports import LOCK_FILE, add_runs

pytestmark = pytest.mark.unit


def test_a_report_waits_while_another_holds_the_workspace(tmp_path):
    add_runs(tmp_path, [], 10, 20, "runs/weekly")  # creates the project and the run index
    with (tmp_path / LOCK_FILE).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another run is reporting
        other = threading.Thread(target=add_runs, args=(tmp_path, [], 10, 20, "runs/daily"))
        other.start()
        other.join(1.0)
        assert other.is_alive()  # waits its turn instead of reading a half-updated index
        fcntl.flock(held, fcntl.LOCK_UN)
    other.join(60)
    assert not other.is_alive()
    assert set(json.loads((tmp_path / "shoprec-runs.json").read_text())) == {"runs/weekly", "runs/daily"}
