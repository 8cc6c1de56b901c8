"""The directory of people the bots talk to (issue 16): written off the hot path, in bulk.

`PeopleWriter.seen(...)` is what the engine calls where it meets a person (a
private message or command, a button press, a join request, an update it had
to decide on): a dict lookup and a few stores under an uncontended lock, no
query, no task. Sightings of one person by one bot between two flushes fold
into one entry (the newest names, the first and last moment, the first /start,
the latest block news, the first referral), so a burst costs memory per
person, not per update.

`flush()`, once a second from `run()`, writes what is buffered as one bulk
upsert of `TelegramUser` and one of `BotUser` per batch (`bulk_create` with
`update_conflicts`, on PostgreSQL and SQLite), then the rare once-only fields
(first /start, first valid referral) with filtered updates that never
overwrite. Nothing is lost because the database is away, as with the event
recorder (`verification/recorder.py`):

* during an outage the entries stay in memory and the next flush tries again;
* past `max_buffered` people in memory, new ones go to the disk spool
  (`bots.spool`, named "people"); only a full spool drops (counted in
  `dropped` and `nezuko_spool_dropped_total{spool="people"}`);
* at shutdown what could not be written is spooled, and the next start
  writes it first.

A batch refused for its data is split until the refused entry is found; it
is set aside, logged and counted (`nezuko_records_set_aside_total{buffer="people"}`).

`forget(telegram_id)` (the /forget command) and `prune(days)` (retention)
are here too: they must be ordered with the writes (`_write_lock`), or a
sighting taken just before would bring the person back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from telegram import User
from telegram.error import Forbidden, TelegramError

from bots import metrics
from bots.models import BotUser, ForgottenPerson, TelegramUser
from bots.referrals import OWNER, Referral
from bots.spool import Spool, describe, drain, is_outage, storable, write_bisecting

logger = structlog.get_logger(__name__)

MAX_BUFFERED = 100_000  # people (per bot) held in memory between flushes
BATCH_SIZE = 500
FLUSH_INTERVAL = 1.0
PRUNE_INTERVAL = 6 * 3600.0
PRUNE_BATCH = 5_000
# 403 texts that mean this person cannot be written to any more (Telegram's wording).
UNREACHABLE = ("bot was blocked by the user", "user is deactivated")

PROFILE_FIELDS = ["first_name", "last_name", "username", "language_code"]
# A member the fast path lets speak is touched (last_seen moved) at most once per
# this many seconds: a dict lookup per message, a write per person per hour.
TOUCH_INTERVAL = 3600.0
MAX_TOUCHED = 100_000  # the dedupe's memory (~15 MB); past it, it starts again


class Entry(NamedTuple):
    """What one bot learnt about one person since the last flush (also a spool record).

    Times are Unix seconds. `profile` is None when the person was not seen, only
    heard of (a 403 to a message for them): then names and last_seen stay as they are.
    """

    bot: int
    user: int
    first_seen: float
    last_seen: float
    profile: tuple[str, str, str, str] | None  # first, last, username, language
    started: float | None  # the first /start in a private chat
    blocked: bool | None  # the latest block news: True blocked, False unblocked
    blocked_at: float | None
    referral: tuple[str, int, float] | None  # (kind, id, when): the first valid one

    @classmethod
    def from_record(cls, record: Sequence[Any]) -> Entry:
        bot, user, first, last, profile, started, blocked, blocked_at, referral = record
        return cls(bot, user, first, last, tuple(profile) if profile else None, started,
                   blocked, blocked_at, tuple(referral) if referral else None)


def merge(older: Entry, newer: Entry) -> Entry:
    """One entry for both: the first of what is set once, the newest of what changes."""
    return Entry(
        older.bot,
        older.user,
        min(older.first_seen, newer.first_seen),
        max(older.last_seen, newer.last_seen),
        newer.profile if newer.profile is not None else older.profile,
        older.started if older.started is not None else newer.started,
        newer.blocked if newer.blocked is not None else older.blocked,
        newer.blocked_at if newer.blocked is not None else older.blocked_at,
        older.referral if older.referral is not None else newer.referral,
    )


def clean(raw: Sequence[str | None]) -> tuple[str, str, str, str]:
    """Names as the database takes them (done at the flush, not on the hot path)."""
    first, last, username, language = raw
    return (storable(first)[:255], storable(last)[:255], storable(username)[:64],
            storable(language)[:16])


class Sighting:
    """An `Entry` while it is buffered: changed in place by each update about the person
    (no allocation per update), made an `Entry` when it is taken to be written."""

    __slots__ = ("bot", "user", "first_seen", "last_seen", "raw", "started", "blocked",
                 "blocked_at", "referral")

    def __init__(self, entry: Entry) -> None:
        (self.bot, self.user, self.first_seen, self.last_seen, self.raw, self.started,
         self.blocked, self.blocked_at, self.referral) = entry

    def entry(self) -> Entry:
        return Entry(self.bot, self.user, self.first_seen, self.last_seen,
                     clean(self.raw) if self.raw is not None else None, self.started,
                     self.blocked, self.blocked_at, self.referral)

    def absorb_newer(self, last_seen: float, raw, started: float | None,
                     blocked: bool | None, blocked_at: float | None, referral) -> None:
        """What an update just said, in place (the rules of `merge`)."""
        if raw is not None:
            self.last_seen, self.raw = max(self.last_seen, last_seen), raw
        if started is not None and self.started is None:
            self.started = started
        if blocked is not None:
            self.blocked, self.blocked_at = blocked, blocked_at
        if referral is not None and self.referral is None:
            self.referral = referral

    def absorb_older(self, older: Entry) -> None:
        """`older` was taken before this one began (a write that failed): fold it under."""
        self.first_seen = min(self.first_seen, older.first_seen)
        if self.raw is None:
            self.raw = older.profile
        if self.started is None:
            self.started = older.started
        if self.blocked is None:
            self.blocked, self.blocked_at = older.blocked, older.blocked_at
        if older.referral is not None:
            self.referral = older.referral


class PeopleWriter:
    """See the module docstring. One per runtime (`nezuko.runtime`)."""

    def __init__(self, max_buffered: int = MAX_BUFFERED, spool: Spool | None = None) -> None:
        self._entries: dict[tuple[int, int], Sighting] = {}
        # (bot, person) -> when last seen, for people only touched (see `touch`).
        self._touches: dict[tuple[int, int], float] = {}
        self._touched: dict[tuple[int, int], int] = {}  # -> the interval last touched in
        self._tick()
        self.max_buffered = max_buffered
        self._spool = spool
        self.set_aside = 0
        # Short: taking or folding entries (the event loop waits on it).
        self._buffer_lock = threading.Lock()
        # Long: one write, forget or prune at a time, in the order they came.
        self._write_lock = threading.Lock()

    @property
    def buffered(self) -> int:
        """People in memory. (No __len__: an empty writer must not be falsy.)"""
        return len(self._entries)

    @property
    def pending(self) -> bool:
        """Anything to write: in memory, or spooled (the spool is opened on first use)."""
        return bool(self._entries or self._touches) or (
            self._spool is not None and self._spool.pending > 0)

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(settings.NEZUKO_SPOOL_DIR, "people")
        return self._spool

    @property
    def dropped(self) -> int:
        return self.spool.dropped

    def close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # --- the hot path: noting -------------------------------------------------------

    def seen(self, bot_pk: int, user: User, *, started: bool = False,
             referral: Referral | None = None, blocked: bool | None = None) -> None:
        """The bot met this person now; `started`: a /start in a private chat;
        `blocked`: my_chat_member in their private chat (kicked: True, member: False)."""
        now = time.time()
        raw = (user.first_name, user.last_name, user.username, user.language_code)
        key = (bot_pk, user.id)
        with self._buffer_lock:
            known = self._entries.get(key)
            if known is not None:  # the common case of a burst: a few stores
                known.absorb_newer(
                    now, raw, now if started else None, blocked, now,
                    (referral.kind, referral.id, now) if referral is not None else None)
                return
        self._note(Entry(
            bot_pk, user.id, now, now, raw, now if started else None, blocked,
            now if blocked is not None else None,
            (referral.kind, referral.id, now) if referral is not None else None,
        ))

    def _tick(self) -> None:
        """The coarse clock `touch` reads, moved by every flush (once a second), so
        the fast path does not ask the system for the time per message."""
        self._now = time.time()
        self._slot = int(self._now // TOUCH_INTERVAL)

    def touch(self, bot_pk: int, user_id: int) -> None:
        """A known member spoke (the fast path): move their last_seen, at most once per
        `TOUCH_INTERVAL`. Only rows that exist are touched; names come from `seen`.
        Touches are freshness, not facts: a full buffer or a shutdown during an
        outage loses them, and costs that hour of "last seen"."""
        key = (bot_pk, user_id)
        if self._touched.get(key) == self._slot:
            return
        if len(self._touched) >= MAX_TOUCHED:
            self._touched = {}
        self._touched[key] = self._slot
        if len(self._touches) < self.max_buffered:
            self._touches[key] = self._now

    def unreachable(self, bot_pk: int, user_id: int) -> None:
        """A private message to this person was refused (403): they blocked the bot."""
        now = time.time()
        self._note(Entry(bot_pk, user_id, now, now, None, None, True, now, None))

    def refused(self, bot: int | str | None, chat_id: int | str | None,
                error: TelegramError) -> None:
        """The rate limiter's refusal observer: a 403 on a private chat marks a block."""
        if not (isinstance(error, Forbidden) and isinstance(chat_id, int) and chat_id > 0):
            return
        if not any(text in error.message.lower() for text in UNREACHABLE):
            return
        if isinstance(bot, str) and bot.isdigit():
            bot = int(bot)
        if isinstance(bot, int):
            self.unreachable(bot, chat_id)

    def _note(self, entry: Entry) -> None:
        """`entry` is raw (names as Telegram sent them) until it is written or spooled."""
        key = (entry.bot, entry.user)
        with self._buffer_lock:
            known = self._entries.get(key)
            if known is not None:
                known.absorb_newer(entry.last_seen, entry.profile, entry.started,
                                   entry.blocked, entry.blocked_at, entry.referral)
                return
            if len(self._entries) < self.max_buffered:
                self._entries[key] = Sighting(entry)
                return
        # Memory is full (a long outage): to disk, dropped only when the disk is full too.
        self.spool.append(list(Sighting(entry).entry()))

    # --- writing ----------------------------------------------------------------------

    def flush(self) -> int:
        """Write the spool, then everything buffered; returns entries written.

        Stops at a database outage, keeping what is left (memory and disk).
        """
        with self._write_lock:
            return self._flush()

    def _flush(self) -> int:
        self._tick()
        if not connection.in_atomic_block:
            close_old_connections()
        written, outage = self._flush_spool()
        with self._buffer_lock:
            taken, self._entries = self._entries, {}
        taken = [s.entry() for s in taken.values()]
        touches, self._touches = self._touches, {}
        done = 0
        while done < len(taken) and not outage:
            batch = taken[done:done + BATCH_SIZE]
            set_aside = self.set_aside
            wrote = write_bisecting(batch, _write, self._set_aside)
            written += wrote - (self.set_aside - set_aside)
            done += wrote
            outage = wrote < len(batch)
        if touches and not outage:
            try:
                _touch(touches)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                outage = True
        if outage:
            for key, at in touches.items():
                self._touches.setdefault(key, at)
            self._put_back(taken[done:])
            if not connection.in_atomic_block:
                connection.close()
            logger.warning("people.database_away", buffered=len(self._entries),
                           spooled=len(self.spool), dropped=self.dropped)
        return written

    def _flush_spool(self) -> tuple[int, bool]:
        """Entries written from the disk spool, and whether the database was away."""
        return drain(self.spool, _write, self._set_aside, decode=Entry.from_record,
                     batch_size=BATCH_SIZE)

    def _put_back(self, entries: list[Entry]) -> None:
        """Unwritten entries go back under what arrived meanwhile (which is newer)."""
        overflow = []
        with self._buffer_lock:
            for entry in entries:
                key = (entry.bot, entry.user)
                newer = self._entries.get(key)
                if newer is not None:
                    newer.absorb_older(entry)
                elif len(self._entries) < self.max_buffered:
                    self._entries[key] = Sighting(entry)
                else:
                    overflow.append(list(entry))
        if overflow:
            self.spool.extend(overflow)

    def _set_aside(self, entry: Entry | Sequence[Any] | None, exc: BaseException) -> None:
        self.set_aside += 1
        metrics.record_set_aside("people")
        user = entry[1] if entry is not None else None
        logger.error("people.entry_set_aside", user_id=user, reason=describe(exc))

    async def aflush(self) -> int:
        return await sync_to_async(self.flush)()

    def close(self) -> int:
        """Shutdown: flush, and move what could not be written to the disk spool."""
        written = self.flush()
        with self._buffer_lock:
            left, self._entries = list(self._entries.values()), {}
        if left:
            self.spool.extend([list(s.entry()) for s in left])
            logger.warning("people.left_spooled", spooled=len(self.spool), dropped=self.dropped)
        return written

    async def aclose(self) -> int:
        return await sync_to_async(self.close)()

    # --- forgetting and retention ---------------------------------------------------------

    def forget(self, telegram_id: int) -> bool:
        """Delete the person's directory rows (and every bot's); True if there were any.

        Whatever was buffered about them is dropped, and everything else buffered
        or spooled is written first, so no earlier sighting brings them back.
        Raises the database's error when it is away (the caller says "try later").
        """
        with self._write_lock:
            with self._buffer_lock:
                for key in [k for k in self._entries if k[1] == telegram_id]:
                    del self._entries[key]
            # Other processes' buffers and spools: their older sightings are not written.
            ForgottenPerson.objects.update_or_create(
                telegram_id=telegram_id, defaults={"forgotten_at": timezone.now()})
            self._flush()
            deleted, _ = TelegramUser.objects.filter(telegram_id=telegram_id).delete()
        return deleted > 0

    async def aforget(self, telegram_id: int) -> bool:
        return await sync_to_async(self.forget)(telegram_id)

    def prune(self, days: int | None = None, *, now: datetime.datetime | None = None) -> int:
        """Blank the personal data of people not seen for `days`; returns people pruned."""
        return prune(days, now=now, lock=self._write_lock)

    async def aprune(self, days: int | None = None) -> int:
        return await sync_to_async(self.prune)(days)

    # --- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `FLUSH_INTERVAL` and prune every `PRUNE_INTERVAL` until `stop`,
        then close. A failing pass is logged; the next one runs as planned."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + 60.0  # start-up has enough to do
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL)
            self._tick()  # also when there is nothing to write
            try:
                # `spool` opens on first use: what a previous run left there is written.
                if self._entries or self._touches or self.spool.pending:
                    await self.aflush()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_INTERVAL
                    pruned = await self.aprune()
                    if pruned:
                        logger.info("people.pruned", people=pruned)
            except Exception:
                logger.exception("people.flush_failed")
        await self.aclose()


