"""The rules, as pure functions from facts to frozen decisions.

This is the one rulebook: the PTB flows (`verification.flows`), the raw-JSON
fast path, the owed-action retries and the dashboard's commands all ask these
functions; none of them keeps a rule of its own. Nothing here calls Telegram
or the database: callers gather the facts (translated update, cached
GroupConfig, membership answers, the member's ledger row as a `Ledger`) and
`actions.apply` carries a decision out. Tests assert on the values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from groups.config import ChannelConfig, GroupConfig
from groups.models import required_channels
from verification.updates import (
    CHANNEL_BOT_ID,
    GROUP_ANONYMOUS_BOT_ID,
    IncomingMessage,
    MemberChange,
    Person,
)

# Membership answers per channel chat id: True, False, or None (unknown).
Answers = Mapping[int, bool | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Allow:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """The person must be checked against these channels before deciding."""

    person: Person
    channels: tuple[ChannelConfig, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Restrict:
    chat_id: int
    person: Person
    # The channels that would help: under `all` every one missing, under `any`
    # or `at least N` any `short` of them satisfy the policy.
    missing: tuple[ChannelConfig, ...]
    action: str  # ProtectedGroup.Action value: mute, kick, delete or observe
    reason: str  # "message", "join", "left_channel", "unknown"
    delete_message_id: int | None = None
    thread_id: int | None = None
    warn: bool = True
    short: int = 0  # how many of `missing` are needed (0, under `all`: every one)
    policy: str = "all"

    @property
    def observed(self) -> bool:
        """Observe mode: record that this would have happened; delete, mute, send nothing."""
        return self.action == "observe"

    @property
    def detail(self) -> str:
        """The reason as recorded: with the policy when it is not today's `all`."""
        return with_policy(self.reason, self.policy, self.short, len(self.missing))


@dataclasses.dataclass(frozen=True, slots=True)
class RejectSenderChat:
    """A member posted as one of their own channels: no bypass."""

    chat_id: int
    message_id: int
    sender_chat_id: int
    thread_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unmute:
    chat_id: int
    person: Person
    reason: str  # "channel_join" or "button"


@dataclasses.dataclass(frozen=True, slots=True)
class StillMissing:
    chat_id: int
    person: Person
    missing: tuple[ChannelConfig, ...]
    unknown: bool = False
    short: int = 0  # how many of `missing` are still needed


@dataclasses.dataclass(frozen=True, slots=True)
class NotOurs:
    """Restricted by a human admin (or not restricted at all): leave it alone."""

    chat_id: int
    person: Person


