"""``manage.py import_customers FILE``: the web import's engine from the command line.

Same validation, de-duplication, batches, history and access log as the import page: the file is
stored and checked as an import job, the preview summary printed, and (unless ``--dry-run``) the
plan written. Exits with an error when nothing was written because of errors.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from customers.importing import engine
from customers.models import ImportJob

SHOWN_ERRORS = 50


class Command(BaseCommand):
    help = "Import customers from a CSV, XLSX or XLS file (the import page's engine)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV (UTF-8 or GBK), XLSX or XLS file")
        parser.add_argument("--owner", help="username of the owner of the imported customers")
        parser.add_argument(
            "--as",
            dest="acting",
            help="username of the user importing (history names them); default: --owner, else the first superuser",
        )
        parser.add_argument("--dry-run", action="store_true", help="check and print the preview; write nothing")
        parser.add_argument(
            "--on-duplicate",
            choices=ImportJob.OnDuplicate.values,
            default=ImportJob.OnDuplicate.SKIP,
            help="skip duplicates (default), update the existing customer, or create anyway",
        )

    def handle(self, *args, **options):
        users = get_user_model().objects
        owner = self._user(options["owner"]) if options["owner"] else None
        if options["acting"]:
            acting = self._user(options["acting"])
        elif owner is not None:
            acting = owner
        else:
            acting = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
            if acting is None:
                raise CommandError("No superuser to import as; pass --as USERNAME.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")

        try:
            with path.open("rb") as upload:
                job = engine.job_create(
                    upload=upload,
                    file_name=path.name,
                    by=acting,
                    owner=owner,
                    on_duplicate=options["on_duplicate"],
                )
        except engine.ImportRefused as refused:
            raise CommandError(f"The file was refused: {refused.message}") from None

        engine.job_check(job)
        job.refresh_from_db()
        if job.status != ImportJob.Status.CHECKED:
            raise CommandError(f"The file was refused: {job.message}")
        self._preview(job)
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was written.")
            engine.job_cancel(job, by=acting)
            return
        if job.to_create + job.to_update == 0:
            if job.rejected:
                raise CommandError("Nothing was imported: every row was rejected or skipped.")
            self.stdout.write("Nothing to import: every row was skipped.")
            engine.job_commit(job, by=acting)
            return
        engine.job_commit(job, by=acting)
        job.refresh_from_db()
        if job.status != ImportJob.Status.DONE:
            raise CommandError(f"Import #{job.pk} stopped: {job.message}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Import #{job.pk} done: {job.created} created, {job.updated} updated, "
                f"{job.skipped} skipped, {job.rejected} rejected."
            )
        )

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        return user

    def _preview(self, job: ImportJob) -> None:
        write = self.stdout.write
        write(
            f"Import #{job.pk}: {job.file_name} ({job.file_format.upper()}{', ' + job.encoding if job.encoding else ''})"
        )
        if job.message:
            write(job.message)
        write(
            f"{job.total_rows} rows: {job.to_create} to create, {job.to_update} to update, "
            f"{job.to_skip} to skip, {job.rejected} rejected."
        )
        for error in job.errors[:SHOWN_ERRORS]:
            write(f"  line {error['line']}, {error['column']}: {error['reason']}")
        more = job.rejected - len({error["line"] for error in job.errors[:SHOWN_ERRORS]})
        if more > 0:
            write(f"  … and {more} more rejected rows.")
