"""Logging: structlog on top of the standard library, JSON or console.

Every record, ours or a library's, goes through one structlog formatter so the
output is uniform. Request and update ids are bound with contextvars.
"""

import logging

import structlog

from bots.redaction import redact


def redact_tokens(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: scrub tokens from every string value."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
        elif key == "request" and value is not None:
            # Django's request logs pass the request itself; its repr holds the path.
            event_dict[key] = redact(repr(value))
    return event_dict


class RedactingFilter(logging.Filter):
    """Scrubs tokens from stdlib records before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def build_logging_config(log_format: str, level: str, ring_size: int = 1000) -> dict:
    """`ring_size`: how many of the last lines the staff logs page can show
    (`dashboard.logring`); each process keeps its own."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "nezuko.logging.RedactingFilter"}},
        "formatters": {
            "structlog": {
                "()": "structlog.stdlib.ProcessorFormatter",
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact_tokens,
                    *_renderers(log_format),
                ],
                "foreign_pre_chain": SHARED_PROCESSORS,
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "filters": ["redact"],
            },
            "ring": {
                "()": "dashboard.logring.RingHandler",
                "capacity": ring_size,
                "filters": ["redact"],
            },
        },
        "root": {"handlers": ["console", "ring"], "level": level},
        "loggers": {
            # httpx logs every request URL, and Bot API URLs contain the token.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "telegram": {"level": "WARNING"},
            "apscheduler": {"level": "WARNING"},
            "daphne": {"level": "WARNING"},
            "aiohttp.access": {"level": "WARNING"},
            "django.db.backends": {"level": "WARNING"},
        },
    }


def _renderers(log_format: str) -> list:
    if log_format == "json":
        # Tracebacks become text inside the JSON line; scrub them too.
        return [structlog.processors.format_exc_info, redact_tokens,
                structlog.processors.JSONRenderer()]
    # The console renderer would format tracebacks after `redact_tokens` ran: format
    # them first, so a Bot API URL in an exception's message is scrubbed here too.
    return [structlog.processors.format_exc_info, redact_tokens,
            structlog.dev.ConsoleRenderer(colors=False)]


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS[:-1],
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
