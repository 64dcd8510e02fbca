"""``manage.py backup [-o DIR]``: one encrypted backup now; prints its path."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cims import backups
from cims.models import Backup


class Command(BaseCommand):
    help = "Write an encrypted backup of the database and the uploaded files now and print its path."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output-dir", help="folder to write to (default: BACKUP_DIR)")

    def handle(self, *args, output_dir=None, **options):
        backup = backups.start_backup(kind=Backup.Kind.MANUAL)
        try:
            path = backups.run_backup(backup, directory=Path(output_dir) if output_dir else None)
        except Exception as exc:  # noqa: BLE001 - recorded on the row and alerted; the operator gets one line
            raise CommandError(f"backup failed: {backup.error or exc}") from None
        self.stdout.write(str(path))
