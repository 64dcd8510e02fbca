"""The REST API of the customers app (cims.api): customers, contacts and the lookups, on /api/v1/.

The same doors as the UI: ``Customer.objects.visible_to(user)`` scopes every read (another rep's
customer is a 404), ``can_edit`` every change (a read-only shared customer is a 403), the list takes
the UI list's filters and sorts (CustomerFilterForm, filter_customers, SORTS) and every write goes
through the UI's forms and services (customers.api_serializers).
"""

from __future__ import annotations

from django import forms
from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import ErrorDetail, PermissionDenied, ValidationError

from cims import audit
from cims.api.errors import form_errors
from cims.api.views import CimsViewSet
from cims.forms import PK_MAX
from customers.access import can_edit
from customers.api_serializers import (
    ContactSerializer,
    CustomerSerializer,
    PossibleDuplicate,
    ProvinceSerializer,
    lookup_serializer,
)
from customers.editing import LOOKUP_KINDS
from customers.forms_list import SORTS, CustomerFilterForm
from customers.models import Contact, Customer, CustomField, Province, Tag
from customers.views import filter_customers, search_contacts, searched_identifier, searched_phone


def _id_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, description=description)


CUSTOMER_FILTERS = [
    OpenApiParameter(
        "q", OpenApiTypes.STR, description="Search: exact phone, e-mail, ID number or code, else part of the name."
    ),
    OpenApiParameter("status", OpenApiTypes.STR, enum=list(Customer.Status.values), description="Lifecycle status."),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=[value for value, _label in Customer.KINDS]),
    _id_parameter("level", "Customer level id."),
    _id_parameter("source", "Customer source id."),
    _id_parameter("province", "Province id."),
    _id_parameter("industry", "Industry id."),
    _id_parameter("owner", "Owner's user id (only for accounts that see every customer)."),
    _id_parameter("tag", "Tag id."),
    OpenApiParameter("created_from", OpenApiTypes.DATE, description="Created on or after this day."),
    OpenApiParameter("created_to", OpenApiTypes.DATE, description="Created on or before this day."),
    OpenApiParameter("sort", OpenApiTypes.STR, enum=list(SORTS), description="Order of the list (default -id)."),
]
ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid fields: error.code and error.fields name each one."),
    403: OpenApiResponse(description="Not allowed for this account, token or record."),
    404: OpenApiResponse(description="Not found, or not visible to this account."),
}
DUPLICATE_RESPONSE = {
    409: OpenApiResponse(
        description="possible_duplicate: error.duplicates lists the matching customers this account may see "
        "(id, code, reasons), error.hidden_duplicates counts the others; send save_anyway: true."
    )
}


@extend_schema_view(
    list=extend_schema(
        parameters=CUSTOMER_FILTERS,
        description="The customers this account may see, filtered like the UI list. Custom fields filter as "
        "cf_<key>=<value>.",
    ),
    create=extend_schema(responses={201: CustomerSerializer, **ERROR_RESPONSES, **DUPLICATE_RESPONSE}),
    update=extend_schema(responses={200: CustomerSerializer, **ERROR_RESPONSES, **DUPLICATE_RESPONSE}),
    partial_update=extend_schema(responses={200: CustomerSerializer, **ERROR_RESPONSES, **DUPLICATE_RESPONSE}),
)
class CustomerViewSet(CimsViewSet):
    model = Customer
    serializer_class = CustomerSerializer
    access_log_type = "customers.customer"

    def get_queryset(self):
        return Customer.objects.visible_to(self.request.user).prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("id"))
        )

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        params = self.request.query_params
        form = CustomerFilterForm(
            params, user=self.request.user, custom_fields=list(CustomField.objects.filter(is_active=True))
        )
        if "owner" in params and "owner" not in form.fields:
            # The UI offers this filter only to those who see every customer; silently ignoring it
            # would answer a different question than the one asked.
            message = _("This filter is not available to this account.")
            raise ValidationError({"owner": [ErrorDetail(message, code="field_not_allowed")]})
        if not form.is_valid():
            raise form_errors(form)
        queryset, data = filter_customers(queryset, form)
        self._sort = data.get("sort") or "-id"
        self._searched = (searched_identifier(data.get("q") or ""), queryset)
        return queryset

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        kind, found = getattr(self, "_searched", ("", None))
        if kind and not (request.query_params.get("after") or request.query_params.get("before")):
            # As in the UI: a search by phone, e-mail or ID number logs what it found (first page only).
            audit.log_search_later(
                request,
                response,
                kind=kind,
                found=found.only("id", "code"),
                object_type="customers.customer",
                label=lambda customer: customer.code,
            )
        return response

    def keyset_order(self, request) -> tuple[str, bool]:
        return SORTS.get(getattr(self, "_sort", "-id"), SORTS["-id"])

    def get_object(self):
        customer = super().get_object()
        if self.action in ("update", "partial_update") and not can_edit(self.request.user, customer):
            raise PermissionDenied(_("This account may only read this customer."), code="read_only_record")
        return customer

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, PossibleDuplicate) and isinstance(response.data, dict) and "error" in response.data:
            response.data["error"]["duplicates"] = exc.matches
            response.data["error"]["hidden_duplicates"] = exc.hidden
        return response


