"""Forms of the reading side: list filters, bulk actions, transfer, share, phone book.

Every value a user sends in a query string or a POST goes through one of these, so that a bad
value becomes a form error (or is ignored) instead of a 500.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import CharField, F, Q, Value
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from accounts import roles
from accounts.models import User
from cims.forms import FilterDateField
from customers.models import (
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomField,
    Industry,
    Province,
    Tag,
)

MAX_BULK = 500
CURSOR_MAX = 2000

# Sort keys a user may pick: key → (model field, descending). The primary key breaks ties.
SORTS = {
    "-id": ("pk", True),
    "id": ("pk", False),
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
    "code": ("code", False),
    "-code": ("code", True),
    "name": ("name", False),
    "-name": ("name", True),
}
SORT_CHOICES = [
    ("-id", _("Newest first")),
    ("id", _("Oldest first")),
    ("-created_at", _("Created (latest first)")),
    ("created_at", _("Created (earliest first)")),
    ("code", _("Code (A→Z)")),
    ("-code", _("Code (Z→A)")),
    ("name", _("Name (A→Z)")),
    ("-name", _("Name (Z→A)")),
]
PER_PAGE_CHOICES = [("30", "30"), ("50", "50"), ("100", "100")]


def _perm_holders(codename: str, app_label: str = "customers"):
    """Active users holding a model permission directly, through a group, or as superusers."""
    through_group = Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
    direct = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label)
    ids = User.objects.filter(through_group | direct | Q(is_superuser=True)).values("pk")
    return User.objects.filter(is_active=True, pk__in=ids).order_by("name", "username")


def eligible_owners():
    """Who may own customers: active users who may edit them (sales reps, managers, admins)."""
    return _perm_holders("change_customer")


def staff_users():
    """Staff accounts (not the portal's customers, who may be many)."""
    return _perm_holders("access_staff_ui", "accounts")


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return user_label(obj)


def group_label(group: Group) -> str:
    # Department groups are named "dept:<id>:<name>"; people know them by the department's name.
    parts = group.name.split(":", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "dept" else group.name


class GroupChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Group) -> str:
        return group_label(obj)


def user_label(user: User) -> str:
    return f"{user.display_name} ({user.username})" if user.name else user.username


class ListChoices:
    """The options of the list's selects, loaded once per request and shared by its forms.

    All lookups (levels, sources, industries, provinces, tags) come in one UNION query and the
    owners in another, so the list page costs the same number of queries however many filters it
    shows.
    """

    LOOKUPS = {
        "level": CustomerLevel,
        "source": CustomerSource,
        "industry": Industry,
        "province": Province,
        "tag": Tag,
    }

    @cached_property
    def lookups(self) -> dict[str, list[tuple[int, str]]]:
        parts = []
        for kind, model in self.LOOKUPS.items():
            rank = F("sort_order") if any(f.name == "sort_order" for f in model._meta.fields) else Value(0)
            parts.append(
                model.objects.order_by()
                .annotate(kind=Value(kind, output_field=CharField()), rank=rank)
                .values_list("kind", "rank", "name", "id")
            )
        rows = sorted(parts[0].union(*parts[1:], all=True))
        found: dict[str, list[tuple[int, str]]] = {kind: [] for kind in self.LOOKUPS}
        for kind, _rank, name, pk in rows:
            found[kind].append((pk, name))
        # Provinces read best in their official (code) order, which is the order they were loaded in.
        found["province"].sort()
        return found

    @cached_property
    def owners(self) -> list[tuple[int, str]]:
        return [(user.pk, user_label(user)) for user in eligible_owners().only(*USER_LABEL_FIELDS)]

    def lookup(self, kind: str, empty_label) -> callable:
        return lambda: [("", empty_label), *self.lookups[kind]]

    def owner_choices(self, empty_label) -> callable:
        return lambda: [("", empty_label), *self.owners]


USER_LABEL_FIELDS = ("id", "username", "name", "first_name", "last_name")


def _id_choice(label, **kwargs) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(label=label, required=False, coerce=int, empty_value=None, **kwargs)


class IdListField(forms.Field):
    """A list of customer ids from checkboxes (``ids=1&ids=2``): integers, at most ``MAX_BULK``."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "invalid": _("The selection is not valid; please reload the page and try again."),
        "too_many": _("Select at most %(max)d customers at a time."),
        "required": _("Select at least one customer."),
    }

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        if len(value) > MAX_BULK:
            raise ValidationError(self.error_messages["too_many"], code="too_many", params={"max": MAX_BULK})
        ids = []
        for item in value:
            text = str(item).strip()
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            ids.append(int(text))
        return list(dict.fromkeys(ids))


class CustomerFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *Customer.Status.choices]
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("All kinds")), *Customer.KINDS])
    level = _id_choice(_("Level"))
    source = _id_choice(_("Source"))
    province = _id_choice(_("Province"))
    industry = _id_choice(_("Industry"))
    owner = _id_choice(_("Owner"))
    tag = _id_choice(_("Tag"))
    created_from = FilterDateField(label=_("Created from"))
    created_to = FilterDateField(label=_("Created to"))
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(
        label=_("Per page"), required=False, choices=PER_PAGE_CHOICES, coerce=int, empty_value=None
    )

    def __init__(self, *args, user, custom_fields=(), choices: ListChoices | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices or ListChoices()
        empty = {
            "level": _("All levels"),
            "source": _("All sources"),
            "province": _("All provinces"),
            "industry": _("All industries"),
            "tag": _("Any tag"),
        }
        for name, label in empty.items():
            self.fields[name].choices = self.choices.lookup(name, label)
        if user.has_perm("customers.view_all_customers"):
            self.fields["owner"].choices = self.choices.owner_choices(_("Anyone"))
        else:
            # Only those who see every customer filter by owner; the others see their own anyway.
            del self.fields["owner"]
        self.custom_fields = list(custom_fields)
        for custom in self.custom_fields:
            self.fields[f"cf_{custom.key}"] = _custom_filter_field(custom)

    @property
    def labelled_errors(self) -> list[tuple[str, str]]:
        """(field label, message) pairs, for the notice above the table."""
        found = []
        for name, errors in self.errors.items():
            label = str(self.fields[name].label) if name in self.fields else ""
            found.extend((label, str(error)) for error in errors)
        return found

    @property
    def custom_bound_fields(self):
        return [self[f"cf_{custom.key}"] for custom in self.custom_fields]

    @property
    def advanced_bound_fields(self):
        names = ["source", "province", "industry", "owner", "tag", "kind", "created_from", "created_to"]
        return [self[name] for name in names if name in self.fields]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", _("The end date is before the start date."))
        return cleaned

    def valid_data(self) -> dict:
        """The values that passed validation; the bad ones are left out (and shown as errors)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}

    def custom_filters(self, data: dict) -> Q:
        q = Q()
        for custom in self.custom_fields:
            value = data.get(f"cf_{custom.key}")
            if value in (None, ""):
                continue
            path = f"custom_data__{custom.key}"
            if custom.field_type == CustomField.TEXT:
                q &= Q(**{f"{path}__icontains": value})
            elif custom.field_type == CustomField.NUMBER:
                # Stored as a JSON number or as text, depending on how it was entered: match either.
                number = int(value) if value == value.to_integral_value() else float(value)
                q &= Q(**{path: number}) | Q(**{path: str(value)}) | Q(**{path: str(number)})
            elif custom.field_type == CustomField.DATE:
                q &= Q(**{path: value.isoformat()})
            else:
                q &= Q(**{path: value})
        return q


