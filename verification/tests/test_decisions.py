"""The rules as values: no Telegram, no database."""

import dataclasses
from types import SimpleNamespace

from groups.config import ChannelConfig, GroupConfig
from verification.decisions import (
    Allow,
    ApproveJoin,
    AskToJoin,
    Check,
    Freed,
    HandOver,
    Ledger,
    NotOurs,
    Recheck,
    RefusePress,
    RejectSenderChat,
    Restrict,
    StillMissing,
    Unmute,
    decide_join_request,
    decide_membership,
    decide_recheck,
    decide_rejoin,
    decide_restriction_change,
    decide_unmute,
    may_press,
    muted_on_telegram,
    named_on_warning,
    outcome_label,
    restriction_in_place,
    restriction_is_ours,
    screen_message,
    screen_press,
)
from verification.updates import GROUP_ANONYMOUS_BOT_ID, IncomingMessage, MemberChange, Person

NEWS = ChannelConfig(1, -1001, "Cat News", "catnews", "https://t.me/catnews")
PICS = ChannelConfig(2, -1002, "Cat Pics", "", "https://t.me/+invite")
CAROL = Person(42, "Carol", "carol")
ADMIN = Person(7, "Alice", "alice")


def make_config(**fields) -> GroupConfig:
    fields.setdefault("pk", 1)
    fields.setdefault("bot_id", 1)
    fields.setdefault("chat_id", -100500)
    fields.setdefault("title", "Cats")
    fields.setdefault("enabled", True)
    fields.setdefault("is_forum", False)
    fields.setdefault("action", "mute")
    fields.setdefault("fail_mode", "closed")
    fields.setdefault("warning_delete_after", 120)
    fields.setdefault("join_request_timeout", 3600)
    fields.setdefault("warning_text", "")
    fields.setdefault("channels", (NEWS, PICS))
    fields.setdefault("admin_ids", frozenset({ADMIN.id}))
    fields.setdefault("allowed_user_ids", frozenset())
    return GroupConfig(**fields)


def message(sender: Person | None = CAROL, **fields) -> IncomingMessage:
    fields.setdefault("chat_id", -100500)
    fields.setdefault("message_id", 10)
    return IncomingMessage(sender=sender, **fields)


class TestScreening:
    def test_it_checks_an_ordinary_member_against_every_channel(self):
        assert screen_message(message(), make_config()) == Check(CAROL, (NEWS, PICS))

    def test_it_never_checks_in_unprotected_or_disabled_chats(self):
        assert screen_message(message(), None) == Allow("unprotected")
        assert screen_message(message(), make_config(enabled=False)) == Allow("unprotected")
        # A group without channels protects nothing yet.
        assert screen_message(message(), make_config(channels=())) == Allow("unprotected")

    def test_it_never_restricts_admins_bots_or_the_allow_list(self):
        config = make_config(allowed_user_ids=frozenset({99}))
        assert screen_message(message(ADMIN), config) == Allow("admin")
        assert screen_message(message(Person(5, "Bot", is_bot=True)), config) == Allow("bot")
        assert screen_message(message(Person(99, "Friend")), config) == Allow("allow_list")

    def test_it_lets_anonymous_admins_and_automatic_forwards_pass(self):
        config = make_config()
        anon = Person(GROUP_ANONYMOUS_BOT_ID, "Group", is_bot=True)
        assert screen_message(message(anon, sender_chat_id=-100500), config) == Allow(
            "anonymous_admin"
        )
        forward = message(Person(136817688, "Telegram", is_bot=True), sender_chat_id=-1001,
                          is_automatic_forward=True)
        assert screen_message(forward, config) == Allow("automatic_forward")

    def test_posts_as_the_groups_linked_channel_pass(self):
        config = make_config(linked_chat_id=-100888)
        post = message(Person(136817688, "Channel", is_bot=True), sender_chat_id=-100888)
        assert screen_message(post, config) == Allow("linked_channel")

    def test_it_holds_a_member_posting_as_their_own_channel_to_the_rules(self):
        decision = screen_message(
            message(Person(136817688, "Channel", is_bot=True), sender_chat_id=-100777,
                    thread_id=5),
            make_config(),
        )
        assert decision == RejectSenderChat(-100500, 10, -100777, thread_id=5)


