"""Serializers of the customers API: JSON in and out, every write validated by the UI's own form.

A write binds the form the UI uses (CustomerForm, ContactForm, LookupForm, TagForm), so phone,
e-mail and ID normalisation, birth-date checks, "lookup must be in use" and the rest are the UI's;
the serializer only checks JSON types, refuses by name what this account may not set
(StrictFieldsMixin) and turns the form's errors into per-field codes. The save goes through the
UI's own save path (customers.editing._save_customer, customers.services.customer_save).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.settings import api_settings

from cims.api.errors import Conflict, form_errors
from cims.api.views import MaskedFieldsField, PersonalDataMixin, StrictFieldsMixin
from cims.forms import PK_MAX
from customers.access import REVEALABLE_FIELDS, get_customer_for
from customers.editing import _duplicate_matches, _save_customer
from customers.forms import CUSTOM_PREFIX, ContactForm, CustomerForm, active_custom_fields
from customers.models import Contact, Customer, Province
from customers.services import StatusChangeError, TransferError, contact_save

# The customer fields the form edits (CustomerForm.Meta.fields), in the order the API shows them.
CUSTOMER_FORM_FIELDS = tuple(CustomerForm.Meta.fields)


# --- JSON types -------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_error(field: serializers.Field, value) -> str | None:
    """What is wrong with the JSON type of ``value`` for ``field`` (None: nothing). ``null`` is
    accepted everywhere: it means empty, and the form says whether empty is allowed."""
    if value is None:
        return None
    if isinstance(field, serializers.ManyRelatedField):
        if not isinstance(value, list) or not all(_is_int(item) for item in value):
            return _("Expected a list of ids.")
    elif isinstance(field, serializers.RelatedField | serializers.IntegerField):
        if not _is_int(value):
            return _("Expected an id (a whole number).")
    elif isinstance(field, serializers.BooleanField):
        if not isinstance(value, bool):
            return _("Expected true or false.")
    elif isinstance(field, serializers.JSONField | serializers.DictField):
        if not isinstance(value, dict):
            return _("Expected an object.")
    elif not isinstance(value, str):
        return _("Expected a string.")
    return None


def check_types(fields: Mapping[str, serializers.Field], data: Mapping) -> None:
    errors = {}
    for name, value in data.items():
        field = fields.get(name)
        message = _type_error(field, value) if field is not None else None
        if message:
            errors[name] = [ErrorDetail(message, code="invalid_type")]
    if errors:
        raise ValidationError(errors)


class _FormValidation:
    """``to_internal_value`` through a Django form; StrictFieldsMixin (before it in the MRO) has
    already refused the fields this account may not set."""

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(_("Expected a JSON object."), code="invalid")]}
            )
        check_types(self.fields, data)
        self.form = self.bind_form(data)
        if not self.form.is_valid():
            raise self.form_errors(self.form)
        return dict(self.form.cleaned_data)

    def bind_form(self, data: Mapping):
        raise NotImplementedError

    def form_errors(self, form) -> ValidationError:
        return form_errors(form)

    def form_values(self, form, data: Mapping) -> dict:
        """What to bind the form with, then what was sent on top: for PATCH the record's current
        values; for a create the form's initial ones (the defaults the UI's empty form shows)."""
        values = {}
        if self.partial or self.instance is None:
            values = {name: form[name].value() for name in form.fields}
        for name, value in data.items():
            if name in form.fields:
                values[name] = (
                    [] if value is None and isinstance(self.fields.get(name), serializers.ManyRelatedField) else value
                )
        return values

    @property
    def request_user(self):
        return self.context["request"].user


class FormSerializer(StrictFieldsMixin, _FormValidation, serializers.ModelSerializer):
    """A model serializer whose writes are validated by the UI's form (``bind_form``)."""


# --- Customers ---------------------------------------------------------------------------------


class PossibleDuplicate(Conflict):
    """409 ``possible_duplicate``: the UI's "this looks like an existing customer" question. The
    viewset adds the matches the account may see to the error body (cims.api.errors keeps only a
    message)."""

    default_code = "possible_duplicate"

    def __init__(self, *, matches: list[dict], hidden: int):
        super().__init__(
            _("This looks like an existing customer. Send “save_anyway”: true if it is a different one."),
            code="possible_duplicate",
        )
        self.matches = matches
        self.hidden = hidden


