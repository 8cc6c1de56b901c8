"""Broadcasts: one message from a superadmin to many people, sent in the background.

A `/broadcast` (verification.superadmin) writes a draft `Broadcast`; confirming
it (`confirm`) writes one `Delivery` per recipient in bulk, in one transaction
with the audit row. Each bot's sender (`run`, a per-bot runtime task) then:

1. at start, turns deliveries a killed process left `sending` into `unknown`
   (`recover`): they may have reached the person, and are not sent again;
2. claims a small batch of queued deliveries (`sending`, one UPDATE), sends
   each at the lowest priority (`in_background`: P2, behind every person and
   all enforcement) through the bot's rate limiter, and writes the batch's
   outcomes in one bulk update; a stop between two sends puts the rest back;
3. marks a broadcast finished once nothing of it is queued or sending.

So a broadcast resumes after a restart where it stopped, and a delivery is sent
at most once: see docs/operations.md ("Superadmins") for why at-most-once.
People who blocked the bot or opted out are skipped without a call. A 403
"blocked" answer skips the delivery; the people directory's writer, which the
rate limiter tells of every refusal, marks the person blocked
(`BotUser.blocked_at`, `bots.people`), as it does for any private message.
Every message carries a button that opts the person out (`on_opt_out`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable, Sequence

import structlog
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError

from bots import audit
from bots.audit import Actor, AuditAction
from bots.models import BotUser, TelegramUser
from groups import languages
from groups.models import GroupAdmin, ProtectedGroup
from verification import actions
from verification.actions import announcements
from verification.engine import Engine
from verification.models import Broadcast, Delivery

logger = structlog.get_logger(__name__)

OPT_OUT = "nz:bo"  # the callback data of every broadcast's opt-out button
# Claimed per batch: about what the limiter lets out in a second. A killed process
# leaves at most this many `unknown`.
BATCH = 10
LOOK_INTERVAL = 5.0  # seconds between looks for queued deliveries when not woken
MAX_ATTEMPTS = 5  # passing failures (429 past the limiter's patience, 5xx, network)
RETRY_SECONDS = 5.0  # the first wait after a batch met passing failures; it doubles
RETRY_MAX_SECONDS = 300.0
STOP_GRACE = 15.0  # seconds a stopping runbot waits for the batch under way
MAX_TEXT = 4096  # Telegram's limit for one message's text
CHUNK = 1_000  # ids per IN (...) and rows per bulk write

Status = Delivery.Status
UNFINISHED = (Status.QUEUED, Status.SENDING)


# --- the audience -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Audience:
    """Who a broadcast would reach, as the preview tells the superadmin."""

    kind: str
    people: tuple[int, ...]
    blocked: frozenset[int]
    opted_out: frozenset[int]

    @property
    def reachable(self) -> int:
        return len(self.people) - len(self.blocked | self.opted_out)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def owners(bot_pk: int) -> list[int]:
    """Telegram ids of the creators of the groups this bot protects (and who set them up)."""
    groups = ProtectedGroup.objects.filter(bot_id=bot_pk, enabled=True)
    creators = GroupAdmin.objects.filter(group__in=groups, is_creator=True, is_anonymous=False)
    ids = set(creators.values_list("user_id", flat=True))
    ids.update(groups.exclude(setup_by_user_id=None).values_list("setup_by_user_id", flat=True))
    return sorted(i for i in ids if i and i > 0)


def find_audience(bot_pk: int, kind: str) -> Audience:
    """The people of `kind` ("owners" or "all") for this bot, and who of them is skipped."""
    people = BotUser.objects.filter(bot_id=bot_pk)
    if kind == Broadcast.Audience.OWNERS:
        ids = owners(bot_pk)
        rows = [row for chunk in _chunks(ids) for row in people.filter(
            user__telegram_id__in=chunk).values_list(
            "user__telegram_id", "blocked_at", "broadcast_opt_out")]
    elif kind == Broadcast.Audience.ALL:
        rows = list(people.exclude(started_at=None).values_list(
            "user__telegram_id", "blocked_at", "broadcast_opt_out"))
        ids = sorted(row[0] for row in rows)
    else:
        raise ValidationError(_("The audience must be “owners” or “all”."))
    return Audience(
        kind=kind,
        people=tuple(ids),
        blocked=frozenset(uid for uid, blocked_at, _o in rows if blocked_at is not None),
        opted_out=frozenset(uid for uid, _b, opted_out in rows if opted_out),
    )


afind_audience = sync_to_async(find_audience)


# --- drafting and confirming ------------------------------------------------------------


def draft(bot_pk: int, kind: str, text: str, sent_by: int) -> Broadcast:
    """A broadcast waiting for its sender's confirmation; ValidationError for bad input."""
    text = text.strip()
    if not text:
        raise ValidationError(_("There is nothing to send."))
    if len(text) > MAX_TEXT:
        raise ValidationError(_("The message is %(length)d characters long; Telegram takes "
                                "at most %(limit)d.") % {"length": len(text), "limit": MAX_TEXT})
    if kind not in Broadcast.Audience.values:
        raise ValidationError(_("The audience must be “owners” or “all”."))
    return Broadcast.objects.create(bot_id=bot_pk, audience=kind, text=text, sent_by=sent_by)


