from django.urls import path, re_path, register_converter

from dashboard.consumers import LiveFeedConsumer, NotFoundConsumer


class GroupIdConverter:
    """A ProtectedGroup pk: digits that fit a 64-bit integer, so the gate never
    sees a value the database cannot compare (that was a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(GroupIdConverter, "group_pk")

websocket_urlpatterns = [
    path("ws/feed/", LiveFeedConsumer.as_asgi()),
    path("ws/feed/<group_pk:group_id>/", LiveFeedConsumer.as_asgi()),
    # Anything else (`/ws/feed/-2/`, `/ws/feed/abc/`): a 4404 close, not a 500.
    re_path(r"", NotFoundConsumer.as_asgi()),
]