class _NoContacts:
    """The UI saves contacts with the customer; in the API they have their own endpoint."""

    deleted_objects = ()

    def save(self, commit: bool = True) -> list:
        return []


def may_choose_owner(user, customer) -> bool:
    """CustomerForm's rule for its ``owner`` field (it deletes the field otherwise)."""
    creating = getattr(customer, "pk", None) is None
    return user.has_perm("customers.change_all_customers") and (
        creating or user.has_perm("customers.transfer_customer")
    )


class CustomerSerializer(PersonalDataMixin, FormSerializer):
    """A customer. Personal fields are masked unless the account may see them (``masked_fields``
    names them); the ID card number and bank account are masked for everyone. ``owner`` may be set
    by accounts that edit every customer (and, on an existing customer, may transfer it)."""

    personal_fields = tuple(REVEALABLE_FIELDS)

    masked_fields = MaskedFieldsField(help_text="Personal fields shown masked to this account.")
    custom_data = serializers.DictField(
        required=False, help_text="Values of the custom fields in use, by key; validated like the form's."
    )
    save_anyway = serializers.BooleanField(
        write_only=True,
        required=False,
        help_text="Create or save although the customer looks like an existing one (else 409 possible_duplicate).",
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            *CUSTOMER_FORM_FIELDS,
            "custom_data",
            "created_at",
            "updated_at",
            "masked_fields",
            "save_anyway",
        ]
        read_only_fields = ["code", "created_at", "updated_at"]
        extra_kwargs = {
            "id_number": {"help_text": "Always shown masked; send a new value to replace it, null to remove it."},
            "bank_account": {"help_text": "Always shown masked; send a new value to replace it, null to remove it."},
        }
        validators = []  # the form validates; the code is generated

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        documenting = getattr(self.context.get("view"), "swagger_fake_view", False)
        if request is not None and not documenting and not may_choose_owner(request.user, self.instance):
            # Sales reps own what they create; moving a customer is a manager's transfer.
            fields["owner"] = serializers.PrimaryKeyRelatedField(read_only=True)
        return fields

    def bind_form(self, data: Mapping) -> CustomerForm:
        user = self.request_user
        instance = self.instance if self.instance is not None else Customer()
        custom = list(active_custom_fields())
        current = CustomerForm(instance=instance, user=user, custom_fields=custom)
        sent = dict(data)
        custom_sent = sent.pop("custom_data", None) or {}
        self._check_custom(custom_sent, {definition.key for definition in custom})
        for key, value in custom_sent.items():
            sent[CUSTOM_PREFIX + key] = value
        values = self.form_values(current, sent)
        for name in current.protected:
            # Stored values the account sees masked: the masked text sent back (a GET then a PUT)
            # keeps the value, null or "" removes it, anything else replaces it.
            if name not in sent:
                values[name] = ""
                continue
            value = sent[name]
            if value in (None, ""):
                values[name], values[f"clear_{name}"] = "", True
            elif value == REVEALABLE_FIELDS[name](getattr(instance, name) or ""):
                values[name] = ""
        if instance.pk is not None and "owner" in current.fields and sent.get("owner") is None:
            # A customer keeps its owner unless one is named: an owner is changed by a transfer.
            values["owner"] = instance.owner_id
        return CustomerForm(values, instance=instance, user=user, custom_fields=custom)

    @staticmethod
    def _check_custom(custom_sent: Mapping, keys: set[str]) -> None:
        errors = {}
        for key, value in custom_sent.items():
            if key not in keys:
                message = _("There is no custom field with this key in use.")
                errors[str(key)] = [ErrorDetail(message, code="field_not_allowed")]
            elif value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
                errors[str(key)] = [ErrorDetail(_("Expected a string or a number."), code="invalid_type")]
        if errors:
            raise ValidationError({"custom_data": errors})

    def form_errors(self, form) -> ValidationError:
        error = form_errors(form)
        detail = {}
        for name, errors in error.detail.items():
            if name.startswith(CUSTOM_PREFIX):
                detail.setdefault("custom_data", {})[name[len(CUSTOM_PREFIX) :]] = errors
            else:
                detail[name] = errors
        return ValidationError(detail)

    def create(self, validated_data) -> Customer:
        return self._save(creating=True)

    def update(self, instance, validated_data) -> Customer:
        return self._save(creating=False)

    def _save(self, *, creating: bool) -> Customer:
        form, request = self.form, self.context["request"]
        found = _duplicate_matches(request.user, form.duplicate_values(), None if creating else form.instance.pk)
        if (found["matches"] or found["hidden"]) and not form.cleaned_data.get("save_anyway"):
            matches = [
                {"id": match.customer.pk, "code": match.customer.code, "reasons": [str(r) for r in match.reasons]}
                for match in found["matches"]
            ]
            raise PossibleDuplicate(matches=matches, hidden=found["hidden"])
        try:
            return _save_customer(request, form, _NoContacts(), creating)
        except StatusChangeError as error:  # the status changed meanwhile (another user)
            raise ValidationError({"status": [ErrorDetail(str(error), code="status_change")]}) from None
        except TransferError:
            message = _("The new owner must be an active user who may edit customers.")
            raise ValidationError({"owner": [ErrorDetail(message, code="transfer_refused")]}) from None


