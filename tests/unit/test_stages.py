"""dvc.yaml read by pipelines.orchestration.stages: commands rendered from the params, the edges, and deps that
cover every pipelines module a stage's code imports (so `dvc repro` never skips changed code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.core.errors import InputError
from pipelines.orchestration import stages
from tests.conftest import ROOT

pytestmark = pytest.mark.unit
PACKAGE = ROOT / "pipelines"


def test_stages_render_params_and_name_a_missing_one(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: >-\n      run --in ${data.raw}\n      --out out/a\n    deps: ['${data.raw}']\n"
        "    outs: [out/a]\n  b:\n    cmd: run b\n    deps: [out/a/part.parquet]\n"
        "    metrics: [{m/b.json: {cache: false}}]\n  c:\n    cmd: run c\n    deps: [out]\n"
    )
    spec = stages.load(tmp_path)
    assert spec["a"].command({"data": {"raw": "x.csv"}}) == "run --in x.csv --out out/a"
    assert spec["b"].outs == ("m/b.json",) and spec["b"].metrics == ("m/b.json",)
    assert stages.edges(spec) == {("a", "b"), ("a", "c")}  # a file inside an output; an output inside a dep
    assert stages.edges(spec, {"b", "c"}) == set()
    with pytest.raises(InputError, match=r"stage a: \$\{data.raw\} is not in the params"):
        spec["a"].command({"data": {}})
    with pytest.raises(InputError, match="dvc.yaml: not found"):
        stages.load(tmp_path / "nowhere")


def module_file(name: str) -> Path | None:
    """The file of a pipelines module or package, or None when `name` is not one (e.g. a function)."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(tree: ast.AST) -> set[str]:
    """Every pipelines module imported anywhere in `tree` (inside functions too: those imports run)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pipelines.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipelines"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    parents = {".".join(m.split(".")[:i]) for m in out for i in range(2, m.count(".") + 1)}
    return {m for m in out | parents if m != "pipelines" and module_file(m)}


def closure(start: set[str]) -> set[Path]:
    """The files of `start` and of every pipelines module they import, transitively."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imported(ast.parse(module_file(name).read_text()))
    return {module_file(m) for m in seen if not docstring_only(module_file(m))}


def docstring_only(path: Path) -> bool:
    """A package's __init__ that only documents it: nothing in it can change what a stage does."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def entry_imports() -> dict[str, set[str]]:
    """Per CLI command function (e.g. features_build), the pipelines modules it imports."""
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    return {f.name: imported(f) for f in tree.body if isinstance(f, ast.FunctionDef)}


def test_every_stage_depends_on_all_the_code_it_runs():
    commands, missing = entry_imports(), {}
    for name, stage in stages.load().items():
        words = stage.cmd.split()
        assert words[0] == "shoprec", f"stage {name} does not run the shoprec CLI"
        function = "_".join(w.replace("-", "_") for w in words[1:3] if not w.startswith("-"))
        function = function if function in commands else words[1].replace("-", "_")
        assert commands[function], f"stage {name}: `shoprec {function}` imports no pipelines module"
        deps = [ROOT / d for d in stage.deps]
        code = closure(commands[function]) | {PACKAGE / "cli.py"}  # the command's own wiring runs too
        uncovered = {str(f.relative_to(ROOT)) for f in code if not any(f == d or d in f.parents for d in deps)}
        if PACKAGE / "features" / "store.py" in code:  # reads Feast with the repo's configuration
            uncovered |= {"feature_repo/feature_store.yaml"} - set(stage.deps)
        if uncovered:
            missing[name] = sorted(uncovered)
    assert missing == {}, f"dvc.yaml deps miss code the stage runs: {missing}"
