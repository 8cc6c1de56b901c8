"""Bot API methods about messages: send, edit, delete, answer button presses."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from bots.emulator.api import Params, find_chat, method, need, sendable_chat
from bots.emulator.errors import ApiError, bad_request
from bots.emulator.state import Chat, User, now
from bots.emulator.world import utf16_len

if TYPE_CHECKING:
    from bots.emulator.emulator import TelegramEmulator

MAX_TEXT = 4096
ENTITY_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: the tags it knows become entities, others are errors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self.open: list[tuple[str, int, dict[str, Any]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ENTITY_TAGS and tag != "span":
            raise bad_request(f'can\'t parse entities: Unsupported start tag "{tag}"')
        extra: dict[str, Any] = {}
        if tag == "a":
            extra["url"] = dict(attrs).get("href") or ""
        self.open.append((tag, utf16_len(self.text), extra))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise bad_request(f'can\'t parse entities: Unexpected end tag "{tag}"')
        name, start, extra = self.open.pop()
        length = utf16_len(self.text) - start
        if length and name in ENTITY_TAGS:
            self.entities.append(
                {"type": ENTITY_TAGS[name], "offset": start, "length": length, **extra}
            )

    def handle_data(self, data: str) -> None:
        self.text += data


def render_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    if not parse_mode or parse_mode.upper() != "HTML":
        return text, []
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        tag = parser.open[-1][0]
        raise bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{tag}\""
        )
    return parser.text, sorted(parser.entities, key=lambda e: e["offset"])


def _inline_markup(params: Params) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if "text" not in button:
                raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    return markup if "inline_keyboard" in markup else None


def _reply_to(chat: Chat, params: Params) -> int | None:
    reply = params.get("reply_parameters") or {}
    message_id = reply.get("message_id") if isinstance(reply, dict) else None
    message_id = message_id or params.get("reply_to_message_id")
    if not message_id:
        return None
    if message_id not in chat.messages:
        lenient = reply.get("allow_sending_without_reply") if isinstance(reply, dict) else None
        if lenient or params.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    return int(message_id)


@method("sendMessage")
def send_message(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    chat = sendable_chat(emu, bot, need(params, "chat_id"))
    text, entities = render_text(str(need(params, "text")), params.get("parse_mode"))
    if not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    thread_id = params.get("message_thread_id")
    if thread_id is not None and thread_id not in chat.topics:
        raise bad_request("message thread not found")
    markup = _inline_markup(params)
    message = emu.new_message(
        chat, bot, text=None, reply_to=_reply_to(chat, params), message_thread_id=thread_id
    )
    message["text"] = text
    if entities or params.get("entities"):
        message["entities"] = entities or params["entities"]
    if chat.type == "channel":
        message.pop("from", None)
        message["sender_chat"] = chat.to_json()
    if markup is not None:
        message["reply_markup"] = markup
    return message


def _own_message(emu: TelegramEmulator, bot: User, params: Params) -> tuple[Chat, dict[str, Any]]:
    if params.get("inline_message_id"):
        raise bad_request("inline messages are not supported by the emulator")
    chat = find_chat(emu, bot, need(params, "chat_id"))
    message = chat.messages.get(need(params, "message_id"))
    if message is None:
        raise bad_request("message to edit not found")
    if chat.bot_authors.get(message["message_id"]) != bot.id:
        raise bad_request("message can't be edited")
    return chat, message


def _not_modified() -> ApiError:
    return bad_request(
        "message is not modified: specified new message content and reply markup are "
        "exactly the same as a current content and reply markup of the message"
    )


@method("editMessageText")
def edit_message_text(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    _chat, message = _own_message(emu, bot, params)
    text, entities = render_text(str(need(params, "text")), params.get("parse_mode"))
    if not text.strip():
        raise bad_request("message text is empty")
    markup = _inline_markup(params)
    if message.get("text") == text and message.get("reply_markup") == markup:
        raise _not_modified()
    message["text"], message["edit_date"] = text, now()
    message.pop("entities", None)
    if entities:
        message["entities"] = entities
    if markup is not None:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)
    return message


@method("editMessageReplyMarkup")
def edit_message_reply_markup(emu: TelegramEmulator, bot: User, params: Params) -> dict[str, Any]:
    _chat, message = _own_message(emu, bot, params)
    markup = _inline_markup(params)
    if message.get("reply_markup") == markup:
        raise _not_modified()
    if markup is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = markup
    message["edit_date"] = now()
    return message


def _may_delete(chat: Chat, bot: User, message: dict[str, Any]) -> bool:
    if chat.type == "private":
        return True
    # Service messages and others' messages need the admin right; a bot's own do not.
    own = chat.bot_authors.get(message["message_id"]) == bot.id
    return own or chat.member(bot).has_right("can_delete_messages")


@method("deleteMessage")
def delete_message(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat = find_chat(emu, bot, need(params, "chat_id"))
    message = chat.messages.get(need(params, "message_id"))
    if message is None:
        raise bad_request("message to delete not found")
    if not _may_delete(chat, bot, message):
        raise bad_request("message can't be deleted")
    del chat.messages[message["message_id"]]
    return True


@method("deleteMessages")
def delete_messages(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    chat = find_chat(emu, bot, need(params, "chat_id"))
    ids = need(params, "message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must contain 1-100 message identifiers")
    found = [chat.messages[i] for i in ids if isinstance(i, int) and i in chat.messages]
    if any(not _may_delete(chat, bot, message) for message in found):
        raise bad_request("message can't be deleted")
    # Telegram skips identifiers it cannot find.
    for message in found:
        chat.messages.pop(message["message_id"], None)
    return True


@method("answerCallbackQuery")
def answer_callback_query(emu: TelegramEmulator, bot: User, params: Params) -> bool:
    query = emu.callback_queries.get(str(need(params, "callback_query_id")))
    if query is None or query["bot_id"] != bot.id or query["answer"] is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = params.get("text")
    if text is not None and len(str(text)) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query["answer"] = {
        "text": text,
        "show_alert": bool(params.get("show_alert")),
        "url": params.get("url"),
    }
    return True
