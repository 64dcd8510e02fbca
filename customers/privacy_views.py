"""Personal-data pages: consents on the 360 page and in the portal, a customer's copy of their data,
correction and erasure requests, and the managers' approval queue.

Staff views resolve a customer through ``customers.access.get_customer_for`` (404 out of reach,
403 read-only); portal views take the customer from the logged-in user (``portal_view``), never
from the URL or a form. Writes go through ``customers.privacy``, each in one transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from accounts.portal import portal_view
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from customers import privacy
from customers.access import can_edit, get_customer_for, scope_filter
from customers.attachments import download_response
from customers.forms_list import CursorForm
from customers.forms_privacy import (
    ConsentForm,
    DataRequestFilterForm,
    DecisionForm,
    PortalConsentForm,
    PortalRequestForm,
)
from customers.models import Consent, Customer, DataRequest

CONSENTS_PANEL = "customers/_partials/consents.html"
PORTAL_PAGE = "accounts/portal_privacy.html"
# Entries shown on the Consents tab (a customer has a handful; the newest first).
CONSENT_ROWS = 50
REQUEST_ROWS = 10
PER_PAGE = 30


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- Staff: the Consents tab of the 360 page ------------------------------------------------------


def _consents_panel(request: HttpRequest, customer: Customer, *, form=None, saved: str = "", status=200):
    user = request.user
    may_add = user.has_perm("customers.add_consent") and can_edit(user, customer) and customer.erased_at is None
    current = privacy.current_consents(customer)
    context = {
        "customer": customer,
        "entries": list(customer.consents.select_related("recorded_by").order_by("-recorded_at", "-id")[:CONSENT_ROWS]),
        "current": [(value, label, current.get(value)) for value, label in Consent.Purpose.choices],
        "needs_sensitive_consent": privacy.needs_sensitive_consent(customer, current),
        "consent_form": (form or ConsentForm()) if may_add else None,
        "consent_saved": saved,
        "notice_version": settings.PRIVACY_NOTICE_VERSION,
        "data_requests": (
            list(customer.data_requests.order_by("-requested_at", "-id")[:REQUEST_ROWS])
            if user.has_perm("customers.view_datarequest")
            else None
        ),
    }
    return render(request, CONSENTS_PANEL, context, status=status)


@staff_permission_required("customers.view_consent")
@require_http_methods(["GET", "HEAD", "POST"])
def consents(request: HttpRequest, pk: int) -> HttpResponse:
    """The Consents tab (htmx fragment); POST adds an entry (who may edit the customer only)."""
    user = request.user
    if request.method != "POST":
        return _consents_panel(request, get_customer_for(user, pk))
    if not user.has_perm("customers.add_consent"):
        raise PermissionDenied("customers.add_consent")
    customer = get_customer_for(user, pk, edit=True)
    form = ConsentForm(request.POST)
    saved = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            consent = privacy.consent_record(
                customer=customer, purpose=data["purpose"], granted=data["decision"], channel=data["channel"], by=user
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            saved = _("Recorded: %(purpose)s — %(decision)s.") % {
                "purpose": consent.get_purpose_display(),
                "decision": _("granted") if consent.granted else _("withdrawn"),
            }
            form = None
    if _is_htmx(request):
        return _consents_panel(request, customer, form=form, saved=saved)
    if saved:
        messages.success(request, saved)
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect(reverse("customers:detail", args=[customer.pk]) + "#tab-consents")


# --- Staff: the requests and their decisions --------------------------------------------------------


def _visible_requests(user):
    """Requests of the customers ``user`` may see (the recycle bin's and erased ones included)."""
    scope = scope_filter(user, "view")
    queryset = DataRequest.objects.all()
    if scope != Q():
        queryset = queryset.filter(customer_id__in=Customer.all_objects.filter(scope).values("pk"))
    return queryset


@staff_permission_required("customers.view_datarequest")
@require_http_methods(["GET", "HEAD"])
def data_requests(request: HttpRequest) -> HttpResponse:
    form = DataRequestFilterForm(request.GET or None)
    data = form.valid_data()
    queryset = _visible_requests(request.user)
    if data.get("kind"):
        queryset = queryset.filter(kind=data["kind"])
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    rows = queryset.select_related("customer", "requested_by", "decided_by").only(
        "id",
        "kind",
        "status",
        "requested_at",
        "decided_at",
        "completed_at",
        "customer__id",
        "customer__code",
        "customer__name",
        "customer__erased_at",
        "requested_by__id",
        "requested_by__username",
        "requested_by__name",
        "requested_by__first_name",
        "requested_by__last_name",
        "decided_by__id",
        "decided_by__username",
        "decided_by__name",
        "decided_by__first_name",
        "decided_by__last_name",
    )
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="requested_at", descending=True, per_page=PER_PAGE).page(
        after=after, before=before
    )
    context = {
        "form": form,
        "page": page,
        "count": capped_count(queryset, COUNT_CAP),
        "pending": capped_count(_visible_requests(request.user).filter(status=DataRequest.Status.PENDING), COUNT_CAP),
        **page_links(request, page),
    }
    return render(request, "customers/privacy/request_list.html", context)


