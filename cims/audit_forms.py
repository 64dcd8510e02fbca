"""Filters of the audit views: the change history and the personal-data access log.

Each turns what a query string says into a query, or into field errors that the page shows (an
invalid filter never widens the result to everything, and never raises).
"""

from __future__ import annotations

import datetime
import re

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cims.audit_history import ACTIONS, HistoryQuery, audited_model, audited_models
from cims.forms import FilterDateField
from cims.models import PersonalDataAccess
from customers.forms_list import UserChoiceField, staff_users

CUSTOMER_CODE = re.compile(r"^[Cc][0-9]{4}-[0-9]{6,}$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_OBJECT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")
_OBJECT_ID = re.compile(r"^[\w.:-]{1,64}$")
CUSTOMER_TYPE = "customers.customer"
# Contacts and files of one customer looked up for "who looked at this customer": far more than any has.
MAX_RELATED = 1000


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of ``day`` in the company's time zone (Asia/Shanghai)."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=timezone.get_default_timezone())


def customer_pk_for_code(code: str) -> int | None:
    from customers.models import Customer

    return Customer.all_objects.filter(code=code.upper()).values_list("pk", flat=True).first()


def customer_objects(pk: int) -> Q:
    """The access-log rows about one customer: the customer itself, and its contacts and files
    (a phone-book search logs the contact it found), deleted ones included. Each part is served
    by the log's (object type, object id) index."""
    from customers.models import Attachment, Contact

    found = Q(object_type=CUSTOMER_TYPE, object_id=str(pk))
    for label, model in (("customers.contact", Contact), ("customers.attachment", Attachment)):
        history = model.history.model.objects.filter(customer_id=pk).order_by().values_list("id", flat=True)
        ids = sorted({str(object_id) for object_id in history.distinct()[:MAX_RELATED]})
        if ids:
            found |= Q(object_type=label, object_id__in=ids)
    return found


class _AuditFilterForm(forms.Form):
    date_from = FilterDateField(label=pgettext_lazy("date range", "From"))
    date_to = FilterDateField(label=pgettext_lazy("date range", "To"))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def time_range(self) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """[start, end) of the chosen days; ``end`` is the midnight after the last day."""
        start, end = self.cleaned_data.get("date_from"), self.cleaned_data.get("date_to")
        return (
            day_start(start) if start else None,
            day_start(end + datetime.timedelta(days=1)) if end else None,
        )


