"""The Grafana metrics a running bot produces, through runbot's runtime and the emulator:
per-handler and per-command counts and timings, update lag, active people and groups,
all labelled by the bot's username."""

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_bot_at_work_shows_up_by_handler_command_and_username(world):
    s = world.scene
    bot = s.bot.username
    before = {
        "help": sample("nezuko_commands_total", bot=bot, command="help", outcome="ok"),
        "help_timed": sample("nezuko_command_seconds_count", bot=bot, command="help"),
        "on_message": sample("nezuko_handled_total", bot=bot, handler="on_message",
                             outcome="ok"),
        "lag": sample("nezuko_update_lag_seconds_count", bot=bot),
    }
    s.emulator.join(s.group, s.carol)
    await world.settle()  # one /help from the probe
    await world.protect()
    s.emulator.send_message(s.group, s.carol, "hello")
    await world.emu.wait_for_call("restrictChatMember", user_id=s.carol.id)
    await world.settle()  # a second /help

    # Each /help counted under its command, timed, labelled by the bot's username.
    assert sample("nezuko_commands_total", bot=bot, command="help",
                  outcome="ok") == before["help"] + 2
    assert sample("nezuko_command_seconds_count", bot=bot, command="help") == \
        before["help_timed"] + 2
    # Carol's message went through the message handler, which restricted her.
    assert sample("nezuko_handled_total", bot=bot, handler="on_message",
                  outcome="ok") >= before["on_message"] + 1
    # Every dated update that arrived had its lag measured (join, messages, /helps).
    assert sample("nezuko_update_lag_seconds_count", bot=bot) >= before["lag"] + 4
    # Carol and the probe spoke; Cats had updates in the last five minutes.
    assert sample("nezuko_active_users", bot=bot, window="5m") >= 2
    assert sample("nezuko_active_groups", bot=bot, window="5m") >= 1
    # No series is labelled by the database id.
    assert REGISTRY.get_sample_value(
        "nezuko_bot_up", {"bot": str(world.bot_row.pk)}) is None
    assert sample("nezuko_bot_up", bot=bot) == 1
