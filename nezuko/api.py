"""The REST API root: `/api/v1/`, assembled from the apps' routers."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Nezuko API",
    version="1",
    urls_namespace="api",
    description="Protected groups, channels, bots, events and analytics.",
)


@api.get("/health", tags=["health"], auth=None)
def health(request):
    return {"status": "ok"}
