"""groups.rights.may: the one rule for who may do what, as pure values."""

import pytest

from groups.rights import AdminStanding, Refusal, command_action, may


def admin(*, creator: bool = False, restrict: bool = False) -> AdminStanding:
    return AdminStanding(is_admin=True, is_creator=creator, can_restrict_members=restrict)


def test_it_refuses_someone_who_is_not_an_admin_by_saying_so():
    refusal = may("view", None, group_title="Cats")
    assert refusal == Refusal("view", "administrator", "Cats")
    assert refusal.message == "You are not an administrator of Cats."


def test_any_admin_may_look():
    assert may("view", admin()) is None


@pytest.mark.parametrize("action", ["ban", "unban", "unmute", "recheck", "settings", "protect",
                                    "unprotect", "enable", "disable"])
def test_every_change_needs_the_ban_right_and_the_refusal_names_it(action):
    refusal = may(action, admin(), group_title="Cats")
    assert refusal is not None
    assert refusal.message == "You need the 'Ban users' right in Cats."
    assert may(action, admin(restrict=True)) is None


def test_the_creator_may_do_everything_whatever_the_flags_say():
    assert all(may(a, admin(creator=True)) is None for a in ("ban", "settings", "disable"))


def test_an_undeclared_action_is_an_error_not_a_pass():
    with pytest.raises(KeyError):
        may("delete_everything", admin(creator=True))


def test_commands_map_to_actions_and_unknown_kinds_need_the_settings_right():
    assert command_action("unban") == "unban"
    assert command_action("warm_cache") == "settings"
    assert command_action("anything") == "settings"


def test_a_standing_is_read_from_a_chat_member():
    assert AdminStanding.of("creator", {}) == AdminStanding(True, True, True)
    assert AdminStanding.of("administrator", {"can_pin_messages": True}) == AdminStanding(
        True, False, False)
    assert AdminStanding.of("administrator", {"can_restrict_members": True}) == AdminStanding(
        True, False, True)
    # A restricted member's can_* fields are permissions, not admin rights.
    assert AdminStanding.of("restricted", {"can_restrict_members": True}) == AdminStanding(
        False, False, False)
    assert AdminStanding.of("kicked", {}) == AdminStanding(False, False, False)
