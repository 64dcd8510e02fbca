"""The REST API of the followups app (cims.api): follow-up records (跟进记录) and sales opportunities
(商机), registered on /api/v1/.

The same rules as the UI (followups.views, followups.opportunity_views): records are reached through
their customer's scope (404 outside it), written only by someone who may edit the customer (403),
validated by the UI's forms and written by the services (followups.services,
followups.opportunities). A follow-up is changed by its author or a manager only. An opportunity's
stage moves through ``opportunity_move`` (PATCH ``stage``), and it closes only through the ``lose``
and ``win`` actions; a closed opportunity is a 409.
"""

from __future__ import annotations

import datetime

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, PermissionDenied
from rest_framework.response import Response

from cims.api.errors import Conflict, run_form
from cims.api.views import CimsSerializer, MaskedFieldsField, PersonalDataMixin, StrictFieldsMixin
from cims.forms import PK_MAX
from customers.access import get_customer_for
from customers.api_records import (
    CustomerBoundMixin,
    CustomerField,
    CustomerRecordViewSet,
    current_values,
    id_param,
    query_filters,
)
from customers.models import Contact, Contract, Transaction
from followups import opportunities, services
from followups.forms import FollowUpFilterForm, FollowUpForm
from followups.forms_opportunity import LoseForm, OpportunityFilterForm, OpportunityForm
from followups.models import FollowUp, Opportunity, OpportunityLine

# --- Shared --------------------------------------------------------------------------------------


class ContactBriefSerializer(PersonalDataMixin, serializers.ModelSerializer):
    """The contact a record names, its phone and e-mail masked as the UI masks them for the role."""

    personal_fields = ("phone", "email")
    phone = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    masked_fields = MaskedFieldsField()

    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "email", "masked_fields"]
        read_only_fields = fields


class OptionalIdField(serializers.IntegerField):
    """The id of a related row (a contact, an opportunity), checked by the UI's form: only the
    customer's own are choices."""

    def __init__(self, **kwargs):
        kwargs.update(required=False, allow_null=True, min_value=1, max_value=PK_MAX)
        super().__init__(**kwargs)


def _field_error(name: str, error: DjangoValidationError, code: str = "invalid") -> serializers.ValidationError:
    return serializers.ValidationError({name: [ErrorDetail(message, code=code) for message in error.messages]})


def _closed(opportunity: Opportunity) -> Conflict:
    return Conflict(
        _("This opportunity is closed (%(stage)s).") % {"stage": opportunity.get_stage_display()},
        code="opportunity_closed",
    )


# --- Follow-ups ----------------------------------------------------------------------------------


class FollowUpSerializer(CustomerBoundMixin, CimsSerializer):
    customer = CustomerField(help_text=gettext_lazy("The customer's id; set when the follow-up is recorded."))
    customer_code = serializers.CharField(source="customer.code", read_only=True)
    contact = OptionalIdField(source="contact_id")
    contact_detail = ContactBriefSerializer(source="contact", read_only=True, allow_null=True)
    opportunity = OptionalIdField(source="opportunity_id")

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "customer",
            "customer_code",
            "kind",
            "happened_at",
            "contact",
            "contact_detail",
            "opportunity",
            "content",
            "result",
            "next_contact_date",
            "satisfaction",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["created_by", "created_at"]
        extra_kwargs = {"content": {"required": False}, "satisfaction": {"min_value": None, "max_value": None}}

    def validate(self, attrs):
        record = self.record_for(attrs)
        names = FollowUpForm.Meta.fields
        given = {name.removesuffix("_id"): value for name, value in attrs.items()}
        data = current_values(record, names) | {name: value for name, value in given.items() if name in names}
        self._customer = record.customer
        form = FollowUpForm(data=data, instance=record, customer=record.customer)
        run_form(form)
        self._values = form.values()
        return attrs

    def create(self, validated_data):
        return services.followup_create(customer=self._customer, by=self.context["user"], **self._values)

    def update(self, instance, validated_data):
        return services.followup_update(followup=instance, by=self.context["user"], **self._values)


class FollowUpApiFilterForm(FollowUpFilterForm):
    customer = forms.IntegerField(required=False, min_value=1, max_value=PK_MAX)


