"""A person's names where the groups keep them, and forgetting them (/forget, issue 16).

The member ledger and the cached admin lists store a name and username beside
each Telegram id so the dashboard can show who was restricted. When a person
asks Nezuko to forget them, the names go and the ids stay: the ledger's ids
are what enforcement needs (Nezuko lifts only restrictions it placed, and a
channel leave restricts a member only in groups that know them).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from groups.models import GroupAdmin, GroupMember
from groups.services.ledger_writes import sightings


def forget_names(user_id: int) -> int:
    """Blank this person's name and username in every group's ledger and admin list;
    returns the rows changed. A sighting still buffered is written first, so it cannot
    bring the name back after this."""
    sightings.flush()
    changed = GroupMember.objects.filter(user_id=user_id).exclude(
        username="", first_name=""
    ).update(username="", first_name="")
    changed += GroupAdmin.objects.filter(user_id=user_id).exclude(
        username="", first_name=""
    ).update(username="", first_name="")
    return changed


aforget_names = sync_to_async(forget_names)
