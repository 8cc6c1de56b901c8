"""Every Bot API call the emulator answered, and a way to await the next one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Call:
    """One request: `method` as Telegram spells it, the bot that made it, parsed `params`."""

    method: str
    bot_id: int | None
    params: dict[str, Any]
    ok: bool
    result: Any
    error_code: int | None
    description: str | None
    at: float  # unix time the answer was sent

    def to_json(self) -> dict[str, Any]:
        """For the control API: the webhook secret is shown as "***"."""
        params = self.params
        if "secret_token" in params:
            params = {**params, "secret_token": "***"}
        return {
            "method": self.method,
            "bot_id": self.bot_id,
            "params": params,
            "ok": self.ok,
            "result": self.result,
            "error_code": self.error_code,
            "description": self.description,
            "at": self.at,
        }


def _plain(value: Any) -> Any:
    """Let a test filter with emulator objects (`chat_id=group`) as well as ids."""
    return getattr(value, "id", value)


def matches(call: Call, method: str | None, filters: dict[str, Any]) -> bool:
    """Same method (case-insensitive) and every filter equal to the parameter.

    Values compare as given or as strings, so `chat_id=-100123` matches a chat_id that
    arrived as the form string "-100123"; `ok=`/`error_code=` filter on the answer.
    """
    if method is not None and call.method.lower() != method.lower():
        return False
    for name, wanted in filters.items():
        if name in ("ok", "error_code", "bot_id"):
            actual = getattr(call, name)
        else:
            actual = call.params.get(name)
        wanted = _plain(wanted)
        if actual != wanted and str(actual) != str(wanted):
            return False
    return True


class CallLog:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._waiters: list[tuple[str | None, dict[str, Any], asyncio.Future[Call]]] = []

    def record(self, call: Call) -> None:
        self.calls.append(call)
        if self._waiters:
            self._wake(call)

    def _wake(self, call: Call) -> None:
        still: list[tuple[str | None, dict[str, Any], asyncio.Future[Call]]] = []
        for method, filters, future in self._waiters:
            if future.done():
                continue
            if matches(call, method, filters):
                future.set_result(call)
            else:
                still.append((method, filters, future))
        self._waiters = still

    def named(self, method: str | None, **filters: Any) -> list[Call]:
        return [call for call in self.calls if matches(call, method, filters)]

    async def wait_for(
        self, method: str | None, seconds: float, since: int, filters: dict[str, Any]
    ) -> Call:
        for call in self.calls[since:]:
            if matches(call, method, filters):
                return call
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, filters, future))
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError:
            seen = sorted({call.method for call in self.calls[since:]})
            raise TimeoutError(
                f"no {method} call matching {filters} within {seconds}s; calls seen: {seen}"
            ) from None
