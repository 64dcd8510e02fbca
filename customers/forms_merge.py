"""The merge form: which record survives, and field by field which value.

The radio buttons carry only a record's id (or "both" for the notes), never a value: personal
fields are shown as the user sees them (masked where masked) and the service copies the stored
value, so a masked value never travels to the browser and back.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from cims.normalize import format_phone
from customers.access import REVEALABLE_FIELDS, personal_fields_for
from customers.merging import (
    BOTH,
    CUSTOM_PREFIX,
    MERGED,
    SURVIVOR,
    differing_fields,
    merge_choices_allowed,
)
from customers.models import Customer, CustomField

FIELD_PREFIX = "pick_"


@dataclass
class MergeRow:
    """One differing field on the merge page: its label, the two values as shown, and its radio field."""

    name: str
    label: str
    values: tuple[str, str]
    field_name: str | None  # None when the user may not choose (the survivor's value stays)
    allows_both: bool = False


def _display(user, customer: Customer, name: str, custom_labels: dict) -> str:
    if name.startswith(CUSTOM_PREFIX):
        value = (customer.custom_data or {}).get(name[len(CUSTOM_PREFIX) :])
        if value in (None, "", []):
            return ""
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if name in REVEALABLE_FIELDS:
        entry = personal_fields_for(user, customer, [name])[name]
        if entry["value"] and not entry["masked"] and name in ("phone", "mobile"):
            return format_phone(entry["value"])
        return entry["value"]
    field = Customer._meta.get_field(name)
    value = getattr(customer, name)
    if value in (None, ""):
        return ""
    if field.choices:
        return str(getattr(customer, f"get_{name}_display")())
    if name == "owner":
        return value.display_name if hasattr(value, "display_name") else str(value)
    if hasattr(value, "strftime"):
        return formats.date_format(value, "Y-m-d")
    return str(value)


def _label(name: str, custom_labels: dict) -> str:
    if name.startswith(CUSTOM_PREFIX):
        key = name[len(CUSTOM_PREFIX) :]
        return custom_labels.get(key, key)
    return str(Customer._meta.get_field(name).verbose_name).capitalize()


def older_of(first: Customer, second: Customer) -> Customer:
    return min((first, second), key=lambda c: (c.created_at, c.pk))


class MergeForm(forms.Form):
    survivor = forms.ChoiceField(label=_("Record that stays"), widget=forms.RadioSelect)

    def __init__(self, data=None, *, user, first: Customer, second: Customer):
        super().__init__(data)
        self.user = user
        self.first, self.second = first, second
        older = older_of(first, second)
        ids = (str(first.pk), str(second.pk))
        self.fields["survivor"].choices = [(ids[0], first.code), (ids[1], second.code)]
        self.fields["survivor"].initial = str(older.pk)
        self.fields["survivor"].error_messages["invalid_choice"] = _("Choose one of the two records.")

        allowed = merge_choices_allowed(user)
        custom_labels = dict(CustomField.objects.values_list("key", "label"))
        self.rows: list[MergeRow] = []
        for name in differing_fields(first, second):
            values = (_display(user, first, name, custom_labels), _display(user, second, name, custom_labels))
            label = _label(name, custom_labels)
            if not name.startswith(CUSTOM_PREFIX) and name not in allowed:
                self.rows.append(MergeRow(name=name, label=label, values=values, field_name=None))
                continue
            field_name = FIELD_PREFIX + name.replace(":", "_")
            choices = [(ids[0], values[0] or "—"), (ids[1], values[1] or "—")]
            if name == "notes":
                choices.append((BOTH, _("Keep both")))
            # Default: the only value there is; else the older record's.
            stored = [self._stored(c, name) for c in (first, second)]
            if bool(stored[0]) != bool(stored[1]):
                initial = ids[0] if stored[0] else ids[1]
            else:
                initial = str(older.pk)
            self.fields[field_name] = forms.ChoiceField(
                label=label,
                choices=choices,
                initial=initial,
                widget=forms.RadioSelect,
                error_messages={
                    "required": _("Choose which value to keep."),
                    "invalid_choice": _("Choose one of the values shown."),
                },
            )
            self.rows.append(
                MergeRow(name=name, label=label, values=values, field_name=field_name, allows_both=name == "notes")
            )

    @staticmethod
    def _stored(customer: Customer, name: str):
        if name.startswith(CUSTOM_PREFIX):
            return (customer.custom_data or {}).get(name[len(CUSTOM_PREFIX) :]) not in (None, "", [])
        return getattr(customer, Customer._meta.get_field(name).attname) not in (None, "")

    def bound_rows(self) -> list[dict]:
        """What the template lays out: each row with its bound field (or None) and checked option."""
        rows = []
        for row in self.rows:
            bound = self[row.field_name] if row.field_name else None
            rows.append({"row": row, "field": bound, "checked": str(bound.value()) if bound else ""})
        return rows

    def merge_arguments(self) -> tuple[Customer, Customer, dict[str, str]]:
        """(survivor, merged, choices) for ``customer_merge``, from a valid form."""
        survivor_pk = self.cleaned_data["survivor"]
        if survivor_pk == str(self.first.pk):
            survivor, merged = self.first, self.second
        else:
            survivor, merged = self.second, self.first
        choices = {}
        for row in self.rows:
            if not row.field_name:
                continue
            picked = self.cleaned_data[row.field_name]
            if picked == BOTH:
                choices[row.name] = BOTH
            else:
                choices[row.name] = SURVIVOR if picked == str(survivor.pk) else MERGED
        return survivor, merged, choices


class DuplicatePageForm(forms.Form):
    page = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)

    def page_number(self) -> int:
        if self.is_valid() and self.cleaned_data.get("page"):
            return self.cleaned_data["page"]
        return 1
