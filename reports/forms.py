from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from reports.models import ReportSubscription


class SubscriptionForm(forms.Form):
    frequency = forms.ChoiceField(label=_("Send"), choices=ReportSubscription.Frequency.choices)
