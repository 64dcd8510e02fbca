"""The customer pool (公海): browse (masked for everyone), claim, release. Writes in customers/pool.py."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_permission_required
from cims import masking
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from customers import pool as services
from customers.access import get_customer_for
from customers.forms_list import CursorForm
from customers.models import Customer, CustomerLevel, Province

PER_PAGE = 30
POOL_ONLY = [
    "id",
    "code",
    "kind",
    "name",
    "company",
    "status",
    "mobile",
    "city",
    "created_at",
    "province__id",
    "province__name",
    "level__id",
    "level__name",
]


class PoolFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Name"), required=False, max_length=100)
    province = forms.ModelChoiceField(label=gettext_lazy("Province"), queryset=Province.objects.all(), required=False)
    level = forms.ModelChoiceField(
        label=gettext_lazy("Level"), queryset=CustomerLevel.objects.filter(is_active=True), required=False
    )


@staff_permission_required("customers.claim_customer")
@require_GET
def pool(request: HttpRequest) -> HttpResponse:
    form = PoolFilterForm(request.GET or None)
    queryset = services.pool_customers()
    if form.is_valid():
        data = form.cleaned_data
        if data["q"].strip():
            queryset = queryset.search_name(data["q"].strip())
        if data["province"]:
            queryset = queryset.filter(province=data["province"])
        if data["level"]:
            queryset = queryset.filter(level=data["level"])
    elif form.is_bound:
        queryset = queryset.none()
    rows = queryset.select_related("province", "level").only(*POOL_ONLY)
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="pk", descending=True, per_page=PER_PAGE).page(after=after, before=before)
    # Masked for everyone, whatever their view_personal_data: a pool customer is nobody's yet.
    for customer in page.object_list:
        customer.masked_mobile = masking.mask_phone(customer.mobile or "")
    context = {
        "form": form,
        "page": page,
        "count": capped_count(queryset, COUNT_CAP),
        "owned": services.owned_count(request.user),
        "limit": settings.POOL_MAX_OWNED,
        **page_links(request, page),
    }
    return render(request, "customers/pool.html", context)


@staff_permission_required("customers.claim_customer")
@require_POST
def pool_claim(request: HttpRequest, pk: int) -> HttpResponse:
    if not Customer.objects.filter(pk=pk).exists():
        raise Http404("no such customer")
    try:
        customer = services.customer_claim(customer_id=pk, by=request.user)
    except services.PoolError as error:
        messages.error(request, str(error))
        return redirect("customers:pool")
    messages.success(request, _("%(code)s %(name)s is now yours.") % {"code": customer.code, "name": customer.name})
    return redirect("customers:detail", pk=customer.pk)


@staff_permission_required("customers.change_customer")
@require_POST
def pool_release(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    if not services.may_release(request.user, customer):
        raise PermissionDenied("only the owner or a manager releases a customer")
    try:
        services.customer_release(customer=customer, by=request.user)
    except services.PoolError as error:
        messages.error(request, str(error))
        return redirect("customers:detail", pk=customer.pk)
    messages.success(request, _("%(code)s went back to the customer pool.") % {"code": customer.code})
    if Customer.objects.visible_to(request.user).filter(pk=customer.pk).exists():
        return redirect("customers:detail", pk=customer.pk)
    return redirect("customers:pool" if request.user.has_perm("customers.claim_customer") else "customers:list")
