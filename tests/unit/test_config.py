"""Parameters: the shipped params.yaml is complete, and broken files get one-line errors."""

import pytest

from pipelines.candidates import build_sources
from pipelines.core.config import load_params, override, section
from pipelines.core.errors import InputError
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_shipped_params_have_every_section_the_steps_read():
    params = load_params(ROOT / "params.yaml")
    for name in ("data", "synthetic", "ingest", "split", "candidates", "ranker", "recommend", "evaluate"):
        section(params, name)
    assert [src.name for src in build_sources(params["candidates"]["sources"])] == list(params["candidates"]["sources"])
    assert params["recommend"]["k"] >= max(params["evaluate"]["ks"])  # lists long enough for every k evaluated


def test_missing_invalid_and_non_mapping_files(tmp_path):
    with pytest.raises(InputError, match="parameters file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="mapping of sections"):
        load_params(tmp_path / "list.yaml")


def test_missing_section_is_named():
    with pytest.raises(InputError, match="section 'ranker' is missing"):
        section({"data": {}}, "ranker")


def test_override_sets_nested_keys_as_yaml_and_leaves_the_original():
    params = load_params(ROOT / "params.yaml")
    tifu = "{n: 100, group_size: 3, within_decay: 1.0, group_decay: 0.7, neighbours: 50, alpha: 0.7"
    tifu += ", exclude_bought: false}"
    sets = ["ranker.num_leaves=63", f"candidates.sources.tifu_knn={tifu}", "split.test_days=14"]
    out = override(params, sets)
    assert out["ranker"]["num_leaves"] == 63 and out["split"]["test_days"] == 14
    assert out["candidates"]["sources"]["tifu_knn"]["neighbours"] == 50
    assert params["ranker"]["num_leaves"] == 31 and "tifu_knn" not in params["candidates"]["sources"]
    with pytest.raises(InputError, match="unknown key ranker.num_leavs"):
        override(params, ["ranker.num_leavs=63"])  # overrides are checked like the file


def test_override_names_a_bad_assignment():
    with pytest.raises(InputError, match="'ranker' is not key=value"):
        override({}, ["ranker"])
    with pytest.raises(InputError, match="'num_leaves' is not a section"):
        override(load_params(ROOT / "params.yaml"), ["ranker.num_leaves.x=1"])