adraft = sync_to_async(draft)


def confirm(broadcast_pk: int, actor: Actor) -> Broadcast | None:
    """Queue a draft: its deliveries in bulk and one audit row, in one transaction.

    None when it is not a draft of this person any more (confirmed or cancelled
    already, a second press): nothing is queued twice.
    """
    with transaction.atomic():
        claimed = Broadcast.objects.filter(
            pk=broadcast_pk, state=Broadcast.State.DRAFT, sent_by=actor.telegram_id,
        ).update(state=Broadcast.State.SENDING, created_at=timezone.now())
        if claimed != 1:
            return None
        broadcast = Broadcast.objects.get(pk=broadcast_pk)
        audience = find_audience(broadcast.bot_id, broadcast.audience)
        Delivery.objects.bulk_create(
            (Delivery(broadcast=broadcast, user_id=uid, status=_initial(uid, audience))
             for uid in audience.people),
            batch_size=CHUNK,
        )
        if not audience.reachable:
            finish_done(broadcast.bot_id)
        audit.record(AuditAction.BROADCAST_SENT, broadcast, by=actor,
                     after={"audience": broadcast.audience, "recipients": len(audience.people),
                            "reachable": audience.reachable})
    return broadcast


aconfirm = sync_to_async(confirm)


def _initial(user_id: int, audience: Audience) -> str:
    if user_id in audience.blocked:
        return Status.SKIPPED_BLOCKED
    if user_id in audience.opted_out:
        return Status.SKIPPED_OPTED_OUT
    return Status.QUEUED


def cancel(broadcast_pk: int, sent_by: int) -> bool:
    """Drop a draft; False when it is no draft of this person (already sent or cancelled)."""
    return Broadcast.objects.filter(
        pk=broadcast_pk, state=Broadcast.State.DRAFT, sent_by=sent_by,
    ).update(state=Broadcast.State.CANCELLED, finished_at=timezone.now()) == 1


acancel = sync_to_async(cancel)


# --- progress ---------------------------------------------------------------------------


def progress(broadcasts: Iterable[Broadcast]) -> dict[int, dict[str, int]]:
    """Per broadcast pk: deliveries by status (every status present, zeros included)."""
    pks = [b.pk for b in broadcasts]
    counts: dict[int, dict[str, int]] = {pk: dict.fromkeys(Status.values, 0) for pk in pks}
    rows = Delivery.objects.filter(broadcast_id__in=pks).values("broadcast_id", "status")
    for row in rows.annotate(n=Count("pk")):
        counts[row["broadcast_id"]][row["status"]] = row["n"]
    return counts


# --- sending ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    pk: int
    user_id: int
    text: str
    attempts: int
    language: str
    blocked: bool
    opted_out: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    pk: int
    user_id: int
    status: str
    error: str = ""
    untried: bool = False  # claimed, then put back unsent (a stop): the try is not counted


def _fresh_connection() -> None:
    if not connection.in_atomic_block:
        close_old_connections()


def recover(bot_pk: int) -> int:
    """Deliveries a killed sender left `sending` become `unknown`; returns how many.

    Only this bot's sender claims its deliveries, and it runs in one process at a
    time (the bot's lock), so at its start every `sending` row is a dead one's.
    """
    _fresh_connection()
    return Delivery.objects.filter(
        broadcast__bot_id=bot_pk, status=Status.SENDING,
    ).update(status=Status.UNKNOWN, updated_at=timezone.now(),
             error="interrupted while sending; not sent again")


