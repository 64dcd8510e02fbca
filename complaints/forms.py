"""Forms of the complaint desk: they parse input; complaints.services decides and writes."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cims.normalize import fold_width
from complaints import services
from complaints.models import Ticket, TicketCategory
from customers.attachments import ACCEPT

S = Ticket.Status
NUMBER_RE = re.compile(r"^T[0-9]{4}-[0-9]{6,}$", re.IGNORECASE)
CUSTOMER_CODE_RE = re.compile(r"^C[0-9]{4}-[0-9]{6,}$", re.IGNORECASE)
# The channels staff take a ticket through; 门户 tickets are filed by customers in the portal.
STAFF_CHANNELS = [(value, label) for value, label in Ticket.Channel.choices if value != Ticket.Channel.PORTAL]


# --- Files ---------------------------------------------------------------------------------------


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Up to services.FILES_MAX files, each checked as the customer archive checks files (type by
    content, size, name) before a byte is stored; ``cleaned_data`` holds (name, bytes) pairs for the
    services. The desk's and the portal's forms share it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Files"))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        from customers.attachments import inspect_file

        uploads = [upload for upload in (data if isinstance(data, list | tuple) else [data]) if upload]
        if len(uploads) > services.FILES_MAX:
            raise ValidationError(
                _("At most %(limit)d files can be attached at once."),
                code="too_many",
                params={"limit": services.FILES_MAX},
            )
        files = []
        limit = settings.ATTACHMENT_MAX_MB * 1024 * 1024
        for upload in uploads:
            upload = super().clean(upload, initial)
            if upload.size > limit:  # before reading a byte of it
                raise ValidationError(
                    _("“%(name)s” is %(size)s MB; files up to %(limit)s MB can be uploaded."),
                    code="too_large",
                    params={
                        "name": upload.name,
                        "size": f"{upload.size / 1048576:.1f}",
                        "limit": settings.ATTACHMENT_MAX_MB,
                    },
                )
            upload.seek(0)
            data_bytes = upload.read()
            try:
                inspect_file(data_bytes, upload.name)
            except ValidationError as error:
                raise ValidationError(
                    _("“%(name)s”: %(problem)s"), params={"name": upload.name, "problem": " ".join(error.messages)}
                ) from None
            files.append((upload.name, data_bytes))
        return files


def staff_files_help() -> str:
    """The desk's help text of a files field, in the language of the request (not of the import)."""
    return _("Up to %(count)d files: PDF, JPG, PNG, Word (.docx) or Excel (.xlsx), %(limit)s MB each.") % {
        "count": services.FILES_MAX,
        "limit": settings.ATTACHMENT_MAX_MB,
    }


# --- The desk's list -----------------------------------------------------------------------------

OPEN, ALL = "", "all"
MINE, TEAM = "mine", "team"
DUE_SOON, BREACHED = "due_soon", "breached"


class TicketFilterForm(forms.Form):
    """The queue's tab, filters and search (GET). Bad values are field errors and are ignored."""

    tab = forms.ChoiceField(choices=[(MINE, _("My tickets")), (TEAM, _("Team queue"))], required=False)
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": _("Ticket number, customer code or name"), "type": "search"}),
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[(OPEN, _("Open tickets")), *S.choices, (ALL, _("All statuses"))]
    )
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=TicketCategory.objects.all(), required=False, empty_label=_("All categories")
    )
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("All severities")), *Ticket.Severity.choices]
    )
    sla = forms.ChoiceField(
        label=_("SLA"), required=False, choices=[("", _("Any")), (DUE_SOON, _("Due soon")), (BREACHED, _("Overdue"))]
    )
    kind = forms.ChoiceField(
        label=pgettext_lazy("ticket", "Kind"),
        required=False,
        choices=[("", pgettext_lazy("ticket", "All kinds")), *Ticket.Kind.choices],
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("All channels")), *Ticket.Channel.choices]
    )
    customer = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def clean_q(self) -> str:
        return fold_width(self.cleaned_data.get("q") or "").strip()

    def valid_data(self) -> dict:
        """The values that passed validation; the bad ones are left out (and shown as errors)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


# --- Filing --------------------------------------------------------------------------------------


class CustomerLookupForm(forms.Form):
    code = forms.CharField(
        label=_("Customer code"),
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "C2026-000123", "autofocus": True}),
        help_text=_("The ticket is filed for this customer; you can also start from the customer's page."),
    )

    def clean_code(self) -> str:
        code = fold_width(self.cleaned_data["code"]).strip().upper()
        if not CUSTOMER_CODE_RE.match(code):
            raise ValidationError(_("Enter a customer code such as C2026-000123."), code="format")
        return code


class ContactChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.name


class OpportunityChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.title


class TicketForm(forms.Form):
    """A ticket staff take by phone, e-mail or on site, for one customer."""

    kind = forms.ChoiceField(
        label=pgettext_lazy("ticket", "Kind"), choices=Ticket.Kind.choices, initial=Ticket.Kind.COMPLAINT
    )
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=TicketCategory.objects.filter(is_active=True), empty_label=None
    )
    severity = forms.ChoiceField(label=_("Severity"), choices=Ticket.Severity.choices, initial=Ticket.Severity.MEDIUM)
    channel = forms.ChoiceField(label=_("Channel"), choices=STAFF_CHANNELS, initial=Ticket.Channel.PHONE)
    subject = forms.CharField(label=_("Subject"), max_length=Ticket._meta.get_field("subject").max_length)
    description = forms.CharField(
        label=_("Description"), max_length=services.BODY_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )
    contact = ContactChoiceField(label=_("Contact"), queryset=None, required=False, empty_label=_("None"))
    opportunity = OpportunityChoiceField(label=_("Opportunity"), queryset=None, required=False, empty_label=_("None"))
    files = MultipleFileField()

    def __init__(self, *args, customer, **kwargs):
        from customers.models import Contact
        from followups.models import Opportunity

        super().__init__(*args, **kwargs)
        # Only this customer's: a posted id of another customer's contact is "not one of the choices".
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer).order_by("-is_primary", "name")
        self.fields["opportunity"].queryset = Opportunity.objects.filter(customer=customer).order_by("-id")
        self.fields["files"].help_text = staff_files_help()
        self.fields["category"].help_text = _("Decides who takes the ticket: one of the category's service staff.")
        self.fields["severity"].help_text = _("Sets the due time: %(hours)s.") % {
            "hours": ", ".join(
                f"{label} {settings.SLA_HOURS[value]} h" for value, label in Ticket.Severity.choices[::-1]
            )
        }

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in ("kind", "category", "severity", "channel", "subject", "description", "contact", "opportunity")
        } | {"files": data.get("files") or []}


# --- A ticket's page -----------------------------------------------------------------------------


class CommentForm(forms.Form):
    body = forms.CharField(label=_("Message"), max_length=services.BODY_MAX, widget=forms.Textarea(attrs={"rows": 3}))
    internal = forms.BooleanField(label=_("Internal note (the customer never sees it)"), required=False)
    files = MultipleFileField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["files"].help_text = staff_files_help()


class TransitionForm(forms.Form):
    to = forms.ChoiceField(label=_("New status"))
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=services.BODY_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, ticket: Ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = services.steps_for(ticket)


class AssignForm(forms.Form):
    to = forms.ModelChoiceField(label=_("Assign to"), queryset=None, empty_label=None)
    comment = forms.CharField(label=_("Comment"), required=False, max_length=services.BODY_MAX)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = services.assignees()
