"""Process-wide observability: structlog and, when configured, Sentry.

Every Sentry event and breadcrumb passes through `scrub`, which walks the whole
event (request, frame variables, breadcrumbs, extra, contexts, tags) and takes
out what could let someone in: values under secret-named keys, and anything
shaped like a bot token, a Fernet key, a webhook secret, a session id, an API
token or a login link, whether it arrived as `str` or as `bytes` (ASGI headers,
webhook secrets and cookies are bytes and used to slip through).
"""

from __future__ import annotations

from typing import Any

from bots.redaction import scrub
from nezuko.logging import configure_structlog


def before_send(event: dict, _hint: dict) -> dict:
    return scrub(event)


def before_breadcrumb(crumb: dict, _hint: dict) -> dict:
    return scrub(crumb)


def sentry_options(dsn: str, environment: str) -> dict[str, Any]:
    """Everything `sentry_sdk.init` gets; the error-report tests use the same."""
    from sentry_sdk.integrations.django import DjangoIntegration

    return {
        "dsn": dsn,
        "environment": environment,
        "integrations": [DjangoIntegration()],
        # No user ids, addresses, cookies or headers Sentry would add on its own.
        "send_default_pii": False,
        # Request bodies hold passwords, login links and Telegram updates.
        "max_request_body_size": "never",
        "before_send": before_send,
        "before_send_transaction": before_send,
        "before_breadcrumb": before_breadcrumb,
        "traces_sample_rate": 0.0,
    }


def configure(*, log_format: str, sentry_dsn: str, sentry_environment: str) -> None:
    configure_structlog()
    if not sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.init(**sentry_options(sentry_dsn, sentry_environment))
