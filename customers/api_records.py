"""The REST API of a customer's transactions (交易记录) and contracts (合同), registered on /api/v1/.

The same rules as customers.editing: a record is reached through its customer's scope
(``Customer.objects.visible_to``: another rep's customer's record is a 404), written only by someone
who may edit that customer (403 otherwise), validated by the UI's TransactionForm / ContractForm and
saved as the UI saves it (a transaction through customers.products.transaction_record, a contract
numbered automatically when no number is given).

Product lines of a transaction are shown read-only; a transaction that has them keeps them on an
edit (its amount and description come from the lines and cannot be sent). Writing lines through the
API is not offered yet: the UI's line formset is the only way to add them.

The helpers at the top (``query_filters``, ``CustomerRecordViewSet``)
are shared with the follow-up and complaint APIs.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from cims.api.errors import run_form
from cims.api.views import CimsSerializer, CimsViewSet
from cims.forms import PK_MAX, FilterDateField
from customers.access import can_edit, get_customer_for
from customers.forms import ContractForm, TransactionForm
from customers.models import Contract, Customer, Transaction, TransactionLine
from customers.products import transaction_lines, transaction_record

# --- Shared by the record APIs (customers, follow-ups, complaints) -------------------------------


# Query parameters every list takes besides its filters (cims.api.pagination).
PAGING_PARAMETERS = frozenset({"after", "before", "page_size", "format"})


def query_filters(form: forms.Form) -> dict:
    """A list's query-string filters, parsed by a form: a bad value is a 400 naming the parameter,
    never a silently wider (or narrower) list. So is a filter the form does not offer this account
    (a sales rep's ``rep=``, as the UI hides it) or does not have at all (a typo)."""
    refused = sorted(set(form.data) - set(form.fields) - PAGING_PARAMETERS)
    if refused:
        message = _("This filter does not exist or is not available to this account.")
        raise serializers.ValidationError({name: [ErrorDetail(message, code="field_not_allowed")] for name in refused})
    return run_form(form)


def current_values(instance, names) -> dict:
    """What the UI's form starts from for ``instance``: a saved record's values (a PATCH changes some
    of them), a new one's model defaults (a field left out takes the default the form offers)."""
    return model_to_dict(instance, fields=list(names)) if instance is not None else {}


def id_param(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, required=False, description=description)


class CustomerField(serializers.IntegerField):
    """A customer id in a request, resolved by the view through ``get_customer_for`` (404 outside the
    user's scope) rather than looked up here, where "does not exist" would tell a hidden id from a
    missing one."""

    def __init__(self, **kwargs):
        kwargs.setdefault("source", "customer_id")
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", PK_MAX)
        super().__init__(**kwargs)


class CustomerRecordViewSet(CimsViewSet):
    """A record that belongs to a customer: reached through the customer's scope, and changed only by
    someone who may edit the customer (the UI's ``get_customer_for(user, pk, edit=True)``)."""

    write_actions: tuple[str, ...] = ("update", "partial_update")

    def get_object(self):
        obj = super().get_object()
        if self.action in self.write_actions and not self.may_write(obj):
            raise PermissionDenied("read-only record")
        return obj

    def may_write(self, obj) -> bool:
        return can_edit(self.request.user, obj.customer)

    def get_serializer_context(self):
        return super().get_serializer_context() | {"user": self.request.user}


class RecordFilterForm(forms.Form):
    """The list filters of transactions and contracts (as their exports take them)."""

    customer = forms.IntegerField(required=False, min_value=1, max_value=PK_MAX)
    date_from = FilterDateField()
    date_to = FilterDateField()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class ContractFilterForm(RecordFilterForm):
    status = forms.ChoiceField(required=False, choices=[("", ""), *Contract.Status.choices])


def _filtered(queryset, data: dict, *, date_field: str):
    if data.get("customer"):
        queryset = queryset.filter(customer_id=data["customer"])
    if data.get("date_from"):
        queryset = queryset.filter(**{f"{date_field}__gte": data["date_from"]})
    if data.get("date_to"):
        queryset = queryset.filter(**{f"{date_field}__lte": data["date_to"]})
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    return queryset


def visible_records(model, user):
    """``model``'s rows of the customers ``user`` may see (as the exports scope them)."""
    return model.objects.filter(customer__in=Customer.objects.visible_to(user).values("pk"))


# --- Transactions --------------------------------------------------------------------------------


class TransactionLineSerializer(serializers.ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    line_total = serializers.DecimalField(max_digits=28, decimal_places=2, read_only=True)

    class Meta:
        model = TransactionLine
        fields = ["id", "product", "product_code", "product_name", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


class CustomerBoundMixin:
    """A record of one customer: chosen on create among the customers this account may edit
    (404 out of reach, 403 read-only), never moved to another afterwards."""

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, self.Meta.model):
            fields["customer"] = serializers.IntegerField(source="customer_id", read_only=True)
        return fields

    def record_for(self, attrs):
        """The record being written: the instance, or a new one of the customer named in ``attrs``."""
        if self.instance is not None:
            return self.instance
        return self.Meta.model(customer=get_customer_for(self.context["user"], attrs["customer_id"], edit=True))


class TransactionSerializer(CustomerBoundMixin, CimsSerializer):
    customer = CustomerField(help_text=gettext_lazy("The customer's id; set when the transaction is recorded."))
    customer_code = serializers.CharField(source="customer.code", read_only=True)
    lines = TransactionLineSerializer(many=True, read_only=True)

    class Meta:
        model = Transaction
        fields = [
            "id",
            "customer",
            "customer_code",
            "date",
            "amount",
            "product",
            "channel",
            "rep",
            "created_by",
            "created_at",
            "lines",
        ]
        read_only_fields = ["rep", "created_by", "created_at"]
        # Required or not is the form's decision (amount and product only without product lines).
        extra_kwargs = {"amount": {"required": False}, "product": {"required": False}, "date": {"required": False}}

    def _has_lines(self) -> bool:
        record = self.instance
        return isinstance(record, Transaction) and record.pk is not None and bool(record.lines.all())

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, Transaction):
            # Lines decide the amount and description.
            if self._has_lines():
                fields["amount"] = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
                fields["product"] = serializers.CharField(read_only=True)
        return fields

    def validate(self, attrs):
        user = self.context["user"]
        record = self.instance
        if record is None:
            self._customer = get_customer_for(user, attrs["customer_id"], edit=True)
            record = Transaction(customer=self._customer)
        else:
            self._customer = record.customer
        data = current_values(record, TransactionForm.Meta.fields) | {
            name: value for name, value in attrs.items() if name in TransactionForm.Meta.fields
        }
        self._cleaned = run_form(TransactionForm(data=data, instance=record, with_lines=self._has_lines()))
        return attrs

    def _record(self, instance: Transaction | None) -> Transaction:
        cleaned = self._cleaned
        return transaction_record(
            customer=self._customer,
            by=self.context["user"],
            date=cleaned["date"],
            channel=cleaned["channel"],
            lines=transaction_lines(instance) if instance is not None else (),
            product_text=cleaned.get("product") or "",
            amount=cleaned.get("amount"),
            instance=instance,
        )

    def create(self, validated_data):
        return self._record(None)

    def update(self, instance, validated_data):
        return self._record(instance)


RECORD_FILTERS = [
    id_param("customer", "Only this customer's records."),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="From this date (YYYY-MM-DD)."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Up to this date (YYYY-MM-DD), inclusive."),
]


@extend_schema_view(
    list=extend_schema(
        summary="Transactions of the customers this account may see, newest first",
        parameters=RECORD_FILTERS,
    ),
    retrieve=extend_schema(summary="A transaction with its product lines"),
    create=extend_schema(summary="Record a transaction (without product lines) of a customer this account may edit"),
    update=extend_schema(summary="Change a transaction; one with product lines keeps them"),
    partial_update=extend_schema(summary="Change some fields of a transaction"),
)
class TransactionViewSet(CustomerRecordViewSet):
    model = Transaction
    serializer_class = TransactionSerializer
    keyset_key = "date"

    def get_queryset(self):
        queryset = visible_records(Transaction, self.request.user).select_related("customer")
        queryset = queryset.prefetch_related("lines__product")
        if self.action == "list":
            queryset = _filtered(
                queryset, query_filters(RecordFilterForm(self.request.query_params)), date_field="date"
            )
        return queryset


# --- Contracts -----------------------------------------------------------------------------------


class ContractSerializer(CustomerBoundMixin, CimsSerializer):
    customer = CustomerField(help_text=gettext_lazy("The customer's id; set when the contract is recorded."))
    customer_code = serializers.CharField(source="customer.code", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id",
            "customer",
            "customer_code",
            "number",
            "title",
            "amount",
            "start_date",
            "end_date",
            "status",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["created_by", "created_at"]
        # The form checks the number's uniqueness (and numbers the contract when it is left empty).
        extra_kwargs = {"number": {"required": False, "allow_blank": True, "validators": []}}

    def validate(self, attrs):
        record = self.record_for(attrs)
        data = current_values(record, ContractForm.Meta.fields) | {
            name: value for name, value in attrs.items() if name in ContractForm.Meta.fields
        }
        self._form = ContractForm(data=data, instance=record)
        run_form(self._form)
        return attrs

    def _save(self) -> Contract:
        record = self._form.save(commit=False)
        if record.pk is None:
            record.created_by = self.context["user"]
        record._history_user = self.context["user"]
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError:
            # Taken by another request between the form's check and the save.
            raise serializers.ValidationError(
                {"number": [ErrorDetail(_("Contract with this contract number already exists."), code="unique")]}
            ) from None
        return record

    def create(self, validated_data):
        return self._save()

    def update(self, instance, validated_data):
        return self._save()


@extend_schema_view(
    list=extend_schema(
        summary="Contracts of the customers this account may see, by start date (newest first)",
        parameters=[
            *RECORD_FILTERS,
            OpenApiParameter("status", str, enum=Contract.Status.values, description="Only contracts in this status."),
        ],
    ),
    retrieve=extend_schema(summary="A contract"),
    create=extend_schema(summary="Record a contract of a customer this account may edit (numbered if no number)"),
    update=extend_schema(summary="Change a contract"),
    partial_update=extend_schema(summary="Change some fields of a contract"),
)
class ContractViewSet(CustomerRecordViewSet):
    model = Contract
    serializer_class = ContractSerializer
    keyset_key = "start_date"

    def get_queryset(self):
        queryset = visible_records(Contract, self.request.user).select_related("customer")
        if self.action == "list":
            data = query_filters(ContractFilterForm(self.request.query_params))
            queryset = _filtered(queryset, data, date_field="start_date")
        return queryset


def register(router) -> None:
    """Add the transaction and contract viewsets to the API router."""
    router.register("transactions", TransactionViewSet, basename="transaction")
    router.register("contracts", ContractViewSet, basename="contract")
