"""Personal data: the salt of its hashes, and the hash itself.

Staging (dbt's ``hash_pii`` macro) and quarantine (a failing record's personal fields) hash personal values
the same way, ``sha256(salt || value)`` in hex, so an auditor can match a quarantined record to the staged
ones without either holding the value in clear.
"""

from __future__ import annotations

import hashlib
import os
import secrets

from .config import settings, write_once

PII_SALT_ENV = "EDW_PII_SALT"


def pii_salt() -> str:
    """The salt of the hashes that replace personal data in staging: ``EDW_PII_SALT``, else (the embedded
    default) a random one made once for the data directory and kept in ``$EDW_DATA_DIR/.pii_salt``.

    Never a value from the repository: with a known salt, a phone number's hash is reversed by hashing
    the few billion possible numbers. Keep the salt (or the file) to keep hashes stable across builds."""
    value = (os.environ.get(PII_SALT_ENV) or "").strip()
    if value:
        return value
    # concurrent first runs agree on one salt
    return write_once(settings().data_dir / ".pii_salt", secrets.token_hex(32), mode=0o600)


HASH_PREFIX = "sha256:"


def hash_value(value: object, salt: str) -> str:
    """A personal value as the salted hash staging gives it, marked ``sha256:`` (the text of the value)."""
    return HASH_PREFIX + hashlib.sha256((salt + str(value)).encode("utf-8")).hexdigest()
