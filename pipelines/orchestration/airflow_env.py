"""The Airflow installation shoprec runs in: its environment, local (`make airflow`) or production.

Local: `airflow standalone` with the project's DAGs only, its home in `.airflow/` (SQLite metadata
database), the API and UI on 127.0.0.1:`port`, user `admin` with the password from
SHOPREC_AIRFLOW_PASSWORD or, without it, one Airflow generates and prints once (kept in
`.airflow/simple_auth_manager_passwords.json.generated`). Never a fixed default.
Production: the same DAGs with a PostgreSQL metadata database and the LocalExecutor
(SHOPREC_AIRFLOW_DB, default the CI server on 127.0.0.1:5432); see docs/airflow.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines.core.config import CHECKOUT, tool, venv_path

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/shoprec_airflow"


def airflow_env(home: str | Path, port: int = 8081, production: bool = False, db: str | None = None) -> dict[str, str]:
    """Environment variables of an Airflow installation over the project's DAGs; production uses the
    PostgreSQL database `db` (default: SHOPREC_AIRFLOW_DB, else the CI server)."""
    env = {
        "AIRFLOW_HOME": str(Path(home).resolve()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH", "")) if p),
    }
    if production:
        db = db or os.environ.get("SHOPREC_AIRFLOW_DB", DEFAULT_DB)
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = db
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = db  # psycopg 3 is async too (no asyncpg needed)
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    return env


def set_password(home: str | Path, password: str) -> Path:
    """Make `password` the admin's (Airflow's simple auth manager reads this file)."""
    path = Path(home) / "simple_auth_manager_passwords.json.generated"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"admin": password}) + "\n")
    path.chmod(0o600)
    return path


def standalone(home: str | Path = CHECKOUT / ".airflow", port: int = 8081) -> None:
    """Replace this process with `airflow standalone` over the project's DAGs (`make airflow`)."""
    env = {**os.environ, **airflow_env(home, port), "PATH": venv_path()}  # standalone starts `airflow ...` itself
    password = os.environ.get("SHOPREC_AIRFLOW_PASSWORD")
    if password:
        set_password(home, password)
    print(
        f"Airflow on http://127.0.0.1:{port}, user admin, password "
        + (
            "from SHOPREC_AIRFLOW_PASSWORD"
            if password
            else "generated and printed once below (then in "
            f"{Path(home) / 'simple_auth_manager_passwords.json.generated'})"
        ),
        flush=True,
    )
    os.execve(tool("airflow"), ["airflow", "standalone"], env)


def cli_json(stdout: str) -> Any:
    """The JSON an `airflow ... -o json` command printed on stdout, after any warning lines."""
    for i, line in enumerate(stdout.splitlines()):
        if line[:1] in "[{":
            return json.loads("\n".join(stdout.splitlines()[i:]))
    raise ValueError(f"no JSON in the output: {stdout[:200]!r}")
