"""The DVC pipeline run once on small synthetic data in a fresh git repo, shared by the e2e tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def command_env() -> dict[str, str]:
    """This process's environment with the venv first on PATH, DVC and telemetry quiet, a git identity."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }


def run(cmd: list[str], cwd: Path, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with the venv first on PATH (and `env` added); assert success unless ok=False."""
    res = subprocess.run(cmd, cwd=cwd, env={**command_env(), **(env or {})}, capture_output=True, text=True)
    if ok:
        assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None, token: str | None = None) -> Any:
    """GET (or POST `body`) a JSON API on loopback and return the decoded answer."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as response:
        return json.loads(response.read())


def wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float) -> Any:
    """Poll a starting server's JSON endpoint until it answers; fail with its log if it dies or times out."""
    import time
    import urllib.error

    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_json(url)
        except (OSError, urllib.error.HTTPError):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)


def output(cmd: list[str], cwd: Path) -> str:
    res = run(cmd, cwd)
    return res.stdout + res.stderr


def shoprec(*args: str, cwd: Path, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run([str(BIN / "shoprec"), *args], cwd, ok, env)


PROJECT_ROWS = 15_000


def shared_dir(config: pytest.Config) -> Path:
    """A directory of this test run shared by its xdist workers (this process's base temp without xdist)."""
    base = config._tmp_path_factory.getbasetemp()  # the `tmp_path_factory` fixture's object
    return base.parent if hasattr(config, "workerinput") else base


def start_project(root: Path) -> subprocess.Popen:
    """Lay out a copy of the project (code, dvc.yaml, params with a small data size) in a fresh git repo
    at `root` and start its `dvc repro` in the background; `root/repro.rc` holds its exit code when done."""
    for tree in ("pipelines", "feature_repo"):
        shutil.copytree(ROOT / tree, root / tree, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", root)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthetic"]["rows"] = PROJECT_ROWS
    params["monitor"]["sample_rows"] = 5_000
    # 15k rows come from a few hundred customers, whose features repeat over their ~300 candidates:
    # the drift shares of so few customers are noisy (about 0.5 here, 0.2 at the default 150k rows).
    params["gate"]["max_drift_share"] = 0.8
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    script = f'"{sys.executable}" -m dvc repro > repro.log 2>&1; echo $? > repro.rc.tmp && mv repro.rc.tmp repro.rc'
    return subprocess.Popen(["bash", "-c", script], cwd=root, env=command_env(), start_new_session=True)


BUILD = pytest.StashKey[subprocess.Popen]()  # the background `dvc repro`, in the process that started it


@pytest.hookimpl(trylast=True)  # after `-m` has deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the reproduced `project` run last, and its `dvc repro` starts now, in the background
    (once per run, whichever xdist worker gets here first): the other tests run meanwhile."""
    needs = [item for item in items if "project" in getattr(item, "fixturenames", ())]
    if not needs:
        return
    items[:] = [item for item in items if "project" not in getattr(item, "fixturenames", ())] + needs
    root = shared_dir(config) / "project"
    try:
        root.mkdir()
    except FileExistsError:
        return  # another worker started it
    config.stash[BUILD] = start_project(root)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that ends early (-x, Ctrl-C) stops the background `dvc repro` it started."""
    build = config.stash.get(BUILD, None)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGTERM)


@pytest.fixture(scope="session")
def project(request) -> Path:
    """The project reproduced by the `dvc repro` that collection started (waited for here)."""
    import time

    root = shared_dir(request.config) / "project"
    rc, deadline = root / "repro.rc", time.monotonic() + 1800
    while not rc.exists():
        assert root.is_dir() and time.monotonic() < deadline, f"{root}: the project's dvc repro never finished"
        time.sleep(1)
    assert rc.read_text().strip() == "0", f"dvc repro failed:\n{(root / 'repro.log').read_text()[-5000:]}"
    return root


@pytest.fixture
def own_project(project, tmp_path) -> Path:
    """A copy of the reproduced project (git, DVC cache, outputs, published versions) for a test that
    changes it: the shared `project` stays as the pipeline left it, whatever order the tests run in."""
    copy = tmp_path / "own_project"
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package) driven by Playwright; skipped where none is installed,
    except under REQUIRE_SERVICES=1 (CI), where a missing browser fails."""
    from tests.e2e.browser import CHROMIUM_ARGS, find_chromium

    executable = find_chromium()
    if executable is None:
        message = "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and REQUIRE_SERVICES=1")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def a_moving_purchase(project: Path, store: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Purchase events, a day after the published as-of date, that change a customer's top 20 as the
    published model re-ranks it (three orders of one of their kept candidates, searched over the first
    customers), and the item ids of that re-ranked top 20, computed here with the library."""
    import lightgbm as lgb

    from pipelines.data.events import Purchase
    from pipelines.serving.rerank import reranked

    current = project / "published" / "current"
    version = current.resolve().name
    as_of = pd.Timestamp(json.loads((current / "manifest.json").read_text())["data_window"]["as_of"], tz="UTC")
    booster = lgb.Booster(model_file=str(current / "model" / "ranker.lgb"))
    cands = pd.read_parquet(current / "candidates.parquet", columns=["customer_id", "item_id"])
    when = (as_of + pd.Timedelta(days=1)).isoformat()
    for customer, items in list(cands.groupby("customer_id", sort=False)["item_id"])[:50]:
        published = store.get("rec", customer, version)[1]
        entry = store.get("cand", customer, version)[1]
        # a store emptied under the test (as two xdist workers flushing one Redis database did) says so
        assert published is not None and entry is not None, (
            f"serving store: {customer} has rec {published is not None}, cand {entry is not None} in {version}"
            f" (live {store.live()}, complete versions {store.versions()})"
        )
        for item in items.iloc[[min(p, len(items) - 1) for p in (49, 20, 99)]]:
            events = [
                {
                    "type": "purchase",
                    "customer_id": customer,
                    "item_id": item,
                    "timestamp": when,
                    "order_id": f"e2e-{n}",
                }
                for n in range(3)
            ]
            bought = [
                Purchase(item, (as_of + pd.Timedelta(days=1)).to_pydatetime(), e["order_id"], 1.0, None) for e in events
            ]
            expected = [
                i["item_id"]
                for i in reranked(booster, booster.feature_name(), entry, bought, as_of.to_pydatetime(), published, 20)
            ]
            if expected != [i["item_id"] for i in published]:
                return events, expected
    raise AssertionError("no purchase of the first customers' candidates moves their lists")
