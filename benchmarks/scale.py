"""Scaling out on the update bus: pipelined polling and webhooks on any worker.

    .venv/bin/python benchmarks/scale.py [--polled 3000] [--latency 0.05] [--webhook 3000]
                                         [--repeat 3]

Everything on 127.0.0.1: the Bot API emulator in this process, a redis-server of
the benchmark's own (tests/faults/servers.py), a throw-away SQLite database.
It prints figures side by side; it asserts nothing.

Every figure is printed as a ratio to a bound measured in the same run, with the
load average (the machine may be shared).

1. polling with `--latency` seconds added to every getUpdates round trip (Telegram
   is further away than loopback), one bot, `--polled` group messages waiting:
   * the bound: 100 updates per round trip, and the same poller handing each
     batch to a consumer that drops it (what getUpdates alone allows here),
     with the median getUpdates time of a full batch;
   * the embedded default (runbot's runtime, no bus): updates decided per second;
   * on the bus (NEZUKO_UPDATE_BUS=redis): the same runtime, whose poller only
     appends each batch to Redis before the next getUpdates: updates decided per
     second, and the rate the poller moved them into the bus (the engine in the
     same process competes with it for the CPU);
   * the poller alone on the bus, as in a process that only polls: updates/s,
     with the median getUpdates and append times of a batch.
2. webhook on the bus: `daphne nezuko.asgi:application` (a web worker running no
   bot) in 1, then 2, child processes; `--webhook` updates POSTed with the bot's
   secret over 64 connections per process; each answered 200 once in Redis.
   Beside it the bound: the same daphne serving benchmarks/noop_asgi.py (read,
   answer 200) to the same client; the two alternate `--repeat` times, medians.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asgiref.sync import sync_to_async  # noqa: E402
from django.core.management import call_command  # noqa: E402

from benchmarks.runtime import group_message, settle  # noqa: E402
from benchmarks.scratch import DB, protect, register  # noqa: E402  (sets Django up)
from bots.bus import RedisBus  # noqa: E402
from bots.emulator import TelegramEmulator  # noqa: E402
from bots.emulator.scene import make_scene  # noqa: E402
from bots.locks import FileLocks  # noqa: E402
from bots.supervisor import Supervisor  # noqa: E402
from bots.updatesource import Poller  # noqa: E402
from nezuko.runtime import runtime_options  # noqa: E402
from tests.faults.servers import redis_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PER_CALL = 100  # Telegram's most updates per getUpdates
NOOP_APP = "benchmarks.noop_asgi:application"


class CountingBus(RedisBus):
    """The real RedisBus, noting what each append added and how long it took."""

    def __init__(self, url: str, partitions: int = 8) -> None:
        super().__init__(url, partitions)
        self.appended = 0
        self.append_seconds: list[float] = []
        self.target: int | None = None
        self.reached_at: float | None = None

    def expect(self, count: int) -> None:
        """Note the time once `count` more updates were appended."""
        self.target, self.reached_at = self.appended + count, None
        self.append_seconds = []

    async def append(self, bot_key, batch, *, polled=False):  # noqa: ANN001, ANN201
        start = time.perf_counter()
        added = await super().append(bot_key, batch, polled=polled)
        self.append_seconds.append(time.perf_counter() - start)
        self.appended += added
        if self.target is not None and self.reached_at is None and self.appended >= self.target:
            self.reached_at = time.perf_counter()
        return added


class NullConsumer:
    """Takes a batch and drops it: the poller's bound with nothing after getUpdates."""

    pending = 0

    async def take(self, batch: list[dict], *, polled: bool = False) -> int:
        return 0


async def polled_rate(emu, scene, bot, probe, count: int, *, bus: CountingBus | None,
                      locks: str) -> tuple[float, float | None]:
    """Decided/s for `count` waiting messages; and on the bus, the poller's append rate."""
    options = runtime_options()
    options.api_url = emu.api_url
    options.webhook_url = ""
    options.locks = FileLocks(DB.parent / locks)
    options.bus = bus
    supervisor = Supervisor(options)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        # Polling: the supervisor signals no start.
        while bot.pk not in supervisor.runners or not supervisor.runners[bot.pk].ready.is_set():  # noqa: ASYNC110, E501
            await asyncio.sleep(0.05)
        runner = supervisor.runners[bot.pk]
        for attempt in range(5):  # warm: Bob becomes a known subscriber
            emu.send_message(scene.group, scene.bob, f"warm-up {attempt}")
            await settle(emu, scene.bot, probe)
            if options.fast_path(runner.engine, group_message(1, scene.group.id, scene.bob.id)):
                break
        await asyncio.sleep(0.5)
        handled = runner.heartbeat.updates_handled
        if bus is not None:
            bus.expect(count)
        for i in range(count):
            emu.send_message(scene.group, scene.bob, f"message {i}")
        start = time.perf_counter()
        # The heartbeat's counter is in memory: reading it costs the loop nothing.
        while runner.heartbeat.updates_handled - handled < count:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        appended = None
        if bus is not None and bus.reached_at is not None:
            appended = count / (bus.reached_at - start)
        return count / elapsed, appended
    finally:
        stop.set()
        await task


