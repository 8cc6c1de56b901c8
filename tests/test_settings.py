"""Settings come from the environment only; each case runs in a fresh interpreter."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 60 + "-a-long-random-production-secret",
    "NEZUKO_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS10ZXN0LTE=",
    "ALLOWED_HOSTS": "nezuko.example.com",
}
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "debug": s.DEBUG,
    "db_engine": s.DATABASES["default"]["ENGINE"],
    "db_name": str(s.DATABASES["default"]["NAME"]),
    "cache": s.CACHES["default"]["BACKEND"],
    "channel_layer": s.CHANNEL_LAYERS["default"]["BACKEND"],
    "api_url": s.TELEGRAM_API_URL,
    "keys": len(s.NEZUKO_ENCRYPTION_KEYS),
    "ssl_redirect": getattr(s, "SECURE_SSL_REDIRECT", False),
    "update_bus": s.NEZUKO_UPDATE_BUS,
    "bus_prefix": s.NEZUKO_BUS_PREFIX,
}))
"""


def run(code_or_args, **env):
    """Run Python with only the given variables (plus PATH) set."""
    environ = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "nezuko.settings",
               "NEZUKO_READ_DOTENV": "false", **env}
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ,  # noqa: S603
                          capture_output=True, text=True, timeout=60)


def probe(**env) -> dict:
    result = run(PROBE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_needs_no_services():
    config = probe(DEBUG="true")
    assert config["db_engine"] == "django.db.backends.sqlite3"
    assert config["db_name"].endswith("var/nezuko.sqlite3")
    assert config["cache"].endswith("LocMemCache")
    assert config["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert config["api_url"] == "https://api.telegram.org"


def test_a_postgresql_url_uses_postgresql_and_redis_switches_cache_and_layer():
    config = probe(
        DEBUG="true",
        DATABASE_URL="postgres://nezuko:pw@db.internal:5432/nezuko",
        REDIS_URL="redis://cache.internal:6379/2",
        TELEGRAM_API_URL="http://127.0.0.1:8081/",
    )
    assert config["db_engine"] == "django.db.backends.postgresql"
    assert config["db_name"] == "nezuko"
    assert config["cache"] == "django_redis.cache.RedisCache"
    assert config["channel_layer"] == "channels_redis.core.RedisChannelLayer"
    # A trailing slash is tolerated; calls go to {TELEGRAM_API_URL}/bot<token>/<method>.
    assert config["api_url"] == "http://127.0.0.1:8081"


def test_production_reads_several_encryption_keys():
    keys = PRODUCTION["NEZUKO_ENCRYPTION_KEYS"] + ",dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by10ZXN0LTI="
    config = probe(**{**PRODUCTION, "NEZUKO_ENCRYPTION_KEYS": keys})
    assert config["debug"] is False
    assert config["keys"] == 2
    assert config["ssl_redirect"] is True


@pytest.mark.parametrize("missing", ["SECRET_KEY", "NEZUKO_ENCRYPTION_KEYS"])
def test_production_without_a_secret_is_a_clear_start_up_error(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run(PROBE, **env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {missing} must be set when DEBUG is off." in result.stderr


def test_webhook_url_without_a_secret_is_refused():
    result = run(PROBE, **PRODUCTION, WEBHOOK_URL="https://nezuko.example.com/telegram")
    assert "WEBHOOK_SECRET must be set" in result.stderr


REDIS = {"DEBUG": "true", "REDIS_URL": "redis://cache.internal:6379/2"}


@pytest.mark.parametrize(("env", "expected"), [
    ({"DEBUG": "true"}, "off"),  # the embedded default: no Redis, no bus
    (REDIS, "redis"),  # REDIS_URL alone turns the bus on
    ({**REDIS, "NEZUKO_UPDATE_BUS": " Redis "}, "redis"),
    ({**REDIS, "NEZUKO_UPDATE_BUS": "off"}, "off"),  # the opt-out
    ({"DEBUG": "true", "NEZUKO_UPDATE_BUS": "OFF"}, "off"),
])
def test_the_update_bus_is_on_when_redis_is_set_unless_turned_off(env, expected):
    config = probe(**env)
    assert config["update_bus"] == expected
    assert config["bus_prefix"] == "nezuko:bus"


def test_asking_for_the_bus_without_redis_or_with_a_wrong_value_is_a_clear_start_up_error():
    result = run(PROBE, DEBUG="true", NEZUKO_UPDATE_BUS="redis")
    assert result.returncode != 0
    assert "ImproperlyConfigured: NEZUKO_UPDATE_BUS=redis needs REDIS_URL" in result.stderr
    result = run(PROBE, **REDIS, NEZUKO_UPDATE_BUS="yes")
    assert result.returncode != 0
    assert ("ImproperlyConfigured: NEZUKO_UPDATE_BUS must be empty (on when REDIS_URL is set), "
            "'redis' or 'off'; 'yes' is neither.") in result.stderr


def test_superadmins_are_telegram_ids_and_anything_else_is_a_clear_start_up_error():
    code = "import django; django.setup(); from django.conf import settings as s; " \
           "print(sorted(s.NEZUKO_SUPERADMINS))"
    result = run(code, DEBUG="true", NEZUKO_SUPERADMINS=" 1000000001, 42 ,")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[42, 1000000001]"
    result = run(code, DEBUG="true", NEZUKO_SUPERADMINS="42,@sam")
    assert result.returncode != 0
    assert "NEZUKO_SUPERADMINS must be Telegram user ids separated by commas; '@sam' is not one." \
        in result.stderr


def test_production_settings_pass_check_deploy():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_example_documents_every_variable_the_settings_read():
    source = (ROOT / "nezuko" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    read |= set(re.findall(r"^\s{4}([A-Z][A-Z0-9_]+)=\(", source, re.M))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    # NEZUKO_READ_DOTENV is for the test harness, not for operators.
    assert read - documented - {"NEZUKO_READ_DOTENV"} == set()


LAYER_PROBE = """
import json, django
django.setup()
from channels.layers import get_channel_layer
layer = get_channel_layer()
pool = layer.create_pool(0)
print(json.dumps({"brpop": layer.brpop_timeout, **{
    k: pool.connection_kwargs.get(k, "unset")
    for k in ("socket_timeout", "health_check_interval")}}))
"""


def test_the_redis_channel_layer_reads_longer_than_it_blocks():
    # channels-redis blocks brpop_timeout seconds on an idle channel; a shorter
    # socket timeout (redis-py's default is as long) closed every idle websocket.
    result = run(LAYER_PROBE, DEBUG="true", REDIS_URL="redis://cache.internal:6379/2")
    assert result.returncode == 0, result.stderr
    pool = json.loads(result.stdout.strip().splitlines()[-1])
    assert pool["socket_timeout"] is None or pool["socket_timeout"] > pool["brpop"]
    assert pool["health_check_interval"]
