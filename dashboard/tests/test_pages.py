"""Pages and htmx partials: what each persona sees, and 404 for another owner's ids."""

import pytest
from django.urls import reverse

from bots.models import AuditLog, BotCommand
from verification.models import VerificationEvent

from .conftest import BOB_TG


def url(name: str, *args) -> str:
    return reverse(f"dashboard:{name}", args=args)


class TestLoginRequired:
    @pytest.mark.parametrize("name", ["overview", "groups", "channels", "bots", "analytics",
                                      "audit", "tokens"])
    def test_it_sends_anonymous_visitors_to_the_login_page(self, client, world, name):
        response = client.get(url(name))
        assert response.status_code == 302
        assert response["Location"].startswith(url("login"))


class TestOverview:
    def test_it_shows_only_alices_figures_and_events(self, world):
        VerificationEvent.objects.create(group=world.cats, chat_id=1, user_id=7,
                                         user_name="Kitty", outcome="restricted")
        VerificationEvent.objects.create(group=world.dogs, chat_id=2, user_id=8,
                                         user_name="Puppy", outcome="restricted")
        response = world.client(world.alice).get(url("overview"))
        html = response.content.decode()
        assert response.status_code == 200
        # It should list Alice's event and not Charlie's.
        assert "Kitty" in html and "Puppy" not in html
        assert response.context["figures"]["restricted_now"] == 1
        assert 'ws-connect="/ws/feed/"' in html

    def test_its_htmx_request_gets_only_the_figures_partial(self, world):
        response = world.client(world.alice).get(url("overview"), HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="figures"')
        assert "<html" not in html
        assert "HX-Request" in response["Vary"]


class TestGroups:
    def test_the_table_lists_visible_groups_and_searches_by_htmx(self, world):
        client = world.client(world.bob)
        assert "Cats" in client.get(url("groups")).content.decode()
        assert "Dogs" not in client.get(url("groups")).content.decode()

        partial = client.get(url("groups"), {"q": "zebra"}, HTTP_HX_REQUEST="true")
        # The partial is only the table, and nothing matches.
        assert partial.content.decode().lstrip().startswith('<div id="group-table"')
        assert "No groups match" in partial.content.decode()

    def test_it_filters_and_sorts(self, world):
        client = world.client(world.staff)
        world.dogs.needs_attention = True
        world.dogs.save()
        html = client.get(url("groups"), {"status": "attention"}).content.decode()
        assert "Dogs" in html and ">Cats<" not in html
        html = client.get(url("groups"), {"sort": "-title"}).content.decode()
        assert html.index("Dogs") < html.index("Cats")
        # A bad sort or page is ignored, not a 500.
        assert client.get(url("groups"), {"sort": "evil", "page": "x"}).status_code == 200

    def test_the_counts_do_not_multiply_with_several_channels(self, world):
        from analytics.tests.factory import make_channel
        from groups.models import GroupChannel

        GroupChannel.objects.create(group=world.cats, channel=make_channel(bot=world.cats.bot))
        response = world.client(world.alice).get(url("groups"))
        (cats,) = response.context["page"].object_list
        # Two channels and one restricted member (Mallory), not two.
        assert (cats.channel_count, cats.restricted_count) == (2, 1)

    def test_the_detail_shows_restricted_members(self, world):
        html = world.client(world.alice).get(url("group", world.cats.pk)).content.decode()
        assert "Mallory" in html and "Cat News" in html

    def test_the_detail_shows_what_is_owed(self, world):
        from groups import owed

        html = world.client(world.alice).get(url("group", world.cats.pk)).content.decode()
        assert 'id="owed"' not in html
        owed.owe(world.cats.pk, 777001, "restrict", error="Too Many Requests: retry after 5",
                 name="Oscar")
        html = world.client(world.alice).get(url("group", world.cats.pk)).content.decode()
        # It should name the member, what is owed and why.
        assert 'id="owed"' in html and "Oscar" in html and "a restriction" in html
        assert "retry after 5" in html

    @pytest.mark.parametrize("name,method", [
        ("group", "get"), ("group-settings", "get"), ("group-settings", "post"),
        ("group-toggle", "post"),
    ])
    def test_it_returns_404_for_another_owner(self, world, name, method):
        client = world.client(world.charlie)
        response = getattr(client, method)(url(name, world.cats.pk))
        assert response.status_code == 404

    def test_member_command_returns_404_for_another_owner(self, world):
        response = world.client(world.charlie).post(url("member-command", world.cats.pk, 4242,
                                                        "unmute"))
        assert response.status_code == 404
        assert not BotCommand.objects.exists()


class TestSettings:
    def valid(self, **changes) -> dict:
        data = {"action": "mute", "policy": "all", "captcha_timeout": "120", "throttle": "60",
                "language": "en", "warning_delete_after": "60",
                "fail_mode": "open",
                "warning_text": "Hi {mention}, join {channels} to talk in {group}.",
                "allowed_user_ids": "42, 43\n44"}
        return data | changes

    def test_a_valid_change_is_saved_audited_and_shown(self, world):
        response = world.client(world.bob).post(url("group-settings", world.cats.pk),
                                                self.valid(), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "Saved." in response.content.decode()
        world.cats.refresh_from_db()
        assert (world.cats.fail_mode, world.cats.warning_delete_after) == ("open", 60)
        assert world.cats.allowed_user_ids == [42, 43, 44]
        entry = AuditLog.objects.get(action="group.settings_changed")
        # Bob's change is on the record with what changed.
        assert entry.actor == world.bob and entry.group_id == world.cats.pk
        assert entry.after["fail_mode"] == "open" and entry.before["fail_mode"] == "closed"

    @pytest.mark.parametrize("field,value,message", [
        ("warning_text", "Hi {name}", "Unknown placeholder {name}"),
        ("warning_text", "Hi {mention", "Unbalanced braces"),
        # The engine does not unescape doubled braces, so members would see them.
        ("warning_text", "Hi {{mention}}", "Unbalanced braces"),
        # The engine substitutes the bare names only; these would reach members as typed.
        ("warning_text", "Hi {mention!r}", "Unknown placeholder {mention!r}"),
        ("warning_text", "Hi {group:>9}", "Unknown placeholder {group:&gt;9}"),
        ("warning_delete_after", "-5", "greater than or equal to 0"),
        ("allowed_user_ids", "42, bob", "“bob” is not a Telegram user id"),
        ("action", "explode", "Select a valid choice"),
    ])
    def test_invalid_input_renders_inline_errors_and_changes_nothing(
        self, world, field, value, message
    ):
        response = world.client(world.alice).post(url("group-settings", world.cats.pk),
                                                  self.valid(**{field: value}),
                                                  HTTP_HX_REQUEST="true")
        # htmx swaps 200 answers only, so errors come back with 200 and the form.
        assert response.status_code == 200
        html = response.content.decode()
        assert f'id="{field}-errors"' in html and message in html
        world.cats.refresh_from_db()
        assert world.cats.fail_mode == "closed"
        assert not AuditLog.objects.exists()

    def test_the_read_only_role_is_refused(self, world):
        response = world.client(world.dave).post(url("group-settings", world.cats.pk),
                                                 self.valid())
        assert response.status_code == 403
        world.cats.refresh_from_db()
        assert world.cats.fail_mode == "closed"

    def test_toggle_disables_and_audits(self, world):
        response = world.client(world.alice).post(url("group-toggle", world.cats.pk),
                                                  HTTP_HX_REQUEST="true")
        assert "Enable protection" in response.content.decode()
        world.cats.refresh_from_db()
        assert world.cats.enabled is False
        assert AuditLog.objects.filter(action="group.disabled").count() == 1


class TestMemberCommands:
    def test_unmute_queues_a_command_whose_result_is_polled(self, world):
        client = world.client(world.bob)
        response = client.post(url("member-command", world.cats.pk, 4242, "unmute"),
                               HTTP_HX_REQUEST="true")
        command = BotCommand.objects.get()
        assert (command.kind, command.bot_id) == ("unmute", world.cats.bot_id)
        # It names the Telegram id it was asked under, which runbot re-checks.
        assert command.payload == {"group_id": world.cats.pk, "chat_id": world.cats.chat_id,
                                   "user_id": 4242, "actor_telegram_id": BOB_TG}
        assert 'hx-trigger="every 1s"' in response.content.decode()

        # Once runbot finished it, the polled fragment stops polling.
        command.status = BotCommand.Status.DONE
        command.save()
        html = client.get(url("command", command.pk)).content.decode()
        assert "done" in html and "hx-trigger" not in html
        # Alice (owner) can read Bob's command on her group; Charlie cannot.
        assert world.client(world.alice).get(url("command", command.pk)).status_code == 200
        assert world.client(world.charlie).get(url("command", command.pk)).status_code == 404

    def test_an_unknown_command_goes_to_the_flash_region(self, world):
        response = world.client(world.alice).post(
            url("member-command", world.cats.pk, 4242, "launch"), HTTP_HX_REQUEST="true"
        )
        assert response["HX-Retarget"] == "#flash"
        assert "Unknown command" in response.content.decode()
        assert not BotCommand.objects.exists()

    def test_a_user_id_no_telegram_user_can_have_goes_to_the_flash_region(self, world):
        response = world.client(world.alice).post(
            url("member-command", world.cats.pk, 10**20, "ban"), HTTP_HX_REQUEST="true"
        )
        # It should say so instead of queueing work runbot cannot store or do.
        assert response["HX-Retarget"] == "#flash"
        assert "not a Telegram user id" in response.content.decode()
        assert not BotCommand.objects.exists()


class TestOtherPages:
    def test_channels_bots_audit_for_alice(self, world):
        client = world.client(world.alice)
        assert "Cat News" in client.get(url("channels")).content.decode()
        assert "Dog News" not in client.get(url("channels")).content.decode()
        bots_html = client.get(url("bots")).content.decode()
        assert "nezuko_bot" in bots_html and "dogs_bot" not in bots_html
        assert client.get(url("audit")).status_code == 200

    def test_bot_toggle_returns_404_for_another_owner(self, world):
        response = world.client(world.alice).post(url("bot-toggle", world.dogs.bot_id))
        assert response.status_code == 404

    def test_the_audit_log_shows_only_alices_groups(self, world):
        from bots import audit
        audit.record(audit.AuditAction.GROUP_SETTINGS_CHANGED, world.cats, source="dashboard",
                     group_id=world.cats.pk)
        audit.record(audit.AuditAction.GROUP_SETTINGS_CHANGED, world.dogs, source="dashboard",
                     group_id=world.dogs.pk)
        html = world.client(world.alice).get(url("audit")).content.decode()
        assert "Cats" in html and "Dogs" not in html

    def test_analytics_renders_and_refuses_another_owners_group(self, world):
        client = world.client(world.alice)
        response = client.get(url("analytics"), {"period": "24h", "granularity": "hour"})
        assert response.status_code == 200
        assert client.get(url("analytics"), {"group": world.dogs.pk}).status_code == 404
        partial = client.get(url("analytics"), {"period": "30d"}, HTTP_HX_REQUEST="true")
        assert partial.content.decode().lstrip().startswith('<div id="charts"')


class TestApiTokens:
    def test_a_token_is_shown_once_and_revoked_only_by_its_owner(self, world):
        from dashboard.models import ApiToken

        client = world.client(world.alice)
        html = client.post(url("tokens"), {"name": "cron"}).content.decode()
        token = ApiToken.objects.get()
        # The plaintext appears once, on creation, and is not stored.
        assert 'id="new-token"' in html
        assert "id=\"new-token\"" not in client.get(url("tokens")).content.decode()
        assert world.client(world.charlie).post(url("token-revoke", token.pk)).status_code == 404
        assert client.post(url("token-revoke", token.pk)).status_code == 200
        token.refresh_from_db()
        assert token.revoked_at is not None


class TestSharedBots:
    def test_a_bot_serving_your_group_is_visible_but_only_its_owner_may_switch_it_off(
        self, world
    ):
        # Cats' bot was added by nobody on the dashboard: Alice uses it, does not own it.
        response = world.client(world.alice).post(url("bot-toggle", world.cats.bot_id))
        assert response.status_code == 403
        world.cats.bot.refresh_from_db()
        assert world.cats.bot.is_active

        world.cats.bot.owner = world.alice
        world.cats.bot.save()
        assert world.client(world.alice).post(url("bot-toggle", world.cats.bot_id)).status_code \
            == 302
        world.cats.bot.refresh_from_db()
        assert not world.cats.bot.is_active

    def test_a_shared_bots_last_error_is_for_its_owner_and_staff(self, world):
        from bots.models import BotStatus

        BotStatus.objects.create(bot=world.cats.bot, state="failed", last_error="chat -100999 gone")
        assert "chat -100999" not in world.client(world.bob).get(url("bots")).content.decode()
        assert "chat -100999" in world.client(world.staff).get(url("bots")).content.decode()


def test_the_overview_lists_what_needs_attention(world):
    world.cats.needs_attention = True
    world.cats.attention_reason = "the bot cannot restrict members"
    world.cats.save()
    world.dogs.needs_attention = True
    world.dogs.save()
    html = world.client(world.alice).get(url("overview")).content.decode()
    # Alice's group and its bot (no heartbeat yet), and nothing of Charlie's.
    assert "the bot cannot restrict members" in html
    assert "not started yet" in html
    assert "Dogs" not in html


def test_a_shared_channel_lists_only_the_groups_you_see(world):
    from analytics.tests.factory import make_group

    from .conftest import CHARLIE_TG

    # Charlie's group, on the same bot, requires Alice's channel too.
    make_group(bot=world.cats.bot, title="Charlie's Den", setup_by_user_id=CHARLIE_TG,
               channels=[world.cats.channels.get()])

    html = world.client(world.alice).get(url("channels")).content.decode()

    # It should name Cats as requiring Cat News, and nothing of Charlie's.
    assert "Cat News" in html and "Cats" in html
    assert "Den" not in html
    assert "Den" in world.client(world.staff).get(url("channels")).content.decode()
