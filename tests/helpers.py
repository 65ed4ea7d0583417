"""Helpers shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

from pipelines.core.config import load_params
from tests.conftest import ROOT

SHIPPED = load_params(ROOT / "params.yaml")


def shipped(section: str, **changes: Any) -> dict[str, Any]:
    """A copy of one section of the shipped params.yaml with `changes` set: tests give only what they vary."""
    return {**copy.deepcopy(SHIPPED[section]), **changes}
