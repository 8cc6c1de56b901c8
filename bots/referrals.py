"""Referral links: `t.me/<bot>?start=<payload>` naming the owner or group that brought someone.

Each dashboard owner and each protected group has one. The payload is what
Telegram hands back as `/start <payload>` when a person opens the link:

    o<user pk>-<signature>     an owner (a dashboard account)
    g<group pk>-<signature>    a group (groups.ProtectedGroup)

Telegram allows 1-64 characters of [A-Za-z0-9_-]. The signature is an HMAC of
the kind and id with the project's SECRET_KEY (truncated to 96 bits, base64url),
so nobody can write a link that credits someone else. Checking one is pure
computation: the hot path reads it without touching the database.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import re

from django.utils.crypto import salted_hmac

OWNER = "o"
GROUP = "g"
SALT = "nezuko.referral"
SIGNATURE_BYTES = 12  # 16 base64url characters
PAYLOAD = re.compile(r"^([og])([1-9][0-9]{0,18})-([A-Za-z0-9_-]{16})$")
MAX_PAYLOAD = 64  # Telegram's limit for a deep-link start parameter


@dataclasses.dataclass(frozen=True, slots=True)
class Referral:
    kind: str  # OWNER or GROUP
    id: int  # the auth user's pk, or the ProtectedGroup's pk


def _signature(kind: str, pk: int) -> str:
    digest = salted_hmac(SALT, f"{kind}{pk}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")


def payload(kind: str, pk: int) -> str:
    """The start parameter for an owner (`OWNER`, user pk) or a group (`GROUP`, group pk)."""
    if kind not in (OWNER, GROUP) or pk <= 0:
        raise ValueError("a referral names an owner or a group by a positive id")
    return f"{kind}{pk}-{_signature(kind, pk)}"


def link(bot_username: str, kind: str, pk: int) -> str:
    """The deep link a person opens: it starts `bot_username` with the payload."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={payload(kind, pk)}"


def owner_link(bot_username: str, user_pk: int) -> str:
    return link(bot_username, OWNER, user_pk)


def group_link(bot_username: str, group_pk: int) -> str:
    return link(bot_username, GROUP, group_pk)


def read(text: str | None) -> Referral | None:
    """The referral a `/start` payload names, or None when it is absent, malformed or forged."""
    if not text or len(text) > MAX_PAYLOAD:
        return None
    match = PAYLOAD.match(text)
    if match is None:
        return None
    kind, pk, signature = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(signature, _signature(kind, pk)):
        return None
    return Referral(kind, pk)


def start_payload(text: str | None) -> str | None:
    """For a `/start` message (also `/start@bot`): its payload, "" when it has none;
    None when the text is not /start."""
    if not text or not text.startswith("/start"):
        return None
    command, _, rest = text.partition(" ")
    if command != "/start" and not command.startswith("/start@"):
        return None
    return rest.strip()