class TestMembership:
    def test_it_allows_a_subscriber_of_every_channel(self):
        check = Check(CAROL, (NEWS, PICS))
        answers = {NEWS.chat_id: True, PICS.chat_id: True}
        assert decide_membership(check, make_config(), answers, reason="message") == Allow(
            "subscribed"
        )

    def test_it_restricts_and_names_only_the_missing_channels(self):
        check = Check(CAROL, (NEWS, PICS))
        decision = decide_membership(
            check, make_config(), {NEWS.chat_id: True, PICS.chat_id: False},
            reason="message", message=message(thread_id=3),
        )
        assert decision == Restrict(
            chat_id=-100500, person=CAROL, missing=(PICS,), action="mute", reason="message",
            delete_message_id=10, thread_id=3,
        )

    def test_unknown_answers_follow_the_fail_mode(self):
        check = Check(CAROL, (NEWS,))
        answers = {NEWS.chat_id: None}
        # Fail open lets them speak.
        assert decide_membership(
            check, make_config(fail_mode="open"), answers, reason="message"
        ) == Allow("fail_open")
        # Fail closed restricts, saying the answer was unknown.
        closed = decide_membership(check, make_config(), answers, reason="message")
        assert isinstance(closed, Restrict)
        assert closed.reason == "unknown" and closed.missing == (NEWS,)

    def test_a_definite_miss_restricts_even_when_failing_open(self):
        check = Check(CAROL, (NEWS, PICS))
        decision = decide_membership(
            check, make_config(fail_mode="open"), {NEWS.chat_id: False, PICS.chat_id: None},
            reason="join",
        )
        assert isinstance(decision, Restrict) and decision.reason == "join"


class TestUnmute:
    def test_it_unmutes_only_what_nezuko_restricted(self):
        answers = {NEWS.chat_id: True, PICS.chat_id: True}
        config = make_config()
        assert decide_unmute(config, CAROL, answers, restricted_by_nezuko=True,
                             reason="button") == Unmute(-100500, CAROL, "button")
        # A member muted by a human admin stays muted.
        assert decide_unmute(config, CAROL, answers, restricted_by_nezuko=False,
                             reason="button") == NotOurs(-100500, CAROL)

    def test_it_names_what_is_still_missing(self):
        decision = decide_unmute(make_config(), CAROL, {NEWS.chat_id: True, PICS.chat_id: False},
                                 restricted_by_nezuko=True, reason="button")
        assert decision == StillMissing(-100500, CAROL, (PICS,))


class TestJoinRequests:
    def test_it_approves_subscribers_and_asks_the_others(self):
        config = make_config()
        yes = {NEWS.chat_id: True, PICS.chat_id: True}
        assert decide_join_request(config, CAROL, 42, yes) == ApproveJoin(-100500, CAROL)
        no = {NEWS.chat_id: False, PICS.chat_id: True}
        assert decide_join_request(config, CAROL, 42, no) == AskToJoin(-100500, CAROL, 42, (NEWS,))

    def test_it_leaves_requests_of_unprotected_groups_to_humans(self):
        assert decide_join_request(None, CAROL, 42, {}) == Allow("unprotected")


def test_decisions_are_frozen():
    decision = Allow("admin")
    try:
        decision.reason = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("decisions must be immutable")


# --- owed actions ---------------------------------------------------------------------


def test_an_owed_restriction_is_moot_once_the_member_left_or_became_exempt():
    from verification.decisions import Moot, screen_owed

    config = make_config()
    assert isinstance(screen_owed("restrict", CAROL, config, in_group=False,
                                  restricted_by_nezuko=False), Moot)
    assert screen_owed("restrict", ADMIN, config, in_group=True,
                       restricted_by_nezuko=False) == Moot(config.chat_id, ADMIN, "admin")
    assert screen_owed("restrict", CAROL, make_config(enabled=False), in_group=True,
                       restricted_by_nezuko=False) == Moot(config.chat_id, CAROL, "unprotected")
    assert screen_owed("restrict", CAROL, config, in_group=True,
                       restricted_by_nezuko=False) == Check(CAROL, config.channels)


def test_an_owed_restriction_stands_only_while_a_channel_is_missing():
    from verification.decisions import Moot, decide_owed

    config = make_config()
    check = Check(CAROL, config.channels)
    still = decide_owed("restrict", check, config, {NEWS.chat_id: True, PICS.chat_id: False})
    assert isinstance(still, Restrict) and still.missing == (PICS,) and still.reason == "owed"
    assert decide_owed("restrict", check, config, {NEWS.chat_id: True, PICS.chat_id: True}) \
        == Moot(config.chat_id, CAROL, "subscribed")


