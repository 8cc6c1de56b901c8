"""Liveness and readiness probes."""

import asyncio
import time

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = structlog.get_logger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


@never_cache
@require_GET
def healthz(request):
    """The process is alive and serving requests; checks nothing else."""
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    probe = f"readyz:{time.monotonic_ns()}"
    cache.set("nezuko:readyz", probe, 10)
    if cache.get("nezuko:readyz") != probe:
        raise RuntimeError("cache did not return what was written")


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned another message")


def check_channel_layer() -> None:
    async_to_sync(asyncio.wait_for)(_channel_layer_round_trip(), CHECK_TIMEOUT_SECONDS)


def bot_heartbeats() -> dict:
    """Informational: which active bots have a fresh heartbeat.

    A web-only worker has no bots of its own, so stale bots do not fail it.
    """
    from bots.models import BotInstance

    bots = BotInstance.objects.filter(is_active=True).select_related("status")
    up, stale = [], []
    for bot in bots:
        status = getattr(bot, "status", None)
        (up if status and status.state == "running" and status.is_fresh() else stale).append(
            bot.pk
        )
    return {"up": up, "stale": stale}


CHECKS = {
    "database": check_database,
    "cache": check_cache,
    "channel_layer": check_channel_layer,
}


@never_cache
@require_GET
def readyz(request):
    """Database, cache and channel layer reachable: 200, else 503 naming what failed."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            # The class name only: messages can carry connection strings.
            results[name] = f"failed: {type(exc).__name__}"
            logger.warning("readyz.check_failed", check=name, error=type(exc).__name__)
    failed = [name for name, result in results.items() if result != "ok"]
    body = {"status": "fail" if failed else "ok", "checks": results, "failed": failed}
    if "database" not in failed:
        body["bots"] = bot_heartbeats()
    return JsonResponse(body, status=503 if failed else 200)
