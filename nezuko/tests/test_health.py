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
