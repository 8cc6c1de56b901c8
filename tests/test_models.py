import pytest
from django.db import IntegrityError, transaction

from bots import crypto
from bots.models import BotInstance
from groups.models import GroupChannel
from tests.factories import fake_token, make_bot, make_channel, make_group

pytestmark = pytest.mark.django_db


class TestConstraints:
    def test_it_refuses_a_channel_linked_twice_to_one_group(self):
        bot = make_bot()
        channel = make_channel(bot)
        group = make_group(bot, channels=[channel])

        with pytest.raises(IntegrityError), transaction.atomic():
            GroupChannel.objects.create(group=group, channel=channel)

        # The first link is still the only one.
        assert GroupChannel.objects.filter(group=group, channel=channel).count() == 1

    def test_it_allows_one_channel_in_many_groups(self):
        bot = make_bot()
        channel = make_channel(bot)
        make_group(bot, channels=[channel])
        make_group(bot, channels=[channel])
        assert channel.groups.count() == 2

    def test_it_refuses_the_same_group_twice_for_one_bot(self):
        bot = make_bot()
        make_group(bot, chat_id=-1001)
        with pytest.raises(IntegrityError), transaction.atomic():
            make_group(bot, chat_id=-1001)

    def test_two_bots_may_protect_the_same_chat(self):
        make_group(make_bot(), chat_id=-1002)
        make_group(make_bot(), chat_id=-1002)

    def test_it_refuses_one_token_registered_twice(self):
        token = fake_token()
        make_bot(token=token)
        with pytest.raises(IntegrityError), transaction.atomic():
            make_bot(token=token)


class TestTokenEncryption:
    def test_it_round_trips_a_token(self):
        token = fake_token(123456789)
        bot = make_bot(token=token)
        fresh = BotInstance.objects.get(pk=bot.pk)

        assert fresh.token == token
        # The bot id comes from the token; the row holds no plaintext.
        assert fresh.telegram_id == 123456789
        assert token not in fresh.encrypted_token
        assert token.split(":")[1] not in fresh.encrypted_token

    def test_it_keeps_the_token_out_of_str_and_repr(self):
        token = fake_token()
        bot = make_bot(token=token)
        secret = token.split(":")[1]
        assert secret not in str(bot)
        assert secret not in repr(bot)

    @pytest.mark.parametrize(
        "bad", ["", "abc", "123:short", "notdigits:" + "x" * 35, "1:" + "x" * 35]
    )
    def test_it_refuses_what_is_not_a_token(self, bad):
        with pytest.raises(ValueError, match="does not look like a Telegram bot token"):
            BotInstance().set_token(bad)

    def test_a_wrong_key_is_a_clear_error_naming_the_bot(self, settings):
        bot = make_bot(username="shop_bot")
        settings.NEZUKO_ENCRYPTION_KEYS = ["bm90LXRoZS1yaWdodC1rZXktbm90LXRoZS1yaWdodC0="]

        with pytest.raises(crypto.TokenDecryptError) as error:
            _ = BotInstance.objects.get(pk=bot.pk).token

        assert "@shop_bot" in str(error.value)
        assert "NEZUKO_ENCRYPTION_KEYS" in str(error.value)

    def test_any_listed_key_decrypts_and_the_first_encrypts(self, settings):
        old_key, new_key = settings.NEZUKO_ENCRYPTION_KEYS[1], settings.NEZUKO_ENCRYPTION_KEYS[0]
        settings.NEZUKO_ENCRYPTION_KEYS = [old_key]
        bot = make_bot()
        token = bot.token

        settings.NEZUKO_ENCRYPTION_KEYS = [new_key, old_key]
        assert BotInstance.objects.get(pk=bot.pk).token == token

        settings.NEZUKO_ENCRYPTION_KEYS = [new_key]
        with pytest.raises(crypto.TokenDecryptError):
            _ = BotInstance.objects.get(pk=bot.pk).token