def test_an_owed_unmute_needs_our_restriction_and_every_channel():
    from verification.decisions import Moot, decide_owed, screen_owed

    config = make_config()
    # Someone else's restriction now: not ours to lift.
    assert isinstance(screen_owed("unmute", CAROL, config, in_group=True,
                                  restricted_by_nezuko=False), Moot)
    # Protection switched off: lift it without asking anyone.
    assert screen_owed("unmute", CAROL, make_config(enabled=False), in_group=True,
                       restricted_by_nezuko=True) == Unmute(config.chat_id, CAROL, "unprotect")
    check = screen_owed("unmute", CAROL, config, in_group=False, restricted_by_nezuko=True)
    assert check == Check(CAROL, config.channels)
    both = {NEWS.chat_id: True, PICS.chat_id: True}
    assert decide_owed("unmute", check, config, both) == Unmute(config.chat_id, CAROL, "owed")
    # They left a channel again meanwhile: the mute stands, nothing is owed.
    assert isinstance(decide_owed("unmute", check, config, {**both, PICS.chat_id: False}), Moot)


class TestTheFastPathsCases:
    """What the fast path once kept a copy of (and a parity test for), now asked of the
    rules directly: raw messages read with `from_raw`, judged by `screen_message`."""

    def judge(self, data: dict, answers: dict | None = None):
        config = make_config(channels=(NEWS,), linked_chat_id=-100888)
        body = {"message_id": 10, "date": 0, "chat": {"id": -100500, "type": "supergroup"},
                **data}
        incoming = IncomingMessage.from_raw(body)
        decision = screen_message(incoming, config)
        if isinstance(decision, Check) and answers is not None:
            return decide_membership(decision, config, answers, reason="message",
                                     message=incoming)
        return decision

    def test_a_subscriber_passes_and_a_stranger_is_restricted(self):
        carol = {"from": {"id": CAROL.id, "is_bot": False, "first_name": "Carol"}}
        assert self.judge(carol, {NEWS.chat_id: True}) == Allow("subscribed")
        restricted = self.judge(carol, {NEWS.chat_id: False})
        assert isinstance(restricted, Restrict) and restricted.missing == (NEWS,)
        # Not known yet: the rules ask for a check, which only the handlers may make.
        assert self.judge(carol) == Check(Person(CAROL.id, "Carol"), (NEWS,))

    def test_admins_bots_forwards_and_the_linked_channel_pass(self):
        assert self.judge({"from": {"id": ADMIN.id, "first_name": "A"}}) == Allow("admin")
        assert self.judge({"from": {"id": 5, "is_bot": True, "first_name": "B"}}) == Allow("bot")
        telegram = {"id": 136817688, "is_bot": True, "first_name": "Telegram"}
        assert self.judge({"from": telegram, "sender_chat": {"id": -1001, "type": "channel"},
                           "is_automatic_forward": True}) == Allow("automatic_forward")
        assert self.judge({"from": telegram, "sender_chat": {"id": -100888, "type": "channel"}}
                          ) == Allow("linked_channel")

    def test_a_foreign_channel_is_rejected(self):
        telegram = {"id": 136817688, "is_bot": True, "first_name": "Telegram"}
        assert self.judge({"from": telegram, "sender_chat": {"id": -100777, "type": "channel"}}
                          ) == RejectSenderChat(-100500, 10, -100777)


class TestWhoseRestriction:
    def test_the_ledger_decides_and_memory_covers_a_row_not_written_yet(self):
        assert restriction_is_ours(Ledger(restricted_by_nezuko=True), restricted_here=False)
        # A human admin's restriction stays theirs whatever this process remembers.
        assert not restriction_is_ours(Ledger(restricted_by_nezuko=False), restricted_here=True)
        assert restriction_is_ours(None, restricted_here=True)
        assert not restriction_is_ours(None, restricted_here=False)

    def test_a_restriction_under_way_at_a_crash_is_asked_of_telegram(self):
        assert restriction_in_place(None, restricted_here=True) is True
        assert restriction_in_place(None, restricted_here=False) is False
        assert restriction_in_place(Ledger(restricted_by_nezuko=True), restricted_here=False)
        assert restriction_in_place(Ledger(restrict_owed=True), restricted_here=False) is None
        assert muted_on_telegram("restricted", can_send_messages=False)
        assert not muted_on_telegram("restricted", can_send_messages=True)
        assert not muted_on_telegram("member", can_send_messages=False)

    def test_the_ledger_reads_a_member_row(self):
        row = SimpleNamespace(restricted_by_nezuko=True, warning_message_id=7,
                              owed_action="restrict")
        assert Ledger.of(row) == Ledger(True, 7, restrict_owed=True)
        assert Ledger.of(None) is None

    def test_someone_else_restricting_or_freeing_a_member_takes_it_over(self):
        def change(old: str, new: str, actor: int) -> MemberChange:
            return MemberChange(-100500, "supergroup", CAROL, True, True, old, new, actor)

        assert decide_restriction_change(change("member", "restricted", 9), 1) == HandOver(
            -100500, CAROL)
        assert decide_restriction_change(change("restricted", "member", 9), 1) == Freed(
            -100500, CAROL)
        # Nezuko's own restriction, or no restriction change, hands nothing over.
        assert decide_restriction_change(change("member", "restricted", 1), 1) is None
        assert decide_restriction_change(change("member", "administrator", 9), 1) is None

    def test_a_member_nezuko_muted_is_freed_when_they_rejoin_allowed(self):
        config = make_config()
        assert decide_rejoin(config, CAROL,
                             restricted_by_nezuko=True) == Unmute(-100500, CAROL, "rejoined")
        assert decide_rejoin(config, CAROL,
                             restricted_by_nezuko=False) is None


