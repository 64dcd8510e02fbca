"""Forms of the customer portal's accounts: the staff form that creates a portal account, the
invitation's first password, and the customer's own profile corrections."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.portal import PORTAL_CORRECTABLE_FIELDS, editable_profile_fields
from cims.normalize import fold_width, normalize_email, normalize_phone
from customers.models import Customer, Province


class PortalAccountForm(forms.Form):
    """Staff: the username and e-mail address of a new portal account."""

    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("The customer logs in with it. Letters, digits and @/./+/-/_ only."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    email = forms.CharField(
        label=_("E-mail"),
        max_length=254,
        required=False,
        help_text=_("The invitation is sent here. Without one, pass the link on yourself."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "email"}),
    )

    def clean_username(self) -> str:
        username = fold_width(self.cleaned_data["username"])
        _check_length(username, User._meta.get_field("username").max_length)  # folding can lengthen it
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(_("This username is taken; choose another."), code="taken")
        return username

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        _check_length(email, User._meta.get_field("email").max_length)
        return email


def _check_length(value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValidationError(
            _("At most %(limit)d characters, please (this has %(length)d)."),
            code="max_length",
            params={"limit": limit, "length": len(value)},
        )


class InvitationPasswordForm(SetPasswordForm):
    """The first password, checked by the password validators of the settings."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].widget.attrs["autofocus"] = True


def _text(name: str, max_length: int) -> forms.CharField:
    # Encrypted columns are TextFields: the form gives them a one-line input and a length limit.
    label = capfirst(Customer._meta.get_field(name).verbose_name)
    return forms.CharField(label=label, max_length=max_length, required=False)


def _phone_clean(name: str):
    def clean(self) -> str:
        return normalize_phone(self.cleaned_data[name])

    return clean


class PortalProfileForm(forms.ModelForm):
    """The fields of settings.PORTAL_EDITABLE_FIELDS, and only those: whatever else is posted
    (name, owner, level, status, id_number …) is not a field of this form, so it is never read."""

    phone = _text("phone", 32)
    mobile = _text("mobile", 32)
    fax = _text("fax", 32)
    email = _text("email", 254)
    city = _text("city", 32)
    address = _text("address", 200)

    class Meta:
        model = Customer
        fields = list(PORTAL_CORRECTABLE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = set(editable_profile_fields())
        for name in list(self.fields):
            if name not in allowed:
                del self.fields[name]
        if "province" in self.fields:
            self.fields["province"].queryset = Province.objects.order_by("code")
        for name, mode in (("phone", "tel"), ("mobile", "tel"), ("fax", "tel"), ("email", "email")):
            if name in self.fields:
                self.fields[name].widget.attrs.update({"inputmode": mode, "autocomplete": "off"})

    clean_phone = _phone_clean("phone")
    clean_mobile = _phone_clean("mobile")
    clean_fax = _phone_clean("fax")

    def clean_email(self) -> str:
        # Also the login's address (accounts.portal.portal_profile_save): its column's limit holds.
        email = normalize_email(self.cleaned_data["email"])
        _check_length(email, User._meta.get_field("email").max_length)
        return email

    def clean_city(self) -> str:
        return fold_width(self.cleaned_data["city"])

    def clean_address(self) -> str:
        return fold_width(self.cleaned_data["address"])

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.fields}
