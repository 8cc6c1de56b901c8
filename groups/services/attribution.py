"""The engine's writes to the growth funnel (`groups.models.Attribution`).

Through `groups.ledger.writer`, like the member ledger: kept on disk while the
database is away and replayed in order, with the time each step happened.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from groups import ledger


def warned(group_pk: int, channel_chat_ids: list[int], user_id: int) -> None:
    if channel_chat_ids:
        ledger.writer.write("attribution_warned", group_pk=group_pk,
                            channel_chat_ids=list(channel_chat_ids), user_id=user_id)


def joined(bot_pk: int, channel_chat_id: int, user_id: int, invite_link: str) -> None:
    ledger.writer.write("attribution_joined", bot_pk=bot_pk, channel_chat_id=channel_chat_id,
                        user_id=user_id, invite_link=invite_link)


def verified(group_pk: int, user_id: int) -> None:
    ledger.writer.write("attribution_verified", group_pk=group_pk, user_id=user_id)


def left(bot_pk: int, channel_chat_id: int, user_id: int) -> None:
    ledger.writer.write("attribution_left", bot_pk=bot_pk, channel_chat_id=channel_chat_id,
                        user_id=user_id)


awarned = sync_to_async(warned)
ajoined = sync_to_async(joined)
averified = sync_to_async(verified)
aleft = sync_to_async(left)
