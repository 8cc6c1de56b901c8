from django.urls import path

from dashboard.consumers import LiveFeedConsumer

websocket_urlpatterns = [
    path("ws/feed/", LiveFeedConsumer.as_asgi()),
    path("ws/feed/<int:group_id>/", LiveFeedConsumer.as_asgi()),
]
