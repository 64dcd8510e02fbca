"""Forms of the customer archive's write side: customers with their contacts, transactions,
contracts and the lookups of the system settings (系统设置).

Every value a person types is normalised here (cims.normalize): phones to E.164, e-mails
lower-cased, full-width characters folded, ID card numbers checked, so that what is stored,
blind-indexed and compared for duplicates is always the canonical form.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from cims.forms import IdsChoiceField
from cims.normalize import (
    fold_width,
    normalize_bank_account,
    normalize_email,
    normalize_id_number,
    normalize_phone,
)
from customers.access import REVEALABLE_FIELDS, SENSITIVE_FIELDS, sees_personal_data
from customers.models import (
    Contact,
    Contract,
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    CustomField,
    EnterpriseNature,
    EnterpriseType,
    Industry,
    Tag,
    Transaction,
)

DATE_WIDGET = {"type": "date"}
CUSTOM_PREFIX = "cf_"
# The fields of the customer form that the duplicate check looks at as the user types.
DUPLICATE_FIELDS = ("name", "company", "phone", "mobile", "email", "id_number")
ENTERPRISE_FIELDS = ("enterprise_type", "enterprise_nature", "scale")
MAX_CONTACT_ROWS = 50


def _label(model, name: str) -> str:
    return capfirst(model._meta.get_field(name).verbose_name)


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs=DATE_WIDGET, format="%Y-%m-%d")


def _text(model, name: str, max_length: int, **attrs) -> forms.CharField:
    """A one-line input for an encrypted (TextField) column, with a length limit the column lacks."""
    return forms.CharField(
        label=_label(model, name),
        required=False,
        max_length=max_length,
        widget=forms.TextInput(attrs={"autocomplete": "off", **attrs}),
    )


class ProtectedFieldsMixin:
    """Personal fields the user may only see masked are never sent to the browser in plain text.

    Such a field starts empty with the masked value as placeholder; left empty it keeps the stored
    value, and a "remove" checkbox clears it. ID card number and bank account are masked for
    everyone, so they always work this way on an existing record.
    """

    protected: tuple[str, ...] = ()

    def protect(self, user, names) -> None:
        instance = self.instance
        if instance.pk is None:
            return
        from customers.access import PERSONAL_FIELDS

        plain = sees_personal_data(user)
        protected = []
        for name in names:
            if name not in self.fields or name not in REVEALABLE_FIELDS:
                continue
            stored = getattr(instance, name) or ""
            if name in PERSONAL_FIELDS and plain:
                continue
            self.initial.pop(name, None)
            if not stored:
                continue
            protected.append(name)
            mask = PERSONAL_FIELDS.get(name) or SENSITIVE_FIELDS[name]
            field = self.fields[name]
            field.widget.attrs["placeholder"] = mask(stored)
            field.help_text = _("Stored and shown masked. Leave empty to keep it, or type a new value.")
            self.fields[f"clear_{name}"] = forms.BooleanField(
                label=_("Remove the stored value"), required=False, initial=False
            )
        self.protected = tuple(protected)

    def restore_protected(self, cleaned_data: dict) -> None:
        for name in self.protected:
            if cleaned_data.get(f"clear_{name}"):
                cleaned_data[name] = ""
            elif not cleaned_data.get(name) and name not in self.errors:
                cleaned_data[name] = getattr(self.instance, name) or ""

    def _post_clean(self) -> None:
        super()._post_clean()
        # construct_instance skips a field the browser left out of the POST; a "remove" must not be.
        for name in self.protected:
            if name in self.cleaned_data:
                setattr(self.instance, name, self.cleaned_data[name])


class CustomerForm(ProtectedFieldsMixin, forms.ModelForm):
    """A customer, with the administrator-defined custom fields added as ``cf_<key>`` fields."""

    name = forms.CharField(label=_label(Customer, "name"), max_length=128)
    phone = _text(Customer, "phone", 32, inputmode="tel")
    mobile = _text(Customer, "mobile", 32, inputmode="tel")
    email = _text(Customer, "email", 254, inputmode="email")
    id_number = _text(Customer, "id_number", 32)
    bank_account = _text(Customer, "bank_account", 40, inputmode="numeric")
    address = _text(Customer, "address", 200)
    save_anyway = forms.BooleanField(
        label=_("Save anyway: this is a different customer"), required=False, initial=False
    )

    class Meta:
        model = Customer
        fields = [
            "kind",
            "name",
            "company",
            "gender",
            "birth_date",
            "phone",
            "mobile",
            "fax",
            "email",
            "id_number",
            "bank_account",
            "province",
            "city",
            "address",
            "level",
            "source",
            "customer_type",
            "industry",
            "status",
            "owner",
            "tags",
            "notes",
            "is_employee",
            "enterprise_type",
            "enterprise_nature",
            "scale",
        ]
        field_classes = {"tags": IdsChoiceField}
        widgets = {
            "kind": forms.RadioSelect,
            "birth_date": _date_input(),
            "tags": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, custom_fields=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        instance = self.instance
        self.original = {name: getattr(instance, name) for name in (*DUPLICATE_FIELDS, "owner_id")}

        self.fields["fax"].widget.attrs["inputmode"] = "tel"
        self.fields["company"].help_text = _("For an individual: their employer. For an enterprise: leave empty.")
        self.fields["birth_date"].help_text = _("Filled in from the ID card number when left empty.")
        self.fields["tags"].queryset = Tag.objects.all()
        for name, model in (
            ("province", None),
            ("level", CustomerLevel),
            ("source", CustomerSource),
            ("customer_type", CustomerType),
            ("industry", Industry),
            ("enterprise_type", EnterpriseType),
            ("enterprise_nature", EnterpriseNature),
        ):
            if model is not None:
                # Deactivated entries are not offered, but a record keeps the one it already has.
                current = getattr(instance, f"{name}_id")
                self.fields[name].queryset = model.objects.filter(Q(is_active=True) | Q(pk=current))

        # Choosing the owner of a new customer needs change_all_customers; changing it later is a
        # transfer and needs transfer_customer too.
        may_choose_owner = user.has_perm("customers.change_all_customers") and (
            instance.pk is None or user.has_perm("customers.transfer_customer")
        )
        if may_choose_owner:
            owner = self.fields["owner"]
            owner.queryset = owner_choices()
            owner.help_text = _("Leave empty to own the customer yourself.")
            if instance.pk is None:
                owner.initial = user.pk
        else:
            # Sales reps own what they create; moving a customer is a manager's transfer.
            del self.fields["owner"]

        if instance.pk is not None:
            # The status of an existing customer moves along the lifecycle flow only
            # (customers.lifecycle); the edit saves a change through customer_change_status. Losing a
            # customer needs a reason, which the status page asks for.
            from customers import lifecycle

            reachable = {value for value, _label in lifecycle.choices_for(instance.status)} - lifecycle.REASON_REQUIRED
            self.fields["status"].choices = [
                (value, label)
                for value, label in Customer.Status.choices
                if value == instance.status or value in reachable
            ]
            self.fields["status"].help_text = _("To mark the customer lost, use “Change status”: it asks for a reason.")

        # Warn about duplicates while the user types (htmx; no script of our own).
        check_url = reverse("customers:duplicate_check")
        if instance.pk:
            check_url += f"?customer={instance.pk}"
        include = ",".join(f"[name='{name}']" for name in DUPLICATE_FIELDS)
        for name in DUPLICATE_FIELDS:
            self.fields[name].widget.attrs.update(
                {
                    "hx-get": check_url,
                    "hx-trigger": "change",
                    "hx-target": "#duplicate-live",
                    "hx-include": include,
                    "hx-swap": "innerHTML",
                }
            )

        self.custom_fields = list(custom_fields if custom_fields is not None else active_custom_fields())
        stored = instance.custom_data or {}
        for definition in self.custom_fields:
            field = custom_form_field(definition)
            name = CUSTOM_PREFIX + definition.key
            self.fields[name] = field
            if definition.key in stored and name not in self.initial:
                self.initial[name] = _custom_initial(definition, stored[definition.key])

        self.protect(user, REVEALABLE_FIELDS)

    # --- what the template lays out ---------------------------------------------------------

    def custom_bound_fields(self):
        return [self[CUSTOM_PREFIX + definition.key] for definition in self.custom_fields]

    @property
    def is_enterprise(self) -> bool:
        return self["kind"].value() == Customer.ENTERPRISE

    # --- normalisation ------------------------------------------------------------------------

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])

    def clean_company(self) -> str:
        return fold_width(self.cleaned_data["company"])

    def clean_city(self) -> str:
        return fold_width(self.cleaned_data["city"])

    def clean_address(self) -> str:
        return fold_width(self.cleaned_data["address"])

    def clean_phone(self) -> str:
        return normalize_phone(self.cleaned_data["phone"])

    def clean_mobile(self) -> str:
        return normalize_phone(self.cleaned_data["mobile"])

    def clean_fax(self) -> str:
        return normalize_phone(self.cleaned_data["fax"])

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_id_number(self) -> str:
        return normalize_id_number(self.cleaned_data["id_number"])

    def clean_bank_account(self) -> str:
        return normalize_bank_account(self.cleaned_data["bank_account"])

    def clean_birth_date(self) -> datetime.date | None:
        value = self.cleaned_data["birth_date"]
        if value and value > timezone.localdate():
            raise ValidationError(_("The birth date cannot be in the future."), code="future")
        if value and value.year < 1900:
            raise ValidationError(_("Enter a birth date after 1900."), code="too_old")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        self.restore_protected(cleaned)
        if cleaned.get("kind") != Customer.ENTERPRISE:
            # Hidden for individuals: whatever the browser still sent is not kept.
            cleaned["enterprise_type"] = None
            cleaned["enterprise_nature"] = None
            cleaned["scale"] = ""
        id_number = cleaned.get("id_number")
        if id_number and "id_number" not in self.errors and "birth_date" not in self.errors:
            from_id = datetime.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
            changed = id_number != self.instance.id_number or cleaned.get("birth_date") != self.instance.birth_date
            if cleaned.get("birth_date") is None:
                cleaned["birth_date"] = from_id
            elif changed and cleaned["birth_date"] != from_id:
                self.add_error("birth_date", _("The birth date does not match the one inside the ID card number."))
        return cleaned

    def custom_data(self) -> dict:
        """Custom values as JSON: dates as ISO strings, numbers as strings; empty ones left out.
        Values of fields the administrator has since deactivated are kept as they were."""
        data = dict(self.instance.custom_data or {})
        for definition in self.custom_fields:
            value = self.cleaned_data.get(CUSTOM_PREFIX + definition.key)
            if value in (None, ""):
                data.pop(definition.key, None)
            elif isinstance(value, datetime.date):
                data[definition.key] = value.isoformat()
            elif isinstance(value, Decimal):
                data[definition.key] = str(value)
            else:
                data[definition.key] = value
        return data

    def duplicate_values(self) -> dict[str, str]:
        """The normalised values to look for duplicates of: all on a new customer, only those that
        changed on an existing one (a duplicate accepted earlier is not announced on every edit)."""
        values = {name: self.cleaned_data.get(name) or "" for name in DUPLICATE_FIELDS}
        if self.instance.pk is None:
            return values
        changed = {name: value for name, value in values.items() if value != (self.original.get(name) or "")}
        if "name" in changed or "company" in changed:
            changed["name"], changed["company"] = values["name"], values["company"]
        return changed

    def save(self, commit: bool = True) -> Customer:
        self.instance.custom_data = self.custom_data()
        return super().save(commit=commit)


def owner_choices():
    """Active users who may own customers: holders of customers.change_customer."""
    user_model = get_user_model()
    holders = (
        Q(groups__permissions__codename="change_customer", groups__permissions__content_type__app_label="customers")
        | Q(user_permissions__codename="change_customer", user_permissions__content_type__app_label="customers")
        | Q(is_superuser=True)
    )
    return user_model.objects.filter(holders, is_active=True).distinct().order_by("name", "username")


def active_custom_fields():
    return CustomField.objects.filter(is_active=True).order_by("sort_order", "label")


def custom_form_field(definition: CustomField) -> forms.Field:
    common = {"label": definition.label, "required": definition.required}
    if definition.field_type == CustomField.NUMBER:
        return forms.DecimalField(max_digits=18, decimal_places=4, **common)
    if definition.field_type == CustomField.DATE:
        return forms.DateField(widget=_date_input(), **common)
    if definition.field_type == CustomField.CHOICE:
        options = [(option, option) for option in definition.choice_list]
        return forms.ChoiceField(choices=[("", "---------"), *options], **common)
    return forms.CharField(max_length=200, **common)


def _custom_initial(definition: CustomField, value):
    if definition.field_type == CustomField.DATE and isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return value


# --- Contacts (联系人), entered as several rows at once -----------------------------------------


class ContactForm(ProtectedFieldsMixin, forms.ModelForm):
    name = forms.CharField(label=_label(Contact, "name"), max_length=64)
    phone = _text(Contact, "phone", 32, inputmode="tel")
    email = _text(Contact, "email", 254, inputmode="email")

    class Meta:
        model = Contact
        fields = ["name", "title", "phone", "email", "is_primary"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:
            self.protect(user, ("phone", "email"))

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])

    def clean_title(self) -> str:
        return fold_width(self.cleaned_data["title"])

    def clean_phone(self) -> str:
        return normalize_phone(self.cleaned_data["phone"])

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict:
        cleaned = super().clean()
        self.restore_protected(cleaned)
        return cleaned


class BaseContactFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        primaries = 0
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data or self._should_delete_form(form):
                continue
            if form.cleaned_data.get("is_primary"):
                primaries += 1
        if primaries > 1:
            raise ValidationError(_("Only one contact can be the primary contact."), code="primaries")


def contact_formset_class(*, extra: int):
    return forms.inlineformset_factory(
        Customer,
        Contact,
        form=ContactForm,
        formset=BaseContactFormSet,
        extra=extra,
        can_delete=True,
        max_num=MAX_CONTACT_ROWS,
        absolute_max=MAX_CONTACT_ROWS,
        validate_max=True,
    )


class DuplicateCheckForm(forms.Form):
    """The fields typed so far, for the live duplicate warning. Values that do not normalise are
    skipped: the customer form itself reports them."""

    name = forms.CharField(required=False, max_length=128)
    company = forms.CharField(required=False, max_length=128)
    phone = forms.CharField(required=False, max_length=32)
    mobile = forms.CharField(required=False, max_length=32)
    email = forms.CharField(required=False, max_length=254)
    id_number = forms.CharField(required=False, max_length=32)
    customer = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def values(self) -> dict[str, str]:
        normalizers = {
            "name": fold_width,
            "company": fold_width,
            "phone": normalize_phone,
            "mobile": normalize_phone,
            "email": normalize_email,
            "id_number": normalize_id_number,
        }
        values = {}
        for name, normalize in normalizers.items():
            try:
                values[name] = normalize(self.cleaned_data.get(name) or "")
            except ValidationError:
                values[name] = ""
        return values


# --- Transactions and contracts --------------------------------------------------------------


class TransactionForm(forms.ModelForm):
    """Date, channel and, for a transaction without product lines, what was bought and the amount.

    ``with_lines``: the transaction has product lines (customers.forms_product); its amount and
    description then come from the lines (customers.products.transaction_record) and are not asked.
    """

    class Meta:
        model = Transaction
        fields = ["date", "amount", "product", "channel"]
        widgets = {"date": _date_input(), "amount": forms.NumberInput(attrs={"step": "0.01", "min": "0.01"})}

    def __init__(self, *args, with_lines: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.with_lines = with_lines
        self.fields["amount"].help_text = _("In yuan (CNY), e.g. 1280.00; a refund is negative, e.g. -300.00.")
        for name in ("amount", "product"):
            # Needed only without product lines: checked in clean(), not marked as always required.
            self.fields[name].required = False
            if with_lines:
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Calculated from the product lines.")

    def clean(self) -> dict:
        cleaned = super().clean()
        if not self.with_lines:
            for name in ("amount", "product"):
                if name not in self.errors and cleaned.get(name) in (None, ""):
                    self.add_error(name, ValidationError(self.fields[name].error_messages["required"], code="required"))
        return cleaned

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount is not None and amount == 0 and not self.with_lines:
            raise ValidationError(_("The amount cannot be zero (a refund is a negative amount)."), code="zero")
        return amount

    def clean_product(self) -> str:
        return fold_width(self.cleaned_data["product"] or "")


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ["number", "title", "amount", "start_date", "end_date", "status"]
        widgets = {
            "start_date": _date_input(),
            "end_date": _date_input(),
            "amount": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["number"].help_text = _("Leave empty to number it automatically (HT2026-000001).")
        self.fields["amount"].help_text = _("In yuan (CNY); 0 for a framework agreement without an amount.")

    def clean_number(self) -> str:
        number = fold_width(self.cleaned_data["number"]).upper()
        if not number and self.instance.pk:
            return self.instance.number  # emptied by mistake: a contract keeps its number
        return number

    def clean_title(self) -> str:
        return fold_width(self.cleaned_data["title"])

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount is not None and amount < 0:
            raise ValidationError(_("The amount cannot be negative."), code="negative")
        return amount

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date cannot be before the start date."))
        return cleaned


# --- System settings (系统设置) -----------------------------------------------------------------


class LookupForm(forms.ModelForm):
    """Enterprise types, natures, levels, sources, customer types, industries."""

    class Meta:
        fields = ["name", "sort_order", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["is_active"].help_text = _(
            "Entries are never deleted: an entry no longer in use is not offered for new records, "
            "and records that have it keep it."
        )

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["name", "color"]
        widgets = {"color": forms.TextInput(attrs={"type": "color", "class": "form-control-color"})}

    def clean_name(self) -> str:
        return fold_width(self.cleaned_data["name"])

    def clean_color(self) -> str:
        return (self.cleaned_data["color"] or "").lower()


class CustomFieldForm(forms.ModelForm):
    class Meta:
        model = CustomField
        fields = ["label", "key", "field_type", "required", "choices", "sort_order", "is_active"]
        widgets = {"choices": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Stored values, imports and exports refer to the key: it never changes.
            self.fields["key"].disabled = True
            self.fields["key"].help_text = _("The key cannot be changed once the field exists.")
        self.fields["is_active"].help_text = _(
            "A field no longer in use disappears from the form; values already stored are kept."
        )

    def clean_label(self) -> str:
        return fold_width(self.cleaned_data["label"])

    def clean_key(self) -> str:
        if self.instance.pk:
            return self.instance.key
        # The model's clean() then checks the shape (a lower-case letter first, then a-z, 0-9, _).
        return fold_width(self.cleaned_data["key"]).lower()

    def clean_choices(self) -> str:
        lines = [fold_width(line) for line in self.cleaned_data["choices"].splitlines()]
        # One option per line, blank lines and repeats dropped; the model's clean() then requires
        # at least one option for a choice field.
        return "\n".join(dict.fromkeys(line for line in lines if line))
