"""Forms of the portal's ticket pages. They hold only what a customer may choose: the customer,
severity, channel, status and assignee are never fields, so a forged value for them is not read;
a contact must be one of the customer's own (another id is "not one of the choices")."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from complaints.forms import MultipleFileField
from complaints.models import Ticket, TicketCategory
from complaints.services import BODY_MAX, FILES_MAX, RATING_COMMENT_MAX


def _files_field() -> MultipleFileField:
    return MultipleFileField(
        label=_("Files"),
        help_text=_(
            "Optional: photos or documents (PDF, JPG, PNG, Word, Excel), up to %(count)d files of %(limit)s MB."
        )
        % {"count": FILES_MAX, "limit": settings.ATTACHMENT_MAX_MB},
    )


class ContactChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} · {obj.title}" if obj.title else obj.name


class PortalTicketForm(forms.Form):
    kind = forms.ChoiceField(label=_("What is it about?"), choices=Ticket.Kind.choices, initial=Ticket.Kind.COMPLAINT)
    category = forms.ModelChoiceField(label=_("Category"), queryset=TicketCategory.objects.none())
    subject = forms.CharField(label=_("Subject"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("What happened, when, and what you would like us to do."),
    )
    contact = ContactChoiceField(
        label=_("Contact person"),
        queryset=None,
        required=False,
        empty_label=_("None"),
        help_text=_("Whom we should talk to about it, if not you."),
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = TicketCategory.objects.filter(is_active=True).order_by("sort_order", "name")
        contacts = customer.contacts.order_by("-is_primary", "name")
        self.fields["contact"].queryset = contacts
        if not contacts.exists():
            del self.fields["contact"]
        self.fields["files"] = _files_field()

    def clean_subject(self) -> str:
        return self.cleaned_data["subject"].strip()


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Your reply"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["files"] = _files_field()


class ReopenForm(forms.Form):
    comment = forms.CharField(
        label=_("Why is the problem not solved?"),
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("How satisfied are you?"),
        choices=[(str(n), str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
        help_text=_("5 = very satisfied, 1 = very dissatisfied."),
    )
    comment = forms.CharField(
        label=_("Your comment"), required=False, max_length=RATING_COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )
