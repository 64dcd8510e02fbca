from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.models import Department, Employee, User
from cims.normalize import fold_width, normalize_phone


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "class": "form-control"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "class": "form-control"}),
    )
    error_messages = {
        "invalid_login": _("The username or password is incorrect. Note that the password is case-sensitive."),
        "inactive": _("This account has been deactivated. Please contact your administrator."),
    }


class EmployeeForm(forms.ModelForm):
    class Meta:
        model = Employee
        fields = ["name", "department", "position", "phone", "email", "hire_date", "is_active", "user"]
        widgets = {"hire_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        taken = Employee.objects.exclude(pk=self.instance.pk).exclude(user=None).values("user_id")
        # Only staff accounts that no other employee is linked to can be linked.
        self.fields["user"].queryset = (
            User.objects.filter(is_active=True)
            .exclude(pk__in=taken)
            .exclude(groups__name="customer")
            .order_by("username")
        )
        self.fields["user"].help_text = _("The account this employee signs in with (optional).")
        self.fields["department"].queryset = Department.objects.select_related("parent")
        self.fields["phone"].help_text = _("Mobile or landline, e.g. 138 0013 8000 or 010-8888 6666.")

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])

    def clean_position(self) -> str:
        return fold_width(self.cleaned_data["position"])

    def clean_phone(self) -> str:
        return normalize_phone(self.cleaned_data["phone"])

    def clean_email(self) -> str:
        return fold_width(self.cleaned_data["email"]).lower()


class EmployeeFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=64)
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.all(), required=False)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All")), ("active", _("Active")), ("inactive", _("Inactive"))],
    )


class DepartmentForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = ["name", "parent", "head", "sort_order"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["head"].queryset = (
            User.objects.filter(is_active=True).exclude(groups__name="customer").order_by("username")
        )
        if self.instance.pk:
            below = Department.objects.subtree_ids([self.instance.pk])
            self.fields["parent"].queryset = Department.objects.exclude(pk__in=below)

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])
