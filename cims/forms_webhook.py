"""The administrator's form of a webhook endpoint."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cims import webhooks
from cims.models import WebhookEndpoint, WebhookEvent


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("The address that receives the events, https:// (a POST of JSON)."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event.")},
    )
    rotate_secret = forms.BooleanField(
        label=_("Rotate the signing secret"),
        required=False,
        help_text=_(
            "A new secret is generated and shown once; deliveries are signed with it from now on. "
            "Update the receiving system at the same time."
        ),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "is_active", "trusted"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            del self.fields["rotate_secret"]  # a new endpoint gets its first secret anyway
        self.fields["url"].widget.attrs.setdefault("placeholder", "https://")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhooks.check_url(url)
        except webhooks.UnsafeURL as error:
            raise forms.ValidationError(str(error)) from error
        return url

    def clean_events(self) -> list[str]:
        chosen = set(self.cleaned_data["events"])
        # In the order of WebhookEvent, whatever order the browser posted them in.
        return [value for value in WebhookEvent.values if value in chosen]