class HistoryFilterForm(_AuditFilterForm):
    model = forms.ChoiceField(label=_("Record type"), required=False)
    user = UserChoiceField(
        label=_("Changed by"), queryset=staff_users().none(), required=False, empty_label=_("Anyone")
    )
    record = forms.CharField(
        label=_("Record"),
        required=False,
        max_length=64,
        help_text=_("A record ID, or a customer code such as C2026-000123."),
    )
    action = forms.ChoiceField(
        label=_("Change"),
        required=False,
        choices=[("", _("All changes")), ("+", _("Created")), ("~", _("Changed")), ("-", _("Deleted"))],
    )
    field_order = ["model", "user", "record", "action", "date_from", "date_to"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = staff_users()
        self.fields["model"].choices = [("", _("All records"))] + sorted(
            ((m._meta.label_lower, capfirst(m._meta.verbose_name)) for m in audited_models()),
            key=lambda choice: str(choice[1]),
        )

    def clean_record(self) -> str:
        return (self.cleaned_data.get("record") or "").strip()

    def clean(self):
        cleaned = super().clean()
        record = cleaned.get("record") or ""
        cleaned["object_id"] = None
        if not record:
            return cleaned
        if CUSTOMER_CODE.match(record):
            if cleaned.get("model") not in ("", None, CUSTOMER_TYPE):
                self.add_error("record", _("A customer code finds customers only: choose “all records” or customers."))
                return cleaned
            pk = customer_pk_for_code(record)
            if pk is None:
                self.add_error("record", _("No customer has this code."))
                return cleaned
            cleaned["model"], cleaned["object_id"] = CUSTOMER_TYPE, pk
        elif _DIGITS.match(record):
            cleaned["object_id"] = int(record)
        else:
            self.add_error("record", _("Enter a record ID (digits) or a customer code."))
        return cleaned

    def describe(self) -> str:
        """The filter for an export's access-log row: names and ids only, never a personal value."""
        data = self.cleaned_data
        parts = []
        for name in ("model", "user", "object_id", "action", "date_from", "date_to"):
            value = data.get(name)
            if value in (None, ""):
                continue
            if hasattr(value, "pk"):
                value = value.pk
            elif isinstance(value, datetime.date):
                value = value.isoformat()
            parts.append(f"{name}={value}")
        return "&".join(parts)

    def query(self) -> HistoryQuery:
        """The search the valid form asks for (call after ``is_valid()``)."""
        data = self.cleaned_data
        model = audited_model(data["model"]) if data.get("model") else None
        start, end = self.time_range()
        return HistoryQuery(
            models=(model,) if model else (),
            user_id=data["user"].pk if data.get("user") else None,
            object_id=data.get("object_id"),
            action=data.get("action") if data.get("action") in ACTIONS else "",
            start=start,
            end=end,
        )


class AccessLogFilterForm(_AuditFilterForm):
    user = UserChoiceField(label=_("User"), queryset=staff_users().none(), required=False, empty_label=_("Anyone"))
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", _("All actions")), *PersonalDataAccess.Action.choices]
    )
    object_type = forms.CharField(
        label=_("Object type"),
        required=False,
        max_length=64,
        help_text=_("Such as customers.customer"),
    )
    record = forms.CharField(
        label=_("Record"),
        required=False,
        max_length=64,
        help_text=_("An object ID, or a customer code such as C2026-000123."),
    )
    ip = forms.GenericIPAddressField(label=_("IP address"), required=False, unpack_ipv4=True)
    field_order = ["user", "action", "object_type", "record", "ip", "date_from", "date_to"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = staff_users()

    def clean_object_type(self) -> str:
        value = (self.cleaned_data.get("object_type") or "").strip().lower()
        if value and not _OBJECT_TYPE.match(value):
            raise forms.ValidationError(_("Enter an object type such as customers.customer."))
        return value

    def clean_record(self) -> str:
        value = (self.cleaned_data.get("record") or "").strip()
        if value and not _OBJECT_ID.match(value):
            raise forms.ValidationError(_("Enter an object ID or a customer code."))
        return value

    def clean(self):
        cleaned = super().clean()
        record = cleaned.get("record") or ""
        cleaned["object_id"], cleaned["objects"] = record, None
        if record and CUSTOMER_CODE.match(record):
            if cleaned.get("object_type") not in ("", None, CUSTOMER_TYPE):
                self.add_error("record", _("A customer code finds customers only: leave the object type empty."))
                return cleaned
            pk = customer_pk_for_code(record)
            if pk is None:
                self.add_error("record", _("No customer has this code."))
                return cleaned
            if cleaned.get("object_type"):
                cleaned["object_id"] = str(pk)
            else:
                cleaned["object_id"], cleaned["objects"] = "", customer_objects(pk)
        return cleaned

    def filter(self, queryset):
        """``queryset`` narrowed to the valid form's filters (call after ``is_valid()``)."""
        data = self.cleaned_data
        if data.get("user"):
            queryset = queryset.filter(user=data["user"])
        if data.get("action"):
            queryset = queryset.filter(action=data["action"])
        if data.get("object_type"):
            queryset = queryset.filter(object_type=data["object_type"])
        if data.get("object_id"):
            queryset = queryset.filter(object_id=data["object_id"])
        if data.get("objects") is not None:
            queryset = queryset.filter(data["objects"])
        if data.get("ip"):
            queryset = queryset.filter(ip_address=data["ip"])
        start, end = self.time_range()
        if start is not None:
            queryset = queryset.filter(created_at__gte=start)
        if end is not None:
            queryset = queryset.filter(created_at__lt=end)
        return queryset

    def describe(self) -> str:
        """The filter for the export's access-log row: names and ids only, never a personal value."""
        data = self.cleaned_data
        parts = []
        for name in ("user", "action", "object_type", "object_id", "ip", "date_from", "date_to"):
            value = data.get(name)
            if value in (None, ""):
                continue
            if hasattr(value, "pk"):
                value = value.pk
            elif isinstance(value, datetime.date):
                value = value.isoformat()
            parts.append(f"{name}={value}")
        return "&".join(parts)