class OpportunityApiFilterForm(OpportunityFilterForm):
    customer = forms.IntegerField(required=False, min_value=1, max_value=PK_MAX)


def _local_midnight(date: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(date, datetime.time(0), tzinfo=timezone.get_default_timezone())


@extend_schema_view(
    list=extend_schema(
        summary="Follow-ups, newest first: a rep's own, or every one of a customer; a manager's, everyone's",
        parameters=[
            id_param("customer", "Every follow-up of this customer (not only this account's)."),
            OpenApiParameter("kind", str, enum=FollowUp.Kind.values, description="Only this type."),
            OpenApiParameter("date_from", OpenApiTypes.DATE, description="Happened on or after this day."),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="Happened on or before this day."),
            id_param("rep", "Recorded by this user (accounts that see everyone's follow-ups)."),
        ],
    ),
    retrieve=extend_schema(summary="A follow-up"),
    create=extend_schema(summary="Record a follow-up of a customer this account may edit"),
    update=extend_schema(summary="Change a follow-up (its author, or a manager)"),
    partial_update=extend_schema(summary="Change some fields of a follow-up (its author, or a manager)"),
)
class FollowUpViewSet(CustomerRecordViewSet):
    model = FollowUp
    serializer_class = FollowUpSerializer
    access_log_type = "followups.followup"
    keyset_key = "happened_at"

    def may_write(self, obj) -> bool:
        return services.may_edit_followup(self.request.user, obj)

    def get_queryset(self):
        user = self.request.user
        queryset = FollowUp.objects.visible_to(user).select_related("customer", "contact")
        if self.action != "list":
            return queryset
        everyone = user.has_perm("customers.view_all_customers") or not user.has_perm("followups.add_followup")
        data = query_filters(FollowUpApiFilterForm(self.request.query_params, show_rep=everyone))
        if data.get("customer"):
            # The customer's timeline on the 360 page shows every follow-up of the customer.
            queryset = queryset.filter(customer_id=data["customer"])
        elif not everyone:
            queryset = queryset.filter(created_by=user)  # "my follow-ups", as in the UI
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        if data.get("date_from"):
            queryset = queryset.filter(happened_at__gte=_local_midnight(data["date_from"]))
        if data.get("date_to"):
            queryset = queryset.filter(happened_at__lt=_local_midnight(data["date_to"] + datetime.timedelta(days=1)))
        if data.get("rep"):
            queryset = queryset.filter(created_by=data["rep"])
        return queryset


# --- Opportunities -------------------------------------------------------------------------------


class OpportunityLineSerializer(serializers.ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)
    line_total = serializers.DecimalField(max_digits=28, decimal_places=2, read_only=True)

    class Meta:
        model = OpportunityLine
        fields = ["id", "product", "product_code", "product_name", "quantity", "unit_price", "line_total"]
        read_only_fields = fields


OPPORTUNITY_FORM_FIELDS = ("title", "amount", "probability", "expected_close_date", "owner", "description")