@dataclasses.dataclass(frozen=True, slots=True)
class ApproveJoin:
    chat_id: int
    person: Person
    # Observe mode: what they would have been asked to join (recorded, not asked).
    would_ask: tuple[ChannelConfig, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class AskToJoin:
    chat_id: int
    person: Person
    user_chat_id: int
    missing: tuple[ChannelConfig, ...]
    short: int = 0  # how many of `missing` are needed


SUBSCRIBED = Allow("subscribed")

Decision = Allow | Check | Restrict | RejectSenderChat | Unmute | StillMissing | NotOurs
JoinDecision = Allow | ApproveJoin | AskToJoin


def screen_message(
    message: IncomingMessage, config: GroupConfig | None
) -> Allow | Check | RejectSenderChat:
    """Everything that can be decided without asking about membership."""
    if config is None or not config.protecting:
        return Allow("unprotected")
    if message.is_automatic_forward:
        return Allow("automatic_forward")
    if message.sender_chat_id is not None:
        return _screen_sender_chat(message, config)
    if message.sender is None:
        return Allow("no_sender")
    if message.sender.id == GROUP_ANONYMOUS_BOT_ID:
        return Allow("anonymous_admin")
    return screen_person(message.sender, config)


def _screen_sender_chat(message: IncomingMessage, config: GroupConfig) -> Allow | RejectSenderChat:
    if message.sender_chat_id == config.chat_id:
        return Allow("anonymous_admin")
    if (config.channel(message.sender_chat_id) is not None
            or message.sender_chat_id == config.linked_chat_id):
        # Only a channel's own admins can post as it.
        return Allow("linked_channel")
    return RejectSenderChat(
        chat_id=config.chat_id,
        message_id=message.message_id,
        sender_chat_id=message.sender_chat_id,
        thread_id=message.thread_id,
    )


def screen_person(person: Person, config: GroupConfig | None) -> Allow | Check:
    """Who is never restricted: admins, bots, the allow-list."""
    if config is None or not config.protecting:
        return Allow("unprotected")
    if person.is_bot or person.id in (GROUP_ANONYMOUS_BOT_ID, CHANNEL_BOT_ID):
        return Allow("bot")
    if person.id in config.admin_ids:
        return Allow("admin")
    if person.id in config.allowed_user_ids:
        return Allow("allow_list")
    return Check(person, config.channels)


def split_answers(
    channels: tuple[ChannelConfig, ...], answers: Answers
) -> tuple[tuple[ChannelConfig, ...], tuple[ChannelConfig, ...]]:
    """(missing, unknown) channels, in the group's order. A channel with no answer
    at all is unknown: it was never asked, so nothing says the person is in it."""
    missing = tuple(c for c in channels if answers.get(c.chat_id, None) is False)
    unknown = tuple(c for c in channels
                    if c.chat_id not in answers or answers[c.chat_id] is None)
    return missing, unknown


@dataclasses.dataclass(frozen=True, slots=True)
class Shortfall:
    """What a person lacks under the group's policy."""

    channels: tuple[ChannelConfig, ...]  # not (known to be) joined: each would help
    short: int  # how many of them are needed (0 under `all`: every one)
    unknown: bool  # only unknown answers stand between them and the policy


def shortfall(config: GroupConfig, channels: tuple[ChannelConfig, ...],
              answers: Answers) -> Shortfall | None:
    """The policy (all, any, at least N) over `channels`; None when it is satisfied.

    `unknown` is set when the unknown answers could still make up the difference:
    the group's fail mode decides those, as it always did for `all`.
    """
    needed = required_channels(config.policy, len(channels))
    have = 0
    for channel in channels:
        if answers.get(channel.chat_id) is True:
            have += 1
    if have >= needed:
        return None
    missing, unknown = split_answers(channels, answers)
    # Under `all` every channel listed is needed: short stays 0, as it always read.
    return Shortfall(missing + unknown, 0 if config.policy == "all" else needed - have,
                     unknown=have + len(unknown) >= needed)


def known_enough(config: GroupConfig, channels: tuple[ChannelConfig, ...],
                 answers: Answers) -> bool:
    """Do the answers from memory decide? Every channel answered, or enough of them
    True that the rest cannot matter (`any`: one known subscription is enough)."""
    if len(answers) == len(channels):
        return True
    return shortfall(config, channels, answers) is None


def with_policy(reason: str, policy: str, short: int, candidates: int) -> str:
    """A decision's reason with the policy it was taken under (`all` says nothing more)."""
    if policy == "all" or not short:
        return reason
    return f"{reason} (policy {policy}: {short} more of {candidates})"


def decide_membership(
    check: Check,
    config: GroupConfig,
    answers: Answers,
    *,
    reason: str,
    message: IncomingMessage | None = None,
) -> Allow | Restrict:
    """The group's policy over its linked channels; unknown answers follow the fail mode."""
    if config.policy == "all":
        for channel in check.channels:
            if answers.get(channel.chat_id) is not True:
                break
        else:
            return SUBSCRIBED  # the common case, on the fast path: no tuples built
    lacking = shortfall(config, check.channels, answers)
    if lacking is None:
        return SUBSCRIBED
    if lacking.unknown and config.fail_open:
        return Allow("fail_open")
    return Restrict(
        chat_id=config.chat_id,
        person=check.person,
        missing=lacking.channels,
        action=config.action,
        reason="unknown" if lacking.unknown else reason,
        delete_message_id=message.message_id if message else None,
        thread_id=message.thread_id if message else None,
        short=lacking.short,
        policy=config.policy,
    )


def decide_unmute(
    config: GroupConfig,
    person: Person,
    answers: Answers,
    *,
    restricted_by_nezuko: bool,
    reason: str,
    challenged: bool = False,
) -> Unmute | StillMissing | NotOurs:
    """Lift a restriction only when Nezuko placed it and the policy is satisfied.

    `challenged`: a newcomer who has not answered the human check yet stays
    muted whatever they join (StillMissing with nothing missing: not now).
    """
    if not restricted_by_nezuko:
        return NotOurs(config.chat_id, person)
    if challenged:
        return StillMissing(config.chat_id, person, ())
    lacking = shortfall(config, config.channels, answers)
    if lacking is not None:
        return StillMissing(config.chat_id, person, lacking.channels, unknown=lacking.unknown,
                            short=lacking.short)
    return Unmute(config.chat_id, person, reason)


@dataclasses.dataclass(frozen=True, slots=True)
class Moot:
    """An owed action that no longer needs doing."""

    chat_id: int
    person: Person
    why: str


def screen_owed(action: str, person: Person, config: GroupConfig | None, *,
                in_group: bool, restricted_by_nezuko: bool) -> Check | Unmute | Moot:
    """What an owed action needs now, before any membership answer.

    A restriction is owed only while the group is protected, the person is in it
    and is not exempt; an unmute only while the restriction is still Nezuko's
    (protection switched off: lift it without asking).
    """
    chat_id = config.chat_id if config is not None else 0
    if action == "restrict":
        if not in_group:
            return Moot(chat_id, person, "left the group")
        screened = screen_person(person, config)
        if isinstance(screened, Allow):
            return Moot(chat_id, person, screened.reason)
        return screened
    if not restricted_by_nezuko:
        return Moot(chat_id, person, "not our restriction")
    if config is None or not config.protecting:
        return Unmute(chat_id, person, "unprotect")
    return Check(person, config.channels)


def decide_owed(action: str, check: Check, config: GroupConfig,
                answers: Answers) -> Restrict | Unmute | Moot:
    """The owed action again, on today's answers: still needed, or moot."""
    if action == "restrict":
        decision = decide_membership(check, config, answers, reason="owed")
        if isinstance(decision, Allow):
            return Moot(config.chat_id, check.person, decision.reason)
        if decision.observed:
            # Switched to observe mode meanwhile: nobody is restricted any more.
            return Moot(config.chat_id, check.person, "observe mode")
        return decision
    unmute = decide_unmute(config, check.person, answers, restricted_by_nezuko=True,
                           reason="owed")
    if isinstance(unmute, Unmute):
        return unmute
    return Moot(config.chat_id, check.person, "no longer subscribed")


def decide_join_request(
    config: GroupConfig | None, person: Person, user_chat_id: int, answers: Answers
) -> JoinDecision:
    if config is None or not config.protecting:
        return Allow("unprotected")
    screened = screen_person(person, config)
    if isinstance(screened, Allow):
        return ApproveJoin(config.chat_id, person)
    lacking = shortfall(config, config.channels, answers)
    if lacking is None or (lacking.unknown and config.fail_open):
        return ApproveJoin(config.chat_id, person)
    if config.observing:
        return ApproveJoin(config.chat_id, person, would_ask=lacking.channels)
    return AskToJoin(config.chat_id, person, user_chat_id, lacking.channels,
                     short=lacking.short)


def outcome_label(decision: object) -> str:
    """A bounded label for metrics: allow reasons, or the decision's kind."""
    if isinstance(decision, Allow):
        return f"allow_{decision.reason}"
    return type(decision).__name__.lower()


# --- the human check for newcomers ----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    """A newcomer must answer a question within `timeout` seconds: one mute, one
    message that also names what the policy still needs (`missing`, `short`)."""

    chat_id: int
    person: Person
    missing: tuple[ChannelConfig, ...]
    short: int
    timeout: int


def decide_newcomer(config: GroupConfig, person: Person,
                    decision: Allow | Restrict) -> Allow | Restrict | Challenge:
    """A join, after the subscription rule (`decide_membership`, reason "join"): the
    human check when the group asks for it. Only joins come here, so members who
    were in the group before it was switched on are never asked. Observe mode
    records the rule's decision and asks nobody; a kick removes them anyway."""
    if not config.captcha or config.observing:
        return decision
    if isinstance(decision, Allow):
        if decision.reason not in ("subscribed", "fail_open"):
            return decision  # an admin after all
        return Challenge(config.chat_id, person, (), 0, config.captcha_timeout)
    if decision.action == "kick":
        return decision
    return Challenge(config.chat_id, person, decision.missing, decision.short,
                     config.captcha_timeout)


@dataclasses.dataclass(frozen=True, slots=True)
class Answered:
    """What a press on the human check's question means: `passed`, or `removed` after
    too many wrong answers; neither: try again."""

    passed: bool = False
    removed: bool = False


CAPTCHA_TRIES = 2  # a wrong answer may be corrected once


def decide_answer(expected: int | None, chosen: int, wrong_so_far: int) -> Answered:
    """`expected` None: the question was asked before this process started (its answer
    is lost), so a press by the newcomer it names counts as an answer."""
    if expected is None or chosen == expected:
        return Answered(passed=True)
    return Answered(removed=wrong_so_far + 1 >= CAPTCHA_TRIES)


def decide_after_check(config: GroupConfig, person: Person,
                       answers: Answers) -> Unmute | Restrict:
    """The newcomer answered: now the subscription rule alone. Lifted when the policy
    is satisfied (or when the group only deletes messages); otherwise kept muted and
    warned like any member who lacks a channel."""
    lacking = shortfall(config, config.channels, answers)
    if lacking is None or config.action != "mute" or (lacking.unknown and config.fail_open):
        return Unmute(config.chat_id, person, "captcha")
    return Restrict(config.chat_id, person, lacking.channels, "mute", reason="join",
                    short=lacking.short, policy=config.policy)


# --- whose restriction is it: the ledger -------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ledger:
    """What a member's ledger row (`groups.models.GroupMember`) says, as the rules need it.

    The ledger is how Nezuko knows a restriction is its own: it lifts only what
    it placed, so a member muted by a human admin stays muted (docs/engine.md,
    "Lift only what Nezuko placed").
    """

    restricted_by_nezuko: bool = False
    warning_message_id: int | None = None
    restrict_owed: bool = False  # a restriction under way or owed (groups/owed.py)

    @classmethod
    def of(cls, entry: object | None) -> Ledger | None:
        """From a GroupMember row, or None when there is none."""
        if entry is None:
            return None
        return cls(
            restricted_by_nezuko=bool(getattr(entry, "restricted_by_nezuko", False)),
            warning_message_id=getattr(entry, "warning_message_id", None),
            restrict_owed=getattr(entry, "owed_action", "") == "restrict",
        )


def restriction_is_ours(ledger: Ledger | None, *, restricted_here: bool) -> bool:
    """Did Nezuko place this member's restriction?

    The ledger decides. This process's own memory (`restricted_here`) only
    covers a restriction whose ledger row is not written yet.
    """
    if ledger is not None:
        return ledger.restricted_by_nezuko
    return restricted_here


def restriction_in_place(ledger: Ledger | None, *, restricted_here: bool) -> bool | None:
    """Before restricting: is Nezuko's restriction already there? None: ask Telegram.

    An update handled again after a crash must not restrict twice. The ledger
    knows a restriction that is in place (Telegram keeps it through a leave and
    rejoin); one that was under way when the last process died may or may not
    have happened, and only getChatMember can say (`muted_on_telegram`).
    """
    if restricted_here:
        return True
    if ledger is None:
        return False
    if ledger.restricted_by_nezuko:
        return True
    return None if ledger.restrict_owed else False


def muted_on_telegram(status: str | None, can_send_messages: bool) -> bool:
    """Telegram's answer to `restriction_in_place`'s None."""
    return status == "restricted" and not can_send_messages


@dataclasses.dataclass(frozen=True, slots=True)
class HandOver:
    """Another admin (re)restricted the member: the restriction is theirs now."""

    chat_id: int
    person: Person


@dataclasses.dataclass(frozen=True, slots=True)
class Freed:
    """Another admin freed the member: nothing of Nezuko's is left to lift."""

    chat_id: int
    person: Person


def decide_restriction_change(change: MemberChange,
                              bot_telegram_id: int) -> HandOver | Freed | None:
    """Someone else changed a member's restriction: the ledger follows them.

    None when nothing changed hands (no restriction change, or Nezuko's own).
    """
    if not change.restriction_changed or change.actor_id == bot_telegram_id:
        return None
    if change.new_status == "restricted":
        return HandOver(change.chat_id, change.person)
    return Freed(change.chat_id, change.person)


def decide_rejoin(config: GroupConfig, person: Person, *,
                  restricted_by_nezuko: bool) -> Unmute | None:
    """A member who rejoined and is allowed to speak (`decide_membership` said Allow).

    Telegram keeps a restriction through a leave: someone Nezuko muted who may
    speak now comes back muted unless Nezuko lifts it when they rejoin."""
    if not restricted_by_nezuko:
        return None
    return Unmute(config.chat_id, person, "rejoined")


# --- "I've joined" ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RefusePress:
    """Nothing to check: `why` is "protection_off" or "not_named"."""

    why: str


@dataclasses.dataclass(frozen=True, slots=True)
class Recheck:
    """Ask Telegram afresh about `fresh`, then `decide_unmute(..., restricted_by_nezuko=ours)`."""

    person: Person
    fresh: tuple[ChannelConfig, ...]
    ours: bool  # Nezuko's restriction (or, in delete-only groups, its warning) to lift
    restore: bool  # permissions to restore; False: only the warning goes


def named_on_warning(presser_id: int, message_id: int | None, *,
                     live: frozenset[int] | None, ledger: Ledger | None) -> frozenset[int]:
    """Who the pressed warning names. The live board knows; after a restart the
    presser's ledger row still says which warning named them."""
    if live is not None:
        return live
    if ledger is not None and ledger.warning_message_id == message_id:
        return frozenset({presser_id})
    return frozenset()


def may_press(presser_id: int, named: frozenset[int], bound_user_id: int) -> bool:
    """Only a member named on a warning (or the one its button is bound to) may press."""
    return presser_id in named or presser_id == bound_user_id


def screen_press(config: GroupConfig | None, presser: Person, bound_user_id: int, *,
                 named: frozenset[int], missing: tuple[ChannelConfig, ...] | None,
                 on_live_warning: bool, restricted_by_nezuko: bool) -> RefusePress | Recheck:
    """An "I've joined" press: refuse it, or say what to re-check.

    `missing` is what the warning recorded for the presser (None: not known
    here, so every channel is asked again). In delete-only groups nobody is
    restricted; the button then only takes them off a live warning.
    """
    if config is None or not config.protecting:
        return RefusePress("protection_off")
    if not may_press(presser.id, named, bound_user_id):
        return RefusePress("not_named")
    ours = restricted_by_nezuko or (config.action == "delete" and on_live_warning)
    return Recheck(presser, missing if missing is not None else config.channels, ours,
                   restore=restricted_by_nezuko)


# --- the dashboard's "recheck" --------------------------------------------------------


def decide_recheck(config: GroupConfig, person: Person, answers: Answers, *,
                   restricted_by_nezuko: bool) -> Unmute | StillMissing | Restrict | Allow:
    """Fresh answers decide both ways: lift Nezuko's restriction, or place one by the
    same rules as a message (`screen_person`, `decide_membership`)."""
    decision = decide_unmute(config, person, answers, restricted_by_nezuko=restricted_by_nezuko,
                             reason="recheck")
    if isinstance(decision, Unmute | StillMissing):
        return decision  # ours: lifted, or left in place while something is missing
    screened = screen_person(person, config)
    if isinstance(screened, Allow):
        return screened
    return decide_membership(screened, config, answers, reason="recheck")
