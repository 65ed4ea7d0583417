"""Parameters (`params.yaml`) and the project's well-known paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import InputError

PARAMS_FILE = Path(os.environ.get("SHOPREC_PARAMS", "params.yaml"))


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
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One section of the parameters, with a clear error when it is missing."""
    value = params.get(name)
    if not isinstance(value, dict):
        raise InputError(f"params: section '{name}' is missing or not a mapping")
    return value
