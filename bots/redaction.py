"""What never leaves the process in a log line, an error report or admin text.

It lives in `bots` (the bottom of the dependency chain) because the runtime
describes its own errors for admin with it; `nezuko.logging` and
`nezuko.observability` apply the same rule to every log record and Sentry event,
and the staff logs page (`dashboard.logring`) scrubs what it shows with `scrub_text`.

`redact` takes out bot tokens and login links (every log line); `scrub` and
`scrub_text` take out everything that could let someone in (Sentry events and
the logs page): values under secret-named keys and anything shaped like a
token, key, session id or login link, as `str` or `bytes`.
"""

from __future__ import annotations

import re
from typing import Any

# Bot API URLs carry the token (`/bot<id>:<secret>/method`); keep it out of logs.
TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# A one-time login link is its path; Django logs the path of a refused request.
LOGIN_LINK_PATTERN = re.compile(r"(/login/link/)[^/\s'\"]+")


def redact(text: str) -> str:
    """Replace anything shaped like a bot token or a login link's secret."""
    return LOGIN_LINK_PATTERN.sub(r"\1<token>", TOKEN_PATTERN.sub("<token>", text))


FILTERED = "[Filtered]"

# Keys whose values never leave the process, wherever they appear in an event.
# `x-telegram-bot-api-secret-token` is covered by "secret" and "token".
SECRET_KEYS = re.compile(
    r"cookie|authori[sz]ation|session|csrf|secret|token|password|passwd|api_?key"
    r"|\bhash\b|otp|totp|private|credential|encryption_keys",
    re.I,
)

# Cookies and credentials inside longer strings: a Cookie header, a repr of scope.headers.
COOKIE_VALUE = re.compile(r"(?i)\b(sessionid|csrftoken|messages)=[^;,\s'\"\\]+")
BEARER_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# Credentials inside a URL: postgres://user:password@host, redis://:password@host.
URL_CREDENTIALS = re.compile(r"(://[^/\s:@'\"]*:)[^@\s/'\"]+@")
# Fernet keys: 32 bytes as url-safe base64, always 44 characters ending in '='.
FERNET_KEY = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=")
# Webhook secrets and token digests are SHA-256 hex, TOTP keys 40 hex; request ids
# (32 hex) stay readable.
LONG_HEX = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{40,}(?![0-9a-f])")
# TOTP seeds as the authenticator app sees them: base32, in an otpauth:// URL or alone.
OTPAUTH_URL = re.compile(r"otpauth://[^\s'\"<>]+")
BASE32_RUN = re.compile(r"(?<![A-Za-z0-9])(?=[A-Z2-7]*[2-7])[A-Z2-7]{26,}=*(?![A-Za-z0-9])")
# A secret named in a repr or a query string: {'secret': '…'}, secret=…
NAMED_SECRET = re.compile(
    r"(?i)(['\"]?\b(?:secret|password|token|key)['\"]?\s*[:=]\s*['\"]?)[^'\"&,\s}]+")
# Django session keys: 32 of [a-z0-9], with a letter past 'f' (so a uuid hex is not one).
SESSION_KEY = re.compile(r"(?<![A-Za-z0-9])(?=[a-z0-9]*[g-z])[a-z0-9]{32}(?![A-Za-z0-9])")
# Random url-safe tokens (API tokens, login links, TOTP keys): long runs mixing
# upper case, lower case and digits. Identifiers and paths rarely look like that.
RANDOM_RUN = re.compile(r"[A-Za-z0-9_-]{32,}")


def _random_looking(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = (any(c.isdigit() for c in run) and any(c.isupper() for c in run)
             and any(c.islower() for c in run))
    return FILTERED if mixed else run


def scrub_text(text: str) -> str:
    """`text` with every token- or secret-shaped part replaced."""
    text = redact(text)  # bot tokens and login-link paths, as in the logs
    text = COOKIE_VALUE.sub(rf"\1={FILTERED}", text)
    text = BEARER_VALUE.sub(rf"\1 {FILTERED}", text)
    text = URL_CREDENTIALS.sub(rf"\1{FILTERED}@", text)
    text = OTPAUTH_URL.sub(FILTERED, text)
    text = NAMED_SECRET.sub(rf"\1{FILTERED}", text)
    text = BASE32_RUN.sub(FILTERED, text)
    text = FERNET_KEY.sub(FILTERED, text)
    text = LONG_HEX.sub(FILTERED, text)
    text = SESSION_KEY.sub(FILTERED, text)
    return RANDOM_RUN.sub(_random_looking, text)


def _as_text(value: str | bytes | bytearray | memoryview) -> str:
    if isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", errors="replace")


def _secret_key(key: Any) -> bool:
    if isinstance(key, str | bytes | bytearray):
        # Serialized frame variables show bytes as "b'cookie'"; both forms match.
        return bool(SECRET_KEYS.search(_as_text(key)))
    return False


def scrub(value: Any) -> Any:
    """Recursively drop secret-named fields and secret-shaped strings or bytes."""
    if isinstance(value, dict):
        return {
            (scrub_text(_as_text(k)) if isinstance(k, str | bytes) else k):
                (FILTERED if _secret_key(k) else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # ASGI headers are (name, value) pairs: ("cookie", "sessionid=…").
        if len(value) == 2 and _secret_key(value[0]) and not isinstance(value[1], dict | list):
            return [scrub(value[0]), FILTERED]
        return [scrub(v) for v in value]
    if isinstance(value, str | bytes | bytearray | memoryview):
        return scrub_text(_as_text(value))
    return value
