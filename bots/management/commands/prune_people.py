"""`manage.py prune_people`: apply NEZUKO_PEOPLE_RETENTION_DAYS to the people directory now.

runbot does this every six hours on its own (`bots.people.PeopleWriter.run`); the
command is for a deployment without runbot up, or to apply a new setting at once.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bots import people


class Command(BaseCommand):
    help = (
        "Blank the names, username, language and referral of people not seen for "
        "NEZUKO_PEOPLE_RETENTION_DAYS (or --days); ids, dates and blocks stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None,
                            help="Override the setting for this run (0 keeps everyone).")

    def handle(self, *args, days: int | None, **options) -> None:
        days = settings.NEZUKO_PEOPLE_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 (keep everyone) or more.")
        count = people.prune(days)
        self.stdout.write(f"people pruned: {count} (not seen for {days} days)"
                          if days else "retention is 0: nobody pruned")
