"""One row of a customer file, cleaned: each mapped cell through its widget, then the checks that
look at the whole row, as CustomerForm.clean does (name required, birth date against the ID card
number, custom fields required) plus the import's own rule on owners.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from customers.importing.columns import HeaderMapping
from customers.importing.files import cell_text
from customers.models import Customer

ENTERPRISE_FIELDS = ("enterprise_type", "enterprise_nature", "scale")


@dataclass
class CleanRow:
    line: int
    cells: list
    values: dict = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file header, message)

    def reason(self) -> str:
        return "; ".join(f"{header}: {message}" if header else message for header, message in self.errors)

    def original(self) -> list[str]:
        return [cell_text(cell) for cell in self.cells]


class RowCleaner:
    """Cleans the rows of one file for one importer (the widgets' caches live as long as it does)."""

    def __init__(self, mapping: HeaderMapping, resource, *, importer):
        self.slots = []
        self.headers: dict[str, str] = {}
        for index, column in enumerate(mapping.columns):
            if column is None:
                continue
            header = mapping.headers[index] or column.header
            self.slots.append((index, column.key, header, resource.widget_for(column.key)))
            self.headers[column.key] = header
        self.custom_required = [
            f"cf_{definition.key}" for definition in getattr(resource, "custom_fields", ()) if definition.required
        ]
        self.importer_id = importer.pk
        self.may_assign_others = importer.has_perm("customers.change_all_customers")

    def prime(self) -> None:
        """Load every widget's lookup table now, in this thread: cleaning then needs no query, so
        it may run in a helper thread (which must not open database connections of its own)."""
        for _index, _key, _header, widget in self.slots:
            ids = getattr(widget, "ids", None)
            if callable(ids):
                ids()

    def header(self, key: str, fallback) -> str:
        return self.headers.get(key) or str(fallback)

    def clean(self, line: int, cells: list) -> CleanRow:
        row = CleanRow(line=line, cells=cells)
        values, errors = row.values, row.errors
        width = len(cells)
        failed = set()
        for index, key, header, widget in self.slots:
            try:
                values[key] = widget.clean(cells[index] if index < width else None)
            except ValueError as exc:
                errors.append((header, str(exc)))
                failed.add(key)

        if not values.get("name") and "name" not in failed:
            errors.append((self.header("name", _("Name")), _("This column is required.")))
        for key in self.custom_required:
            if key in self.headers and values.get(key) in (None, "") and key not in failed:
                errors.append((self.headers[key], _("This column is required.")))

        id_number = values.get("id_number")
        if id_number and "birth_date" not in failed:
            from_id = datetime.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
            if values.get("birth_date") is None:
                values["birth_date"] = from_id
            elif values["birth_date"] != from_id:
                errors.append(
                    (
                        self.header("birth_date", _("Birth date")),
                        _("The birth date does not match the one inside the ID card number."),
                    )
                )

        if values.get("kind") == Customer.INDIVIDUAL:
            # As in the form: enterprise details are not kept for an individual.
            for key in ENTERPRISE_FIELDS:
                values.pop(key, None)

        owner = values.get("owner")
        if owner and owner != self.importer_id and not self.may_assign_others:
            errors.append(
                (
                    self.header("owner", _("Owner")),
                    _("You may import customers only for yourself: leave the owner empty or name yourself."),
                )
            )
        return row
