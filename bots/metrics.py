"""Engine and runtime metrics, exported on `/metrics` with django-prometheus.

Everything registers in prometheus_client's default registry, which the
`/metrics` view of django-prometheus already serves, so the process that runs
the bots (runbot with its web server) exposes them. A separate web worker has
no bots and so shows these series empty: scrape the runbot processes.

Callers use the small functions below, never the metric objects, so names and
labels stay in one place. Callers name a bot by its BotInstance pk; the `bot`
label is its @username (`name_bot()`, called when a bot starts), so Grafana
shows names, not database ids. Labels are bounded: bots are few, method is a
Bot API method name, handler and command are the registered ones, outcome,
type and kind come from short fixed lists or code literals.
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

logger = structlog.get_logger(__name__)

# BotInstance pk (as text) -> @username without the @, for the `bot` label.
_usernames: dict[str, str] = {}


def name_bot(bot: int | str, username: str | None) -> None:
    """Label this bot's series with `username` from now on (runners call it at start)."""
    if username:
        _usernames[str(bot)] = username.lstrip("@")


def bot_label(bot: int | str | None) -> str:
    """The `bot` label for a pk: its username once known, else the pk itself."""
    if bot is None:
        return ""
    key = str(bot)
    return _usernames.get(key, key)

# (bot pk or None, method, outcome, latency in ms): e.g. analytics' per-minute rollups.
# The composition root hands observers to each bot's rate limiter
# (`RuntimeOptions.call_observers`), which calls `notify_call_observers`.
CallObserver = Callable[[int | None, str, str, float], None]
# Told of a call Telegram refused: (the limiter's name: the bot pk, chat_id, error).
# The people directory marks a person who blocked the bot from a 403 this way.
RefusalObserver = Callable[[int | str | None, int | str | None, Any], None]

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
    ["bot", "method", "outcome"],
)
TELEGRAM_CALL_SECONDS = Histogram(
    "nezuko_telegram_call_seconds",
    "Bot API call latency, from the request leaving the limiter to its answer.",
    ["bot", "method"],
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


_update_counters: dict[tuple[str, str], Any] = {}


def record_update(bot: int | str, update_type: str) -> None:
    # Every update passes here: keep the labelled child (labels() costs ~1 µs).
    key = (bot_label(bot), update_type)
    counter = _update_counters.get(key)
    if counter is None:
        counter = _update_counters[key] = UPDATES.labels(*key)
    counter.inc()


def record_decision(outcome: str, seconds: float) -> None:
    """One enforcement decision: its outcome and how long deciding took."""
    DECISIONS.labels(outcome).inc()
    DECISION_SECONDS.observe(seconds)


def record_cache(hit: bool) -> None:
    CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()


def record_telegram_call(
    method: str, outcome: str, seconds: float | None = None, *, bot: int | str | None = None,
    observers: Sequence[CallObserver] = (),
) -> None:
    """outcome: "ok", "retry_after", "dropped", or the error class ("bad_request", ...).

    `observers` also hear of the call (the limiter passes the ones it was built with).
    """
    TELEGRAM_CALLS.labels(bot_label(bot), method, outcome).inc()
    if seconds is not None:
        TELEGRAM_CALL_SECONDS.labels(bot_label(bot), method).observe(seconds)
    if observers:
        bot_id = (
            int(bot) if isinstance(bot, int) or (isinstance(bot, str) and bot.isdigit()) else None
        )
        for observer in observers:
            try:
                observer(bot_id, method, outcome, (seconds or 0.0) * 1000)
            except Exception:
                # An observer must never break a Telegram call.
                logger.warning("metrics.call_observer_failed", exc_info=True)


def tell_refusal(observers: Sequence[RefusalObserver], bot: int | str | None,
                 chat: int | str | None, error: BaseException) -> None:
    """A call Telegram refused (not a retry_after): each observer hears of it."""
    for observer in observers:
        try:
            observer(bot, chat, error)
        except Exception:
            # An observer must never break a Telegram call.
            logger.warning("metrics.refusal_observer_failed", exc_info=True)


def set_queue_depth(bot: int | str, priority: str, depth: int) -> None:
    LIMITER_QUEUE_DEPTH.labels(bot_label(bot), priority).set(depth)


def record_limiter_wait(priority: str, seconds: float) -> None:
    LIMITER_WAIT_SECONDS.labels(priority).observe(seconds)


def set_limiter_degraded(bot: int | str, degraded: bool) -> None:
    LIMITER_SHARED_DEGRADED.labels(bot_label(bot)).set(1 if degraded else 0)


def record_dropped(bot: int | str, priority: str, reason: str) -> None:
    LIMITER_DROPPED.labels(bot_label(bot), priority, reason).inc()


def record_throttled(kind: str) -> None:
    THROTTLED.labels(kind).inc()


def set_bot_up(bot: int | str, up: bool) -> None:
    BOT_UP.labels(bot_label(bot)).set(1 if up else 0)


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
    UPDATES_PENDING.labels(bot_label(bot)).set(pending)


def record_reprocessed(bot: int | str, reason: str, count: int = 1) -> None:
    if count > 0:
        UPDATES_REPROCESSED.labels(bot_label(bot), reason).inc(count)


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
    OWED_ACTIONS.labels(bot_label(bot)).set(count)


# --- Handlers and commands ----------------------------------------------------------

HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)
HANDLED = Counter(
    "nezuko_handled_total",
    "Update handler runs, by handler (its callback's name) and outcome (ok, error).",
    ["bot", "handler", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "nezuko_handler_seconds",
    "Time an update handler ran, rate limiter waits included.",
    ["bot", "handler"],
    buckets=HANDLER_BUCKETS,
)
COMMANDS = Counter(
    "nezuko_commands_total",
    "Bot commands handled (/protect, /status, ...), by command and outcome (ok, error).",
    ["bot", "command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "nezuko_command_seconds",
    "Time a bot command's handler ran.",
    ["bot", "command"],
    buckets=HANDLER_BUCKETS,
)


def time_handlers(application: Any, bot: int | str, *, skip_groups: tuple[int, ...] = ()) -> int:
    """Count and time every handler registered on `application` so far.

    The one place handler metrics come from: each handler's callback is wrapped
    where PTB calls it (`BaseHandler.handle_update`), so the engine's flows need
    no timing code of their own. Returns how many handlers were wrapped; a
    handler wrapped before is left alone.
    """
    wrapped = 0
    for group, handlers in application.handlers.items():
        if group in skip_groups:
            continue
        for handler in handlers:
            if getattr(handler.callback, "_nezuko_timed", False):
                continue
            handler.callback = _timed(handler.callback, bot_label(bot),
                                      frozenset(getattr(handler, "commands", ()) or ()))
            wrapped += 1
    return wrapped


def _timed(callback: Callable[..., Any], bot: str, commands: frozenset[str]) -> Callable[..., Any]:
    from telegram.ext import ApplicationHandlerStop

    name = getattr(callback, "__name__", type(callback).__name__)
    seconds = HANDLER_SECONDS.labels(bot, name)

    async def timed(update: Any, context: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await callback(update, context)
        except ApplicationHandlerStop:
            raise  # PTB's "stop here", not a failure
        except Exception:
            outcome = "error"
            raise
        finally:
            elapsed = time.perf_counter() - started
            seconds.observe(elapsed)
            HANDLED.labels(bot, name, outcome).inc()
            command = _command_of(update, commands)
            if command:
                COMMAND_SECONDS.labels(bot, command).observe(elapsed)
                COMMANDS.labels(bot, command, outcome).inc()

    timed._nezuko_timed = True  # type: ignore[attr-defined]
    timed.__name__ = name
    return timed


def _command_of(update: Any, commands: frozenset[str]) -> str | None:
    """Which of a CommandHandler's `commands` this update ran ("/start@bot x" -> "start")."""
    if not commands:
        return None
    if len(commands) == 1:
        return next(iter(commands))
    message = getattr(update, "effective_message", None)
    text = (getattr(message, "text", None) or "").split(maxsplit=1)
    word = text[0][1:].split("@", 1)[0].lower() if text else ""
    return word if word in commands else None


# --- Errors ---------------------------------------------------------------------------

ERRORS = Counter(
    "nezuko_errors_total",
    "Errors, by kind: the event an error-level log line names (update.failed, "
    "bot.crashed, engine.task_failed, ...), or the logger of a library's error.",
    ["bot", "kind"],
)
_KIND = re.compile(r"[a-z0-9_.]{1,64}")


def record_error(kind: str, bot: int | str | None = None) -> None:
    """One error. `kind` must be a code literal; anything else counts as "other"."""
    ERRORS.labels(bot_label(bot), kind if _KIND.fullmatch(kind) else "other").inc()


# --- Received updates: lag and activity ---------------------------------------------

# From an update's date (whole seconds) to its arrival: seconds are the resolution.
LAG_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
ACTIVITY_WINDOWS = {"5m": 5, "24h": 24 * 60}  # label -> minutes
MAX_TRACKED_IDS = 1_000_000  # per bot and kind; past it new ids wait for the next prune
_GROUP_TYPES = frozenset(("group", "supergroup"))


class Received:
    """What one bot's received updates say: their lag, who sent them and where.

    Every update passes here, the fast path's included, so this is plain
    counting (~1.5 µs an update; a prometheus_client Histogram costs ~3 µs an
    observation), turned into metric families when Prometheus scrapes.

    People and groups are one dict entry per id holding the minute it was last
    seen: an assignment per update, a prune of ids older than the longest window
    once a minute (on the event loop that writes), and a count at scrape time
    over a copy. A million ids cost ~100 MB; past MAX_TRACKED_IDS the gauges
    undercount.
    """

    def __init__(self) -> None:
        self.lag_counts = [0] * (len(LAG_BUCKETS) + 1)  # per bucket, the last is +Inf
        self.lag_sum = 0.0
        self.users: dict[int, int] = {}
        self.groups: dict[int, int] = {}
        self._minute = 0

    def note_lag(self, seconds: float) -> None:
        self.lag_counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        self.lag_sum += seconds

    def note(self, minute: int, user_id: int | None, chat_id: int | None) -> None:
        if minute != self._minute:
            self._minute = minute
            self._prune(minute)
        if user_id is not None and (user_id in self.users or len(self.users) < MAX_TRACKED_IDS):
            self.users[user_id] = minute
        if chat_id is not None and (chat_id in self.groups or len(self.groups) < MAX_TRACKED_IDS):
            self.groups[chat_id] = minute

    def _prune(self, minute: int) -> None:
        oldest = minute - max(ACTIVITY_WINDOWS.values())
        for seen in (self.users, self.groups):
            for key in [k for k, m in seen.items() if m < oldest]:
                del seen[key]

    def active(self, minute: int) -> dict[str, tuple[int, int]]:
        """window -> (people, groups) seen in the last that many minutes."""
        # list() copies under the GIL: the loop may write while a scrape counts.
        users, groups = list(self.users.values()), list(self.groups.values())
        return {
            window: (sum(1 for m in users if m > minute - span),
                     sum(1 for m in groups if m > minute - span))
            for window, span in ACTIVITY_WINDOWS.items()
        }


# By bot label, not pk: a bot deleted and registered again (a new pk, the same
# username) must not show up as two series with the same labels.
_received: dict[str, Received] = {}


def observe_update(bot: int | str, raw: dict[str, Any], now: float | None = None) -> None:
    """A raw update arrived: its lag (button presses carry no date), who sent it
    (people, not bots) and which group it came from."""
    payload = None
    for key, value in raw.items():
        if key != "update_id":
            payload = value
            break
    if not isinstance(payload, dict):
        return
    label = bot_label(bot)
    received = _received.get(label)
    if received is None:
        received = _received[label] = Received()
    now = time.time() if now is None else now
    date = payload.get("edit_date") or payload.get("date")
    if date.__class__ is int or date.__class__ is float:
        received.note_lag(now - date if now > date else 0.0)
    sender = payload.get("from")
    user_id = sender.get("id") if sender and not sender.get("is_bot") else None
    chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
    chat_id = chat.get("id") if chat and chat.get("type") in _GROUP_TYPES else None
    received.note(int(now) // 60, user_id, chat_id)


class _ReceivedCollector:
    """nezuko_update_lag_seconds, nezuko_active_users and nezuko_active_groups."""

    def describe(self) -> list:
        return list(self._families({}))

    def collect(self) -> Any:
        return self._families(dict(_received))

    @staticmethod
    def _families(received: dict[str, Received]) -> Any:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        lag = HistogramMetricFamily(
            "nezuko_update_lag_seconds",
            "From an update's date (Telegram's clock, whole seconds) to its arrival here; "
            "button presses carry no date and are not counted.",
            labels=["bot"],
        )
        users = GaugeMetricFamily(
            "nezuko_active_users",
            "People (not bots) a bot heard from in the window (5m, 24h).",
            labels=["bot", "window"],
        )
        groups = GaugeMetricFamily(
            "nezuko_active_groups",
            "Groups and supergroups a bot heard from in the window (5m, 24h).",
            labels=["bot", "window"],
        )
        minute = int(time.time()) // 60
        for label, seen in received.items():
            cumulative = list(itertools.accumulate(seen.lag_counts))
            bounds = [str(b) for b in LAG_BUCKETS] + ["+Inf"]
            lag.add_metric([label], list(zip(bounds, cumulative, strict=True)),
                           sum_value=seen.lag_sum)
            for window, (people, chats) in seen.active(minute).items():
                users.add_metric([label, window], people)
                groups.add_metric([label, window], chats)
        yield lag
        yield users
        yield groups


REGISTRY.register(_ReceivedCollector())


# --- Dependencies, heartbeats, webhooks ---------------------------------------------

DATABASE_UP = Gauge(
    "nezuko_database_up",
    "1 while the database answers (readiness probe and runbot's periodic check).",
    ["database"],
)
REDIS_UP = Gauge(
    "nezuko_redis_up",
    "1 while Redis answers, per client (cache, channel_layer); absent without REDIS_URL.",
    ["client"],
)
BOT_HEARTBEAT_FRESH = Gauge(
    "nezuko_bot_heartbeat_fresh",
    "Per active bot, from the database: 1 while some runbot process reports it running "
    "with a fresh heartbeat. Every runbot exports the same view; take max by bot.",
    ["bot"],
)
WEBHOOK_REQUESTS = Counter(
    "nezuko_webhook_requests_total",
    "Requests to the Telegram webhook route, by the status answered.",
    ["status"],
)


def set_database_up(alias: str, up: bool) -> None:
    DATABASE_UP.labels(alias).set(1 if up else 0)


def set_redis_up(client: str, up: bool) -> None:
    REDIS_UP.labels(client).set(1 if up else 0)


def set_bot_heartbeats(fresh: dict[str, bool]) -> None:
    """The whole set at once (username or pk -> fresh): bots no longer active disappear."""
    BOT_HEARTBEAT_FRESH.clear()
    for bot, up in fresh.items():
        BOT_HEARTBEAT_FRESH.labels(bot).set(1 if up else 0)


def record_webhook(status: int) -> None:
    WEBHOOK_REQUESTS.labels(str(status)).inc()
