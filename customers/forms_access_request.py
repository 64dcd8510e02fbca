"""Forms of the access-request pages: asking, the list's filter, and a manager's decision.

The forms check the shape of the input; the rules (already in reach, one pending request, who
decides) are ``customers.access_requests``', whose refusals the views show as form errors.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.access_requests import NOTE_MAX, REASON_MAX, REASON_MIN, default_days, max_days
from customers.models import AccessRequest, Customer

Kind = AccessRequest.Kind


def _days_field(label) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=max_days(),
        error_messages={
            "required": _("Enter a number of days."),
            "invalid": _("Enter a whole number of days."),
            "min_value": _("Choose between 1 and %(max)d days.") % {"max": max_days()},
            "max_value": _("Choose between 1 and %(max)d days.") % {"max": max_days()},
        },
    )


class AccessRequestForm(forms.Form):
    """Ask for a customer outside one's scope (by its code: the requester cannot look it up) or
    for unmasked exports."""

    kind = forms.ChoiceField(
        label=_("I ask for"),
        choices=Kind.choices,
        initial=Kind.CUSTOMER,
        error_messages={"required": _("Choose what you ask for."), "invalid_choice": _("Choose what you ask for.")},
    )
    code = forms.CharField(
        label=_("Customer code"),
        required=False,
        max_length=32,
        help_text=_("The customer's number, e.g. C2026-000123."),
    )
    with_edit = forms.BooleanField(label=_("I also need to edit this customer"), required=False)
    days = forms.IntegerField()  # replaced in __init__ (the limit is a setting)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Why you need it; the manager who decides reads this."),
        error_messages={"required": _("Explain why you need this access.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"] = _days_field(_("For how many days"))
        self.fields["days"].initial = default_days()
        self.fields["days"].help_text = _("At most %(max)d days.") % {"max": max_days()}
        self.customer: Customer | None = None

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if len(reason) < REASON_MIN:
            raise forms.ValidationError(
                _("Explain why you need this access (at least %(min)d characters).") % {"min": REASON_MIN}
            )
        return reason

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == Kind.CUSTOMER:
            code = (cleaned.get("code") or "").strip().upper()
            if not code:
                self.add_error("code", _("Enter the code of the customer."))
            else:
                # Saying that no customer has this code reveals which codes exist; a code is a
                # sequence number, not personal data, and the requester learns nothing else.
                self.customer = Customer.objects.filter(code=code).only("pk", "code").first()
                if self.customer is None:
                    self.add_error("code", _("No customer has this code."))
        else:
            cleaned["with_edit"] = False
        return cleaned


class AccessRequestFilterForm(forms.Form):
    MINE, PENDING, ALL = "mine", "pending", "all"

    show = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[(MINE, _("My requests")), (PENDING, _("Waiting for a decision")), (ALL, _("All requests"))],
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *AccessRequest.Status.choices]
    )

    def valid_data(self) -> dict:
        """The values that passed validation; the bad ones are left out (and shown as errors)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


class AccessDecisionForm(forms.Form):
    """Approve (for a number of days) or refuse (with a note for the requester)."""

    APPROVE, REFUSE = "approve", "refuse"

    action = forms.ChoiceField(
        choices=[(APPROVE, _("Approve")), (REFUSE, _("Refuse"))],
        error_messages={"required": _("Choose a decision."), "invalid_choice": _("Choose a decision.")},
    )
    days = forms.IntegerField(required=False)  # replaced in __init__
    note = forms.CharField(
        label=_("Note for the requester"),
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, request_row: AccessRequest, **kwargs):
        self.request_row = request_row
        super().__init__(*args, **kwargs)
        self.fields["days"] = _days_field(_("Days granted"))
        self.fields["days"].required = False
        self.fields["days"].initial = min(request_row.days, max_days())
        self.fields["days"].help_text = _("At most %(max)d days.") % {"max": max_days()}

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action")
        cleaned["note"] = (cleaned.get("note") or "").strip()
        if action == self.REFUSE and not cleaned["note"]:
            self.add_error("note", _("Say why the request is refused: the requester will see it."))
        if action == self.APPROVE and cleaned.get("days") is None and "days" not in self.errors:
            cleaned["days"] = min(self.request_row.days, max_days())
        return cleaned