# --- Contacts -----------------------------------------------------------------------------------


class ContactFilterForm(forms.Form):
    customer = forms.IntegerField(required=False, min_value=1, max_value=PK_MAX)
    q = forms.CharField(required=False, max_length=100)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _id_parameter("customer", "Only this customer's contacts."),
            OpenApiParameter("q", OpenApiTypes.STR, description="Part of the name, or the exact phone number."),
        ]
    ),
    create=extend_schema(responses={201: ContactSerializer, **ERROR_RESPONSES}),
    update=extend_schema(responses={200: ContactSerializer, **ERROR_RESPONSES}),
    partial_update=extend_schema(responses={200: ContactSerializer, **ERROR_RESPONSES}),
)
class ContactViewSet(CimsViewSet):
    model = Contact
    serializer_class = ContactSerializer
    access_log_type = "customers.contact"

    def get_queryset(self):
        visible = Customer.objects.visible_to(self.request.user).values("pk")
        return Contact.objects.filter(customer__in=visible)

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        form = ContactFilterForm(self.request.query_params)
        if not form.is_valid():
            raise form_errors(form)
        if form.cleaned_data["customer"]:
            queryset = queryset.filter(customer_id=form.cleaned_data["customer"])
        queryset = search_contacts(queryset, form.cleaned_data["q"])  # the phone book's search
        self._searched = ("phone" if searched_phone(form.cleaned_data["q"]) else "", queryset)
        return queryset

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        kind, found = getattr(self, "_searched", ("", None))
        if kind and not (request.query_params.get("after") or request.query_params.get("before")):
            # As the phone book does: a search by phone number logs what it found (first page only).
            audit.log_search_later(
                request,
                response,
                kind=kind,
                found=found.select_related("customer").only("id", "customer__code"),
                object_type="customers.contact",
                label=lambda contact: contact.customer.code,
            )
        return response


# --- Lookups ------------------------------------------------------------------------------------

LOOKUP_FIELDS = ["name", "sort_order", "is_active"]
# Endpoint → the settings page's kind (customers.editing.LOOKUP_KINDS: model and form).
LOOKUPS = {
    "levels": "level",
    "sources": "source",
    "customer-types": "customer-type",
    "industries": "industry",
    "enterprise-types": "enterprise-type",
    "enterprise-natures": "enterprise-nature",
    "tags": "tag",
}


class LookupViewSet(CimsViewSet):
    """One lookup table: read with its view permission, written with add/change through the
    settings pages' form. Lookups are never deleted (deactivated instead)."""

    order = ("sort_order", False)

    def get_queryset(self):
        return self.model.objects.all()

    def keyset_order(self, request) -> tuple[str, bool]:
        return self.order


def lookup_viewset(slug: str) -> type[LookupViewSet]:
    kind = LOOKUP_KINDS[slug]
    fields = ["name", "color"] if kind.model is Tag else LOOKUP_FIELDS
    attrs = {
        "model": kind.model,
        "serializer_class": lookup_serializer(kind.model, kind.form_class(), fields),
        "order": ("name", False) if kind.model is Tag else ("sort_order", False),
    }
    return type(f"{kind.model.__name__}ViewSet", (LookupViewSet,), attrs)


class ProvinceViewSet(CimsViewSet):
    model = Province
    serializer_class = ProvinceSerializer
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return Province.objects.all()

    def keyset_order(self, request) -> tuple[str, bool]:
        return "code", False


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("customers", CustomerViewSet, basename="customer")
    router.register("contacts", ContactViewSet, basename="contact")
    for slug, basename in LOOKUPS.items():
        router.register(slug, lookup_viewset(slug), basename=basename)
    router.register("provinces", ProvinceViewSet, basename="province")