class OpportunitySerializer(CustomerBoundMixin, CimsSerializer):
    customer = CustomerField(help_text=gettext_lazy("The customer's id; set when the opportunity is opened."))
    customer_code = serializers.CharField(source="customer.code", read_only=True)
    stage = serializers.ChoiceField(
        choices=Opportunity.Stage.choices,
        required=False,
        help_text=gettext_lazy("An open stage; won and lost only through the win and lose actions."),
    )
    owner = serializers.IntegerField(
        source="owner_id",
        required=False,
        allow_null=True,
        min_value=1,
        max_value=PK_MAX,
        help_text=gettext_lazy("A manager may give the opportunity to a rep; empty: this account."),
    )
    weighted_amount = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    lines = OpportunityLineSerializer(many=True, read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "customer",
            "customer_code",
            "title",
            "stage",
            "amount",
            "probability",
            "weighted_amount",
            "expected_close_date",
            "owner",
            "description",
            "lost_reason",
            "closed_at",
            "lines",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["lost_reason", "closed_at", "created_by", "created_at"]
        extra_kwargs = {
            "title": {"required": False},
            "amount": {"required": False},
            "probability": {"required": False, "allow_null": True, "min_value": None, "max_value": None},
        }

    def _has_lines(self) -> bool:
        record = self.instance
        return isinstance(record, Opportunity) and bool(record.lines.all())

    def get_fields(self):
        fields = super().get_fields()
        user = self.context.get("user")
        if isinstance(self.instance, Opportunity):
            if self._has_lines():
                fields["amount"] = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
        if user is not None and not user.has_perm("customers.change_all_customers"):
            # The UI offers the owner to managers only; a rep's opportunities are their own.
            fields["owner"] = serializers.IntegerField(source="owner_id", read_only=True)
        return fields

    def validate(self, attrs):
        user = self.context["user"]
        record = self.instance
        given = {name.removesuffix("_id"): value for name, value in attrs.items()}
        if record is None:
            self._customer = get_customer_for(user, attrs["customer_id"], edit=True)
            data = {"stage": Opportunity.Stage.INITIAL} | given
            data.pop("customer", None)
            form = OpportunityForm(data=data, user=user)
            run_form(form)
            self._values = form.values()
            return attrs
        if record.is_closed:
            raise _closed(record)
        self._stage = given.pop("stage", None)
        self._probability = given.get("probability")
        self._changes = {name: value for name, value in given.items() if name in OPPORTUNITY_FORM_FIELDS}
        self._values = None
        if self._changes:
            data = current_values(record, OPPORTUNITY_FORM_FIELDS) | self._changes
            form = OpportunityForm(data=data, instance=record, user=user, with_lines=self._has_lines())
            run_form(form)
            self._values = form.values()
        return attrs

    def create(self, validated_data):
        return opportunities.opportunity_create(customer=self._customer, by=self.context["user"], **self._values)

    def update(self, instance, validated_data):
        user = self.context["user"]
        try:
            with transaction.atomic():
                if self._values is not None:
                    opportunities.opportunity_update(opportunity=instance, by=user, **self._values)
                if self._stage and self._stage != instance.stage:
                    try:
                        opportunities.opportunity_move(
                            opportunity=instance, stage=self._stage, by=user, probability=self._probability
                        )
                    except DjangoValidationError as error:
                        raise _field_error("stage", error) from None
        except DjangoValidationError:
            instance.refresh_from_db(fields=["stage"])
            if instance.is_closed:  # closed by someone else meanwhile
                raise _closed(instance) from None
            raise
        return Opportunity.objects.select_related("customer").get(pk=instance.pk)


class LoseSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(help_text=gettext_lazy("Why the opportunity was lost."))


class WinContractSerializer(StrictFieldsMixin, serializers.Serializer):
    """The contract of the deal: what is left out defaults from the opportunity, as in the UI."""

    number = serializers.CharField(required=False, allow_blank=True)
    title = serializers.CharField(required=False)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    start_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False)
    status = serializers.ChoiceField(choices=Contract.Status.choices, required=False)


class WinTransactionSerializer(StrictFieldsMixin, serializers.Serializer):
    """The transaction of the deal; with product lines, its amount and description are the lines'."""

    date = serializers.DateField(required=False)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    product = serializers.CharField(required=False)
    channel = serializers.ChoiceField(choices=Transaction.Channel.choices, required=False)


class WinSerializer(StrictFieldsMixin, serializers.Serializer):
    create_contract = serializers.BooleanField(default=False)
    contract = WinContractSerializer(required=False)
    create_transaction = serializers.BooleanField(default=False)
    transaction = WinTransactionSerializer(required=False)


class WinResultSerializer(serializers.Serializer):
    opportunity = OpportunitySerializer(read_only=True)
    customer_status = serializers.CharField(read_only=True)
    contract = serializers.IntegerField(read_only=True, allow_null=True)
    transaction = serializers.IntegerField(read_only=True, allow_null=True)


