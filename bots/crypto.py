"""Bot tokens at rest: Fernet with rotation (MultiFernet).

`NEZUKO_ENCRYPTION_KEYS` is a comma-separated list; the first key encrypts,
every key decrypts, so a new key is put first and `manage.py rotate_keys`
re-encrypts the stored tokens before the old key is dropped.
"""

import hashlib
import re
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Telegram's token shape: "<bot id>:<35 url-safe characters>".
TOKEN_FORMAT = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,64}$")


class TokenDecryptError(Exception):
    """A stored token cannot be read with the configured keys."""


def is_token_format(token: str) -> bool:
    return bool(TOKEN_FORMAT.match(token or ""))


def bot_id_from_token(token: str) -> int:
    return int(token.split(":", 1)[0])


def token_fingerprint(token: str) -> str:
    """A one-way digest: lets the database refuse a token registered twice."""
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("NEZUKO_ENCRYPTION_KEYS is empty.")
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "NEZUKO_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.NEZUKO_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise TokenDecryptError(
            "none of NEZUKO_ENCRYPTION_KEYS decrypts it (was a key removed or changed?)"
        ) from exc


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the first key; raises TokenDecryptError like decrypt."""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise TokenDecryptError("none of NEZUKO_ENCRYPTION_KEYS decrypts it") from exc
