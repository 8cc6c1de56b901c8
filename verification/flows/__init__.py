"""The engine's flows, one module each (DESIGN.md, "The enforcement engine").

Every flow translates an update into values (`verification.updates`),
gathers facts (`verification.telegram_reads`, the ledger), asks the rulebook
(`verification.decisions`) and hands the decision to `actions.apply`, which
carries it out and records the outcome. Flows hold no rules and no Bot API
calls of their own; `verification.handlers` registers them on a bot.

* `messages`: 1, a message in a protected group
* `joins`: 2, joins (chat_member, new_chat_members) and admins changing hands
* `join_requests`: 3, join requests
* `channels`: 4 and 5, someone left or joined a linked channel
* `button`: 6, "I've joined" (and the join-request button)
* `bot_rights`: 7, the bot's own membership; supergroup migration
* `sweeps`: the periodic clean-ups `verification.maintenance` runs
"""
