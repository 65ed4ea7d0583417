"""dvc.yaml, read once: the pipeline's stages, their commands with `${...}` rendered from the params,
and the edges between them (stage A -> stage B when B depends on something A writes).

The one description of the pipeline: `dvc repro` runs it, the Airflow DAGs derive their tasks and
edges from it, and tests check it. Only the standard library and yaml: DAG files parse it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.config import CHECKOUT  # the code's own dvc.yaml describes its pipeline
from pipelines.core.errors import InputError

DVC_YAML = "dvc.yaml"
_VAR = re.compile(r"\$\{\s*([\w.-]+)\s*\}")


@dataclass(frozen=True)
class Stage:
    """One stage: its command (with `${...}` unrendered), what it reads and what it writes."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # outs, metrics and plots
    metrics: tuple[str, ...]
    params: tuple[str, ...]

    def command(self, params: dict[str, Any]) -> str:
        """The command with every `${a.b}` replaced by params["a"]["b"]."""
        return render(self.cmd, params, f"{DVC_YAML}: stage {self.name}")


def render(text: str, params: dict[str, Any], where: str) -> str:
    """`text` with each `${dotted.key}` replaced by its value in `params`; a missing key is named."""

    def value(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise InputError(f"{where}: ${{{match.group(1)}}} is not in the params")
            node = node[part]
        return str(node)

    return _VAR.sub(value, text)


def _names(entries: list[Any]) -> tuple[str, ...]:
    """Paths of a deps/outs/params list, whose entries are strings or one-key mappings."""
    return tuple(e if isinstance(e, str) else next(iter(e)) for e in entries or [])


def load(project: str | Path = CHECKOUT) -> dict[str, Stage]:
    """The stages of `project`/dvc.yaml in file order (read once per process and project)."""
    return _load(Path(project).resolve())


@functools.cache
def _load(project: Path) -> dict[str, Stage]:
    path = project / DVC_YAML
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found") from None
    stages = (doc or {}).get("stages")
    if not isinstance(stages, dict) or not stages:
        raise InputError(f"{path}: no stages")
    return {
        name: Stage(
            name,
            " ".join(str(spec["cmd"]).split()),
            _names(spec.get("deps")),
            _names([o for key in ("outs", "metrics", "plots") for o in spec.get(key) or []]),
            _names(spec.get("metrics")),
            _names(spec.get("params")),
        )
        for name, spec in stages.items()
    }


def _overlap(a: str, b: str) -> bool:
    """The same path, or one inside the other."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def edges(stages: dict[str, Stage], among: set[str] | None = None) -> set[tuple[str, str]]:
    """(A, B) when B depends on an output of A, between the stages `among` (default: all). Paths are
    compared as written: a dep given as `${...}` (generate's output as ingest's `${data.raw}`) links nothing."""
    names = [n for n in stages if among is None or n in among]
    return {
        (a, b)
        for b in names
        for a in names
        if a != b and any(_overlap(d, o) for d in stages[b].deps for o in stages[a].outs)
    }