# --- Contacts -----------------------------------------------------------------------------------


class ContactSerializer(PersonalDataMixin, FormSerializer):
    """A contact person of a customer; phone and e-mail masked unless the account may see them."""

    personal_fields = ("phone", "email")

    masked_fields = MaskedFieldsField(help_text="Personal fields shown masked to this account.")

    class Meta:
        model = Contact
        fields = ["id", "customer", "name", "title", "phone", "email", "is_primary", "created_at", "masked_fields"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"customer": {"help_text": "Set when the contact is created; a customer you may edit."}}
        validators = []

    def get_fields(self):
        fields = super().get_fields()
        if getattr(self.instance, "pk", None) is not None:
            fields["customer"] = serializers.PrimaryKeyRelatedField(read_only=True)  # a contact never moves
        return fields

    def bind_form(self, data: Mapping) -> ContactForm:
        user = self.request_user
        if self.instance is not None:
            instance = self.instance
            self.customer = get_customer_for(user, instance.customer_id, edit=True)
        else:
            customer_id = data.get("customer")
            if customer_id is None:
                message = _("This field is required.")
                raise ValidationError({"customer": [ErrorDetail(message, code="required")]})
            if not 1 <= customer_id <= PK_MAX:
                raise Http404("no such customer")
            # Another rep's customer is not found; a customer shared read-only is a 403.
            self.customer = get_customer_for(user, customer_id, edit=True)
            instance = Contact(customer=self.customer)
        current = ContactForm(instance=instance, user=user)
        values = self.form_values(current, data)
        for name in current.protected:
            if name not in data:
                values[name] = ""
            elif data[name] in (None, ""):
                values[name], values[f"clear_{name}"] = "", True
            elif data[name] == REVEALABLE_FIELDS[name](getattr(instance, name) or ""):
                values[name] = ""
        return ContactForm(values, instance=instance, user=user)

    def create(self, validated_data) -> Contact:
        return self._save()

    def update(self, instance, validated_data) -> Contact:
        return self._save()

    def _save(self) -> Contact:
        # One primary contact per customer, as the UI's save keeps it; the customer itself is not saved.
        return contact_save(contact=self.form.save(commit=False), by=self.request_user)


# --- Lookups ------------------------------------------------------------------------------------


class LookupSerializerBase(FormSerializer):
    """Levels, sources, … and tags, written through the settings pages' form (``form_class``)."""

    form_class = None

    def bind_form(self, data: Mapping):
        instance = self.instance if self.instance is not None else self.Meta.model()
        current = self.form_class(instance=instance)
        return self.form_class(self.form_values(current, data), instance=instance)

    def create(self, validated_data):
        return self._save()

    def update(self, instance, validated_data):
        return self._save()

    def _save(self):
        with transaction.atomic():
            return self.form.save()


def lookup_serializer(model, form_class, fields: list[str]) -> type[LookupSerializerBase]:
    meta = type("Meta", (), {"model": model, "fields": ["id", *fields], "validators": []})
    return type(f"{model.__name__}Serializer", (LookupSerializerBase,), {"Meta": meta, "form_class": form_class})


class ProvinceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Province
        fields = ["id", "code", "name", "short_name"]
        read_only_fields = fields