def prune(days: int | None = None, *, now: datetime.datetime | None = None,
          lock: threading.Lock | None = None) -> int:
    """Names, username, language and referral removed for people not seen for `days`
    (settings.NEZUKO_PEOPLE_RETENTION_DAYS; 0 keeps them). Ids and dates stay, and
    so do the per-bot rows: a person who blocked a bot stays blocked."""
    days = settings.NEZUKO_PEOPLE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    holding = ~Q(first_name="") | ~Q(last_name="") | ~Q(username="") | ~Q(language_code="") \
        | Q(referred_at__isnull=False)
    stale = TelegramUser.objects.filter(holding, last_seen__lt=cutoff)
    total = 0
    while True:
        with lock or contextlib.nullcontext():
            pks = list(stale.values_list("pk", flat=True)[:PRUNE_BATCH])
            if not pks:
                return total
            total += TelegramUser.objects.filter(pk__in=pks).update(
                first_name="", last_name="", username="", language_code="",
                referred_by_user=None, referred_by_group_id=None, referred_at=None,
            )


# --- the bulk write ---------------------------------------------------------------------


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _fold(entries: Sequence[Entry]) -> dict[tuple[int, int], Entry]:
    """One entry per (bot, person): a spooled batch may hold a person twice."""
    folded: dict[tuple[int, int], Entry] = {}
    for entry in entries:
        key = (entry.bot, entry.user)
        known = folded.get(key)
        folded[key] = entry if known is None else merge(known, entry)
    return folded


