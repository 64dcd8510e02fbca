"""Recompute a lottery draw from the database and say MATCH or MISMATCH (docs/lottery.md §5).

    manage.py verify_lottery EVENT        EVENT: the event's id, or "YEAR NAME" as one argument

Exit code 0 on MATCH, 1 on MISMATCH. Before the draw only the entry list is checked against its
published hash (the secret is not revealed yet).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from lottery.models import LotteryEvent, LotteryLog
from lottery.services import event_problems, log


class Command(BaseCommand):
    help = "Recompute a lottery's entry list hash, commitment and winners from the database: MATCH or MISMATCH."

    def add_arguments(self, parser):
        parser.add_argument("event", help='the event id, or "YEAR NAME"')

    def handle(self, *args, event: str, **options):
        found = self.find(event)
        problems = event_problems(found)
        log(
            event=found,
            action=LotteryLog.Action.VERIFIED,
            detail="MATCH" if not problems else "MISMATCH: " + "; ".join(problems),
        )
        self.stdout.write(
            f"{found} ({found.get_status_display()}): {found.entry_count} entries, list hash {found.list_hash}"
        )
        if problems:
            self.stdout.write("MISMATCH")
            for problem in problems:
                self.stdout.write(f"  - {problem}")
            sys.exit(1)
        if found.is_drawn:
            self.stdout.write(
                f"MATCH: {found.winners.count()} winners recomputed from the secret, the list and the public value"
            )
        else:
            self.stdout.write("MATCH: the entry list matches its published hash (not drawn yet)")

    def find(self, text: str) -> LotteryEvent:
        text = text.strip()
        if text.isascii() and text.isdigit():
            event = LotteryEvent.objects.filter(pk=int(text)).first()
        else:
            year, _sep, name = text.partition(" ")
            event = None
            if year.isascii() and year.isdigit():
                event = LotteryEvent.objects.filter(year=int(year), name=name.strip()).first()
        if event is None:
            raise CommandError(f'no lottery event {text!r} (give its id, or "YEAR NAME")')
        if event.is_draft:
            raise CommandError(f"{event} is not published yet: there is nothing to verify")
        return event