@extend_schema_view(
    list=extend_schema(
        summary="Opportunities of the customers this account may see, newest first",
        parameters=[
            id_param("customer", "Only this customer's opportunities."),
            OpenApiParameter("stage", str, enum=Opportunity.Stage.values, description="Only this stage."),
            OpenApiParameter("close_from", OpenApiTypes.DATE, description="Expected to close on or after."),
            OpenApiParameter("close_to", OpenApiTypes.DATE, description="Expected to close on or before."),
            id_param("rep", "Owned by this user (accounts that see everyone's opportunities)."),
        ],
    ),
    retrieve=extend_schema(summary="An opportunity with its product lines"),
    create=extend_schema(summary="Open an opportunity of a customer this account may edit (no product lines)"),
    update=extend_schema(summary="Change an open opportunity; a new open stage moves it"),
    partial_update=extend_schema(summary="Change some fields of an open opportunity; a new open stage moves it"),
)
class OpportunityViewSet(CustomerRecordViewSet):
    model = Opportunity
    serializer_class = OpportunitySerializer
    write_actions = ("update", "partial_update", "lose", "win")

    @property
    def permission_map(self):
        if self.action in ("lose", "win"):
            return {"POST": "followups.change_opportunity", "GET": "followups.view_opportunity"}
        return None

    def may_write(self, obj) -> bool:
        return opportunities.may_edit_opportunity(self.request.user, obj)

    def get_queryset(self):
        user = self.request.user
        queryset = Opportunity.objects.visible_to(user).select_related("customer").prefetch_related("lines__product")
        if self.action != "list":
            return queryset
        everyone = opportunities.sees_everyones(user)
        data = query_filters(OpportunityApiFilterForm(self.request.query_params, show_rep=everyone))
        if data.get("customer"):
            queryset = queryset.filter(customer_id=data["customer"])
        if data.get("stage"):
            queryset = queryset.filter(stage=data["stage"])
        if data.get("close_from"):
            queryset = queryset.filter(expected_close_date__gte=data["close_from"])
        if data.get("close_to"):
            queryset = queryset.filter(expected_close_date__lte=data["close_to"])
        if data.get("rep"):
            queryset = queryset.filter(owner=data["rep"])
        return queryset

    def _open_opportunity(self) -> Opportunity:
        opportunity = self.get_object()
        if opportunity.is_closed:
            raise _closed(opportunity)
        return opportunity

    def _closed_meanwhile(self, opportunity: Opportunity, error: DjangoValidationError):
        opportunity.refresh_from_db(fields=["stage"])
        if opportunity.is_closed:
            return _closed(opportunity)
        return error

    def _answer(self, opportunity: Opportunity) -> Response:
        fresh = self.get_queryset().get(pk=opportunity.pk)
        return Response(OpportunitySerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Close an opportunity as lost, saying why",
        request=LoseSerializer,
        responses={200: OpportunitySerializer},
    )
    @action(detail=True, methods=["post"])
    def lose(self, request, pk=None):
        opportunity = self._open_opportunity()
        body = LoseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = LoseForm(data=body.validated_data)
        run_form(form)
        try:
            opportunities.opportunity_lose(opportunity=opportunity, by=request.user, reason=form.cleaned_data["reason"])
        except DjangoValidationError as error:
            raise self._closed_meanwhile(opportunity, error) from None
        return self._answer(opportunity)

    @extend_schema(
        summary="Close an opportunity as won, optionally recording the deal's contract and transaction",
        request=WinSerializer,
        responses={200: WinResultSerializer},
    )
    @action(detail=True, methods=["post"])
    def win(self, request, pk=None):
        opportunity = self._open_opportunity()
        body = WinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        for wanted, perm in (
            ("create_contract", "customers.add_contract"),
            ("create_transaction", "customers.add_transaction"),
        ):
            if data[wanted] and not request.user.has_perm(perm):
                raise PermissionDenied(
                    _("The role of this account does not allow this action."), code="permission_denied"
                )
        try:
            result = opportunities.opportunity_win(
                opportunity=opportunity,
                by=request.user,
                create_contract=data["create_contract"],
                contract=data.get("contract"),
                create_transaction=data["create_transaction"],
                transaction_data=data.get("transaction"),
            )
        except DjangoValidationError as error:
            raise self._closed_meanwhile(opportunity, error) from None
        fresh = self.get_queryset().get(pk=opportunity.pk)
        answer = {
            "opportunity": OpportunitySerializer(fresh, context=self.get_serializer_context()).data,
            "customer_status": fresh.customer.status,
            "contract": result.contract.pk if result.contract else None,
            "transaction": result.transaction.pk if result.transaction else None,
        }
        return Response(answer)


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("followups", FollowUpViewSet, basename="followup")
    router.register("opportunities", OpportunityViewSet, basename="opportunity")
