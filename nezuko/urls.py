from django.contrib import admin
from django.urls import include, path

from nezuko import health, metrics
from nezuko.api import api

admin.site.site_header = "Nezuko administration"
admin.site.site_title = "Nezuko admin"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("dashboard.urls")),
]
