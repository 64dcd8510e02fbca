"""Forms of the portal's ticket pages. They hold only what a customer may choose: the customer,
severity, channel, status and assignee are never fields, so a forged value for them is not read;
a contact must be one of the customer's own (another id is "not one of the choices")."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from complaints.models import Ticket, TicketCategory
from complaints.services import BODY_MAX, FILES_MAX, RATING_COMMENT_MAX
from customers.attachments import ACCEPT, inspect_file


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Up to FILES_MAX files, each checked as the customer archive checks files (type by content,
    size), before a byte is stored. ``cleaned_data`` holds (name, bytes) pairs for the services."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        uploads = [upload for upload in (data if isinstance(data, list | tuple) else [data]) if upload]
        if len(uploads) > FILES_MAX:
            raise ValidationError(
                _("At most %(limit)d files can be attached at once."), code="too_many", params={"limit": FILES_MAX}
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
