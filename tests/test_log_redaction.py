"""Log lines never carry a bot token, tracebacks included, in either log format."""

from __future__ import annotations

import logging
import sys

import pytest
import structlog

from nezuko.logging import build_logging_config

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


def formatter(log_format: str) -> logging.Formatter:
    spec = dict(build_logging_config(log_format, "INFO")["formatters"]["structlog"])
    spec.pop("()")
    return structlog.stdlib.ProcessorFormatter(**spec)


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_traceback_naming_a_bot_api_url_is_scrubbed(log_format):
    try:
        raise ValueError(f"POST https://api.telegram.org/bot{TOKEN}/getUpdates failed")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("nezuko.test", logging.ERROR, __file__, 1, "poll crashed",
                               None, exc_info)
    line = formatter(log_format).format(record)
    assert "poll crashed" in line and "getUpdates failed" in line
    assert TOKEN not in line
