"""Domain operations on groups, one module per resource: plain sync functions.

The engine calls them through the `a*` wrappers defined beside each one
(`sync_to_async`, one thread hop per operation). None of them is on the hot
path of a known subscriber's message.

Changes people make (every entry point: Telegram commands, dashboard, API,
Django admin) validate, check the actor's rights (`checks`), apply and audit
with one vocabulary (`bots.audit.AuditAction`):

- `protection`: protect, unprotect (a channel), enable/disable, chat migration
- `settings`: the per-group settings
- `members`: unmute, ban, unban, re-check (carried out by runbot's command queue)

What the engine records and reads:

- `ledger_writes` / `ledger_reads`: the member ledger (who Nezuko restricted)
- `health`: the bot's own rights per chat, /status, the check-up's verdict
- `admin_list`: the cached admin list
- `people`: a person's names in the ledger and admin lists, blanked on /forget
"""
