"""`--dist loadgroup` keeps an `xdist_group` on one worker: the slow e2e modules rely on it to share one
expensive fixture (a `dvc repro` on dask), and a pytest/pytest-xdist pair that drops the group does so
silently (pytest-xdist#1386, pytest 9.2 with pytest-xdist 3.8)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

GROUPED = """
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("i", range(4))
def test_records_its_worker(i):
    Path(os.environ["RECORD"], f"{__name__}-{i}").write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    suite, record = tmp_path / "suite", tmp_path / "record"
    suite.mkdir()
    record.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")  # not the project's settings
    for module in ("test_one.py", "test_two.py"):
        (suite / module).write_text(GROUPED)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
        cwd=suite,
        env={"RECORD": str(record), "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers = {path.name: path.read_text() for path in record.iterdir()}
    assert len(workers) == 8, workers
    assert len(set(workers.values())) == 1, f"the group 'together' ran on several workers: {workers}"