def _decide(form: DecisionForm, data_request: DataRequest, by) -> str:
    """Carry out a valid decision; the success message (PrivacyError when the rules refuse)."""
    action = form.cleaned_data["action"]
    code = data_request.customer.code
    if action == DecisionForm.REFUSE:
        privacy.data_request_refuse(data_request=data_request, by=by, reason=form.cleaned_data["reason"])
        return _("The request was refused; the customer sees the reason.")
    if action == DecisionForm.DONE:
        privacy.data_request_complete(data_request=data_request, by=by, note=form.cleaned_data["reason"])
        return _("The correction is marked done; the customer sees the note.")
    privacy.data_request_approve(data_request=data_request, by=by)
    if data_request.kind == DataRequest.Kind.ERASURE:
        return _("The personal data of %(code)s was erased; only the pseudonymous record remains.") % {"code": code}
    return _("The correction was approved. Fix the record, then mark the request done with a note.")


@staff_permission_required("customers.view_datarequest")
@require_http_methods(["GET", "HEAD", "POST"])
def data_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    data_request = get_object_or_404(
        _visible_requests(user).select_related("customer", "requested_by", "decided_by"), pk=pk
    )
    may_decide = user.has_perm(privacy.DECIDE_PERMISSION)
    form = DecisionForm(data_request=data_request)
    status = 200
    if request.method == "POST":
        if not may_decide:
            raise PermissionDenied(privacy.DECIDE_PERMISSION)
        form = DecisionForm(request.POST, data_request=data_request)
        if form.is_valid():
            try:
                done = _decide(form, data_request, user)
            except privacy.PrivacyError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, done)
            return redirect("customers:data_request", pk=data_request.pk)
        status = 400
    Status, Kind = DataRequest.Status, DataRequest.Kind
    open_request = data_request.status in (Status.PENDING, Status.APPROVED)
    context = {
        "data_request": data_request,
        "customer": data_request.customer,
        "form": form,
        "may_decide": may_decide and open_request and data_request.kind != Kind.EXPORT,
        "may_approve": data_request.status == Status.PENDING,
        "may_refuse": data_request.status == Status.PENDING,
        "may_complete": data_request.kind == Kind.CORRECTION,
        "customer_visible": Customer.objects.visible_to(user).filter(pk=data_request.customer_id).exists(),
        "others": list(
            DataRequest.objects.filter(customer_id=data_request.customer_id)
            .exclude(pk=data_request.pk)
            .order_by("-requested_at", "-id")[:REQUEST_ROWS]
        ),
    }
    return render(request, "customers/privacy/request_detail.html", context, status=status)


# --- Portal ---------------------------------------------------------------------------------------------


def _portal_page(request: HttpRequest, *, correction=None, erasure=None, status=200) -> HttpResponse:
    customer = request.portal_customer
    current = privacy.current_consents(customer)
    marketing = current.get(Consent.Purpose.MARKETING)
    requests = list(customer.data_requests.order_by("-requested_at", "-id")[:50])
    context = {
        "customer": customer,
        "current": [(value, label, current.get(value)) for value, label in Consent.Purpose.choices],
        "marketing_granted": bool(marketing and marketing.granted),
        "marketing_recorded": marketing is not None,
        "data_requests": requests,
        "erasure_pending": any(
            r.kind == DataRequest.Kind.ERASURE and r.status in (DataRequest.Status.PENDING, DataRequest.Status.APPROVED)
            for r in requests
        ),
        "correction_form": correction or PortalRequestForm(initial={"kind": DataRequest.Kind.CORRECTION}),
        "erasure_form": erasure or PortalRequestForm(initial={"kind": DataRequest.Kind.ERASURE}),
        "formats": privacy.EXPORT_FORMATS,
    }
    return render(request, PORTAL_PAGE, context, status=status)


@portal_view
@require_http_methods(["GET", "HEAD"])
def portal_privacy(request: HttpRequest) -> HttpResponse:
    return _portal_page(request)


@portal_view
@require_POST
def portal_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The customer's copy of their data, as a download (POST: it is recorded, and never prefetched)."""
    if fmt not in privacy.EXPORT_FORMATS:
        raise Http404("unknown format")
    copy = privacy.customer_export(customer=request.portal_customer, fmt=fmt, by=request.user, request=request)
    return download_response(copy.content, filename=copy.filename, content_type=copy.content_type)


@portal_view
@require_POST
def portal_request(request: HttpRequest) -> HttpResponse:
    form = PortalRequestForm(request.POST)
    if not form.is_valid():
        if form.data.get("kind") == DataRequest.Kind.ERASURE:
            return _portal_page(request, erasure=form, status=400)
        return _portal_page(request, correction=form, status=400)
    kind = form.cleaned_data["kind"]
    try:
        privacy.data_request_file(
            customer=request.portal_customer, kind=kind, by=request.user, details=form.cleaned_data["details"]
        )
    except privacy.PrivacyError as error:
        messages.error(request, str(error))
    else:
        if kind == DataRequest.Kind.ERASURE:
            messages.success(request, _("Your erasure request was sent. You will see the decision on this page."))
        else:
            messages.success(request, _("Your correction request was sent. You will see the outcome on this page."))
    return redirect("portal:privacy")


@portal_view
@require_POST
def portal_consent_withdraw(request: HttpRequest) -> HttpResponse:
    """Withdraw marketing consent (effective at once: campaigns leave the customer out), or give it again."""
    form = PortalConsentForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("portal:privacy")
    granted = form.cleaned_data["decision"]
    privacy.consent_record(
        customer=request.portal_customer,
        purpose=Consent.Purpose.MARKETING,
        granted=granted,
        channel=Consent.Channel.PORTAL,
        by=request.user,
    )
    if granted:
        messages.success(request, _("Thank you: you agreed to receive marketing messages."))
    else:
        messages.success(request, _("Done: you will receive no more marketing messages from us."))
    return redirect("portal:privacy")
