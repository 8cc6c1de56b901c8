"""What never leaves the process in a log line, an error report or admin text.

It lives in `bots` (the bottom of the dependency chain) because the runtime
describes its own errors for admin with it; `nezuko.logging` and
`nezuko.observability` apply the same rule to every log record and Sentry event.
"""

import re

# Bot API URLs carry the token (`/bot<id>:<secret>/method`); keep it out of logs.
TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# A one-time login link is its path; Django logs the path of a refused request.
LOGIN_LINK_PATTERN = re.compile(r"(/login/link/)[^/\s'\"]+")


def redact(text: str) -> str:
    """Replace anything shaped like a bot token or a login link's secret."""
    return LOGIN_LINK_PATTERN.sub(r"\1<token>", TOKEN_PATTERN.sub("<token>", text))
