"""Errors sent to Sentry carry no secrets."""

import secrets

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from nezuko.observability import before_send
from tests.factories import fake_token


class RecordingTransport(Transport):
    """Keeps envelopes instead of sending them: Sentry is never reached from tests."""

    def __init__(self, options=None):
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events():
    transport = RecordingTransport()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport,
                    before_send=before_send)
    yield transport.events
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # back to a disabled client


def fail_with_a_token(token: str, webhook_secret: str) -> None:
    url = f"https://api.telegram.org/bot{token}/getMe"  # noqa: F841 (a local Sentry records)
    raise RuntimeError(f"request to {url} failed")


def test_tokens_and_secret_named_values_are_scrubbed(sentry_events):
    # Made at run time: Sentry also sends source lines, which must not hold them.
    token, webhook_secret = fake_token(), secrets.token_hex(12)
    try:
        fail_with_a_token(token, webhook_secret=webhook_secret)
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()

    assert len(sentry_events) == 1
    sent = str(sentry_events[0])
    # The exception and its frames are there, with the secrets taken out.
    assert "fail_with_a_token" in sent and "request to" in sent
    assert token.split(":")[1] not in sent
    assert webhook_secret not in sent
    assert "<token>" in sent
