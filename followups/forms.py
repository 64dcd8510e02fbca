"""Forms of follow-up records, the "my follow-ups" filter and the lifecycle status change."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cims.forms import FilterDateField
from customers import lifecycle
from customers.models import Contact, Customer, StatusChange
from followups.models import FollowUp, Opportunity
from followups.services import validate_followup

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class FollowUpForm(forms.ModelForm):
    """A follow-up of one customer; the contact is chosen among that customer's contacts."""

    happened_at = forms.DateTimeField(
        label=_("Time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
    )

    class Meta:
        model = FollowUp
        fields = [
            "kind",
            "happened_at",
            "contact",
            "opportunity",
            "content",
            "result",
            "next_contact_date",
            "satisfaction",
        ]
        widgets = {
            "content": forms.Textarea(attrs={"rows": 3}),
            "next_contact_date": _date_input(),
            "satisfaction": forms.NumberInput(attrs={"min": 1, "max": 5}),
        }

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer).order_by("-is_primary", "name")
        # The customer's open opportunities; a closed one stays choosable on a record already linked to it.
        opportunities = Opportunity.objects.filter(customer=customer).open()
        if self.instance.opportunity_id:
            opportunities = Opportunity.objects.filter(customer=customer).filter(
                Q(pk__in=opportunities.values("pk")) | Q(pk=self.instance.opportunity_id)
            )
        field = self.fields["opportunity"]
        field.queryset = opportunities.only("id", "title").order_by("-created_at", "-id")
        field.required = False
        # One query for the options, which also tells the template whether to show the field at all.
        offered = [(opportunity.pk, opportunity.title) for opportunity in field.queryset]
        field.choices = [("", "---------"), *offered]
        self.offers_opportunities = bool(offered)
        if self.instance.pk is None and not self.is_bound:
            self.initial["happened_at"] = timezone.localtime().replace(second=0, microsecond=0)

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            values = {name: cleaned.get(name) for name in self.Meta.fields}
            today = None
            previous = self.instance.next_contact_date if self.instance.pk else None
            if previous and values["next_contact_date"] == previous:
                today = min(timezone.localdate(), previous)  # an old record keeps its old date
            try:
                validate_followup(values, customer=self.customer, today=today)
            except ValidationError as error:
                for field, messages in error.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
        return cleaned

    def values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.Meta.fields}


class FollowUpFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), required=False, choices=[("", _("All types")), *FollowUp.Kind.choices])
    date_from = FilterDateField(label=_("From"), widget=_date_input())
    date_to = FilterDateField(label=_("To"), widget=_date_input())
    rep = forms.ModelChoiceField(label=_("Recorded by"), required=False, queryset=get_user_model().objects.none())

    def __init__(self, *args, show_rep: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if show_rep:
            self.fields["rep"].queryset = (
                get_user_model().objects.filter(is_active=True, groups__permissions__codename="add_followup").distinct()
            )
            self.fields["rep"].empty_label = _("Everyone")
        else:
            del self.fields["rep"]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class StatusChangeForm(forms.Form):
    """The statuses a person may choose from the customer's current one (customers.lifecycle)."""

    to = forms.ChoiceField(label=_("New status"))
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=StatusChange._meta.get_field("reason").max_length,
        help_text=_("Required when the customer is lost."),
    )

    def __init__(self, *args, current: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = lifecycle.choices_for(current)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("to") in lifecycle.REASON_REQUIRED and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", _("Say why the customer is lost."))
        return cleaned


class ReturnVisitFilterForm(forms.Form):
    """The filters of "due a return visit": how far back sales count, whose customers, due or coming."""

    WINDOWS = [
        (30, _("Sales in the last 30 days")),
        (90, _("Sales in the last 90 days")),
        (180, _("Sales in the last 180 days")),
        (365, _("Sales in the last year")),
    ]
    window = forms.TypedChoiceField(label=_("Sales"), choices=WINDOWS, coerce=int, required=False, empty_value=90)
    show = forms.ChoiceField(
        label=_("Show"),
        choices=[("due", _("Due now")), ("upcoming", _("Falling due"))],
        required=False,
    )
    rep = forms.ModelChoiceField(label=_("Owner"), required=False, queryset=get_user_model().objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"].queryset = (
            get_user_model().objects.filter(is_active=True, groups__permissions__codename="add_followup").distinct()
        )
        self.fields["rep"].empty_label = _("Everyone")
