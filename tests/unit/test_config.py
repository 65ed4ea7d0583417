"""Parameters: the shipped params.yaml is complete, and broken files get one-line errors."""

import pytest

from pipelines.candidates import build_sources
from pipelines.config import load_params, section
from pipelines.errors import InputError
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