class TimedPoller(Poller):
    """The real Poller, noting when getUpdates first went out and how long each took."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.first_at: float | None = None
        self.get_seconds: list[float] = []

    async def _get_updates(self, poll_seconds: int) -> list[dict]:
        start = time.perf_counter()
        if self.first_at is None:
            self.first_at = start
        batch = await super()._get_updates(poll_seconds)
        if len(batch) == PER_CALL:
            self.get_seconds.append(time.perf_counter() - start)
        return batch


@dataclasses.dataclass
class PollerFigures:
    rate: float  # updates/s from the first getUpdates to the last update taken
    get_ms: float  # median getUpdates round trip of a full batch
    append_ms: float | None  # median append of a batch (on the bus)


async def poller_alone(emu, scene, count: int, bus: CountingBus | None) -> PollerFigures:
    """getUpdates into the bus with no engine in the process: the intake's own rate.

    Without a bus, the same poller hands each batch to a consumer that drops it:
    what getUpdates alone allows in this run (the measured bound)."""
    from bots.application import build_application
    from bots.bus_worker import BusAppender
    from verification import ALLOWED_UPDATES

    application = build_application(scene.bot.token, api_url=emu.api_url, with_updater=False)
    await application.initialize()
    stop = asyncio.Event()
    taken = 0
    done_at: float | None = None
    inner = BusAppender(bus, str(scene.bot.id), stop=stop) if bus else NullConsumer()

    class Counting:
        pending = 0

        async def take(self, batch: list[dict], *, polled: bool = False) -> int:
            nonlocal taken, done_at
            malformed = await inner.take(batch, polled=polled)
            taken += len(batch)
            if taken >= count and done_at is None:
                done_at = time.perf_counter()
                stop.set()
            return malformed

    poller = TimedPoller(application, Counting(), stop=stop,
                         allowed_updates=ALLOWED_UPDATES, max_pending=10**9)
    if bus is not None:
        bus.expect(count)
    for i in range(count):
        emu.send_message(scene.group, scene.bob, f"alone {i}")
    task = asyncio.create_task(poller.run())
    try:
        await stop.wait()
    finally:
        stop.set()
        # The poller is in a long poll by now: a message ends it.
        emu.send_message(scene.group, scene.bob, "the end")
        await task
        await poller.confirm(force=True)  # or the next poller is sent them again
        await application.shutdown()
    assert done_at is not None and poller.first_at is not None
    appends = bus.append_seconds if bus is not None else []
    return PollerFigures(
        rate=count / (done_at - poller.first_at),
        get_ms=statistics.median(poller.get_seconds) * 1e3,
        append_ms=statistics.median(appends) * 1e3 if appends else None,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def webhook_rate(scene, redis_url: str, count: int, workers: int,
                       app: str = "nezuko.asgi:application") -> list[float]:
    """updates/s answered 200 by each of `workers` daphne processes, posted at once.

    `app`: what daphne serves; benchmarks.noop_asgi measures the bound."""
    import aiohttp
    from django.conf import settings

    from bots import webhook

    settings.WEBHOOK_SECRET = "benchmark-webhook-secret"
    env = {**os.environ, "WEBHOOK_SECRET": settings.WEBHOOK_SECRET,
           "WEBHOOK_URL": "http://127.0.0.1", "REDIS_URL": redis_url,
           "NEZUKO_UPDATE_BUS": "redis", "LOG_LEVEL": "ERROR"}
    ports = [free_port() for _ in range(workers)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            app, env=env, cwd=str(ROOT),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for port in ports
    ]
    path = webhook.webhook_path(scene.bot.id)
    headers = {webhook.SECRET_HEADER.decode(): webhook.webhook_secret(scene.bot.id)}
    try:
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64 * workers),
                timeout=aiohttp.ClientTimeout(total=30)) as http:
            for port in ports:  # up, and the bot's id known to the worker
                for _ in range(600):
                    try:
                        async with http.post(f"http://127.0.0.1:{port}{path}",
                                             json=group_message(1, scene.group.id, 1),
                                             headers=headers) as response:
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    await asyncio.sleep(0.1)

            async def one_worker(index: int, port: int) -> float:
                url = f"http://127.0.0.1:{port}{path}"
                bodies = [json.dumps(group_message(10_000_000 * (index + 1) + i,
                                                   scene.group.id, scene.bob.id)).encode()
                          for i in range(count)]
                ok = 0
                semaphore = asyncio.Semaphore(64)

                async def post(body: bytes) -> None:
                    nonlocal ok
                    async with semaphore, http.post(url, data=body, headers=headers) as response:
                        await response.read()
                        ok += response.status == 200

                start = time.perf_counter()
                await asyncio.gather(*(post(b) for b in bodies))
                elapsed = time.perf_counter() - start
                if ok != count:
                    print(f"  worker {index}: only {ok} of {count} answered 200")
                return count / elapsed

            return list(await asyncio.gather(*(one_worker(i, p) for i, p in enumerate(ports))))
    finally:
        for child in children:
            child.terminate()
            await child.wait()


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def polling(emu, scene, bot, probe, polled: int, latency: float, redis_url: str) -> None:
    """Part 1 of the module docstring."""
    bound = PER_CALL / latency
    emu.delay("getUpdates", latency)
    print(f"polling, one bot, {latency * 1e3:.0f} ms added per getUpdates, "
          f"{polled} messages ({load()}):")
    print(f"  bound: 100 per round trip                  {bound:>8,.0f} updates/s")
    measured = await poller_alone(emu, scene, polled, None)
    print(f"  bound measured: poller, no-op consumer     {measured.rate:>8,.0f} updates/s "
          f"({measured.rate / bound:.2f} x; getUpdates {measured.get_ms:.1f} ms a batch)")
    bus = CountingBus(redis_url, 8)
    try:
        alone = await poller_alone(emu, scene, polled, bus)
        print(f"  poller alone into Redis                    {alone.rate:>8,.0f} updates/s "
              f"({alone.rate / bound:.2f} x the bound, {alone.rate / measured.rate:.2f} x the "
              f"measured one; getUpdates {alone.get_ms:.1f} ms + append {alone.append_ms:.2f} ms "
              "a batch)")
        embedded, _ = await polled_rate(emu, scene, bot, probe, polled, bus=None,
                                        locks="locks-embedded")
        print(f"  embedded default (no bus)                  {embedded:>8,.0f} decided/s "
              f"({embedded / bound:.2f} x)")
        on_bus, appended = await polled_rate(emu, scene, bot, probe, polled, bus=bus,
                                             locks="locks-bus")
        print(f"  on the bus, runtime in one process         {on_bus:>8,.0f} decided/s "
              f"({on_bus / bound:.2f} x)")
        if appended:
            print(f"    its poller into Redis                    {appended:>8,.0f} updates/s "
                  f"({appended / bound:.2f} x)")
    finally:
        await bus.close()
    emu.clear_faults()


async def webhooks(scene, redis_url: str, hooked: int, repeat: int) -> None:
    """Part 2 of the module docstring, each figure beside daphne's own bound: the two
    measured in turn `repeat` times (the load of a shared machine drifts), medians."""
    print(f"webhook on the bus (daphne web workers, no bot in them), {hooked} updates per "
          f"worker, 64 connections each, median of {repeat} alternate runs ({load()}):")
    for workers in (1, 2):
        bounds, routes, shares = [], [], []
        for _ in range(repeat):
            bounds.append(sum(await webhook_rate(scene, redis_url, hooked, workers, NOOP_APP)))
            rates = await webhook_rate(scene, redis_url, hooked, workers)
            routes.append(sum(rates))
            shares.append(rates)
        bound, route = statistics.median(bounds), statistics.median(routes)
        split = shares[routes.index(route)] if route in routes else shares[0]
        label = "1 worker " if workers == 1 else f"{workers} workers"
        print(f"  {label}: bound (daphne, no-op app)      {bound:>8,.0f} requests/s "
              f"({' '.join(f'{b:,.0f}' for b in bounds)})")
        print(f"  {label}: the webhook route on the bus   {route:>8,.0f} updates/s "
              f"({route / bound:.2f} x the bound; {' '.join(f'{r:,.0f}' for r in routes)}"
              + (f"; {' + '.join(f'{r:,.0f}' for r in split)}" if workers > 1 else "") + ")")


async def bench(polled: int, latency: float, hooked: int, repeat: int) -> None:
    await sync_to_async(call_command)("migrate", verbosity=0)
    emu = TelegramEmulator()
    await emu.start()
    scene = make_scene(emu)
    probe = emu.create_user("Probe")
    bot = await sync_to_async(register)(scene.bot.token, emu.api_url)
    await sync_to_async(protect)(bot, scene.group, scene.channel, [scene.alice, scene.bot])
    emu.join(scene.channel, scene.bob)
    try:
        with redis_server() as redis:
            if polled:
                await polling(emu, scene, bot, probe, polled, latency, redis.url())
            if hooked:
                os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
                await webhooks(scene, redis.url(), hooked, repeat)
    finally:
        await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polled", type=int, default=3_000, help="0 skips")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--webhook", type=int, default=3_000, help="0 skips")
    parser.add_argument("--repeat", type=int, default=3, help="webhook runs per figure")
    args = parser.parse_args()
    asyncio.run(bench(args.polled, args.latency, args.webhook, args.repeat))


if __name__ == "__main__":
    main()
