"""Duplicates already in the archive, and merging two of them (issue 4).

Both pages need ``customers.merge_customers`` (managers and administrators). The finder and the
merge service live in ``customers.merging``; every customer id goes through ``get_customer_for``
(404 out of reach or in the recycle bin, 403 when the user may only read it).
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required
from customers import merging
from customers.access import get_customer_for
from customers.forms_merge import DuplicatePageForm, MergeForm, older_of
from customers.merging import MergeError
from customers.models import Customer, Tag

_MERGE_RELATED = (
    "owner",
    "level",
    "source",
    "customer_type",
    "industry",
    "province",
    "enterprise_type",
    "enterprise_nature",
)


@staff_permission_required("customers.merge_customers")
@require_http_methods(["GET", "HEAD"])
def duplicate_list(request: HttpRequest) -> HttpResponse:
    form = DuplicatePageForm(request.GET or None)
    page = merging.duplicate_groups_page(user=request.user, page=form.page_number())
    return render(request, "customers/duplicates.html", {"page": page})


@staff_permission_required("customers.merge_customers")
@require_http_methods(["GET", "POST"])
def customer_merge(request: HttpRequest, pk: int, other: int) -> HttpResponse:
    user = request.user
    if pk == other:
        messages.error(request, _("A customer cannot be merged with itself."))
        return redirect("customers:duplicates")
    queryset = Customer.objects.select_related(*_MERGE_RELATED).prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("id", "name", "color"))
    )
    first = get_customer_for(user, pk, edit=True, queryset=queryset)
    second = get_customer_for(user, other, edit=True, queryset=queryset)
    form = MergeForm(request.POST if request.method == "POST" else None, user=user, first=first, second=second)
    if request.method == "POST" and form.is_valid():
        survivor, merged, choices = form.merge_arguments()
        try:
            survivor = merging.customer_merge(survivor=survivor, merged=merged, choices=choices, by=user)
        except MergeError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                _("%(merged)s was merged into %(survivor)s; it stays in the recycle bin for the record.")
                % {"merged": merged.code, "survivor": survivor.code},
            )
            return redirect("customers:detail", pk=survivor.pk)
    tags = {tag.pk: tag for tag in [*first.tags.all(), *second.tags.all()]}
    counts = merging.related_counts([first, second])
    context = {
        "form": form,
        "records": [
            {"customer": c, "related": counts[c.pk], "older": c is older_of(first, second)} for c in (first, second)
        ],
        "first": first,
        "second": second,
        "rows": form.bound_rows(),
        "tags": sorted(tags.values(), key=lambda t: t.name),
    }
    return render(request, "customers/merge.html", context)
