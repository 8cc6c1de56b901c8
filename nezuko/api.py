"""The REST API root: `/api/v1/`, assembled from the apps' routers."""

from ninja import NinjaAPI

from dashboard.api import analytics, bots, errors, events, groups
from dashboard.api.security import AUTH

api = NinjaAPI(
    title="Nezuko API",
    version="1",
    urls_namespace="api",
    description="Protected groups, channels, bots, events and analytics.",
    # Session for the browser, `Authorization: Bearer <token>` for scripts.
    auth=AUTH,
)
errors.install(api)
api.add_router("", groups.router)
api.add_router("", groups.channels_router)
api.add_router("", bots.router)
api.add_router("", events.router)
api.add_router("", events.commands_router)
api.add_router("", analytics.router)


@api.get("/health", tags=["health"], auth=None)
def health(request):
    return {"status": "ok"}
