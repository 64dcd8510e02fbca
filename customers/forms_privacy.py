"""Forms of the personal-data pages: consents (staff and portal), requests and their decisions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Consent, DataRequest
from customers.privacy import DETAILS_MAX, REASON_MAX

GRANTED, WITHDRAWN = "1", "0"


class ConsentForm(forms.Form):
    """Staff record a consent given (or withdrawn) outside the portal: on paper, by phone …"""

    purpose = forms.ChoiceField(label=_("Purpose"), choices=Consent.Purpose.choices)
    decision = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[(GRANTED, _("Granted")), (WITHDRAWN, _("Withdrawn"))],
        coerce=lambda value: value == GRANTED,
        widget=forms.RadioSelect,
        initial=GRANTED,
    )
    # The portal channel is the customer's own: staff record what reached them another way.
    channel = forms.ChoiceField(
        label=_("Channel"), choices=[c for c in Consent.Channel.choices if c[0] != Consent.Channel.PORTAL]
    )


class PortalConsentForm(forms.Form):
    """The portal's marketing switch: withdraw, or grant again."""

    decision = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[(GRANTED, _("Granted")), (WITHDRAWN, _("Withdrawn"))],
        coerce=lambda value: value == GRANTED,
        error_messages={"required": _("Choose whether you agree or not.")},
    )


class PortalRequestForm(forms.Form):
    """A correction (what should change) or erasure (confirmed) asked from the portal."""

    kind = forms.ChoiceField(
        choices=[(DataRequest.Kind.CORRECTION, _("Correction")), (DataRequest.Kind.ERASURE, _("Erasure"))],
        error_messages={"required": _("Choose a request."), "invalid_choice": _("Choose a request.")},
    )
    details = forms.CharField(
        label=_("What should be corrected?"),
        required=False,
        max_length=DETAILS_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    confirm = forms.BooleanField(
        label=_("I understand that erasure removes my personal data and my portal account, and cannot be undone."),
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == DataRequest.Kind.CORRECTION and not (cleaned.get("details") or "").strip():
            self.add_error("details", _("Say what should be corrected."))
        if kind == DataRequest.Kind.ERASURE and not cleaned.get("confirm"):
            self.add_error("confirm", _("Tick the box to confirm that you want your data erased."))
        return cleaned


class DataRequestFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Request"), required=False, choices=[("", _("All")), *DataRequest.Kind.choices])
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("All")), *DataRequest.Status.choices])

    def valid_data(self) -> dict:
        """The values that passed validation; the bad ones are left out (and shown as errors)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}


class DecisionForm(forms.Form):
    """A manager's decision: approve, refuse (reason required) or mark a correction done (note required)."""

    APPROVE, REFUSE, DONE = "approve", "refuse", "done"

    action = forms.ChoiceField(
        choices=[(APPROVE, _("Approve")), (REFUSE, _("Refuse")), (DONE, _("Mark done"))],
        error_messages={"required": _("Choose a decision."), "invalid_choice": _("Choose a decision.")},
    )
    reason = forms.CharField(
        label=_("Reason or note for the customer"),
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    confirm = forms.BooleanField(label=_("I checked this request; the erasure cannot be undone."), required=False)

    def __init__(self, *args, data_request: DataRequest, **kwargs):
        self.data_request = data_request
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action")
        reason = (cleaned.get("reason") or "").strip()
        if action == self.REFUSE and not reason:
            self.add_error("reason", _("Give the reason for the refusal: the customer will see it."))
        if action == self.DONE and not reason:
            self.add_error("reason", _("Say what was corrected: the customer will see the note."))
        if action == self.APPROVE and self.data_request.kind == DataRequest.Kind.ERASURE and not cleaned.get("confirm"):
            self.add_error("confirm", _("Tick the box to confirm the erasure."))
        cleaned["reason"] = reason
        return cleaned
