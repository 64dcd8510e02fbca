"""Export the customers a user may see, masked as that user sees them: the web export's engine.

    manage.py export_customers --format csv|xlsx --as USERNAME [-o FILE] [--status S] [--search TEXT]
                               [--filter KEY=VALUE ...]

The filters are the list page's (``--filter level=3 --filter created_from=2026-01-01``), checked by
the same form. The file is streamed (bounded memory at any size) to ``FILE.part`` and renamed when
complete, so an interrupted export never leaves a file that looks whole; CSV may go to standard
output. The row count and path go to standard error; the export is in the access log like any
other, its detail starting with "command line".
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from customers import exporting
from customers.forms_list import SORTS, CustomerFilterForm, ListChoices
from customers.models import Customer, CustomField
from customers.views import filter_customers


class Command(BaseCommand):
    help = "Export the customers USERNAME may see, masked as that user sees them, as CSV or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=exporting.FORMATS, default=exporting.CSV, dest="fmt")
        parser.add_argument("--as", dest="username", required=True, metavar="USERNAME", help="Export as this user.")
        parser.add_argument("-o", "--output", metavar="FILE", help="Write to FILE (CSV may go to standard output).")
        parser.add_argument("--status", choices=[value for value, _label in Customer.Status.choices])
        parser.add_argument("--search", metavar="TEXT", help="As the list's search box (name, code, phone …).")
        parser.add_argument(
            "--filter",
            action="append",
            dest="filters",
            default=[],
            metavar="KEY=VALUE",
            help="Any filter of the customer list, e.g. level=3, owner=12, created_from=2026-01-01.",
        )

    def handle(self, *args, fmt, username, output, status, search, filters, **options):
        user = self._user(username)
        if fmt == exporting.XLSX and not output:
            raise CommandError("An XLSX export needs -o FILE.")
        data = self._filter_data(filters, status=status, search=search)
        custom_fields = list(CustomField.objects.filter(is_active=True))
        form = CustomerFilterForm(data, user=user, custom_fields=custom_fields, choices=ListChoices())
        if not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            raise CommandError(f"Invalid filter: {problems}")
        queryset, cleaned = filter_customers(Customer.objects.visible_to(user), form)
        key, descending = SORTS.get(cleaned.get("sort") or "-id", SORTS["-id"])
        sign = "-" if descending else ""
        queryset = queryset.order_by(*dict.fromkeys([f"{sign}{key}", f"{sign}pk"]))
        described = exporting.describe_filters(cleaned)
        # The target is opened before the export is made (and logged): a bad path logs nothing.
        partial = f"{output}.part" if output else None
        try:
            target = open(partial, "wb") if partial else None  # noqa: SIM115 - closed below, renamed when whole
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from None
        try:
            export = exporting.export_customers(
                user=user,
                queryset=queryset,
                fmt=fmt,
                detail=f"command line: {described}" if described else "command line",
                custom_fields=custom_fields,
            )
            _filename, _content_type, content = export
            if target is not None:
                with target:
                    for chunk in content:
                        target.write(chunk)
                os.replace(partial, output)
            else:
                self._write_stdout(content)
        except BaseException:
            if target is not None:
                target.close()
            if partial and os.path.exists(partial):
                os.remove(partial)
            raise
        where = os.path.abspath(output) if output else "standard output"
        self.stderr.write(f"{export.rows} customers exported to {where}")

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"The user {username!r} is inactive.")
        if not user.has_perm("customers.export_customers"):
            raise CommandError(f"The user {username!r} may not export customers (customers.export_customers).")
        return user

    @staticmethod
    def _filter_data(pairs: list[str], *, status: str | None, search: str | None) -> dict[str, str]:
        data: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--filter takes KEY=VALUE, not {pair!r}.")
            data[name.strip()] = value.strip()
        if status:
            data["status"] = status
        if search:
            data["q"] = search
        unknown = sorted(
            name for name in data if name not in CustomerFilterForm.base_fields and not name.startswith("cf_")
        )
        if unknown:
            raise CommandError(f"Unknown filter: {', '.join(unknown)}.")
        return data

    def _write_stdout(self, content) -> None:
        binary = getattr(self.stdout, "buffer", None)
        for chunk in content:
            if binary is not None:
                binary.write(chunk)
            else:
                # A text stream (tests, a wrapped stdout): every chunk ends on a whole row.
                self.stdout.write(chunk.decode("utf-8"), ending="")
        if binary is not None:
            binary.flush()
        else:
            self.stdout.flush()