def _write(entries: Sequence[Entry]) -> None:
    """One batch, all or nothing (`write_bisecting` splits it if refused)."""
    if not entries:
        return
    folded = _not_forgotten(_fold(entries))
    if not folded:
        return
    with transaction.atomic():
        pks = _upsert_people(folded.values())
        _upsert_bot_users(folded.values(), pks)
        _first_starts(folded.values(), pks)
        _first_referrals(folded.values())


def _not_forgotten(folded: dict[tuple[int, int], Entry]) -> dict[tuple[int, int], Entry]:
    """Without the sightings taken before their person's /forget (one query a batch)."""
    forgotten = dict(ForgottenPerson.objects.filter(
        telegram_id__in={user for _bot, user in folded}).values_list("telegram_id", "forgotten_at"))
    if not forgotten:
        return folded
    return {key: entry for key, entry in folded.items()
            if key[1] not in forgotten or _at(entry.last_seen) > forgotten[key[1]]}


def _upsert_people(entries) -> dict[int, int]:
    """TelegramUser rows: names and last_seen of people seen; bare rows for people only
    heard of. Returns telegram id -> pk."""
    seen: dict[int, Entry] = {}
    heard: dict[int, Entry] = {}
    for entry in entries:
        if entry.profile is None:
            heard.setdefault(entry.user, entry)
            continue
        known = seen.get(entry.user)  # several bots saw them: the newest names
        if known is None or entry.last_seen >= known.last_seen:
            first = min(entry.first_seen, known.first_seen) if known else entry.first_seen
            seen[entry.user] = entry._replace(first_seen=first)
        else:
            seen[entry.user] = known._replace(first_seen=min(known.first_seen, entry.first_seen))
    if seen:
        TelegramUser.objects.bulk_create(
            [_person(e) for e in seen.values()],
            update_conflicts=True,
            unique_fields=["telegram_id"],
            update_fields=[*PROFILE_FIELDS, "last_seen"],
        )
    heard_only = [e for user, e in heard.items() if user not in seen]
    if heard_only:
        TelegramUser.objects.bulk_create(
            [TelegramUser(telegram_id=e.user, first_seen=_at(e.first_seen),
                          last_seen=_at(e.last_seen)) for e in heard_only],
            ignore_conflicts=True,
        )
    ids = {e.user for e in entries}
    return dict(TelegramUser.objects.filter(telegram_id__in=ids)
                .values_list("telegram_id", "pk"))


