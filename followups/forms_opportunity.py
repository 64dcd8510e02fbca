"""Forms of sales opportunities: create/edit, move, win, lose, and the list and board filters."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers.forms import ContractForm, TransactionForm
from followups.models import Opportunity
from followups.opportunities import OPEN_STAGES, validate_opportunity


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def rep_queryset():
    """Who may own opportunities (the reps and managers), for the manager's filter and owner pick."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__permissions__codename="change_opportunity")
        .distinct()
        .order_by("username")
    )


class OpportunityForm(forms.ModelForm):
    """An opportunity's fields; the stage is chosen only when it is created (then it is moved)."""

    class Meta:
        model = Opportunity
        fields = ["title", "stage", "amount", "probability", "expected_close_date", "owner", "description"]
        widgets = {
            "amount": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
            "probability": forms.NumberInput(attrs={"min": 0, "max": 100}),
            "expected_close_date": _date_input(),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, with_lines: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.with_lines = with_lines
        self.fields["amount"].help_text = _("In yuan (CNY).")
        if with_lines:
            # The amount is the sum of the product lines (followups.opportunities).
            self.fields["amount"].required = False
            self.fields["amount"].disabled = True
            self.fields["amount"].help_text = _("Calculated from the product lines.")
        self.fields["probability"].required = False
        self.fields["probability"].help_text = _("Leave empty for the stage's usual probability.")
        if self.instance.pk:
            del self.fields["stage"]
        else:
            self.fields["stage"].choices = [(s.value, s.label) for s in OPEN_STAGES]
        if user.has_perm("customers.change_all_customers"):
            self.fields["owner"].queryset = rep_queryset()
            self.fields["owner"].required = False
            self.fields["owner"].empty_label = _("Me")
        else:
            del self.fields["owner"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            values = {name: cleaned.get(name) for name in ("title", "amount", "probability", "owner")}
            if values["probability"] is None:
                values["probability"] = 0  # filled from the stage by the service
            if self.with_lines:
                values["amount"] = 0  # the sum of the lines, by the service
            if self.instance.pk and values["owner"] in (None, self.instance.owner):
                values["owner"] = None  # unchanged
            try:
                validate_opportunity(values, by=self.user)
            except ValidationError as error:
                for name, messages in error.message_dict.items():
                    self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def values(self) -> dict:
        values = {name: self.cleaned_data.get(name) for name in self.fields}
        if values.get("owner") is None:
            values.pop("owner", None)
        if self.instance.pk and values.get("probability") is None:
            values.pop("probability")
        if self.with_lines:
            values.pop("amount", None)
        return values


class MoveForm(forms.Form):
    stage = forms.ChoiceField(label=_("Stage"), choices=[(s.value, s.label) for s in OPEN_STAGES])


class LoseForm(forms.Form):
    reason = forms.CharField(
        label=_("Why was it lost?"),
        max_length=Opportunity._meta.get_field("lost_reason").max_length,
        widget=forms.TextInput(attrs={"autofocus": True}),
    )


class WinForm(forms.Form):
    """Whether to record the contract and the transaction of the deal, with their own forms."""

    create_contract = forms.BooleanField(label=_("Record the contract"), required=False)
    create_transaction = forms.BooleanField(label=_("Record the transaction"), required=False)


def win_forms(data, opportunity, *, contract_initial: dict, transaction_initial: dict, with_lines: bool = False):
    """The win form with the contract and transaction forms (prefixed), bound to ``data`` if given.

    ``with_lines``: the opportunity has product lines; its transaction sells them (no amount asked).
    """
    return (
        WinForm(data),
        ContractForm(data, prefix="contract", initial=contract_initial),
        TransactionForm(data, prefix="transaction", initial=transaction_initial, with_lines=with_lines),
    )


class OpportunityFilterForm(forms.Form):
    stage = forms.ChoiceField(
        label=_("Stage"), required=False, choices=[("", _("All stages")), *Opportunity.Stage.choices]
    )
    close_from = forms.DateField(label=_("Closing from"), required=False, widget=_date_input())
    close_to = forms.DateField(label=_("Closing to"), required=False, widget=_date_input())
    rep = forms.ModelChoiceField(label=_("Owner"), required=False, queryset=get_user_model().objects.none())

    def __init__(self, *args, show_rep: bool = False, with_dates: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if show_rep:
            self.fields["rep"].queryset = rep_queryset()
            self.fields["rep"].empty_label = _("Everyone")
        else:
            del self.fields["rep"]
        if not with_dates:
            for name in ("stage", "close_from", "close_to"):
                del self.fields[name]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("close_from"), cleaned.get("close_to")
        if start and end and end < start:
            self.add_error("close_to", _("The end of the range is before its start."))
        return cleaned
