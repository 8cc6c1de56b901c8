import pytest


@pytest.mark.django_db
def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    # Everything this run is configured with is reachable.
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checks"] == {"database": "ok", "cache": "ok", "channel_layer": "ok"}
    assert body["failed"] == []


@pytest.mark.django_db
def test_readyz_fails_cleanly_when_redis_is_down(client, settings):
    # Port 1 on loopback: nothing listens, connections are refused at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    # (pytest-django's settings fixture makes Django rebuild its cache handlers.)
    response = client.get("/readyz")

    # It should answer 503 naming the cache, with the database still fine.
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["cache"].startswith("failed")
    assert body["checks"]["database"] == "ok"
    assert "cache" in body["failed"]
    assert "127.0.0.1:1" not in response.content.decode()


@pytest.mark.django_db
def test_metrics_are_exposed_for_prometheus(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "django_http_requests_total_by_view_transport_method_total" in response.content.decode()


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second
    # A sane id from a proxy is kept so a request can be followed across hops.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="edge-123")["X-Request-ID"] == "edge-123"
    # Anything else is replaced, so log lines cannot be forged through the header.
    forged = client.get("/healthz", HTTP_X_REQUEST_ID="x\nlevel=error")["X-Request-ID"]
    assert forged != "x\nlevel=error" and len(forged) == 32
