"""Liveness and readiness probes, and the same checks as Prometheus gauges.

`/readyz` and runbot's `watch_dependencies` loop both set `nezuko_database_up`,
`nezuko_redis_up` and `nezuko_bot_heartbeat_fresh`, so the gauges stay current
even when nothing calls `/readyz`.
"""

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bots import metrics

logger = structlog.get_logger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0
# runbot checks this often, so a Prometheus alert sees an outage within a scrape or two.
PROBE_INTERVAL_SECONDS = 15.0


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


def _active_bots() -> list[tuple[object, bool]]:
    """Every active bot and whether some process reports it running, freshly."""
    from bots.models import BotInstance

    bots = BotInstance.objects.filter(is_active=True).select_related("status")
    result = []
    for bot in bots:
        status = getattr(bot, "status", None)
        result.append((bot, bool(status and status.state == "running" and status.is_fresh())))
    return result


def bot_heartbeats() -> dict:
    """Informational: which active bots have a fresh heartbeat.

    A web-only worker has no bots of its own, so stale bots do not fail it.
    """
    bots = _active_bots()
    metrics.set_bot_heartbeats({_label(bot): fresh for bot, fresh in bots})
    return {"up": [bot.pk for bot, fresh in bots if fresh],
            "stale": [bot.pk for bot, fresh in bots if not fresh]}


def _label(bot) -> str:
    return bot.username or str(bot.pk)


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
    _export({name: result == "ok" for name, result in results.items()})
    failed = [name for name, result in results.items() if result != "ok"]
    body = {"status": "fail" if failed else "ok", "checks": results, "failed": failed}
    if "database" not in failed:
        body["bots"] = bot_heartbeats()
    return JsonResponse(body, status=503 if failed else 200)


def _export(results: dict[str, bool]) -> None:
    """Check results as gauges: the cache and the channel layer are Redis only with REDIS_URL."""
    if "database" in results:
        metrics.set_database_up("default", results["database"])
    if settings.REDIS_URL:
        for client in ("cache", "channel_layer"):
            if client in results:
                metrics.set_redis_up(client, results[client])


def _database_round(*, own_thread: bool = True) -> None:
    """SELECT 1, then the active bots' heartbeats as `nezuko_bot_heartbeat_fresh`.

    On a network database it runs in a thread of its own, not the one the engine's
    ORM calls share, so a slow or hanging database never queues the engine's queries
    behind a probe; the connection is closed after each round.
    """
    try:
        check_database()
        bots = _active_bots()
        metrics.set_bot_heartbeats({_label(bot): fresh for bot, fresh in bots})
    finally:
        if own_thread:
            connection.close()


async def _passes(check: Callable[[], Awaitable[None]]) -> bool:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        return True
    except Exception as exc:
        logger.warning("health.check_failed", error=type(exc).__name__)
        return False


async def probe_dependencies() -> dict[str, bool]:
    """One round of checks, exported as gauges; returns check name -> passed."""
    # A network database gets a thread of its own (a hanging server must not hold the
    # engine's queries up). SQLite is in the process and cannot hang on a network,
    # while a second connection reading beside the engine's writes can lock them out
    # ("database table is locked" in the shared-cache database tests use), so it shares
    # the engine's thread.
    on_engine_thread = connection.vendor == "sqlite"
    database_round = functools.partial(_database_round, own_thread=not on_engine_thread)
    results = {"database": await _passes(sync_to_async(database_round,
                                                         thread_sensitive=on_engine_thread))}
    if settings.REDIS_URL:
        results["cache"] = await _passes(sync_to_async(check_cache, thread_sensitive=False))
        results["channel_layer"] = await _passes(_channel_layer_round_trip)
    _export(results)
    return results


async def watch_dependencies(stop: asyncio.Event) -> None:
    """A runbot service: `probe_dependencies` every PROBE_INTERVAL_SECONDS until `stop`."""
    while not stop.is_set():
        await probe_dependencies()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_INTERVAL_SECONDS)
