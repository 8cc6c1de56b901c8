"""Group configuration: cached in memory, dropped when anything changes."""

import pytest
from django.core.cache import cache

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


def test_it_keeps_working_when_the_shared_cache_is_down(settings):
    bot = make_bot()
    group = make_group(bot, channels=[make_channel(bot)])
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    configs.force_check()
    assert configs.get(bot.pk, group.chat_id).pk == group.pk
    group.title = "Renamed"
    group.save()  # the bump fails quietly; the local cache is still dropped
    assert configs.get(bot.pk, group.chat_id).title == "Renamed"


def test_a_failing_shared_cache_is_asked_again_only_after_a_pause(monkeypatch):
    calls = []

    def failing_get(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("redis is away")

    monkeypatch.setattr(config_module.cache, "get", failing_get)
    now = [1000.0]
    runbot = ConfigCache(clock=lambda: now[0])
    runbot.force_check()
    assert len(calls) == 1
    # Not every two seconds while it is down...
    now[0] += config_module.VERSION_CHECK_SECONDS + 1
    runbot.peek(1, -1)
    assert len(calls) == 1
    # ...but again after the pause.
    now[0] += config_module.VERSION_RETRY_SECONDS
    runbot.peek(1, -1)
    assert len(calls) == 2


def _admin(user_id: int) -> dict:
    return {"user_id": user_id, "username": "", "first_name": "A", "is_creator": False,
            "is_anonymous": False, "can_restrict_members": True}


def test_an_unchanged_admin_refresh_reloads_only_its_own_group(django_assert_num_queries):
    from groups import services

    bot = make_bot()
    cats = make_group(bot, channels=[make_channel(bot)])
    dogs = make_group(bot, channels=[make_channel(bot)])
    services.replace_admins(cats.pk, [_admin(7)])
    before = configs.get(bot.pk, cats.chat_id)
    configs.get(bot.pk, dogs.chat_id)
    version = cache.get(config_module.VERSION_KEY)
    services.replace_admins(cats.pk, [_admin(7)])
    # Nothing another process must reload, and the other group stays in memory...
    assert cache.get(config_module.VERSION_KEY) == version
    with django_assert_num_queries(0):
        configs.get(bot.pk, dogs.chat_id)
    # ...while this one shows the new refresh time.
    after = configs.get(bot.pk, cats.chat_id)
    assert after.admins_refreshed_at > before.admins_refreshed_at
    assert after.admin_ids == frozenset({7})
    # A changed list is a change for everyone.
    services.replace_admins(cats.pk, [_admin(7), _admin(8)])
    assert cache.get(config_module.VERSION_KEY) != version
    assert configs.get(bot.pk, cats.chat_id).admin_ids == frozenset({7, 8})
