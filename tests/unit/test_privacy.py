"""Pseudonymisation: keyed, stable, collision-free in practice, and the key never in code paths."""

import pandas as pd
import pytest

from pipelines.core.errors import InputError
from pipelines.data.privacy import DEV_KEY, pseudonym_key, pseudonymise

pytestmark = pytest.mark.unit


def test_same_id_same_pseudonym_and_none_stays_none():
    out = pseudonymise(pd.Series(["17850", None, "17850", "13047"]), b"k")
    assert out[0] == out[2] and out[0] != out[3]
    assert out[1] is None
    assert len(out[0]) == 20 and "17850" not in out[0]


def test_the_key_changes_every_pseudonym():
    ids = pd.Series(["a", "b"])
    assert not (pseudonymise(ids, b"one") == pseudonymise(ids, b"two")).any()


def test_key_from_env_then_file_then_dev_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SHOPREC_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("SHOPREC_PSEUDONYM_KEY_FILE", raising=False)
    assert pseudonym_key() == DEV_KEY.encode()
    secret = tmp_path / "key"
    secret.write_text("from-file\n")
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY_FILE", str(secret))
    assert pseudonym_key() == b"from-file"
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY", "from-env")
    assert pseudonym_key() == b"from-env"


def test_missing_or_empty_key_file_is_an_input_error(monkeypatch, tmp_path):
    monkeypatch.delenv("SHOPREC_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(InputError, match="key file"):
        pseudonym_key()
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY_FILE", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="empty"):
        pseudonym_key()
