"""Re-encrypt every stored bot token with the first key of NEZUKO_ENCRYPTION_KEYS.

Key rotation: put the new key first, keep the old one after it, run this
command, then drop the old key. A token no key can read is reported by bot
and left untouched; the command then exits non-zero.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from bots import audit, crypto
from bots.models import AuditLog, BotInstance


class Command(BaseCommand):
    help = "Re-encrypt every bot token with the first key of NEZUKO_ENCRYPTION_KEYS."

    def handle(self, *args, **options) -> None:
        rotated, failed = 0, []
        for bot in BotInstance.objects.order_by("pk"):
            try:
                ciphertext = crypto.rotate(bot.encrypted_token)
            except crypto.TokenDecryptError:
                failed.append(bot)
                self.stderr.write(f"Cannot decrypt the token of {bot} (id {bot.pk}): "
                                  "none of NEZUKO_ENCRYPTION_KEYS reads it.")
                continue
            with transaction.atomic():
                BotInstance.objects.filter(pk=bot.pk).update(encrypted_token=ciphertext)
                audit.record(audit.AuditAction.BOT_KEY_ROTATED, bot, source=AuditLog.Source.SYSTEM,
                             actor_name="manage.py rotate_keys")
            rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} token(s) with the first key.")
        if failed:
            raise CommandError(
                f"{len(failed)} token(s) could not be decrypted; add back the key they were "
                "encrypted with, or re-enter those tokens in admin."
            )
