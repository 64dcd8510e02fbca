"""Follow-up records (跟进记录), the lifecycle status change and the 360 timeline.

Every customer id goes through customers.access.get_customer_for (404 out of reach, 403 read-only);
writes go through followups.services and customers.services. The quick entry on the 360 page is
htmx: the form posts back here and gets the cleared form plus the refreshed timeline, no reload.
Without script the same URLs serve whole pages.
"""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import staff_permission_required
from customers.access import can_edit, get_customer_for
from customers.services import StatusChangeError, customer_change_status
from followups import services
from followups.forms import FollowUpFilterForm, FollowUpForm, StatusChangeForm
from followups.models import FollowUp
from followups.services import customer_timeline, may_edit_followup

LIST_PAGE = 25


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _invalid_status(request: HttpRequest) -> int:
    # htmx swaps only 2xx answers; a page without script gets 422 with the errors on it.
    return 200 if _is_htmx(request) else 422


def _local_midnight(date: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(date, datetime.time(0), tzinfo=timezone.get_default_timezone())


def _sees_everyones(user) -> bool:
    """Managers (and read-only staff) list every follow-up they may see; reps list their own."""
    return user.has_perm("customers.view_all_customers") or not user.has_perm("followups.add_followup")


def timeline_context(request: HttpRequest, customer, cursor: str | None = None) -> dict:
    """What the timeline fragment needs (also rendered inside the 360 page, customers.views)."""
    page = customer_timeline(customer=customer, user=request.user, cursor=cursor)
    editable_ids = set()
    if request.user.has_perm("followups.change_followup") and can_edit(request.user, customer):
        for item in page.items:
            if item.source == "followup" and may_edit_followup(request.user, item.obj):
                editable_ids.add(item.obj.pk)
    return {"customer": customer, "timeline": page, "editable_followups": editable_ids}


def detail_context(request: HttpRequest, customer, editable: bool) -> dict:
    """The follow-up panel of the 360 page: quick entry (for who may record), status change, timeline."""
    user = request.user
    may_add = editable and user.has_perm("followups.add_followup")
    context = timeline_context(request, customer)
    context.pop("customer")
    context.update(
        {
            "may_add_followup": may_add,
            "may_change_status": editable and user.has_perm("customers.change_customer"),
            "followup_form": FollowUpForm(customer=customer) if may_add else None,
        }
    )
    return context


# --- My follow-ups -------------------------------------------------------------------------------


@staff_permission_required("followups.view_followup")
@require_GET
def followup_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    everyone = _sees_everyones(user)
    form = FollowUpFilterForm(request.GET or None, show_rep=everyone)
    followups = FollowUp.objects.visible_to(user).select_related("customer", "contact", "created_by")
    if not everyone:
        followups = followups.filter(created_by=user)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["kind"]:
            followups = followups.filter(kind=data["kind"])
        if data["date_from"]:
            followups = followups.filter(happened_at__gte=_local_midnight(data["date_from"]))
        if data["date_to"]:
            followups = followups.filter(happened_at__lt=_local_midnight(data["date_to"] + datetime.timedelta(days=1)))
        if data.get("rep"):
            followups = followups.filter(created_by=data["rep"])
    page = Paginator(followups.order_by("-happened_at", "-id"), LIST_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "everyone": everyone, "query": query.urlencode()}
    return render(request, "followups/followup_list.html", context)


# --- Quick entry and edit ------------------------------------------------------------------------


def _form_context(customer, form, followup=None, *, quick: bool = False) -> dict:
    return {"customer": customer, "form": form, "followup": followup, "quick": quick}


@staff_permission_required("followups.add_followup")
@require_http_methods(["GET", "POST"])
def followup_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    if request.method == "GET":
        # ?kind=return_visit (from the return-visit list) preselects the type.
        kind = request.GET.get("kind")
        form = FollowUpForm(customer=customer, initial={"kind": kind} if kind in FollowUp.Kind.values else None)
        template = "followups/_partials/followup_form.html" if _is_htmx(request) else "followups/followup_form.html"
        return render(request, template, _form_context(customer, form, quick=_is_htmx(request)))
    form = FollowUpForm(request.POST, customer=customer)
    if form.is_valid():
        try:
            services.followup_create(customer=customer, by=request.user, **form.values())
        except ValidationError as error:  # a rule that changed between the form and the save
            form.add_error(None, error.messages)
        else:
            if not _is_htmx(request):
                messages.success(request, _("The follow-up was recorded."))
                return redirect("customers:detail", pk=customer.pk)
            context = timeline_context(request, customer)
            context.update(_form_context(customer, FollowUpForm(customer=customer), quick=True))
            context["saved"] = True
            return render(request, "followups/_partials/followup_saved.html", context)
    template = "followups/_partials/followup_form.html" if _is_htmx(request) else "followups/followup_form.html"
    context = _form_context(customer, form, quick=_is_htmx(request))
    return render(request, template, context, status=_invalid_status(request))


@staff_permission_required("followups.change_followup")
@require_http_methods(["GET", "POST"])
def followup_edit(request: HttpRequest, pk: int) -> HttpResponse:
    followup = get_object_or_404(FollowUp.objects.visible_to(request.user), pk=pk)
    customer = get_customer_for(request.user, followup.customer_id, edit=True)
    followup.customer = customer
    if not may_edit_followup(request.user, followup):
        raise PermissionDenied("not the author")
    form = FollowUpForm(request.POST or None, instance=followup, customer=customer)
    if request.method == "POST" and form.is_valid():
        try:
            services.followup_update(followup=followup, by=request.user, **form.values())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, _("The follow-up was saved."))
            return redirect("customers:detail", pk=customer.pk)
    status = _invalid_status(request) if request.method == "POST" else 200
    return render(request, "followups/followup_form.html", _form_context(customer, form, followup), status=status)


