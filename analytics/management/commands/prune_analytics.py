"""`manage.py prune_analytics`: apply the retention settings (run it daily, e.g. from cron)."""

from django.core.management.base import BaseCommand, CommandParser

from analytics import retention


class Command(BaseCommand):
    help = (
        "Delete verification events and minute rollups older than EVENT_RETENTION_DAYS, "
        "hour/day rollups older than ROLLUP_RETENTION_DAYS, in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            self.stderr.write("--batch-size must be at least 1.")
            return
        for label, count in retention.prune(batch_size=batch_size).items():
            self.stdout.write(f"{label}: {count} deleted")