def _touch(touches: dict[tuple[int, int], float]) -> None:
    """last_seen moved for people and per-bot rows that exist, never backwards: one
    update per table and bot per batch, at the batch's latest moment."""
    by_bot: dict[int, list[int]] = {}
    for bot, user in touches:
        by_bot.setdefault(bot, []).append(user)
    at = _at(max(touches.values()))
    with transaction.atomic():
        for bot, users in by_bot.items():
            for start in range(0, len(users), BATCH_SIZE):
                chunk = users[start:start + BATCH_SIZE]
                TelegramUser.objects.filter(telegram_id__in=chunk, last_seen__lt=at) \
                    .update(last_seen=at)
                BotUser.objects.filter(bot_id=bot, user__telegram_id__in=chunk,
                                       last_seen__lt=at).update(last_seen=at)


def _person(entry: Entry) -> TelegramUser:
    first, last, username, language = entry.profile
    return TelegramUser(telegram_id=entry.user, first_name=first, last_name=last,
                        username=username, language_code=language,
                        first_seen=_at(entry.first_seen), last_seen=_at(entry.last_seen))


def _upsert_bot_users(entries, pks: dict[int, int]) -> None:
    """BotUser rows, grouped by what they change: last_seen, the block, or both."""
    groups: dict[tuple[str, ...], list[BotUser]] = {}
    for entry in entries:
        fields = (("last_seen",) if entry.profile is not None else ()) \
            + (("blocked_at",) if entry.blocked is not None else ())
        if not fields:
            continue
        blocked_at = _at(entry.blocked_at) if entry.blocked else None
        groups.setdefault(fields, []).append(BotUser(
            bot_id=entry.bot, user_id=pks[entry.user], first_seen=_at(entry.first_seen),
            last_seen=_at(entry.last_seen), blocked_at=blocked_at,
            started_at=_at(entry.started) if entry.started else None,
        ))
    for fields, rows in groups.items():
        BotUser.objects.bulk_create(rows, update_conflicts=True, unique_fields=["bot", "user"],
                                    update_fields=list(fields))


