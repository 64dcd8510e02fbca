"""``manage.py restore BACKUP [--database-url URL] [--yes]`` and ``manage.py restore --drill``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cims import backups
from cims.models import RestoreRun


class Command(BaseCommand):
    help = (
        "Check a backup completely (checksum, authenticated decryption, manifest), then restore it into the "
        "configured database (or --database-url), migrate it forward and compare its row counts. "
        "--drill restores the latest backup into the scratch database instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", nargs="?", help="file name in BACKUP_DIR, or a path to a backup file")
        parser.add_argument("--database-url", help="restore into this database instead of the configured one")
        parser.add_argument("--scratch", action="store_true", help="drop and create --database-url first")
        parser.add_argument("--yes", action="store_true", help="do not ask before replacing the configured database")
        parser.add_argument(
            "--drill", action="store_true", help="run the restore drill (latest backup, scratch database)"
        )

    def handle(self, *args, backup=None, database_url=None, scratch=False, yes=False, drill=False, **options):
        try:
            if drill:
                run = backups.run_drill()
            else:
                if not backup:
                    raise CommandError("name the backup file to restore (or use --drill)")
                path = backups.resolve_path(backup)
                if not database_url and not yes:
                    self._confirm(path.name)
                run = backups.record_restore(
                    path=path, kind=RestoreRun.Kind.RESTORE, database_url=database_url, scratch=scratch
                )
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from None
        self._report(run)
        if run.status != RestoreRun.Status.PASSED:
            raise CommandError(run.error or "the restore check failed")

    def _confirm(self, name: str) -> None:
        self.stdout.write(
            self.style.WARNING(
                "This replaces EVERYTHING in the configured database with the content of the backup.\n"
                "Stop the web, worker and beat processes first."
            )
        )
        answer = input(f"Type the backup's file name ({name}) to go on: ")
        if answer.strip() != name:
            raise CommandError("not confirmed; nothing was changed")

    def _report(self, run: RestoreRun) -> None:
        report = run.report
        write = self.stdout.write
        write(f"{run.get_kind_display()} of {run.backup_name} into {report.get('target')}: {run.status}")
        expected = run.result.counts_expected
        found = run.result.counts_found
        width = max((len(name) for name in expected), default=10)
        write(f"{'table'.ljust(width)}  {'manifest':>10}  {'restored':>10}")
        for name in sorted(expected):
            mark = "" if found.get(name) == expected[name] else "  <-- differs"
            write(f"{name.ljust(width)}  {expected[name]:>10}  {str(found.get(name, '-')):>10}{mark}")
        write(f"rows: {report['rows_found']} of {report['rows_expected']} in {report['tables']} tables")
        write(f"migrations applied: {', '.join(report['migrations_applied']) or 'none'}")
        write(f"encrypted values decrypted: {report['decrypted_fields']}; media files: {report['media_files']}")
        for note in report.get("notes", []):
            write(f"note: {note}")
        write(f"took {run.duration_seconds:.1f} s")