def claim(bot_pk: int, limit: int = BATCH) -> list[Claimed]:
    """Mark up to `limit` queued deliveries `sending` and return them with their person."""
    _fresh_connection()
    with transaction.atomic():
        queued = Delivery.objects.filter(
            broadcast__bot_id=bot_pk, broadcast__state=Broadcast.State.SENDING,
            status=Status.QUEUED,
        ).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            queued = queued.select_for_update(skip_locked=True, of=("self",))
        pks = list(queued.values_list("pk", flat=True)[:limit])
        if not pks:
            return []
        Delivery.objects.filter(pk__in=pks, status=Status.QUEUED).update(
            status=Status.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now())
    rows = list(Delivery.objects.filter(pk__in=pks, status=Status.SENDING).order_by("pk").values(
        "pk", "user_id", "attempts", "broadcast__text"))
    people = {
        row["user__telegram_id"]: row
        for row in BotUser.objects.filter(
            bot_id=bot_pk, user__telegram_id__in=[r["user_id"] for r in rows],
        ).values("user__telegram_id", "user__language_code", "blocked_at", "broadcast_opt_out")
    }
    claimed = []
    for row in rows:
        person = people.get(row["user_id"], {})
        claimed.append(Claimed(
            pk=row["pk"], user_id=row["user_id"], text=row["broadcast__text"],
            attempts=row["attempts"],
            language=languages.for_person(person.get("user__language_code")),
            blocked=person.get("blocked_at") is not None,
            opted_out=bool(person.get("broadcast_opt_out")),
        ))
    return claimed


aclaim = sync_to_async(claim)


def record(bot_pk: int, outcomes: Sequence[Outcome]) -> None:
    """Write a batch's outcomes in one bulk update; finish what has nothing left."""
    _fresh_connection()
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.bulk_update(
            [Delivery(pk=o.pk, status=o.status, error=o.error[:255], updated_at=now,
                      attempts=F("attempts") - 1 if o.untried else F("attempts"))
             for o in outcomes],
            ["status", "error", "updated_at", "attempts"], batch_size=CHUNK,
        )
        finish_done(bot_pk)


arecord = sync_to_async(record)


def finish_done(bot_pk: int) -> int:
    """Broadcasts of this bot with nothing queued or sending become finished."""
    done = Broadcast.objects.filter(bot_id=bot_pk, state=Broadcast.State.SENDING).exclude(
        pk__in=Delivery.objects.filter(status__in=UNFINISHED, broadcast__bot_id=bot_pk)
        .values("broadcast_id"))
    return done.update(state=Broadcast.State.FINISHED, finished_at=timezone.now())


def _person_rows(bot_pk: int, user_ids: Sequence[int]) -> None:
    """Directory rows for these people (a button may be pressed before the directory's
    writer wrote its first sighting of them)."""
    TelegramUser.objects.bulk_create(
        [TelegramUser(telegram_id=uid) for uid in user_ids], ignore_conflicts=True)
    users = TelegramUser.objects.filter(telegram_id__in=user_ids)
    BotUser.objects.bulk_create(
        [BotUser(bot_id=bot_pk, user=user) for user in users], ignore_conflicts=True)


def opt_out(bot_pk: int, user_id: int) -> None:
    """The person wants no more broadcasts from this bot."""
    _person_rows(bot_pk, [user_id])
    BotUser.objects.filter(bot_id=bot_pk, user__telegram_id=user_id).update(
        broadcast_opt_out=True)


aopt_out = sync_to_async(opt_out)


def opt_out_keyboard(language: str) -> InlineKeyboardMarkup:
    with languages.speaking(language):
        label = _("Stop these announcements")
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=OPT_OUT)]])