def _first_starts(entries, pks: dict[int, int]) -> None:
    """started_at is the first /start: set where it is empty, never moved."""
    by_bot: dict[int, list[Entry]] = {}
    for entry in entries:
        if entry.started is not None:
            by_bot.setdefault(entry.bot, []).append(entry)
    for bot, started in by_bot.items():
        # One update per bot: the batch's earliest start stands for all (a second apart).
        BotUser.objects.filter(
            bot_id=bot, user_id__in=[pks[e.user] for e in started], started_at__isnull=True
        ).update(started_at=_at(min(e.started for e in started)))


def _first_referrals(entries) -> None:
    """The first valid referral wins: written only where none is recorded yet."""
    referred = [e for e in entries if e.referral is not None]
    if not referred:
        return
    owner_ids = {e.referral[1] for e in referred if e.referral[0] == OWNER}
    owners = set(get_user_model().objects.filter(pk__in=owner_ids)
                 .values_list("pk", flat=True)) if owner_ids else set()
    for entry in sorted(referred, key=lambda e: e.referral[2]):
        kind, pk, at = entry.referral
        if kind == OWNER and pk not in owners:
            logger.debug("people.referral_owner_gone", owner=pk)
            continue
        TelegramUser.objects.filter(telegram_id=entry.user, referred_at__isnull=True).update(
            referred_by_user_id=pk if kind == OWNER else None,
            referred_by_group_id=None if kind == OWNER else pk,
            referred_at=_at(at),
        )
