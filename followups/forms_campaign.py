"""Forms of marketing campaigns: create/edit, the list and member filters, targeting, member marks."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers.forms_list import CustomerFilterForm, UserChoiceField, staff_users
from followups.campaigns import EDITABLE_FIELDS, validate_campaign
from followups.models import Campaign, CampaignMember


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CampaignForm(forms.ModelForm):
    """A campaign's fields; the owner is any active member of staff (the user by default)."""

    owner = UserChoiceField(label=_("Owner"), queryset=staff_users())

    class Meta:
        model = Campaign
        fields = list(EDITABLE_FIELDS)
        widgets = {
            "start_date": _date_input(),
            "end_date": _date_input(),
            "budget": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
            "actual_cost": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].queryset = staff_users()
        if not self.instance.pk:
            self.fields["owner"].initial = user.pk
        self.fields["actual_cost"].help_text = _(
            "Leave empty until it is known; until then the cost per conversion is reckoned from the budget."
        )

    def clean(self):
        cleaned = super().clean()
        try:
            validate_campaign({name: cleaned.get(name) for name in EDITABLE_FIELDS})
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                if name not in self.errors:  # a field's own error (bad date, bad choice) says it already
                    self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in EDITABLE_FIELDS}


class CampaignFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Campaign.Status.choices]
    )
    kind = forms.ChoiceField(label=_("Type"), required=False, choices=[("", _("All types")), *Campaign.Kind.choices])


class MemberFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All members")), *CampaignMember.Status.choices]
    )


class MemberMarkForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=CampaignMember.Status.choices)
    note = forms.CharField(
        label=_("Note"), required=False, max_length=CampaignMember._meta.get_field("note").max_length
    )


class TargetFilterForm(CustomerFilterForm):
    """The customer list's filters (tag, status, level, source, …), to pick a campaign's targets.

    Nothing chosen would mean every customer the user may see, so that takes a tick of its own.
    A bad value is an error here (the list merely ignores it): ignoring it would widen the target.
    """

    everyone = forms.BooleanField(label=_("All the customers I may see"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["sort"]
        del self.fields["per_page"]
        self.fields["tag"].label = _("Customers with the tag")

    @property
    def other_fields(self):
        """The filters shown after the main three (tag, search, status), the tick last."""
        return [self[name] for name in self.fields if name not in ("tag", "q", "status", "everyone")]

    def clean(self):
        cleaned = super().clean()
        chosen = any(value not in (None, "", False) for name, value in cleaned.items() if name != "everyone")
        if not chosen and not cleaned.get("everyone"):
            raise ValidationError(
                _("Choose at least one filter (for example a tag), or tick “All the customers I may see”."),
                code="no_filter",
            )
        return cleaned