async def deliver(engine: Engine, item: Claimed) -> Outcome:
    """Send one delivery (or skip it); the outcome to record. Never raises TelegramError."""
    if item.blocked:
        return Outcome(item.pk, item.user_id, Status.SKIPPED_BLOCKED, "skipped: blocked earlier")
    if item.opted_out:
        return Outcome(item.pk, item.user_id, Status.SKIPPED_OPTED_OUT)
    try:
        await announcements.announce(engine, item.user_id, item.text,
                                     opt_out_keyboard(item.language))
    except Forbidden as exc:
        if "blocked" in exc.message.lower():
            return Outcome(item.pk, item.user_id, Status.SKIPPED_BLOCKED)
        # Never started the bot, or deactivated: Telegram will not take it later either.
        return Outcome(item.pk, item.user_id, Status.FAILED, exc.message)
    except BadRequest as exc:
        return Outcome(item.pk, item.user_id, Status.FAILED, exc.message)
    except TelegramError as exc:
        # Passing (429 past the limiter's patience, 5xx, network): again later, a few times.
        if item.attempts >= MAX_ATTEMPTS:
            return Outcome(item.pk, item.user_id, Status.FAILED, exc.message)
        return Outcome(item.pk, item.user_id, Status.QUEUED, exc.message)
    return Outcome(item.pk, item.user_id, Status.SENT)


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    claimed: int  # 0: nothing was queued
    sent: int
    passing_failures: int  # put back for a later try (the sender then waits)


async def send_batch(engine: Engine, stop: asyncio.Event) -> Batch:
    """Claim and send one batch.

    Runbot's drain sets `stop`, then cancels the bot's loops. The batch runs in
    a task of its own that the cancellation does not reach: it ends at its next
    send (within `STOP_GRACE`), puts its unsent claims back and writes its
    outcomes, so a deploy leaves nothing `sending` and nothing sent twice.
    """
    batch = asyncio.ensure_future(_send_batch(engine, stop))
    try:
        return await asyncio.shield(batch)
    except asyncio.CancelledError:
        await asyncio.wait({batch}, timeout=STOP_GRACE)
        raise


async def _send_batch(engine: Engine, stop: asyncio.Event) -> Batch:
    claimed = await aclaim(engine.bot_pk)
    outcomes: list[Outcome] = []
    in_flight: Claimed | None = None
    try:
        for item in claimed:
            if stop.is_set():
                break
            in_flight = item
            outcomes.append(await deliver(engine, item))
            in_flight = None
    finally:
        done = {o.pk for o in outcomes}
        for item in claimed:
            if item is in_flight:
                # Cancelled during the call (past STOP_GRACE): Telegram may have it.
                outcomes.append(Outcome(item.pk, item.user_id, Status.UNKNOWN,
                                        "interrupted while sending; not sent again"))
            elif item.pk not in done:
                outcomes.append(Outcome(item.pk, item.user_id, Status.QUEUED, untried=True))
        if outcomes:
            await arecord(engine.bot_pk, outcomes)
    result = Batch(
        claimed=len(claimed),
        sent=sum(o.status == Status.SENT for o in outcomes),
        passing_failures=sum(o.status == Status.QUEUED and not o.untried for o in outcomes),
    )
    if claimed:
        logger.info("broadcast.batch", bot=engine.bot_pk, claimed=result.claimed,
                    sent=result.sent, retry_later=result.passing_failures)
    return result


def retry_wait(failed_batches: int) -> float:
    """Seconds before the next batch after this many batches in a row met passing
    failures: Telegram or the network is unwell, so back off (5 s, 10 s, ... 5 min)."""
    return min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** (failed_batches - 1))


async def run(engine: Engine, stop: asyncio.Event) -> None:
    """The bot's sender: resume what a previous process left, then send until `stop`."""
    recovered = False
    failed_batches = 0
    while not stop.is_set():
        try:
            if not recovered:
                left = await sync_to_async(recover)(engine.bot_pk)
                recovered = True
                if left:
                    logger.warning("broadcast.interrupted", bot=engine.bot_pk, unknown=left)
            while not stop.is_set():
                batch = await send_batch(engine, stop)
                failed_batches = failed_batches + 1 if batch.passing_failures else 0
                if not batch.claimed or batch.passing_failures:
                    break
        except DatabaseError as exc:
            # The database is away: the deliveries wait in their table.
            logger.warning("broadcast.unavailable", bot=engine.bot_pk,
                           error=str(exc).strip()[:200])
        engine.broadcasts_due.clear()
        wait = retry_wait(failed_batches) if failed_batches else LOOK_INTERVAL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, engine.broadcasts_due), timeout=wait)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


# --- the opt-out button -----------------------------------------------------------------


async def on_opt_out(engine: Engine, update: Update) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    person = query.from_user
    await aopt_out(engine.bot_pk, person.id)
    logger.info("broadcast.opted_out", bot=engine.bot_pk, user_id=person.id)
    with languages.speaking(languages.for_person(person.language_code)):
        text = _("Done: this bot will send you no more announcements.")
    await actions.answer(engine, query.id, text, alert=True)

