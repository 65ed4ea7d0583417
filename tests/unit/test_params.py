"""params.yaml's models: the shipped file passes; a misspelt key or a bad value is one line naming it,
from the loader and from the CLI (exit 2, as bad input)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from pipelines.core.config import load_params
from pipelines.core.errors import InputError
from pipelines.core.params import validate
from tests.conftest import ROOT

pytestmark = pytest.mark.unit
SHIPPED = load_params(ROOT / "params.yaml")


def changed(path: str, value: object) -> dict:
    """The shipped params with one key set (or removed, for value=KeyError)."""
    params = copy.deepcopy(SHIPPED)
    *parents, last = path.split(".")
    node = params
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return params


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "ranker.n_estimator",
            600,
            "unknown key ranker.n_estimator: neither shoprec's nor a LightGBM parameter "
            "(did you mean ranker.n_estimators?)",
        ),
        ("features.every_day", 7, "unknown key features.every_day (did you mean features.every_days?)"),
        (
            "candidates.selection.round",
            2,
            "unknown key candidates.selection.round (did you mean candidates.selection.rounds?)",
        ),
        ("split.test_days", 0, "split.test_days: Input should be greater than 0 (got 0)"),
        ("features.every_days", 35, "features.every_days: Input should be less than 35"),
        ("publish.store", "s3", "publish.store: Input should be 'sqlite' or 'redis'"),
        ("compute.backend", "spark", "compute.backend: Input should be 'local' or 'dask'"),
        ("compute.workers", 0, "compute.workers: Input should be greater than 0"),
        ("gate.max_drift_share", "half", "gate.max_drift_share: Input should be a valid number"),
        ("recommend.k", KeyError, "recommend.k is missing"),
    ],
)
def test_a_bad_key_or_value_is_named_in_one_line(path, value, message):
    with pytest.raises(InputError) as err:
        validate(changed(path, value), "params.yaml")
    assert str(err.value).startswith(f"params.yaml: {message}") and "\n" not in str(err.value)


def test_lightgbm_parameters_pass_through_the_ranker_section():
    assert validate(changed("ranker.lambda_l2", 1.0))["ranker"]["lambda_l2"] == 1.0  # a LightGBM parameter
    assert validate(changed("ranker.reg_lambda", 1.0))["ranker"]["reg_lambda"] == 1.0  # and an alias of one
    assert validate(SHIPPED) == SHIPPED


@pytest.mark.parametrize("key", ["num_iterations", "num_boost_round", "early_stopping_round", "random_state"])
def test_lightgbm_aliases_of_what_shoprec_sets_are_refused(key):
    with pytest.raises(InputError, match=f"ranker.{key} is set by shoprec itself"):
        validate(changed(f"ranker.{key}", 10))


def test_lightgbm_names_are_read_from_its_library_as_lightgbm_reads_them():
    """Every step validates params: reading LightGBM's table must give LightGBM's own, without
    importing the lightgbm package (it imports scikit-learn: most of a second in every step)."""
    code = (
        "import sys; from pipelines.core.params import _lightgbm_aliases; table = _lightgbm_aliases(); "
        "assert 'lightgbm' not in sys.modules; from lightgbm.basic import _ConfigAliases; "
        "assert {k: [k, *v] for k, v in table.items()} == _ConfigAliases._get_all_param_aliases(); print(len(table))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and int(res.stdout) > 100, res.stderr


def test_values_are_coerced_to_their_types_and_true_is_no_number():
    assert validate(changed("recommend.k", "20"))["recommend"]["k"] == 20
    with pytest.raises(InputError, match="recommend.k: Value error, a number is needed, not true/false"):
        validate(changed("recommend.k", True))
    assert validate(changed("candidates.selection", None))["candidates"]["selection"] is None  # the whole union


def test_the_cli_fails_on_a_misspelt_param_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed("split.train_cutoff", 2)))
    res = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "split", "--clean", "x.parquet", "--out", "out",
         "--metrics", "m.json", "--params", str(tmp_path / "params.yaml")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "shoprec split: running",
        f"shoprec: error: {tmp_path / 'params.yaml'}: unknown key split.train_cutoff "
        "(did you mean split.train_cutoffs?)",
    ]
