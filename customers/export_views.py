"""Export downloads: the customer list as on screen, and the transactions and contracts of visible customers.

The views parse the query string with forms, build the scoped and filtered queryset and hand it to
``customers.exporting`` (masking, formula neutralising, streaming, the access log). A bad format or
filter is a 400 page with the reason; never an export of more than the user asked for.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from accounts.access import staff_permission_required
from customers import exporting
from customers.attachments import streaming_download_response
from customers.forms_list import SORTS, CustomerFilterForm, ListChoices
from customers.models import Contract, Customer, CustomField, Transaction
from customers.views import filter_customers
from followups.models import FollowUp

PERMISSION = "customers.export_customers"


class RelatedExportForm(forms.Form):
    """Filters of a transaction or contract export: a date range and, optionally, one customer."""

    date_from = forms.DateField(label=gettext_lazy("From"), required=False)
    date_to = forms.DateField(label=gettext_lazy("To"), required=False)
    customer = forms.IntegerField(label=gettext_lazy("Customer"), required=False, min_value=1)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class ContractExportForm(RelatedExportForm):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), required=False, choices=[("", ""), *Contract.Status.choices]
    )


def export_format(request: HttpRequest) -> str | None:
    """The ``format`` asked for (CSV by default), or None when it is not one we write. These helpers
    answer every export's bad input the same way (customer exports, the audit exports)."""
    fmt = request.GET.get("format", exporting.CSV)
    return fmt if fmt in exporting.FORMATS else None


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "400.html", {"message": message}, status=400)


def bad_format(request: HttpRequest) -> HttpResponse:
    return _bad_request(request, _("Choose CSV or XLSX as the export format."))


def bad_filter(request: HttpRequest, form: forms.Form) -> HttpResponse:
    problems = []
    for name, errors in form.errors.items():
        label = str(form.fields[name].label) if name in form.fields else ""
        problems.extend(f"{label}: {error}" if label else str(error) for error in errors)
    message = _("The export was not made because a filter is not valid: %(problems)s") % {
        "problems": "; ".join(problems)
    }
    return _bad_request(request, message)


def _htmx_download(request: HttpRequest) -> HttpResponse | None:
    """The list's export buttons send the filter form's current values through htmx (the filters
    change without a page load, so a link rendered with the page would be stale); a file cannot be
    swapped into the page, so the browser is sent to the same address to download it."""
    if not request.headers.get("HX-Request"):
        return None
    response = HttpResponse(status=204)
    response["HX-Redirect"] = request.get_full_path()
    return response


def _download(export: exporting.ExportFile) -> StreamingHttpResponse:
    filename, content_type, content = export
    return streaming_download_response(content, filename=filename, content_type=content_type)


@staff_permission_required(PERMISSION)
@require_GET
def customer_export(request: HttpRequest) -> HttpResponse:
    """The customer list as the list page shows it (same scope, filters and order), as CSV or XLSX."""
    fmt = export_format(request)
    if fmt is None:
        return bad_format(request)
    redirect = _htmx_download(request)
    if redirect is not None:
        return redirect
    user = request.user
    custom_fields = list(CustomField.objects.filter(is_active=True))
    form = CustomerFilterForm(request.GET, user=user, custom_fields=custom_fields, choices=ListChoices())
    if not form.is_valid():
        return bad_filter(request, form)
    queryset, data = filter_customers(Customer.objects.visible_to(user), form)
    key, descending = SORTS.get(data.get("sort") or "-id", SORTS["-id"])
    sign = "-" if descending else ""
    queryset = queryset.order_by(*dict.fromkeys([f"{sign}{key}", f"{sign}pk"]))
    export = exporting.export_customers(
        user=user,
        queryset=queryset,
        fmt=fmt,
        detail=exporting.describe_filters(data),
        request=request,
        custom_fields=custom_fields,
    )
    return _download(export)


def _related_export(
    request: HttpRequest, *, model, form_class, date_field: str, view_perm: str, export, order_field: str = ""
) -> HttpResponse:
    if not request.user.has_perm(view_perm):
        raise PermissionDenied(view_perm)
    fmt = export_format(request)
    if fmt is None:
        return bad_format(request)
    redirect = _htmx_download(request)
    if redirect is not None:
        return redirect
    form = form_class(request.GET)
    if not form.is_valid():
        return bad_filter(request, form)
    data = form.cleaned_data
    queryset = model.objects.all()
    if data.get("date_from"):
        queryset = queryset.filter(**{f"{date_field}__gte": data["date_from"]})
    if data.get("date_to"):
        queryset = queryset.filter(**{f"{date_field}__lte": data["date_to"]})
    if data.get("customer"):
        queryset = queryset.filter(customer_id=data["customer"])
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    queryset = queryset.order_by(f"-{order_field or date_field}", "-pk")
    return _download(
        export(
            user=request.user,
            queryset=queryset,
            fmt=fmt,
            detail=exporting.describe_filters(data),
            request=request,
        )
    )


@staff_permission_required(PERMISSION)
@require_GET
def transaction_export(request: HttpRequest) -> HttpResponse:
    """Transactions of the customers the user may see: ``date_from``, ``date_to``, ``customer``."""
    return _related_export(
        request,
        model=Transaction,
        form_class=RelatedExportForm,
        date_field="date",
        view_perm="customers.view_transaction",
        export=exporting.export_transactions,
    )


@staff_permission_required(PERMISSION)
@require_GET
def followup_export(request: HttpRequest) -> HttpResponse:
    """Follow-ups of the customers the user may see, by the day they happened (Asia/Shanghai):
    ``date_from``, ``date_to``, ``customer``."""
    return _related_export(
        request,
        model=FollowUp,
        form_class=RelatedExportForm,
        date_field="happened_at__date",
        order_field="happened_at",
        view_perm="followups.view_followup",
        export=exporting.export_followups,
    )


@staff_permission_required(PERMISSION)
@require_GET
def contract_export(request: HttpRequest) -> HttpResponse:
    """Contracts of the customers the user may see, by start date: ``date_from``, ``date_to``,
    ``customer``, ``status``."""
    return _related_export(
        request,
        model=Contract,
        form_class=ContractExportForm,
        date_field="start_date",
        view_perm="customers.view_contract",
        export=exporting.export_contracts,
    )
