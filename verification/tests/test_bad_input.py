"""Bad input gets a clear answer, never a crash."""

import pytest

from groups.models import ProtectedGroup
from verification.updates import parse_callback_data


@pytest.mark.django_db(transaction=True)
async def test_protect_with_something_that_is_not_a_channel_says_so(world):
    s = world.scene
    since = len(world.emu.calls)
    world.emu.send_message(s.group, s.alice, "/protect <script> @x")
    reply = await world.emu.wait_for_call("sendMessage", since=since, chat_id=s.group.id)
    assert "Not a channel" in reply.params["text"]
    assert "&lt;script&gt;" in reply.params["text"] or "<script>" not in reply.params["text"]
    assert not await ProtectedGroup.objects.aexists()


def test_forged_button_data_is_not_ours():
    # Anything but nz:<j|r>:<integer> is ignored (answered empty by the handler).
    for data in (None, "", "nz", "nz:j", "nz:j:abc", "nz:x:1", "xx:j:1", "nz:j:1:2"):
        assert parse_callback_data(data) == (None, None)
    assert parse_callback_data("nz:j:42") == ("joined", 42)
    assert parse_callback_data("nz:r:-100123") == ("request", -100123)