class TestPresses:
    def test_only_a_member_named_on_the_warning_may_press(self):
        assert may_press(CAROL.id, frozenset({CAROL.id}), 0)
        assert may_press(CAROL.id, frozenset(), CAROL.id)  # the button is bound to them
        assert not may_press(CAROL.id, frozenset({ADMIN.id}), 0)

    def test_after_a_restart_the_ledger_says_which_warning_named_them(self):
        ledger = Ledger(restricted_by_nezuko=True, warning_message_id=55)
        assert named_on_warning(CAROL.id, 55, live=None, ledger=ledger) == {CAROL.id}
        assert named_on_warning(CAROL.id, 56, live=None, ledger=ledger) == frozenset()
        # A live warning knows better than the ledger.
        assert named_on_warning(CAROL.id, 55, live=frozenset({ADMIN.id}),
                                ledger=ledger) == {ADMIN.id}

    def test_a_press_rechecks_what_the_warning_recorded_as_missing(self):
        config = make_config()
        decision = screen_press(config, CAROL, 0, named=frozenset({CAROL.id}), missing=(PICS,),
                                on_live_warning=True, restricted_by_nezuko=True)
        assert decision == Recheck(CAROL, (PICS,), ours=True, restore=True)
        # Not known here (a restart): every channel is asked again.
        unknown = screen_press(config, CAROL, 0, named=frozenset({CAROL.id}), missing=None,
                               on_live_warning=False, restricted_by_nezuko=True)
        assert unknown.fresh == (NEWS, PICS)

    def test_a_press_is_refused_where_protection_is_off_or_for_someone_else(self):
        assert screen_press(None, CAROL, 0, named=frozenset(), missing=None,
                            on_live_warning=False, restricted_by_nezuko=False
                            ) == RefusePress("protection_off")
        assert screen_press(make_config(), CAROL, 0, named=frozenset({ADMIN.id}), missing=None,
                            on_live_warning=True, restricted_by_nezuko=True
                            ) == RefusePress("not_named")

    def test_in_delete_only_groups_the_button_only_clears_a_live_warning(self):
        config = make_config(action="delete")
        live = screen_press(config, CAROL, 0, named=frozenset({CAROL.id}), missing=None,
                            on_live_warning=True, restricted_by_nezuko=False)
        assert (live.ours, live.restore) == (True, False)
        gone = screen_press(config, CAROL, CAROL.id, named=frozenset(), missing=None,
                            on_live_warning=False, restricted_by_nezuko=False)
        assert not gone.ours


class TestRecheck:
    def test_it_lifts_nezukos_restriction_once_every_channel_is_satisfied(self):
        yes = {NEWS.chat_id: True, PICS.chat_id: True}
        assert decide_recheck(make_config(), CAROL, yes, restricted_by_nezuko=True) == Unmute(
            -100500, CAROL, "recheck")
        assert decide_recheck(make_config(), CAROL, yes, restricted_by_nezuko=False) == Allow(
            "subscribed")

    def test_it_restricts_by_the_same_rules_as_a_message(self):
        no = {NEWS.chat_id: False, PICS.chat_id: True}
        decision = decide_recheck(make_config(), CAROL, no, restricted_by_nezuko=False)
        assert isinstance(decision, Restrict)
        assert (decision.reason, decision.missing) == ("recheck", (NEWS,))
        # Admins and the allow-list are never restricted, here as anywhere.
        assert decide_recheck(make_config(), ADMIN, no, restricted_by_nezuko=False) == Allow(
            "admin")
        friendly = make_config(allowed_user_ids=frozenset({CAROL.id}))
        assert decide_recheck(friendly, CAROL, no, restricted_by_nezuko=False) == Allow(
            "allow_list")
        # Already Nezuko's restriction: nothing to add, it stays.
        assert decide_recheck(make_config(), CAROL, no, restricted_by_nezuko=True
                              ) == StillMissing(-100500, CAROL, (NEWS,))


def test_outcome_labels_are_bounded():
    assert outcome_label(Allow("admin")) == "allow_admin"
    assert outcome_label(Restrict(1, CAROL, (), "mute", "message")) == "restrict"
