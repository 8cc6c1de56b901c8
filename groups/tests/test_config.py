"""Group configuration: cached in memory, dropped when anything changes."""

import asyncio

import pytest
from django.core.cache import cache
from django.db import OperationalError

from groups import config as config_module
from groups.config import ConfigCache, configs
from groups.models import GroupAdmin, GroupChannel, ProtectedGroup
from tests.factories import make_bot, make_channel, make_group

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()
    configs.clear()
    yield
    configs.clear()


def test_it_builds_a_frozen_config_with_channels_admins_and_allow_list():
    bot = make_bot()
    news = make_channel(bot, title="Cat News", username="catnews")
    group = make_group(bot, channels=[news], allowed_user_ids=[5, "6", "junk"])
    GroupAdmin.objects.create(group=group, user_id=7)
    config = configs.get(bot.pk, group.chat_id)
    assert config.channels[0].chat_id == news.chat_id
    assert config.channels[0].join_url == "https://t.me/catnews"
    assert config.admin_ids == frozenset({7})
    # Junk in the allow-list is ignored, not a crash.
    assert config.allowed_user_ids == frozenset({5, 6})
    assert config.protecting


def test_it_answers_from_memory_after_the_first_load(django_assert_num_queries):
    bot = make_bot()
    group = make_group(bot, channels=[make_channel(bot)])
    configs.get(bot.pk, group.chat_id)
    configs.get(bot.pk, -1)  # an unprotected chat is remembered too
    with django_assert_num_queries(0):
        assert configs.get(bot.pk, group.chat_id).pk == group.pk
        assert configs.get(bot.pk, -1) is None


def test_a_save_in_this_process_is_seen_at_once():
    bot = make_bot()
    group = make_group(bot, channels=[make_channel(bot)])
    assert configs.get(bot.pk, group.chat_id).fail_mode == "closed"
    group.fail_mode = ProtectedGroup.FailMode.OPEN
    group.save()
    assert configs.get(bot.pk, group.chat_id).fail_mode == "open"
    # Unlinking the channel, too.
    GroupChannel.objects.filter(group=group).delete()
    assert not configs.get(bot.pk, group.chat_id).protecting


def test_a_change_made_by_another_process_is_seen_within_the_check_interval(monkeypatch):
    bot = make_bot()
    group = make_group(bot, channels=[make_channel(bot)])
    runbot = ConfigCache()  # this process's cache stands for runbot's
    assert runbot.get(bot.pk, group.chat_id).enabled
    # The dashboard (another process) saves: only the shared version moves.
    ProtectedGroup.objects.filter(pk=group.pk).update(enabled=False)
    config_module.bump_version()
    # Within the interval runbot may still use what it has...
    assert runbot.get(bot.pk, group.chat_id).enabled
    # ...and after it, it reloads.
    runbot.force_check()
    assert not runbot.get(bot.pk, group.chat_id).enabled


def test_a_change_reaches_another_process_while_the_shared_cache_is_down(settings):
    bot = make_bot()
    group = make_group(bot, channels=[make_channel(bot)])
    runbot = ConfigCache()
    assert runbot.get(bot.pk, group.chat_id).action == "mute"
    # Redis is unreachable (a partition): the version must not live only there.
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    group.action = ProtectedGroup.Action.KICK
    group.save()
    runbot.force_check()
    assert runbot.get(bot.pk, group.chat_id).action == "kick"


@pytest.mark.django_db(transaction=True)
async def test_the_watcher_drops_what_the_hot_path_peeks_at_after_a_change():
    from asgiref.sync import sync_to_async

    def protected_group():
        bot = make_bot()
        return bot, make_group(bot, channels=[make_channel(bot)])

    bot, group = await sync_to_async(protected_group)()
    runbot = ConfigCache()
    await sync_to_async(runbot.get)(bot.pk, group.chat_id)
    stop = asyncio.Event()
    watcher = asyncio.create_task(runbot.watch(stop))
    await ProtectedGroup.objects.filter(pk=group.pk).aupdate(enabled=False)
    await sync_to_async(config_module.bump_version)()
    # peek() never queries; within a check interval the watcher forgets the old config.
    async with asyncio.timeout(config_module.VERSION_CHECK_SECONDS * 3):
        while runbot.peek(bot.pk, group.chat_id)[0]:  # noqa: ASYNC110 - polling the cache
            await asyncio.sleep(0.05)
    stop.set()
    await watcher
    assert not (await sync_to_async(runbot.get)(bot.pk, group.chat_id)).enabled


def test_an_unreachable_database_is_asked_again_only_after_a_pause(monkeypatch):
    calls = []

    def failing_read(*args, **kwargs):
        calls.append(args)
        raise OperationalError("the database is away")

    monkeypatch.setattr(config_module.ConfigVersion.objects, "filter", failing_read)
    now = [1000.0]
    runbot = ConfigCache(clock=lambda: now[0])
    runbot.force_check()
    assert len(calls) == 1
    # Not every two seconds while it is down...
    now[0] += config_module.VERSION_CHECK_SECONDS + 1
    runbot._check_version()
    assert len(calls) == 1
    # ...but again after the pause.
    now[0] += config_module.VERSION_RETRY_SECONDS
    runbot._check_version()
    assert len(calls) == 2


def _admin(user_id: int) -> dict:
    return {"user_id": user_id, "username": "", "first_name": "A", "is_creator": False,
            "is_anonymous": False, "can_restrict_members": True}


def test_an_unchanged_admin_refresh_reloads_only_its_own_group(django_assert_num_queries):
    from groups.services import admin_list

    bot = make_bot()
    cats = make_group(bot, channels=[make_channel(bot)])
    dogs = make_group(bot, channels=[make_channel(bot)])
    admin_list.replace_admins(cats.pk, [_admin(7)])
    before = configs.get(bot.pk, cats.chat_id)
    configs.get(bot.pk, dogs.chat_id)
    version = config_module.shared_version()
    admin_list.replace_admins(cats.pk, [_admin(7)])
    # Nothing another process must reload, and the other group stays in memory...
    assert config_module.shared_version() == version
    with django_assert_num_queries(0):
        configs.get(bot.pk, dogs.chat_id)
    # ...while this one shows the new refresh time.
    after = configs.get(bot.pk, cats.chat_id)
    assert after.admins_refreshed_at > before.admins_refreshed_at
    assert after.admin_ids == frozenset({7})
    # A changed list is a change for everyone.
    admin_list.replace_admins(cats.pk, [_admin(7), _admin(8)])
    assert config_module.shared_version() != version
    assert configs.get(bot.pk, cats.chat_id).admin_ids == frozenset({7, 8})
