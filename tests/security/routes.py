"""Every request that names a group (or something of one): the attack surface.

`group_requests(target)` lists each dashboard page, htmx partial and API route
aimed at one group's ids. A test fires them all as someone who must not reach
that group and expects 404 from each. `test_tenancy.py` checks that this list
covers every parameterised route in dashboard/urls.py and the API schema, so a
new route cannot skip the suite.
"""

from __future__ import annotations

import dataclasses
import json

from django.test import Client

from bots.models import BotCommand
from groups.models import ProtectedGroup

API = "/api/v1"
MEMBER = 4242
KINDS = ("unmute", "ban", "unban", "recheck")
HTMX = {"HTTP_HX_REQUEST": "true"}
SETTINGS = {"action": "delete", "policy": "any", "captcha_timeout": "120", "throttle": "60",
            "language": "en", "warning_delete_after": "0", "fail_mode": "open",
            "warning_text": "", "allowed_user_ids": "666"}


@dataclasses.dataclass(frozen=True)
class Target:
    group: int
    channel: int
    bot: int
    command: int

    @classmethod
    def of(cls, group: ProtectedGroup, command: BotCommand) -> Target:
        return cls(group.pk, group.channels.order_by("pk").first().pk, group.bot_id, command.pk)


@dataclasses.dataclass(frozen=True)
class Request:
    label: str
    method: str
    template: str  # the route as declared, for the coverage check
    url: str
    data: dict | None = None
    htmx: bool = False

    def send(self, client: Client):
        headers = HTMX if self.htmx else {}
        if self.template.startswith(API) and self.data is not None:
            return getattr(client, self.method)(self.url, json.dumps(self.data),
                                                content_type="application/json")
        if self.data is not None:
            return getattr(client, self.method)(self.url, self.data, **headers)
        return getattr(client, self.method)(self.url, **headers)


def page_requests(t: Target) -> list[Request]:
    g = t.group
    requests = [
        Request("group page", "get", "group", f"/groups/{g}/"),
        Request("group page, htmx", "get", "group", f"/groups/{g}/", htmx=True),
        Request("settings partial", "get", "group-settings", f"/groups/{g}/settings/", htmx=True),
        Request("settings save (fail open, delete only, allow-list)", "post", "group-settings",
                f"/groups/{g}/settings/", SETTINGS, htmx=True),
        Request("settings save without htmx", "post", "group-settings",
                f"/groups/{g}/settings/", SETTINGS),
        Request("protection switch", "post", "group-toggle", f"/groups/{g}/toggle/", htmx=True),
        Request("start enforcing", "post", "group-enforce", f"/groups/{g}/enforce/", htmx=True),
        Request("command status partial", "get", "command", f"/commands/{t.command}/",
                htmx=True),
        Request("analytics of the group", "get", "analytics", f"/analytics/?group={g}"),
        Request("analytics charts partial", "get", "analytics", f"/analytics/?group={g}",
                htmx=True),
        Request("bot switch", "post", "bot-toggle", f"/bots/{t.bot}/toggle/", htmx=True),
    ]
    requests += [
        Request(f"member {kind}", "post", "member-command",
                f"/groups/{g}/members/{MEMBER}/{kind}/", htmx=True)
        for kind in KINDS
    ]
    return requests


def api_requests(t: Target) -> list[Request]:
    g = t.group
    requests = [
        Request("API group", "get", f"{API}/groups/{{group_id}}", f"{API}/groups/{g}"),
        Request("API settings", "patch", f"{API}/groups/{{group_id}}/settings",
                f"{API}/groups/{g}/settings",
                {"fail_mode": "open", "action": "delete", "allowed_user_ids": [666]}),
        Request("API enable", "post", f"{API}/groups/{{group_id}}/enable",
                f"{API}/groups/{g}/enable"),
        Request("API disable", "post", f"{API}/groups/{{group_id}}/disable",
                f"{API}/groups/{g}/disable"),
        Request("API channel", "get", f"{API}/channels/{{channel_id}}",
                f"{API}/channels/{t.channel}"),
        Request("API bot", "get", f"{API}/bots/{{bot_id}}", f"{API}/bots/{t.bot}"),
        Request("API bot disable", "post", f"{API}/bots/{{bot_id}}/disable",
                f"{API}/bots/{t.bot}/disable"),
        Request("API bot enable", "post", f"{API}/bots/{{bot_id}}/enable",
                f"{API}/bots/{t.bot}/enable"),
        Request("API events of the group", "get", f"{API}/events", f"{API}/events?group={g}"),
        Request("API command status", "get", f"{API}/commands/{{command_id}}",
                f"{API}/commands/{t.command}"),
        Request("API analytics of the group", "get", f"{API}/analytics",
                f"{API}/analytics?group={g}"),
    ]
    requests += [
        Request(f"API queue {kind}", "post", f"{API}/commands", f"{API}/commands",
                {"group_id": g, "kind": kind, "user_id": MEMBER})
        for kind in KINDS
    ]
    return requests


def refused(client_pages: Client, client_api: Client, t: Target) -> dict[str, int]:
    """Fire every request; returns {label: status} for those NOT answered 404."""
    answers = {r.label: r.send(client_pages).status_code for r in page_requests(t)}
    answers |= {r.label: r.send(client_api).status_code for r in api_requests(t)}
    return {label: status for label, status in answers.items() if status != 404}
