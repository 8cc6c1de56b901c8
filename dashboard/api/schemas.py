"""Schemas say their direction: `…Out` leaves the server, `…In` arrives."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from groups.services.members import MAX_USER_ID


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


class ChannelOut(Schema):
    id: int
    chat_id: int
    title: str
    username: str
    bot_is_admin: bool


class GroupOut(Schema):
    id: int
    chat_id: int
    title: str
    username: str
    bot_id: int
    enabled: bool
    needs_attention: bool
    attention_reason: str
    action: str
    policy: str
    captcha: bool
    captcha_timeout: int
    warning_delete_after: int
    fail_mode: str
    language: str
    throttle: int
    warning_text: str
    warning_texts: dict[str, str]
    allowed_user_ids: list[int]
    created_at: datetime


class GroupDetailOut(GroupOut):
    channels: list[ChannelOut]
    restricted_now: int


class GroupSettingsIn(Schema):
    """Only the fields given are changed; validated like the dashboard form.

    The options carry the names `/settings <name> <value>` takes in Telegram;
    `warning_delay` and `fail` are also accepted under their field names
    (`warning_delete_after`, `fail_mode`), which `GroupOut` reports."""

    action: Literal["mute", "kick", "delete", "observe"] | None = None
    policy: str | None = Field(default=None, pattern=r"^(all|any|[2-9]|10)$",
                               description="all, any, or at least N channels (2 to 10)")
    captcha: bool | None = None
    captcha_timeout: int | None = Field(default=None, ge=30, le=3600)
    warning_delay: int | None = Field(default=None, ge=0, le=86400)
    warning_delete_after: int | None = Field(default=None, ge=0, le=86400)
    fail: Literal["closed", "open"] | None = None
    fail_mode: Literal["closed", "open"] | None = None
    language: str | None = Field(default=None, pattern=r"^(auto|[a-z]{2,3}(-[a-z0-9]{2,4})?)$")
    throttle: int | None = Field(default=None, ge=0, le=3600)
    warning_text: str | None = Field(default=None, max_length=1000)
    warning_texts: dict[str, str] | None = Field(
        default=None, description="Custom warning per language code, {language: text}")
    allowed_user_ids: list[int] | None = Field(default=None, max_length=500)


class BotStatusOut(Schema):
    state: str
    heartbeat_at: datetime | None
    updates_handled: int
    last_error: str
    fresh: bool


class BotOut(Schema):
    """Never carries the token."""

    id: int
    telegram_id: int
    username: str
    display_name: str
    is_active: bool
    status: BotStatusOut | None


class BotIn(Schema):
    token: str = Field(min_length=10, max_length=100)


class EventOut(Schema):
    id: int
    created_at: datetime
    group_id: int | None
    chat_id: int
    user_id: int
    user_name: str
    outcome: str
    missing_channel_ids: list[int]
    latency_ms: float | None
    cache_hit: bool | None
    detail: str


class EventPageOut(Schema):
    items: list[EventOut]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null at the end."
    )


class CommandIn(Schema):
    group_id: int
    kind: Literal["unmute", "ban", "unban", "recheck"]
    user_id: int = Field(gt=0, le=MAX_USER_ID)


class CommandOut(Schema):
    id: int
    kind: str
    status: str
    payload: dict
    result: dict
    error: str
    created_at: datetime
    finished_at: datetime | None


class PointOut(Schema):
    bucket: datetime
    value: float | None


class SeriesOut(Schema):
    name: str
    points: list[PointOut]


class AnalyticsOut(Schema):
    span: Literal["hour", "day"]
    start: datetime
    end: datetime
    outcomes: list[SeriesOut]
    cache_hit_rate: list[PointOut]
    latency_p50_ms: list[PointOut]
    latency_p95_ms: list[PointOut]
    latency_distribution: list[dict]
    hourly_activity: list[int]
    top_groups: list[dict]
    api_calls: list[dict]
    totals: dict[str, int]
