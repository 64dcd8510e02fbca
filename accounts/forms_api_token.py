"""The administrator's form that creates an API token (system:api_token_create)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import ApiToken, User
from accounts.roles import ROLE_LABELS
from customers.forms_list import staff_users, user_label

# Well above any integration's need; a larger number is a typo, not a wish.
MAX_RATE_LIMIT = 100_000


def role_names(user: User) -> str:
    """The user's roles as people know them (department groups are not roles)."""
    names = [str(ROLE_LABELS[group.name]) for group in user.groups.all() if group.name in ROLE_LABELS]
    return ", ".join(names)


class ServiceUserField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        roles = role_names(obj)
        label = user_label(obj)
        return f"{label} · {roles}" if roles else label


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(
        label=pgettext_lazy("api token", "Name"),
        max_length=64,
        strip=True,
        help_text=_("The integration that will use the token, e.g. “ERP sync”. It names the token in the history."),
    )
    user = ServiceUserField(
        label=_("Service user"),
        queryset=User.objects.none(),
        help_text=_(
            "The token acts as this user: it sees and may change exactly what this user's role sees and may "
            "change in CIMS, with the same masking of personal data. Prefer a dedicated account for each "
            "integration."
        ),
    )
    scope = forms.ChoiceField(
        label=_("Scope"),
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        help_text=_("A read-only token is refused every write, whatever the user's role allows."),
    )
    rate_limit = forms.IntegerField(
        label=_("Requests per minute"),
        required=False,
        min_value=1,
        max_value=MAX_RATE_LIMIT,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = staff_users().prefetch_related("groups")  # active staff only
        self.fields["rate_limit"].help_text = _("Leave empty for the default: %(count)s a minute.") % {
            "count": settings.API_RATE_LIMIT_PER_MINUTE
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        # Names differing only by case would be told apart by nobody reading the history.
        if ApiToken.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(_("A token with this name already exists (revoked tokens keep their name)."))
        return name
