"""The enforcement engine. See docs/engine.md for how decisions are made."""

# Exactly the update types the engine handles; passed to getUpdates and setWebhook.
# chat_member is only delivered when asked for explicitly (and the bot is admin).
ALLOWED_UPDATES: tuple[str, ...] = (
    "message",
    "edited_message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
)
