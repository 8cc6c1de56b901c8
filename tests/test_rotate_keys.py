import pytest
from django.core.management import CommandError, call_command

from bots.models import AuditLog, BotInstance
from tests.factories import make_bot

pytestmark = pytest.mark.django_db

OTHER_KEY = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMTI="


def test_it_re_encrypts_every_token_with_the_first_key(settings, capsys):
    new_key, old_key = settings.NEZUKO_ENCRYPTION_KEYS
    settings.NEZUKO_ENCRYPTION_KEYS = [old_key]
    bots = [make_bot(), make_bot()]
    tokens = {bot.pk: bot.token for bot in bots}

    settings.NEZUKO_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_keys")

    # The old key can now be dropped: the new key alone reads every token.
    settings.NEZUKO_ENCRYPTION_KEYS = [new_key]
    for bot in BotInstance.objects.all():
        assert bot.token == tokens[bot.pk]
    assert "Re-encrypted 2 token(s)" in capsys.readouterr().out
    assert AuditLog.objects.filter(action="bot.key_rotated").count() == 2


def test_it_names_the_bot_it_cannot_decrypt_and_leaves_it_untouched(settings, capsys):
    settings.NEZUKO_ENCRYPTION_KEYS = [OTHER_KEY]
    lost = make_bot(username="lost_bot")
    ciphertext = lost.encrypted_token

    settings.NEZUKO_ENCRYPTION_KEYS = ["bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleS0="]
    readable = make_bot(username="fine_bot")

    with pytest.raises(CommandError, match="1 token"):
        call_command("rotate_keys")

    err = capsys.readouterr().err
    assert "@lost_bot" in err
    assert "Traceback" not in err
    # The unreadable token is kept as it was, so restoring the key recovers it.
    assert BotInstance.objects.get(pk=lost.pk).encrypted_token == ciphertext
    assert BotInstance.objects.get(pk=readable.pk).token == readable.token
