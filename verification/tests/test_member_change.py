"""The transition helper: who joined, who left, with Telegram's member rules."""

from datetime import UTC, datetime

from telegram import (
    Chat,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberRestricted,
    ChatMemberUpdated,
    ChatPermissions,
    User,
)

from verification.updates import MemberChange, member_change

CAROL = User(id=42, first_name="Carol", is_bot=False, username="carol")
GROUP = Chat(id=-100123, type=Chat.SUPERGROUP, title="Cats")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def restricted(is_member: bool) -> ChatMemberRestricted:
    data = {k: False for k in ChatPermissions.no_permissions().to_dict()}
    data.update(status="restricted", user=CAROL.to_dict(), is_member=is_member, until_date=0)
    return ChatMemberRestricted.de_json(data, None)


def cmu(old, new) -> ChatMemberUpdated:
    return ChatMemberUpdated(GROUP, CAROL, NOW, old, new)


def test_it_sees_a_join():
    # A left user who becomes a member joined.
    assert member_change(cmu(ChatMemberLeft(CAROL), ChatMemberMember(CAROL))) == (False, True)


def test_it_sees_a_leave_and_a_ban():
    assert member_change(cmu(ChatMemberMember(CAROL), ChatMemberLeft(CAROL))) == (True, False)
    assert member_change(
        cmu(ChatMemberMember(CAROL), ChatMemberBanned(CAROL, until_date=NOW))
    ) == (True, False)


def test_it_counts_a_restricted_user_as_member_only_while_is_member():
    # Restricting a member does not change membership.
    assert member_change(cmu(ChatMemberMember(CAROL), restricted(True))) is None
    # A restricted user who leaves stays RESTRICTED with is_member false.
    assert member_change(cmu(restricted(True), restricted(False))) == (True, False)
    # And rejoining flips it back.
    assert member_change(cmu(restricted(False), restricted(True))) == (False, True)


def test_it_reports_admin_promotion_even_without_a_membership_change():
    admin = ChatMemberAdministrator.de_json(
        {"status": "administrator", "user": CAROL.to_dict(), "can_be_edited": False,
         "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": True,
         "can_manage_video_chats": False, "can_restrict_members": True,
         "can_promote_members": False, "can_change_info": False, "can_invite_users": True,
         "can_post_stories": False, "can_edit_stories": False, "can_delete_stories": False},
        None,
    )
    change = MemberChange.from_update(cmu(ChatMemberMember(CAROL), admin))
    # A promotion is no join, but the admin cache must hear of it.
    assert change is not None
    assert not change.joined and not change.left
    assert change.admin_changed


def test_it_reports_a_restriction_as_no_join_or_leave():
    change = MemberChange.from_update(cmu(ChatMemberMember(CAROL), restricted(True)))
    # Somebody restricted carol: the ledger needs to know who, membership is unchanged.
    assert change.restriction_changed and not change.joined and not change.left


def test_a_new_restriction_on_a_restricted_member_is_reported_but_a_leave_is_no_restriction():
    assert MemberChange.from_update(cmu(restricted(True), restricted(True))).restriction_changed
    left = MemberChange.from_update(cmu(restricted(True), restricted(False)))
    assert left.left and not left.restriction_changed


def test_it_ignores_changes_that_matter_to_no_rule():
    assert MemberChange.from_update(cmu(ChatMemberMember(CAROL), ChatMemberMember(CAROL))) is None
    assert MemberChange.from_update(None) is None


def test_a_joiners_language_comes_from_the_actor_when_they_joined_themselves():
    speaking = User(id=42, first_name="Carol", is_bot=False, language_code="fa")
    alice = User(id=7, first_name="Alice", is_bot=False, language_code="es")
    joined = MemberChange.from_update(cmu(ChatMemberLeft(CAROL), ChatMemberMember(CAROL)))
    assert joined.person.language_code == ""
    own = ChatMemberUpdated(GROUP, speaking, NOW, ChatMemberLeft(CAROL), ChatMemberMember(CAROL))
    assert MemberChange.from_update(own).person.language_code == "fa"
    # Added by someone else: the adder's language is not the member's.
    added = ChatMemberUpdated(GROUP, alice, NOW, ChatMemberLeft(CAROL), ChatMemberMember(CAROL))
    assert MemberChange.from_update(added).person.language_code == ""
