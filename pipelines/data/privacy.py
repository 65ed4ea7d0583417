"""Pseudonymisation of customer ids with a keyed hash (HMAC-SHA256).

The key comes from `$SHOPREC_PSEUDONYM_KEY`, or from the file named by
`$SHOPREC_PSEUDONYM_KEY_FILE`; never from code. Without either, a documented development
key is used and a warning says so: fine for the synthetic data, not for a shop's real data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

import pandas as pd

from pipelines.core.errors import InputError

log = logging.getLogger(__name__)

DEV_KEY = "shoprec-development-key"
DIGEST_CHARS = 20  # 80 bits: collision-free for any realistic customer base


def pseudonym_key() -> bytes:
    """The pseudonymisation key from the environment or a secret file."""
    key = os.environ.get("SHOPREC_PSEUDONYM_KEY")
    key_file = os.environ.get("SHOPREC_PSEUDONYM_KEY_FILE")
    if key:
        return key.encode()
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise InputError(f"{path}: pseudonymisation key file (SHOPREC_PSEUDONYM_KEY_FILE) not found")
        secret = path.read_bytes().strip()
        if not secret:
            raise InputError(f"{path}: pseudonymisation key file is empty")
        return secret
    log.warning("SHOPREC_PSEUDONYM_KEY is not set: using the development key (not for real customer data)")
    return DEV_KEY.encode()


def pseudonymise(ids: pd.Series, key: bytes) -> pd.Series:
    """Map each id to a stable keyed digest; hashes each distinct id once."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    digests = [hmac.new(key, str(u).encode(), hashlib.sha256).hexdigest()[:DIGEST_CHARS] for u in uniques]
    mapped = pd.Series(digests, dtype=object).take(codes)
    mapped.index = ids.index
    return mapped.where(codes >= 0, None)
