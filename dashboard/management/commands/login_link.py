"""`manage.py login_link <telegram id | @username>`: a one-time dashboard link.

For staff helping an owner in, and for the demo. The owner would otherwise
send /login to the bot; the link is the same (five minutes, once).
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard import auth
from dashboard.models import TelegramAccount
from groups.models import GroupAdmin, GroupMember


def resolve(who: str) -> auth.TelegramIdentity:
    if who.lstrip("-").isdigit():
        return auth.TelegramIdentity(telegram_id=int(who))
    username = who.lstrip("@")
    for model in (TelegramAccount, GroupAdmin, GroupMember):
        row = model.objects.filter(username__iexact=username).first()
        if row is not None:
            telegram_id = row.telegram_id if model is TelegramAccount else row.user_id
            return auth.TelegramIdentity(telegram_id=telegram_id, username=row.username,
                                         first_name=row.first_name)
    raise CommandError(f"No Telegram user @{username} is known here; pass the numeric id.")


class Command(BaseCommand):
    help = "Print a one-time dashboard login link for a Telegram user (valid 5 minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("who", help="Telegram user id, or @username of a known admin")

    def handle(self, *args, who: str, **options) -> None:
        token = auth.create_login_link(resolve(who))
        self.stdout.write(auth.login_url(token))