# --- Lifecycle status ----------------------------------------------------------------------------


@staff_permission_required("customers.change_customer")
@require_http_methods(["GET", "POST"])
def status_change(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    form = StatusChangeForm(request.POST or None, current=customer.status)
    if request.method == "POST" and form.is_valid():
        try:
            customer_change_status(
                customer=customer, to=form.cleaned_data["to"], by=request.user, reason=form.cleaned_data["reason"]
            )
        except StatusChangeError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, _("The customer is now “%(status)s”.") % {"status": customer.get_status_display()}
            )
            return redirect("customers:detail", pk=customer.pk)
    status = _invalid_status(request) if request.method == "POST" else 200
    return render(request, "followups/status_form.html", {"customer": customer, "form": form}, status=status)


# --- The 360 timeline ----------------------------------------------------------------------------


@staff_permission_required("customers.view_customer")
@require_GET
def timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: a page of the customer's timeline (the first, or the one after ``?before=``)."""
    customer = get_customer_for(request.user, pk)
    context = timeline_context(request, customer, request.GET.get("before"))
    template = (
        "followups/_partials/timeline_items.html" if request.GET.get("before") else "followups/_partials/timeline.html"
    )
    return render(request, template, context)


@staff_permission_required("followups.view_due_return_visits")
@require_GET
def return_visits(request: HttpRequest) -> HttpResponse:
    """Managers' list of customers due a return visit (回访) after a sale (followups.return_visits)."""
    from django.conf import settings

    from followups.forms import ReturnVisitFilterForm
    from followups.return_visits import due_date, return_visits_due

    form = ReturnVisitFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    window = data.get("window") or 90
    upcoming = data.get("show") == "upcoming"
    customers = return_visits_due(user=request.user, window_days=window, rep=data.get("rep"), upcoming=upcoming)
    page = Paginator(customers, LIST_PAGE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    for customer in page:
        customer.due_on = due_date(customer.last_sale)
        customer.days_overdue = (today - customer.due_on).days
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "upcoming": upcoming,
        "after_days": settings.RETURN_VISIT_AFTER_DAYS,
        "query": query.urlencode(),
    }
    return render(request, "followups/return_visits.html", context)
