"""The write side of the customer archive: create and edit customers with their contacts,
transactions and contracts, the live duplicate warning, and the system settings (系统设置).

Every customer id goes through ``customers.access.get_customer_for`` (404 out of reach, 403
read-only); writes go through ``customers.services`` inside one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Model
from django.forms import modelform_factory
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import staff_permission_required, staff_required
from cims.crypto import blind_index
from customers.access import get_customer_for
from customers.forms import (
    ENTERPRISE_FIELDS,
    MAX_CONTACT_ROWS,
    ContractForm,
    CustomerForm,
    CustomFieldForm,
    DuplicateCheckForm,
    LookupForm,
    TagForm,
    TransactionForm,
    active_custom_fields,
    contact_formset_class,
)
from customers.forms_product import add_line_row, line_formset
from customers.models import (
    Contract,
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    CustomField,
    EnterpriseNature,
    EnterpriseType,
    Industry,
    ProductCategory,
    Province,
    Tag,
    Transaction,
)
from customers.products import transaction_record
from customers.services import (
    StatusChangeError,
    customer_change_status,
    customer_save,
    customer_transfer,
    find_duplicates,
)

CONTACTS_PREFIX = "contacts"
# How many matching customers the duplicate warning lists by name (the rest are counted).
DUPLICATES_SHOWN = 10


# --- Duplicate warning ---------------------------------------------------------------------------


@dataclass
class DuplicateMatch:
    customer: Customer
    visible: bool
    reasons: list[str]


def _duplicate_matches(user, values: dict[str, str], exclude_pk: int | None) -> dict:
    """What the duplicate warning shows: matches the user may see (code, name, why), and a bare
    count of those outside their reach: nothing about those leaves the server."""
    values = {name: value for name, value in values.items() if value}
    if not values.get("company"):
        values.pop("name", None)  # a name alone is not a duplicate: 王伟 is a common name
    else:
        values.setdefault("name", "")
    if not any(values.values()):
        return {"matches": [], "hidden": 0}
    candidates = list(
        find_duplicates(**values, exclude_pk=exclude_pk)
        # The blind indexes say why each one matched; the encrypted columns are never decrypted.
        .only("pk", "code", "name", "company", "phone_bidx", "mobile_bidx", "email_bidx", "id_number_bidx")
        .order_by("-pk")[: DUPLICATES_SHOWN * 5]
    )
    if not candidates:
        return {"matches": [], "hidden": 0}
    visible = set(
        Customer.objects.visible_to(user).filter(pk__in=[c.pk for c in candidates]).values_list("pk", flat=True)
    )
    phones = {blind_index("phone", values[name]) for name in ("phone", "mobile") if values.get(name)}
    email = blind_index("email", values.get("email", ""))
    id_number = blind_index("id_number", values.get("id_number", ""))
    matches, hidden = [], 0
    for candidate in candidates:
        if candidate.pk not in visible:
            hidden += 1
            continue
        reasons = []
        if phones & {candidate.phone_bidx, candidate.mobile_bidx} - {""}:
            reasons.append(_("phone number"))
        if email and candidate.email_bidx == email:
            reasons.append(_("e-mail"))
        if id_number and candidate.id_number_bidx == id_number:
            reasons.append(_("ID card number"))
        if values.get("company") and (candidate.name, candidate.company) == (values.get("name"), values["company"]):
            reasons.append(_("name and company"))
        if len(matches) < DUPLICATES_SHOWN:
            matches.append(DuplicateMatch(candidate, True, reasons))
    return {"matches": matches, "hidden": hidden}


def _may_write_customers(user) -> bool:
    return user.has_perm("customers.add_customer") or user.has_perm("customers.change_customer")


@staff_required
@require_GET
def duplicate_check(request: HttpRequest) -> HttpResponse:
    """htmx: the duplicate warning for what has been typed so far in the customer form."""
    if not _may_write_customers(request.user):
        raise PermissionDenied("customers.add_customer")
    form = DuplicateCheckForm(request.GET)
    context = {"matches": [], "hidden": 0, "confirm": False}
    if form.is_valid():
        exclude = form.cleaned_data["customer"]
        if exclude and not Customer.objects.visible_to(request.user).filter(pk=exclude).exists():
            exclude = None  # excluding a record only makes sense for the one being edited
        context.update(_duplicate_matches(request.user, form.values(), exclude))
    return render(request, "customers/_partials/duplicate_warning.html", context)


# --- Customers -----------------------------------------------------------------------------------


def _contact_rows(request: HttpRequest) -> dict | None:
    """POST data with one more contact row, when the user pressed "add a row" (works without script)."""
    if "add_contact" not in request.POST:
        return None
    data = request.POST.copy()
    try:
        total = int(data.get(f"{CONTACTS_PREFIX}-TOTAL_FORMS", "0"))
    except ValueError:
        return None
    data[f"{CONTACTS_PREFIX}-TOTAL_FORMS"] = str(min(max(total, 0) + 1, MAX_CONTACT_ROWS))
    return data


def _enterprise_fragment(request: HttpRequest, customer: Customer) -> HttpResponse:
    """htmx: the enterprise fieldset, shown or hidden for the kind just chosen, keeping what was typed."""
    initial = {name: request.GET[name] for name in ("kind", *ENTERPRISE_FIELDS) if name in request.GET}
    form = CustomerForm(instance=customer, initial=initial, user=request.user, custom_fields=[])
    return render(request, "customers/_partials/form_enterprise.html", {"form": form})


def _customer_form_view(request: HttpRequest, customer: Customer) -> HttpResponse:
    creating = customer.pk is None
    if request.method == "GET" and request.GET.get("fragment") == "enterprise":
        return _enterprise_fragment(request, customer)

    formset_class = contact_formset_class(extra=2 if creating else 1)
    custom_fields = list(active_custom_fields())
    data = None
    adding_row = False
    if request.method == "POST":
        data = _contact_rows(request)
        adding_row = data is not None
        data = data if adding_row else request.POST
    form = CustomerForm(data, instance=customer, user=request.user, custom_fields=custom_fields)
    formset = formset_class(
        data,
        instance=customer,
        prefix=CONTACTS_PREFIX,
        form_kwargs={"user": request.user},
    )
    duplicates = None
    if request.method == "POST" and not adding_row and form.is_valid() and formset.is_valid():
        duplicates = _duplicate_matches(request.user, form.duplicate_values(), None if creating else customer.pk)
        if (duplicates["matches"] or duplicates["hidden"]) and not form.cleaned_data["save_anyway"]:
            duplicates["confirm"] = True
        else:
            try:
                customer = _save_customer(request, form, formset, creating)
            except StatusChangeError as error:  # the status changed under the form (another user)
                form.add_error("status", str(error))
                return render(
                    request,
                    "customers/form.html",
                    {"form": form, "formset": formset, "customer": customer, "duplicates": None},
                    status=422,
                )
            if creating:
                messages.success(request, _("Customer %(code)s was created.") % {"code": customer.code})
            else:
                messages.success(request, _("Customer %(code)s was saved.") % {"code": customer.code})
            return redirect("customers:detail", pk=customer.pk)
    context = {
        "form": form,
        "formset": formset,
        "customer": None if creating else customer,
        "duplicates": duplicates,
    }
    return render(request, "customers/form.html", context)


def _save_customer(request: HttpRequest, form: CustomerForm, formset, creating: bool) -> Customer:
    """Customer, contacts, tags and (for a manager) a change of owner: all or nothing."""
    with transaction.atomic():
        customer = form.save(commit=False)
        new_status = None
        if not creating and customer.status != form.initial.get("status"):
            # A change of status goes through the lifecycle flow, recorded as a timeline event.
            new_status, customer.status = customer.status, form.initial.get("status")
        new_owner = None
        if not creating and "owner" in form.fields and customer.owner_id != form.original["owner_id"]:
            # A change of owner is a transfer: the old owner's grants go with it, recorded in history.
            new_owner = customer.owner
            customer.owner_id = form.original["owner_id"]
        contacts = formset.save(commit=False)
        customer = customer_save(
            customer=customer, contacts=contacts, removed_contacts=formset.deleted_objects, by=request.user
        )
        form.save_m2m()
        if new_status is not None:
            customer_change_status(customer=customer, to=new_status, by=request.user)
        if new_owner is not None:
            customer_transfer(customer_ids=[customer.pk], to=new_owner, by=request.user, reason="edit")
            customer.refresh_from_db(fields=["owner"])
    return customer


@staff_permission_required("customers.add_customer")
@require_http_methods(["GET", "POST"])
def customer_create(request: HttpRequest) -> HttpResponse:
    return _customer_form_view(request, Customer())


@staff_permission_required("customers.change_customer")
@require_http_methods(["GET", "POST"])
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    return _customer_form_view(request, customer)


# --- Transactions and contracts ---------------------------------------------------------------


def _record_form_view(request: HttpRequest, *, form_class, instance, customer, template: str, done: tuple):
    """Create or edit a transaction or contract of ``customer``; ``done``: the two success messages."""
    form = form_class(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        record = form.save(commit=False)
        creating = record.pk is None
        if creating:
            record.customer = customer
            record.created_by = request.user
        record._history_user = request.user
        with transaction.atomic():
            record.save()
        messages.success(request, done[0] if creating else done[1])
        return redirect("customers:detail", pk=customer.pk)
    return render(request, template, {"form": form, "customer": customer, "object": instance})


LINES_PREFIX = "lines"


def _transaction_form_view(request: HttpRequest, *, record: Transaction, customer: Customer) -> HttpResponse:
    """A transaction with its product lines, saved through customers.products.transaction_record
    (stock, amount and description from the lines; a refusal names the product and quantities)."""
    saved_lines = list(record.lines.select_related("product")) if record.pk else []
    data = None
    adding_row = False
    if request.method == "POST":
        adding_row = "add_line" in request.POST
        data = add_line_row(request.POST, LINES_PREFIX) if adding_row else request.POST
    formset = line_formset(data, prefix=LINES_PREFIX, lines=saved_lines, extra=1 if saved_lines else 3)
    form = TransactionForm(data, instance=record, with_lines=formset.has_lines())
    if request.method == "POST" and not adding_row and form.is_valid() and formset.is_valid():
        creating = record.pk is None
        try:
            record = transaction_record(
                customer=customer,
                by=request.user,
                date=form.cleaned_data["date"],
                channel=form.cleaned_data["channel"],
                lines=formset.lines(),
                product_text=form.cleaned_data.get("product") or "",
                amount=form.cleaned_data.get("amount"),
                instance=record,
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, field_errors in error.message_dict.items():
                    form.add_error(name if name in form.fields else None, field_errors)
            else:
                form.add_error(None, error.messages)
        else:
            messages.success(
                request, _("The transaction was recorded.") if creating else _("The transaction was saved.")
            )
            return redirect("customers:detail", pk=customer.pk)
    context = {"form": form, "formset": formset, "customer": customer, "object": record}
    return render(request, "customers/transaction_form.html", context)


@staff_permission_required("customers.add_transaction")
@require_http_methods(["GET", "POST"])
def transaction_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    return _transaction_form_view(request, record=Transaction(customer=customer), customer=customer)


@staff_permission_required("customers.change_transaction")
@require_http_methods(["GET", "POST"])
def transaction_edit(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Transaction, pk=pk)
    customer = get_customer_for(request.user, record.customer_id, edit=True)
    record.customer = customer
    return _transaction_form_view(request, record=record, customer=customer)


@staff_permission_required("customers.add_contract")
@require_http_methods(["GET", "POST"])
def contract_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    return _record_form_view(
        request,
        form_class=ContractForm,
        instance=Contract(customer=customer),
        customer=customer,
        template="customers/contract_form.html",
        done=(_("The contract was recorded."), _("The contract was saved.")),
    )


@staff_permission_required("customers.change_contract")
@require_http_methods(["GET", "POST"])
def contract_edit(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Contract, pk=pk)
    customer = get_customer_for(request.user, record.customer_id, edit=True)
    record.customer = customer
    return _record_form_view(
        request,
        form_class=ContractForm,
        instance=record,
        customer=customer,
        template="customers/contract_form.html",
        done=(_("The contract was recorded."), _("The contract was saved.")),
    )


# --- System settings (系统设置) -----------------------------------------------------------------


@dataclass(frozen=True)
class LookupKind:
    slug: str
    model: type[Model]
    label: str
    icon: str
    form: type | None = None  # None: the plain lookup form (name, sort order, in use)

    @property
    def model_name(self) -> str:
        return self.model._meta.model_name

    def perm(self, action: str) -> str:
        return f"customers.{action}_{self.model_name}"

    def form_class(self):
        if self.form is not None:
            return self.form
        return modelform_factory(self.model, form=LookupForm, fields=LookupForm.Meta.fields)

    @property
    def deactivates(self) -> bool:
        return any(field.name == "is_active" for field in self.model._meta.fields)


LOOKUP_KINDS: dict[str, LookupKind] = {
    kind.slug: kind
    for kind in (
        LookupKind("enterprise-types", EnterpriseType, gettext_lazy("Enterprise types"), "building"),
        LookupKind("enterprise-natures", EnterpriseNature, gettext_lazy("Enterprise natures"), "bank"),
        LookupKind("levels", CustomerLevel, gettext_lazy("Customer levels"), "award"),
        LookupKind("sources", CustomerSource, gettext_lazy("Customer sources"), "signpost-split"),
        LookupKind("customer-types", CustomerType, gettext_lazy("Customer types"), "person-vcard"),
        LookupKind("industries", Industry, gettext_lazy("Industries"), "briefcase"),
        LookupKind("product-categories", ProductCategory, gettext_lazy("Product categories"), "boxes"),
        LookupKind("tags", Tag, gettext_lazy("Tags"), "tags", TagForm),
        LookupKind("custom-fields", CustomField, gettext_lazy("Custom fields"), "ui-checks", CustomFieldForm),
    )
}


def _lookup_kind(kind: str) -> LookupKind:
    try:
        return LOOKUP_KINDS[kind]
    except KeyError:
        raise Http404("unknown settings kind") from None


def _require(user, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied(perm)


def _manages_settings(user) -> bool:
    return any(user.has_perm(kind.perm("add")) or user.has_perm(kind.perm("change")) for kind in LOOKUP_KINDS.values())


@staff_required
@require_GET
def settings_index(request: HttpRequest) -> HttpResponse:
    """The lookups administrators maintain, with how many entries each has; provinces read-only."""
    if not _manages_settings(request.user):
        raise PermissionDenied("system settings")
    kinds = [
        {"kind": kind, "count": kind.model.objects.count(), "may_add": request.user.has_perm(kind.perm("add"))}
        for kind in LOOKUP_KINDS.values()
        if request.user.has_perm(kind.perm("view"))
    ]
    provinces = Province.objects.all() if request.user.has_perm("customers.view_province") else None
    return render(request, "customers/settings/index.html", {"kinds": kinds, "provinces": provinces})


@staff_required
@require_GET
def lookup_list(request: HttpRequest, kind: str) -> HttpResponse:
    lookup = _lookup_kind(kind)
    _require(request.user, lookup.perm("view"))
    page = Paginator(lookup.model.objects.all(), 50).get_page(request.GET.get("page"))
    context = {
        "lookup": lookup,
        "page": page,
        "may_add": request.user.has_perm(lookup.perm("add")),
        "may_change": request.user.has_perm(lookup.perm("change")),
    }
    return render(request, "customers/settings/list.html", context)


def _lookup_form_view(request: HttpRequest, lookup: LookupKind, instance) -> HttpResponse:
    form = lookup.form_class()(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        creating = form.instance.pk is None
        with transaction.atomic():
            entry = form.save()
        if creating:
            messages.success(request, _("“%(name)s” was added.") % {"name": entry})
        else:
            messages.success(request, _("“%(name)s” was saved.") % {"name": entry})
        return redirect("customers:lookup_list", kind=lookup.slug)
    return render(request, "customers/settings/form.html", {"lookup": lookup, "form": form, "entry": instance})


@staff_required
@require_http_methods(["GET", "POST"])
def lookup_create(request: HttpRequest, kind: str) -> HttpResponse:
    lookup = _lookup_kind(kind)
    _require(request.user, lookup.perm("add"))
    return _lookup_form_view(request, lookup, lookup.model())


@staff_required
@require_http_methods(["GET", "POST"])
def lookup_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    lookup = _lookup_kind(kind)
    _require(request.user, lookup.perm("change"))
    entry = get_object_or_404(lookup.model, pk=pk)
    return _lookup_form_view(request, lookup, entry)
