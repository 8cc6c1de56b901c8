"""Process-wide observability: structlog and, when configured, Sentry."""

import re

from nezuko.logging import configure_structlog, redact

# Keys whose values never leave the process, wherever they appear in an event.
SECRET_KEYS = re.compile(r"token|secret|password|passwd|api_key|authorization|cookie|hash", re.I)
FILTERED = "[Filtered]"


def scrub(value):
    """Recursively drop secret-named fields and token-shaped strings."""
    if isinstance(value, dict):
        return {
            k: FILTERED if isinstance(k, str) and SECRET_KEYS.search(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def before_send(event: dict, _hint: dict) -> dict:
    return scrub(event)


def configure(*, log_format: str, sentry_dsn: str, sentry_environment: str) -> None:
    configure_structlog()
    if not sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=sentry_dsn,
        environment=sentry_environment,
        integrations=[DjangoIntegration()],
        before_send=before_send,
        before_send_transaction=before_send,
        traces_sample_rate=0.0,
    )
