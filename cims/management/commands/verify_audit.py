"""Verify the access log's tamper-evident chain: exit 0 when intact, 1 with where it breaks."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cims import audit


class Command(BaseCommand):
    help = "Seal pending access-log rows, then verify the chain from the newest retention anchor."

    def add_arguments(self, parser):
        parser.add_argument("--no-seal", action="store_true", help="Do not seal pending rows first.")

    def handle(self, *args, no_seal: bool = False, **options):
        if not no_seal:
            sealed = audit.seal()
            if sealed:
                self.stdout.write(f"sealed {sealed} pending rows")
        result = audit.verify()
        if result.anchor_seq is not None:
            self.stdout.write(f"starting after the retention anchor at seq {result.anchor_seq}")
        if result.older_rows:
            self.stdout.write(f"{result.older_rows} rows at or before the anchor are still present (not walked)")
        if result.erased:
            self.stdout.write(f"{result.erased} rows had fields blanked by a personal-data erasure")
        if result.unsealed:
            self.stdout.write(f"{result.unsealed} rows are not sealed yet")
        if result.ok:
            self.stdout.write(result.summary())
            return
        for problem in result.problems:
            self.stderr.write(str(problem))
        raise CommandError(f"{result.summary()} ({len(result.problems)} problems found)", returncode=1)
