"""Engine and runtime metrics, exported on `/metrics` with django-prometheus.

Everything registers in prometheus_client's default registry, which the
`/metrics` view of django-prometheus already serves, so the process that runs
the bots (runbot with its web server) exposes them. A separate web worker has
no bots and so shows these series empty: scrape the runbot processes.

Callers use the small functions below, never the metric objects, so names and
labels stay in one place. Labels are bounded: bot is the BotInstance pk, method
is a Bot API method name, outcome and type come from short fixed lists.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from prometheus_client import Counter, Gauge, Histogram

logger = structlog.get_logger(__name__)

# (bot pk or None, method, outcome, latency in ms): e.g. analytics' per-minute rollups.
CallObserver = Callable[[int | None, str, str, float], None]
_call_observers: list[CallObserver] = []

# Decisions are taken in microseconds to a few milliseconds; API calls take longer.
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

UPDATES = Counter(
    "nezuko_updates_total", "Updates received from Telegram, by update type.", ["bot", "type"]
)
DECISIONS = Counter("nezuko_decisions_total", "Enforcement decisions, by outcome.", ["outcome"])
DECISION_SECONDS = Histogram(
    "nezuko_decision_seconds",
    "Time from an update's arrival to its decision.",
    buckets=DECISION_BUCKETS,
)
CACHE_LOOKUPS = Counter(
    "nezuko_membership_cache_total", "Membership cache lookups, by result.", ["result"]
)
TELEGRAM_CALLS = Counter(
    "nezuko_telegram_calls_total",
    "Bot API calls (getUpdates excluded), by method and outcome.",
    ["method", "outcome"],
)
TELEGRAM_CALL_SECONDS = Histogram(
    "nezuko_telegram_call_seconds",
    "Bot API call latency, from the request leaving the limiter to its answer.",
    ["method"],
    buckets=CALL_BUCKETS,
)
LIMITER_QUEUE_DEPTH = Gauge(
    "nezuko_limiter_queue_depth",
    "Calls waiting in a bot's rate limiter, by priority.",
    ["bot", "priority"],
)
LIMITER_WAIT_SECONDS = Histogram(
    "nezuko_limiter_wait_seconds",
    "Time a call waited in a bot's rate limiter before it could start, by priority.",
    ["priority"],
    buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0),
)
LIMITER_SHARED_DEGRADED = Gauge(
    "nezuko_limiter_degraded",
    "1 while a bot's shared (Redis) rate limiter runs on its per-process share.",
    ["bot"],
)
LIMITER_DROPPED = Counter(
    "nezuko_limiter_dropped_total",
    "Calls the rate limiter refused: queue full or waited too long.",
    ["bot", "priority", "reason"],
)
THROTTLED = Counter(
    "nezuko_throttled_total",
    "Interactions ignored by the per-person throttle (bots/throttle.py), by kind.",
    ["kind"],
)
BOT_UP = Gauge("nezuko_bot_up", "1 while a bot is running in this process.", ["bot"])
EVENTS_DROPPED = Counter(
    "nezuko_events_dropped_total",
    "Recorded events dropped: the memory buffer and the disk spool were both full.",
)


def record_update(bot: int | str, update_type: str) -> None:
    UPDATES.labels(str(bot), update_type).inc()


def record_decision(outcome: str, seconds: float) -> None:
    """One enforcement decision: its outcome and how long deciding took."""
    DECISIONS.labels(outcome).inc()
    DECISION_SECONDS.observe(seconds)


def record_cache(hit: bool) -> None:
    CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()


def record_telegram_call(
    method: str, outcome: str, seconds: float | None = None, *, bot: int | str | None = None
) -> None:
    """outcome: "ok", "retry_after", "dropped", or the error class ("bad_request", ...)."""
    TELEGRAM_CALLS.labels(method, outcome).inc()
    if seconds is not None:
        TELEGRAM_CALL_SECONDS.labels(method).observe(seconds)
    if _call_observers:
        bot_id = (
            int(bot) if isinstance(bot, int) or (isinstance(bot, str) and bot.isdigit()) else None
        )
        for observer in _call_observers:
            try:
                observer(bot_id, method, outcome, (seconds or 0.0) * 1000)
            except Exception:
                # An observer must never break a Telegram call.
                logger.warning("metrics.call_observer_failed", exc_info=True)


def observe_calls(observer: CallObserver) -> None:
    """Also tell `observer` about every Bot API call (apps register at start-up)."""
    if observer not in _call_observers:
        _call_observers.append(observer)


def set_queue_depth(bot: int | str, priority: str, depth: int) -> None:
    LIMITER_QUEUE_DEPTH.labels(str(bot), priority).set(depth)


def record_limiter_wait(priority: str, seconds: float) -> None:
    LIMITER_WAIT_SECONDS.labels(priority).observe(seconds)


def set_limiter_degraded(bot: int | str, degraded: bool) -> None:
    LIMITER_SHARED_DEGRADED.labels(str(bot)).set(1 if degraded else 0)


def record_dropped(bot: int | str, priority: str, reason: str) -> None:
    LIMITER_DROPPED.labels(str(bot), priority, reason).inc()


def record_throttled(kind: str) -> None:
    THROTTLED.labels(kind).inc()


def set_bot_up(bot: int | str, up: bool) -> None:
    BOT_UP.labels(str(bot)).set(1 if up else 0)


def record_events_dropped(count: int) -> None:
    if count > 0:
        EVENTS_DROPPED.inc(count)


UPDATES_PENDING = Gauge(
    "nezuko_updates_pending",
    "Updates journaled (so confirmed to Telegram) and not yet handled, per bot.",
    ["bot"],
)
UPDATES_REPROCESSED = Counter(
    "nezuko_updates_reprocessed_total",
    "Updates handled again: replayed from the journal after a restart, or retried "
    "after the database was unavailable.",
    ["bot", "reason"],
)


def set_updates_pending(bot: int | str, pending: int) -> None:
    UPDATES_PENDING.labels(str(bot)).set(pending)


def record_reprocessed(bot: int | str, reason: str, count: int = 1) -> None:
    if count > 0:
        UPDATES_REPROCESSED.labels(str(bot), reason).inc(count)


SPOOLED = Gauge(
    "nezuko_spooled_records",
    "Records waiting in a disk spool for the database to come back, by spool.",
    ["spool"],
)
SPOOL_DROPPED = Counter(
    "nezuko_spool_dropped_total",
    "Records dropped because a disk spool hit its bound (bytes or records), by spool.",
    ["spool"],
)
SET_ASIDE = Counter(
    "nezuko_records_set_aside_total",
    "Rows the database refuses for their data (never retried), by buffer.",
    ["buffer"],
)


def set_spooled(spool: str, count: int) -> None:
    SPOOLED.labels(spool).set(count)


def record_spool_dropped(spool: str, count: int) -> None:
    if count > 0:
        SPOOL_DROPPED.labels(spool).inc(count)


def record_set_aside(buffer: str, count: int = 1) -> None:
    if count > 0:
        SET_ASIDE.labels(buffer).inc(count)


OWED_ACTIONS = Gauge(
    "nezuko_owed_actions",
    "Restrictions and unmutes Telegram has not carried out yet (retried until done or "
    "moot), per bot; restrictions waiting in the rate limiter count too.",
    ["bot"],
)


def set_owed_actions(bot: int | str, count: int) -> None:
    OWED_ACTIONS.labels(str(bot)).set(count)
