"""Parameters (`params.yaml`) and the project's well-known paths."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import InputError

PARAMS_FILE = Path(os.environ.get("SHOPREC_PARAMS", "params.yaml"))
CHECKOUT = Path(__file__).resolve().parents[2]  # this checkout of shoprec: dvc.yaml, dags/, feature_repo/


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Read the parameters file (default: `$SHOPREC_PARAMS` or `./params.yaml`)."""
    path = Path(path) if path is not None else PARAMS_FILE
    if not path.is_file():
        raise InputError(f"{path}: parameters file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(params, dict):
        raise InputError(f"{path}: expected a mapping of sections at the top level")
    from pipelines.core.params import validate  # pydantic: loaded only when params are

    return validate(params, str(path))


def tool(name: str) -> str:
    """A command-line tool installed beside the running interpreter (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise InputError(f"{name}: not installed beside {sys.executable} nor on PATH (run `make install`)")
    return found


def venv_path() -> str:
    """PATH with the running interpreter's bin/ first: tools that start other tools find this venv's."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def override(params: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """A copy of `params` with each `dotted.key=value` set (the value read as YAML), as `dvc exp run -S` does."""
    out = copy.deepcopy(params)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise InputError(f"params: override '{assignment}' is not key=value")
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"params: override '{assignment}': '{part}' is not a section")
        node[last] = yaml.safe_load(value)
    from pipelines.core.params import validate

    return validate(out, "params (with overrides)")


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One section of the parameters, with a clear error when it is missing."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise InputError(f"params: section '{name}' is missing or not a mapping")
    return value
