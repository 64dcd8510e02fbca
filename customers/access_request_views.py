"""Access-request pages (数据访问权限审批): the list, asking, a request with its decision.

A request is resolved through ``AccessRequest.objects.visible_to(user)``: requesters reach their
own (anyone else's is a 404), deciders every one. Writes go through ``customers.access_requests``.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from customers import access_requests as services
from customers.forms_access_request import AccessDecisionForm, AccessRequestFilterForm, AccessRequestForm
from customers.forms_list import CursorForm
from customers.models import AccessRequest, Customer

PER_PAGE = 30
VIEW_PERMISSION = "customers.view_accessrequest"


def _request_for(user, pk: int) -> AccessRequest:
    return get_object_or_404(
        AccessRequest.objects.visible_to(user).select_related("customer", "requester", "decided_by", "ended_by"),
        pk=pk,
    )


@staff_permission_required(VIEW_PERMISSION)
@require_http_methods(["GET", "HEAD"])
def access_requests(request: HttpRequest) -> HttpResponse:
    user = request.user
    may_decide = user.has_perm(services.DECIDE_PERMISSION)
    form = AccessRequestFilterForm(request.GET or None)
    data = form.valid_data()
    show = data.get("show") or (form.PENDING if may_decide else form.MINE)
    if not may_decide:
        show = form.MINE  # the queue and everyone's requests are the deciders'
    queryset = AccessRequest.objects.visible_to(user)
    if show == form.MINE:
        queryset = queryset.filter(requester=user)
    elif show == form.PENDING:
        queryset = queryset.filter(status=AccessRequest.Status.PENDING)
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    rows = queryset.select_related("customer", "requester", "decided_by").only(
        "id",
        "kind",
        "status",
        "with_edit",
        "days",
        "created_at",
        "decided_at",
        "expires_at",
        "customer__id",
        "customer__code",
        "requester__id",
        "requester__username",
        "requester__name",
        "requester__first_name",
        "requester__last_name",
        "decided_by__id",
        "decided_by__username",
        "decided_by__name",
        "decided_by__first_name",
        "decided_by__last_name",
    )
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="created_at", descending=True, per_page=PER_PAGE).page(after=after, before=before)
    context = {
        "form": form,
        "show": show,
        "may_decide": may_decide,
        "page": page,
        "count": capped_count(queryset, COUNT_CAP),
        "pending": (
            capped_count(AccessRequest.objects.filter(status=AccessRequest.Status.PENDING), COUNT_CAP)
            if may_decide
            else None
        ),
        **page_links(request, page),
    }
    return render(request, "customers/access_requests/list.html", context)


@staff_permission_required(services.ASK_PERMISSION)
@require_http_methods(["GET", "HEAD", "POST"])
def access_request_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        initial = {}
        if request.GET.get("kind") in AccessRequest.Kind.values:
            initial["kind"] = request.GET["kind"]
        if request.GET.get("code"):
            initial["code"] = request.GET["code"][:32]
        form = AccessRequestForm(initial=initial)
        return render(request, "customers/access_requests/new.html", {"form": form})
    form = AccessRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            filed = services.access_request_file(
                by=request.user,
                kind=data["kind"],
                customer=form.customer,
                with_edit=data["with_edit"],
                days=data["days"],
                reason=data["reason"],
                request=request,
            )
        except services.AccessRequestError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Your request was filed; a manager will decide it."))
            return redirect("customers:access_request_detail", pk=filed.pk)
    return render(request, "customers/access_requests/new.html", {"form": form}, status=400)


def _detail(request: HttpRequest, request_row: AccessRequest, *, form=None, status=200) -> HttpResponse:
    user = request.user
    Status = AccessRequest.Status
    may_decide = (
        user.has_perm(services.DECIDE_PERMISSION)
        and request_row.status == Status.PENDING
        and request_row.requester_id != user.pk
    )
    own = request_row.requester_id == user.pk
    may_end = request_row.status == Status.APPROVED and (own or user.has_perm(services.DECIDE_PERMISSION))
    customer_visible = (
        request_row.customer_id is not None
        and Customer.objects.visible_to(user).filter(pk=request_row.customer_id).exists()
    )
    context = {
        "item": request_row,
        "own": own,
        "form": (form or AccessDecisionForm(request_row=request_row)) if may_decide else None,
        "own_pending": own and request_row.status == Status.PENDING,
        "may_withdraw": own and request_row.status == Status.PENDING,
        "may_end": may_end,
        "is_active": request_row.is_active,
        "customer_visible": customer_visible,
    }
    return render(request, "customers/access_requests/detail.html", context, status=status)


@staff_permission_required(VIEW_PERMISSION)
@require_http_methods(["GET", "HEAD"])
def access_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _request_for(request.user, pk))


@staff_permission_required(services.DECIDE_PERMISSION)
@require_POST
def access_request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    request_row = _request_for(request.user, pk)
    form = AccessDecisionForm(request.POST, request_row=request_row)
    if not form.is_valid():
        return _detail(request, request_row, form=form, status=400)
    data = form.cleaned_data
    try:
        if data["action"] == form.APPROVE:
            services.access_request_approve(
                request_row=request_row, by=request.user, days=data["days"], note=data["note"], request=request
            )
            done = _("Approved: the grant ends on %(end)s.") % {
                "end": timezone.localtime(request_row.expires_at).strftime("%Y-%m-%d %H:%M")
            }
        else:
            services.access_request_refuse(request_row=request_row, by=request.user, note=data["note"], request=request)
            done = _("The request was refused; the requester sees your note.")
    except services.AccessRequestError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("customers:access_request_detail", pk=request_row.pk)


@staff_permission_required(VIEW_PERMISSION)
@require_POST
def access_request_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """A decider revokes a grant; the requester withdraws a pending request or gives up a grant."""
    request_row = _request_for(request.user, pk)
    try:
        ended = services.access_request_revoke(request_row=request_row, by=request.user, request=request)
    except services.AccessRequestError as error:
        messages.error(request, str(error))
    else:
        if ended.status == AccessRequest.Status.CANCELLED:
            messages.success(request, _("Your request was withdrawn."))
        else:
            messages.success(request, _("The grant was ended."))
    return redirect("customers:access_request_detail", pk=request_row.pk)
