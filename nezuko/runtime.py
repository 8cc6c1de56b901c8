"""The composition root: what `manage.py runbot` runs, assembled from the apps' parts.

Dependencies point one way (`bots` <- `groups` <- `verification` <- `analytics`
<- `dashboard`), so no app can hand its parts to a lower one. This module, above
them all, does it in one place and in plain sight:

* the engine (`verification`): its `install`, the raw-JSON fast path, the
  dashboard-command executors, per-bot loops (maintenance, owed actions) and the
  process-wide services (event recorder, ledger writer, configuration watch);
* the event recorder's subscribers: analytics folds every event into rollups,
  and the dashboard's live feed forwards it to the browsers watching;
* analytics' Bot API call observer, given to every bot's rate limiter;
* the dashboard's /login handler, added to every bot;
* the flushers awaited after every bot drained (the recorder, analytics' rollups);
* the people directory's writer (`bots.people`): the engines note people into it,
  the rate limiters tell it of 403s (a person who blocked the bot), and it writes
  in bulk once a second and prunes by the retention setting;
* one webhook table shared by the bots and the ASGI route runbot serves;
* the update bus when settings ask for one (REDIS_URL set, `NEZUKO_UPDATE_BUS` not
  `off`): the bots' intakes append to it, their workers consume it, and the
  webhook route appends deliveries for bots this process does not poll.

Nothing is registered from `AppConfig.ready()`: a process that does not call
`runtime_options()` (a web worker, `migrate`) runs no engine and wires nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from django.conf import settings

from analytics import folding, sampling
from bots.bus import configured_bus
from bots.models import BotInstance
from bots.people import PeopleWriter
from bots.supervisor import RuntimeOptions
from bots.webhook import WebhookReceivers
from dashboard import telegram as dashboard_telegram
from dashboard.live import LiveFeed
from groups import ledger
from groups.config import configs
from nezuko.health import watch_dependencies
from verification import ALLOWED_UPDATES, broadcasts, command_menus, owed
from verification.events import Subscriber
from verification.executors import EXECUTORS
from verification.fastpath import fast_path
from verification.handlers import install
from verification.maintenance import maintain
from verification.recorder import EventRecorder


def bot_filter(selectors: Sequence[str] | None) -> Callable[[BotInstance], bool] | None:
    """`--bot` values: @username, username, Telegram id or database id."""
    if not selectors:
        return None
    wanted = {s.strip().lstrip("@").lower() for s in selectors if s.strip()}

    def matches(bot: BotInstance) -> bool:
        names = {(bot.username or "").lower(), str(bot.telegram_id), str(bot.pk)}
        return bool(names & wanted)

    return matches


def runtime_options(
    selectors: Sequence[str] | None = None,
    *,
    once: bool = False,
    drain_timeout: float = 30.0,
    subscribers: Sequence[Subscriber] = (),
) -> RuntimeOptions:
    """The supervisor composed with the engine and the apps above it: what runbot runs.

    `subscribers`: more listeners for the engine's events (tests watch with these).
    Each call builds its own recorder and live feed, so two runtimes in one test
    process share nothing but the process-wide caches.
    """
    live_feed = LiveFeed()
    recorder = EventRecorder(subscribers=[folding.fold, live_feed.forward, *subscribers])
    people = PeopleWriter()
    # --once takes what is pending and exits: its own journal, no share of a bus.
    bus = None if once else configured_bus()
    return RuntimeOptions(
        install=functools.partial(install, recorder=recorder, people_writer=people),
        allowed_updates=ALLOWED_UPDATES,
        fast_path=fast_path,
        executors=EXECUTORS,
        bot_filter=bot_filter(selectors),
        extensions=[dashboard_telegram.install],
        call_observers=[folding.record_api_call],
        refusal_observers=[people.refused],
        # command_menus.publish: a start-up step (setMyCommands when the menus differ);
        # sampling.sample_daily: the user-growth series, once a day at P2;
        # broadcasts.run: the bot's /broadcast sender, at P2, resuming after a restart.
        bot_tasks=[maintain, owed.run, command_menus.publish, sampling.sample_daily,
                   broadcasts.run],
        # The event recorder's flushes, the ledger's replay of what an outage spooled,
        # the configuration version watch, the health gauges for Prometheus, and the
        # people directory's flushes and pruning.
        services=[recorder.run, ledger.writer.run, configs.watch, watch_dependencies, people.run],
        # The recorder first: what it writes is what analytics' last flush may count.
        # What the database cannot take then waits in the disk spools.
        flushers=[recorder.aflush, folding.buffer.aclose, people.aflush],
        bus=bus,
        webhook_receivers=WebhookReceivers(bus=bus),
        webhook_max_connections=settings.WEBHOOK_MAX_CONNECTIONS,
        # On the bus a killed process's share must move within 15 s.
        reconcile_interval=2.0 if bus is not None else 5.0,
        once=once,
        drain_timeout=drain_timeout,
    )
