"""Where this process serves the web application, for the links the bot sends.

`runbot` (with web) announces the scheme, host and port daphne actually listens
on; a one-time login link then points there unless `DASHBOARD_URL` names the
public address (behind a proxy, or with web workers of their own, set it).
"""

from __future__ import annotations

from django.conf import settings

# Only when nothing is known: runbot's own default address.
FALLBACK_URL = "http://127.0.0.1:8000"
# A wildcard address is where runbot listens, not an address to visit.
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 (compared, never bound)

_served_url = ""


def announce(host: str, port: int, *, scheme: str = "http") -> str:
    """Remember the address this process serves the web application on."""
    global _served_url
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    _served_url = f"{scheme}://{host}:{port}"
    return _served_url


def forget() -> None:
    global _served_url
    _served_url = ""


def dashboard_url() -> str:
    """`DASHBOARD_URL`, else where runbot serves, else runbot's default address."""
    return (settings.DASHBOARD_URL or _served_url or FALLBACK_URL).rstrip("/")