def _custom_filter_field(custom: CustomField) -> forms.Field:
    label = custom.label
    if custom.field_type == CustomField.NUMBER:
        return forms.DecimalField(label=label, required=False, max_digits=20, decimal_places=6)
    if custom.field_type == CustomField.DATE:
        return forms.DateField(
            label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        )
    if custom.field_type == CustomField.CHOICE:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", _("Any")), *[(c, c) for c in custom.choice_list]]
        )
    return forms.CharField(label=label, required=False, max_length=100)


class BulkActionForm(forms.Form):
    TAG, TRANSFER, DELETE = "tag", "transfer", "delete"
    ACTIONS = [(TAG, _("Add tag")), (TRANSFER, _("Transfer to owner")), (DELETE, _("Move to recycle bin"))]

    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS)
    ids = IdListField(label=_("Customers"))
    tag = _id_choice(_("Tag"))
    owner = _id_choice(_("New owner"))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=100)

    def __init__(self, *args, user=None, choices: ListChoices | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices or ListChoices()
        self.fields["tag"].choices = self.choices.lookup("tag", _("Tag…"))
        self.fields["owner"].choices = self.choices.owner_choices(_("New owner…"))
        if user is not None:
            # Rendering for a user: offer only the actions their role holds (the view checks again).
            needs = {self.TRANSFER: "customers.transfer_customer", self.DELETE: "customers.delete_customer"}
            self.fields["action"].choices = [
                (value, label) for value, label in self.ACTIONS if value not in needs or user.has_perm(needs[value])
            ]

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action")
        if action == self.TAG:
            cleaned["tag"] = Tag.objects.filter(pk=cleaned.get("tag") or 0).first()
            if cleaned["tag"] is None:
                self.add_error("tag", _("Choose the tag to add."))
        if action == self.TRANSFER:
            cleaned["owner"] = eligible_owners().filter(pk=cleaned.get("owner") or 0).first()
            if cleaned["owner"] is None:
                self.add_error("owner", _("Choose the new owner."))
        return cleaned


class TransferForm(forms.Form):
    owner = UserChoiceField(label=_("New owner"), queryset=User.objects.none())
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=100,
        help_text=_("Recorded in the customer's history, e.g. “rep left the company”."),
    )

    def __init__(self, *args, exclude_owner_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        owners = eligible_owners()
        if exclude_owner_id:
            owners = owners.exclude(pk=exclude_owner_id)
        self.fields["owner"].queryset = owners


class ShareForm(forms.Form):
    READ, EDIT = "read", "edit"

    user = UserChoiceField(
        label=_("Colleague"), queryset=User.objects.none(), required=False, empty_label=_("Choose a colleague…")
    )
    group = GroupChoiceField(
        label=_("Or a department group"),
        queryset=Group.objects.none(),
        required=False,
        empty_label=_("Choose a group…"),
        help_text=_("Everyone in the group sees the customer."),
    )
    access = forms.ChoiceField(
        label=_("Access"),
        choices=[(READ, _("Read only")), (EDIT, _("May edit"))],
        initial=READ,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, customer: Customer, by: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            _perm_holders("view_customer").exclude(pk=by.pk).exclude(pk=customer.owner_id or 0)
        )
        # Role groups see every customer already (or must not see any): share with the others.
        self.fields["group"].queryset = Group.objects.exclude(name__in=roles.ROLES).order_by("name")

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("user")) == bool(cleaned.get("group")):
            raise ValidationError(_("Choose either a colleague or a group."), code="one_target")
        return cleaned


class UnshareForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.all(), required=False, widget=forms.HiddenInput)
    group = forms.ModelChoiceField(queryset=Group.objects.all(), required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("user")) == bool(cleaned.get("group")):
            raise ValidationError(_("Choose either a colleague or a group."), code="one_target")
        return cleaned


class CursorForm(forms.Form):
    """The keyset cursors of a list page: opaque text, decoded (or ignored) by the paginator."""

    after = forms.CharField(required=False, max_length=CURSOR_MAX)
    before = forms.CharField(required=False, max_length=CURSOR_MAX)

    def cursors(self) -> tuple[str, str]:
        if not self.is_valid():
            return "", ""
        return self.cleaned_data["after"], self.cleaned_data["before"]


class RecycleBinFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


class PhonebookFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


__all__ = [
    "MAX_BULK",
    "SORTS",
    "BulkActionForm",
    "CursorForm",
    "CustomerFilterForm",
    "PhonebookFilterForm",
    "RecycleBinFilterForm",
    "ShareForm",
    "TransferForm",
    "UnshareForm",
    "ListChoices",
    "eligible_owners",
    "group_label",
]
