"""The people directory's writer: folded sightings, bulk upserts, set-once fields, outages."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY
from telegram import User
from telegram.error import BadRequest, Forbidden

from bots import referrals
from bots.models import BotUser, TelegramUser
from bots.people import PeopleWriter
from bots.spool import Spool
from groups.tests.outage import database_away
from tests.factories import make_bot

pytestmark = pytest.mark.django_db(transaction=True)


def person(user_id: int, first: str = "Carol", **fields) -> User:
    return User(user_id, first, False, **fields)


@pytest.fixture
def writer(tmp_path) -> PeopleWriter:
    writer = PeopleWriter(spool=Spool(tmp_path, "people"))
    yield writer
    writer.close_spool()


def test_a_burst_of_sightings_is_one_entry_per_person_and_one_bulk_write(writer):
    bot = make_bot()
    # 50 people: within one statement's parameters on SQLite too (999), which splits more.
    for n in range(50):
        for _ in range(5):  # five updates each between two flushes
            writer.seen(bot.pk, person(1000 + n, f"P{n}", language_code="es"))
    assert writer.buffered == 50
    with CaptureQueriesContext(connection) as queries:
        assert writer.flush() == 50
    # Read who asked to be forgotten, upsert people, read their pks, upsert per-bot
    # rows (plus the transaction's own).
    writes = [q for q in queries.captured_queries
              if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))]
    assert len(writes) == 4, [q["sql"][:60] for q in writes]
    assert TelegramUser.objects.count() == 50
    assert BotUser.objects.filter(bot=bot).count() == 50
    assert TelegramUser.objects.get(telegram_id=1007).first_name == "P7"
    assert writer.buffered == 0


def test_names_follow_telegram_and_first_seen_stays(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5, "Carol", username="carol", language_code="en"))
    writer.flush()
    first = TelegramUser.objects.get(telegram_id=5)
    writer.seen(bot.pk, person(5, "Caroline", last_name="Doe", username="caro",
                               language_code="de"))
    writer.flush()
    now = TelegramUser.objects.get(telegram_id=5)
    assert (now.first_name, now.last_name, now.username, now.language_code) == (
        "Caroline", "Doe", "caro", "de")
    assert now.first_seen == first.first_seen
    assert now.last_seen > first.last_seen


def test_started_at_is_the_first_start_and_never_moves(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5))  # a button press: not a start
    writer.flush()
    assert BotUser.objects.get().started_at is None
    writer.seen(bot.pk, person(5), started=True)
    writer.flush()
    started = BotUser.objects.get().started_at
    assert started is not None
    writer.seen(bot.pk, person(5), started=True)
    writer.flush()
    assert BotUser.objects.get().started_at == started


def test_the_first_valid_referral_wins(writer, django_user_model):
    bot = make_bot()
    owner = django_user_model.objects.create_user("owner")
    other = django_user_model.objects.create_user("other")
    writer.seen(bot.pk, person(5), started=True,
                referral=referrals.read(referrals.payload(referrals.OWNER, owner.pk)))
    writer.seen(bot.pk, person(5), started=True,
                referral=referrals.read(referrals.payload(referrals.OWNER, other.pk)))
    writer.flush()
    writer.seen(bot.pk, person(5), started=True,
                referral=referrals.read(referrals.payload(referrals.GROUP, 77)))
    writer.flush()
    row = TelegramUser.objects.get(telegram_id=5)
    assert (row.referred_by_user_id, row.referred_by_group_id) == (owner.pk, None)
    assert row.referred_at is not None


def test_a_referral_to_a_deleted_owner_is_not_recorded_and_the_person_is(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5), started=True,
                referral=referrals.read(referrals.payload(referrals.OWNER, 999_999)))
    assert writer.flush() == 1
    row = TelegramUser.objects.get(telegram_id=5)
    assert (row.referred_by_user_id, row.referred_at) == (None, None)


def test_a_403_marks_the_block_and_my_chat_member_lifts_it(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5), started=True)
    writer.flush()
    writer.refused(str(bot.pk), 5, Forbidden("Forbidden: bot was blocked by the user"))
    # Other refusals say nothing about the person.
    writer.refused(str(bot.pk), 6, BadRequest("Bad Request: chat not found"))
    writer.refused(str(bot.pk), -1001, Forbidden("Forbidden: bot was kicked from the group"))
    writer.flush()
    row = BotUser.objects.get(user__telegram_id=5)
    assert row.blocked_at is not None and row.started_at is not None
    assert not TelegramUser.objects.filter(telegram_id__in=[6, -1001]).exists()
    writer.seen(bot.pk, person(5), blocked=False)
    writer.flush()
    assert BotUser.objects.get(user__telegram_id=5).blocked_at is None


def test_a_403_for_someone_never_seen_makes_a_bare_row(writer):
    bot = make_bot()
    writer.unreachable(bot.pk, 8)
    writer.flush()
    row = TelegramUser.objects.get(telegram_id=8)
    assert (row.first_name, row.username) == ("", "")
    assert BotUser.objects.get(user=row).blocked_at is not None


def test_sightings_survive_an_outage_and_are_written_when_it_ends(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5, "Before"))
    with database_away():
        assert writer.flush() == 0
        assert writer.flush() == 0
        assert writer.buffered == 1
    # Noted during the outage: folded with what waited.
    writer.seen(bot.pk, person(5, "After"), started=True)
    writer.seen(bot.pk, person(6))
    assert writer.flush() == 2
    row = TelegramUser.objects.get(telegram_id=5)
    assert row.first_name == "After"
    assert BotUser.objects.get(user=row).started_at is not None
    assert connection.is_usable()


def test_a_full_buffer_spills_to_disk_and_a_restart_writes_it(tmp_path):
    bot = make_bot()
    writer = PeopleWriter(max_buffered=3, spool=Spool(tmp_path, "people"))
    for n in range(5):
        writer.seen(bot.pk, person(100 + n))
    assert (writer.buffered, len(writer.spool), writer.dropped) == (3, 2, 0)
    with database_away():
        writer.close()  # shutdown during an outage: the rest goes to disk too
    assert (writer.buffered, len(writer.spool)) == (0, 5)
    writer.close_spool()
    restarted = PeopleWriter(spool=Spool(tmp_path, "people"))
    assert restarted.flush() == 5
    assert TelegramUser.objects.count() == 5
    restarted.close_spool()


def test_a_row_the_database_refuses_is_set_aside_and_the_rest_written(writer):
    before = REGISTRY.get_sample_value("nezuko_records_set_aside_total",
                                       {"buffer": "people"}) or 0
    bot = make_bot()
    writer.seen(bot.pk, person(5))
    writer.seen(987654, person(6))  # a bot that no longer exists
    assert writer.flush() == 1
    assert writer.set_aside == 1
    assert REGISTRY.get_sample_value("nezuko_records_set_aside_total",
                                     {"buffer": "people"}) - before == 1
    assert list(TelegramUser.objects.values_list("telegram_id", flat=True)) == [5]


def test_forget_deletes_the_rows_and_what_was_buffered_about_them(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5))
    writer.flush()
    writer.seen(bot.pk, person(5), started=True)  # still buffered when they ask
    writer.seen(bot.pk, person(6))
    assert writer.forget(5) is True
    assert not TelegramUser.objects.filter(telegram_id=5).exists()
    assert not BotUser.objects.filter(user__telegram_id=5).exists()
    # Someone else's sighting was written, not dropped.
    assert TelegramUser.objects.filter(telegram_id=6).exists()
    writer.flush()
    assert not TelegramUser.objects.filter(telegram_id=5).exists()
    assert writer.forget(5) is False


def test_forget_holds_against_what_another_process_still_buffers(writer, tmp_path):
    """Two runbot processes (the bus spreads a bot's chats over them): one saw the
    person in a group just before the other answered their /forget."""
    bot = make_bot()
    other = PeopleWriter(spool=Spool(tmp_path / "other", "people"))
    try:
        writer.seen(bot.pk, person(5))
        writer.flush()
        other.seen(bot.pk, person(5, username="carol"))  # buffered over there
        assert writer.forget(5) is True
        other.flush()
        assert not TelegramUser.objects.filter(telegram_id=5).exists()
        # What the person does after asking is noted as ever.
        other.seen(bot.pk, person(5, "Carol again"))
        other.flush()
        assert TelegramUser.objects.get(telegram_id=5).first_name == "Carol again"
    finally:
        other.close_spool()


def test_prune_blanks_personal_data_of_people_not_seen_since(writer, django_user_model):
    bot = make_bot()
    owner = django_user_model.objects.create_user("owner")
    writer.seen(bot.pk, person(5, "Old", username="old", language_code="fr"), started=True,
                referral=referrals.read(referrals.payload(referrals.OWNER, owner.pk)))
    writer.seen(bot.pk, person(6, "Recent", username="recent"))
    writer.flush()
    long_ago = timezone.now() - datetime.timedelta(days=400)
    TelegramUser.objects.filter(telegram_id=5).update(last_seen=long_ago)
    assert writer.prune(365) == 1
    old = TelegramUser.objects.get(telegram_id=5)
    assert (old.first_name, old.username, old.language_code, old.referred_by_user_id,
            old.referred_at) == ("", "", "", None, None)
    # Ids, dates and the per-bot row stay; the recent one keeps everything.
    assert BotUser.objects.get(user=old).started_at is not None
    assert TelegramUser.objects.get(telegram_id=6).username == "recent"
    assert writer.prune(365) == 0  # nothing left to blank
    assert writer.prune(0) == 0  # 0 keeps everyone


def test_referral_payloads_cannot_be_forged():
    good = referrals.payload(referrals.OWNER, 12)
    assert len(good) <= 64 and referrals.PAYLOAD.match(good)
    assert referrals.read(good) == referrals.Referral(referrals.OWNER, 12)
    assert referrals.read(referrals.payload(referrals.GROUP, 12)).kind == referrals.GROUP
    # Someone else's id with this signature, a changed kind, junk: all nothing.
    signature = good.split("-", 1)[1]
    assert referrals.read(f"o13-{signature}") is None
    assert referrals.read(f"g12-{signature}") is None
    for junk in ["", "o12", "o12-", "hello", "o0-" + signature, "x" * 65, "o12-" + "A" * 16]:
        assert referrals.read(junk) is None
    assert referrals.start_payload("/start") == ""
    assert referrals.start_payload("/start@nezuko_bot abc") == "abc"
    assert referrals.start_payload("/starter") is None
    assert referrals.start_payload("hello") is None


def test_a_touch_moves_last_seen_of_people_known_at_most_hourly(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5, "Carol"))
    writer.flush()
    long_ago = timezone.now() - datetime.timedelta(days=3)
    TelegramUser.objects.update(last_seen=long_ago)
    BotUser.objects.update(last_seen=long_ago)
    writer.touch(bot.pk, 5)
    writer.touch(bot.pk, 9)  # nobody the directory knows: no row is made
    assert writer.flush() == 0
    assert TelegramUser.objects.get(telegram_id=5).last_seen > long_ago
    assert BotUser.objects.get().last_seen > long_ago
    assert TelegramUser.objects.get(telegram_id=5).first_name == "Carol"
    assert not TelegramUser.objects.filter(telegram_id=9).exists()
    # Within the hour a second touch costs nothing at all.
    writer.touch(bot.pk, 5)
    assert not writer.pending


def test_touches_wait_out_an_outage(writer):
    bot = make_bot()
    writer.seen(bot.pk, person(5))
    writer.flush()
    long_ago = timezone.now() - datetime.timedelta(days=3)
    TelegramUser.objects.update(last_seen=long_ago)
    writer.touch(bot.pk, 5)
    with database_away():
        writer.flush()
    assert writer.pending
    writer.flush()
    assert TelegramUser.objects.get(telegram_id=5).last_seen > long_ago


def test_the_prune_command_applies_the_setting(settings, capsys):
    from django.core.management import CommandError, call_command

    TelegramUser.objects.create(telegram_id=5, first_name="Old",
                                last_seen=timezone.now() - datetime.timedelta(days=40))
    settings.NEZUKO_PEOPLE_RETENTION_DAYS = 30
    call_command("prune_people")
    assert "people pruned: 1" in capsys.readouterr().out
    assert TelegramUser.objects.get(telegram_id=5).first_name == ""
    with pytest.raises(CommandError, match="--days must be 0"):
        call_command("prune_people", days=-1)


def test_links_signed_before_a_key_rotation_hold_while_the_old_key_is_a_fallback(settings):
    settings.SECRET_KEY = "old-key-" + "x" * 50
    payload = referrals.payload(referrals.OWNER, 12)
    settings.SECRET_KEY = "new-key-" + "y" * 50
    assert referrals.read(payload) is None
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "x" * 50]
    assert referrals.read(payload) == referrals.Referral(referrals.OWNER, 12)
