"""The broadcast sender's guarantees: a killed sender's claims are not sent again,
passing failures are retried, refusals are not."""

import pytest
from asgiref.sync import sync_to_async

from bots.audit import Actor
from bots.models import AuditLog
from bots.tests.runtime_support import eventually
from tests.factories import make_bot, make_group
from verification import broadcasts
from verification.models import Broadcast, Delivery

SAM = 555
ACTOR = Actor(AuditLog.Source.TELEGRAM, telegram_id=SAM)
Status = Delivery.Status


def queued_to(bot, owner_ids):
    """A confirmed broadcast to the owners of one group each."""
    for i, owner in enumerate(owner_ids):
        make_group(bot, chat_id=-1001000000100 - i, setup_by_user_id=owner)
    draft = broadcasts.draft(bot.pk, "owners", "Hello", SAM)
    return broadcasts.confirm(draft.pk, ACTOR)


@pytest.mark.django_db
def test_a_killed_senders_claims_become_unknown_and_are_not_sent_again():
    bot = make_bot(username="nezuko_bot")
    broadcast = queued_to(bot, [11, 12, 13])
    claimed = broadcasts.claim(bot.pk, limit=2)
    assert [c.user_id for c in claimed] == [11, 12]
    # The process dies here (SIGKILL): its outcomes are never recorded. The next start:
    assert broadcasts.recover(bot.pk) == 2
    statuses = dict(Delivery.objects.values_list("user_id", "status"))
    assert statuses == {11: Status.UNKNOWN, 12: Status.UNKNOWN, 13: Status.QUEUED}
    # Only the one never claimed is sent from then on.
    assert [c.user_id for c in broadcasts.claim(bot.pk)] == [13]
    broadcasts.record(bot.pk, [broadcasts.Outcome(claimed_pk, 13, Status.SENT)
                               for claimed_pk in Delivery.objects.filter(user_id=13)
                               .values_list("pk", flat=True)])
    broadcast.refresh_from_db()
    assert broadcast.state == Broadcast.State.FINISHED


@pytest.mark.django_db
def test_bad_input_is_refused_with_a_reason_and_drafts_nothing():
    bot = make_bot(username="nezuko_bot")
    for kind, text, reason in (("owners", "   ", "nothing to send"),
                               ("owners", "x" * 4097, "at most 4096"),
                               ("everybody", "Hi", "owners")):
        with pytest.raises(broadcasts.ValidationError) as refused:
            broadcasts.draft(bot.pk, kind, text, SAM)
        assert reason in " ".join(refused.value.messages)
    assert not Broadcast.objects.exists()


pytestmark = pytest.mark.django_db(transaction=True)


async def test_passing_failures_are_retried_and_refusals_are_not(world, monkeypatch):
    # The back-off's length is not under test here: its doubling is (below).
    monkeypatch.setattr(broadcasts, "RETRY_SECONDS", 0.05)
    s = world.scene
    await world.protect()
    dave = world.emu.create_user("Dave")
    dogs = world.emu.create_supergroup("Dogs", creator=dave)
    world.emu.promote(dogs, s.bot, by=dave)
    await world.protect(group=dogs, admins=[dave, s.bot])
    # alice started the bot; dave never did, so Telegram refuses to write to him.
    world.emu.private_chat(s.bot, s.alice)
    # Telegram fails twice for alice (a 5xx): she gets it on a later try.
    world.emu.fail("sendMessage", chat_id=s.alice.id, error_code=502, times=2)
    broadcast = await sync_to_async(
        lambda: broadcasts.confirm(broadcasts.draft(world.bot_row.pk, "owners", "Hello", SAM).pk,
                                   ACTOR))()
    world.engine.broadcasts_due.set()

    async def finished():
        return await Broadcast.objects.filter(pk=broadcast.pk,
                                              state=Broadcast.State.FINISHED).aexists()

    await eventually(finished, within=30)
    rows = {r.user_id: r async for r in Delivery.objects.filter(broadcast=broadcast)}
    assert rows[s.alice.id].status == Status.SENT and rows[s.alice.id].attempts == 3
    assert rows[dave.id].status == Status.FAILED and rows[dave.id].attempts == 1
    assert "initiate" in rows[dave.id].error
    sent = [c for c in world.calls("sendMessage", chat_id=s.alice.id, text="Hello") if c.ok]
    assert len(sent) == 1


def test_the_wait_after_passing_failures_doubles_up_to_five_minutes():
    waits = [broadcasts.retry_wait(n) for n in range(1, 10)]
    assert waits[:4] == [5.0, 10.0, 20.0, 40.0] and waits[-1] == 300.0
