"""The REST API root: `/api/v1/`, assembled from the apps' routers."""

from ninja import NinjaAPI

from dashboard.api import analytics, bots, errors, events, groups, growth, people
from dashboard.api.errors import StrictParser
from dashboard.api.security import AUTH
from dashboard.throttling import api_throttles

api = NinjaAPI(
    title="Nezuko API",
    version="1",
    urls_namespace="api",
    description="Protected groups, channels, bots, events and analytics.",
    # Session for the browser, `Authorization: Bearer <token>` for scripts.
    auth=AUTH,
    # Each token (or session) and each address has its own budget; past it, 429.
    throttle=api_throttles(),
    # NUL characters and non-object JSON bodies are refused with a 422.
    parser=StrictParser(),
)
errors.install(api)
api.add_router("", groups.router)
api.add_router("", groups.channels_router)
api.add_router("", bots.router)
api.add_router("", events.router)
api.add_router("", events.commands_router)
api.add_router("", analytics.router)
api.add_router("", growth.router)
api.add_router("", people.router)


@api.get("/health", tags=["health"], auth=None)
def health(request):
    return {"status": "ok"}
