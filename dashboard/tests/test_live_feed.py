"""The live feed websocket: gate on subscribe, coalesced frames, rows and figures."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from analytics.tests.factory import event
from dashboard import consumers
from dashboard.live import LiveFeed
from dashboard.routing import websocket_urlpatterns

# What runbot's composition root subscribes to the engine's events.
live_feed = LiveFeed()

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]

app = URLRouter(websocket_urlpatterns)


async def connect(user, path: str = "/ws/feed/") -> tuple[WebsocketCommunicator, bool, int]:
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.fixture
async def people(world):
    return world


async def test_it_pushes_one_frame_for_a_burst_with_rows_and_figures(people):
    world = people
    communicator, connected, _ = await connect(world.alice)
    assert connected
    # A burst of five events in Alice's group and one in Charlie's.
    for i in range(5):
        live_feed.forward(event(world.cats, "restricted", user_name=f"Raider {i}"))
    live_feed.forward(event(world.dogs, "restricted", user_name="Not for Alice"))

    frame = await communicator.receive_from(timeout=5)

    # It should be one frame with all five rows, Alice's figures, and nothing of Charlie's.
    assert frame.count('class="feed-row') == 5
    assert "Raider 4" in frame and "Not for Alice" not in frame
    assert 'id="feed-rows" hx-swap-oob="afterbegin"' in frame
    assert 'id="figures" hx-swap-oob="true"' in frame
    assert 'id="last-hour"' in frame
    # Every top-level element names the target htmx swaps it into: an id-less one
    # is what logged `htmx:oobErrorNoTarget #null` in the browser on every frame.
    assert top_level_ids(frame) == ["feed-rows", "figures", "last-hour"]
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_raid_is_capped_per_frame(people):
    communicator, _, _ = await connect(people.staff)
    for i in range(consumers.MAX_ROWS_PER_FRAME + 7):
        live_feed.forward(event(people.dogs, "restricted", user_id=i))
    frame = await communicator.receive_from(timeout=5)
    assert frame.count('class="feed-row') == consumers.MAX_ROWS_PER_FRAME
    assert "+ 7 more in this burst" in frame
    await communicator.disconnect()


async def test_staff_see_every_group(people):
    communicator, connected, _ = await connect(people.staff)
    assert connected
    live_feed.forward(event(people.dogs, "verified", user_name="Rex"))
    assert "Rex" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()


async def test_it_returns_404_for_another_owner(people):
    # Subscribing to Charlie's group closes with the not-found code.
    communicator, connected, code = await connect(people.alice, f"/ws/feed/{people.dogs.pk}/")
    assert not connected
    assert code == consumers.CLOSE_NOT_FOUND


async def test_one_group_feed_for_an_admin(people):
    communicator, connected, _ = await connect(people.bob, f"/ws/feed/{people.cats.pk}/")
    assert connected
    live_feed.forward(event(people.cats, "unmuted", user_name="Mallory"))
    assert "Mallory" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()


async def test_anonymous_users_are_refused(people):
    from django.contrib.auth.models import AnonymousUser

    communicator, connected, code = await connect(AnonymousUser())
    assert not connected and code == consumers.CLOSE_UNAUTHENTICATED


async def test_the_first_page_and_the_live_rows_use_the_same_partial(people):
    from verification.models import VerificationEvent

    await sync_to_async(VerificationEvent.objects.create)(
        group=people.cats, chat_id=people.cats.chat_id, user_id=1, user_name="Stored",
        outcome="restricted",
    )
    client = await sync_to_async(people.client)(people.alice)
    page = (await sync_to_async(client.get)("/")).content.decode()
    communicator, _, _ = await connect(people.alice)
    live_feed.forward(event(people.cats, "restricted", user_name="Live"))
    frame = await communicator.receive_from(timeout=5)
    # Both rows come from _feed_row.html: same classes and pill markup.
    assert 'class="feed-row outcome-restricted"' in page
    assert 'class="feed-row outcome-restricted feed-new"' in frame
    await communicator.disconnect()


async def test_one_group_feed_sends_rows_without_the_overview_figures(people):
    communicator, _, _ = await connect(people.alice, f"/ws/feed/{people.cats.pk}/")
    live_feed.forward(event(people.cats, "restricted", user_name="Tom"))
    frame = await communicator.receive_from(timeout=5)
    assert "Tom" in frame and 'id="figures"' not in frame
    await communicator.disconnect()


@pytest.mark.parametrize("path", [
    "/ws/feed/-2/", "/ws/feed/abc/", "/ws/feed/99999999999999999999999/",
    "/ws/feed/1/extra/", "/ws/feed", "/ws/nothing/", "/",
])
async def test_a_malformed_path_is_refused_with_not_found(people, path):
    # Through the production stack: origin check, session auth, then the router.
    from channels.testing import WebsocketCommunicator

    from nezuko.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    connected, code = await communicator.connect()
    # It should be refused with the not-found code, never a server error.
    assert (connected, code) == (False, consumers.CLOSE_NOT_FOUND)


async def test_a_group_id_past_any_database_integer_is_not_found(people):
    # It reached the database as a 23-digit number, which raised (a 500).
    communicator, connected, code = await connect(people.alice, "/ws/feed/" + "9" * 23 + "/")
    assert (connected, code) == (False, consumers.CLOSE_NOT_FOUND)


def top_level_ids(frame: str) -> list[str | None]:
    """The ids of a frame's top-level elements, parsed as a browser's template would."""
    from html.parser import HTMLParser

    class TopLevel(HTMLParser):
        VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "col", "source"}

        def __init__(self) -> None:
            super().__init__()
            self.depth, self.ids = 0, []

        def handle_starttag(self, tag, attrs):
            if self.depth == 0:
                self.ids.append(dict(attrs).get("id"))
            if tag not in self.VOID:
                self.depth += 1

        def handle_startendtag(self, tag, attrs):  # <line/>: opens and closes nothing
            if self.depth == 0:
                self.ids.append(dict(attrs).get("id"))

        def handle_endtag(self, tag):
            self.depth -= 1

    parser = TopLevel()
    parser.feed(frame)
    return parser.ids
