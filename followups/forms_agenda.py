"""Forms of the personal agenda: tasks, notes and the history search."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import roles
from customers.models import Customer
from followups.models import Note, Task

# Who may hand a task to someone else: managers (and administrators) hold delete_task.
ASSIGN_OTHERS_PERMISSION = "followups.delete_task"


def may_assign_others(user) -> bool:
    return user.has_perm(ASSIGN_OTHERS_PERMISSION)


def assignable_users():
    """Staff who keep an agenda (the roles holding the task permissions)."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[roles.ADMIN, roles.MANAGER, roles.SALES, roles.SERVICE])
        .distinct()
        .order_by("username")
    )


class TaskForm(forms.Form):
    """A task by hand. The customer is entered by its code (a select of a million customers is no
    list) and must be one the user may see; the assignee is the user unless they are a manager.

    A plain form, not a ModelForm: the service compares old and new values, so the form must not
    write them onto the task first."""

    title = forms.CharField(label=_("Title"), max_length=200)
    customer_code = forms.CharField(
        label=_("Customer code"),
        required=False,
        max_length=16,
        help_text=_("Optional, e.g. C2026-000001."),
    )
    due_at = forms.DateTimeField(
        label=_("Due"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    assignee = forms.ModelChoiceField(label=_("Assignee"), queryset=None)

    def __init__(self, *args, user, task: Task | None = None, **kwargs):
        if task is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "title": task.title,
                "customer_code": task.customer.code if task.customer_id else "",
                "due_at": timezone.localtime(task.due_at),
                "assignee": task.assignee_id,
            }
        super().__init__(*args, **kwargs)
        self.user = user
        self.task = task
        if may_assign_others(user):
            self.fields["assignee"].queryset = assignable_users()
            self.fields["assignee"].initial = task.assignee_id if task else user.pk
        else:
            del self.fields["assignee"]

    def clean_customer_code(self) -> Customer | None:
        code = self.cleaned_data["customer_code"].strip().upper()
        if not code:
            return None
        customer = Customer.objects.visible_to(self.user).filter(code=code).first()
        if customer is None:
            raise forms.ValidationError(_("No customer with this code is within your reach."))
        return customer

    def changes(self) -> dict:
        """The cleaned values as keyword arguments of the task services."""
        assignee = self.cleaned_data.get("assignee") or (self.task.assignee if self.task else self.user)
        return {
            "title": self.cleaned_data["title"],
            "due_at": self.cleaned_data["due_at"],
            "customer": self.cleaned_data["customer_code"],
            "assignee": assignee,
        }


class NoteForm(forms.ModelForm):
    class Meta:
        model = Note
        fields = ["date", "text"]
        widgets = {
            "date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "text": forms.Textarea(attrs={"rows": 4}),
        }


class HistorySearchForm(forms.Form):
    KINDS = [
        ("", _("Everything")),
        ("note", _("Notes")),
        ("task", _("Done tasks")),
        ("followup", _("Follow-ups")),
    ]
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    kind = forms.ChoiceField(label=_("Type"), required=False, choices=KINDS)
