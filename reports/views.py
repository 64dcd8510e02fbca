from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import staff_required
from accounts.roles import ROLE_LABELS
from cims.models import Heartbeat
from cims.navigation import visible_items
from customers.models import Product
from followups.models import Task
from followups.renewals import expiring_contracts_for

OVERDUE_SHOWN = 5
EXPIRING_SHOWN = 5
LOW_STOCK_SHOWN = 5


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff home page. Key figures per role arrive with the reports issue; until then it shows
    the user's roles, the modules they may use and whether background jobs are alive."""
    context = {
        "roles": [ROLE_LABELS.get(name, name) for name in request.user.groups.values_list("name", flat=True)],
        "modules": [item for item in visible_items(request.user) if item["url"] != request.path],
        "heartbeat": Heartbeat.objects.filter(name="celery").first(),
    }
    if request.user.has_perm("followups.view_task"):
        overdue = Task.objects.open().filter(assignee=request.user, due_at__lt=timezone.now())
        context["overdue_count"] = overdue.count()
        if context["overdue_count"]:
            context["overdue_tasks"] = list(overdue.select_related("customer").order_by("due_at", "pk")[:OVERDUE_SHOWN])
    if request.user.has_perm("customers.view_contract"):
        expiring = expiring_contracts_for(request.user)
        context["expiring_count"] = expiring.count()
        if context["expiring_count"]:
            context["expiring_contracts"] = list(
                expiring.select_related("customer")
                .only("id", "number", "title", "end_date", "customer__id", "customer__code", "customer__name")
                .order_by("end_date", "pk")[:EXPIRING_SHOWN]
            )
            context["renewal_days"] = settings.CONTRACT_RENEWAL_DAYS
    if request.user.has_perm("customers.view_product"):
        low_stock = Product.objects.low_stock()
        context["low_stock_count"] = low_stock.count()
        if context["low_stock_count"]:
            context["low_stock_products"] = list(
                low_stock.only("id", "code", "name", "unit", "stock_quantity", "low_stock_threshold").order_by(
                    "stock_quantity", "code"
                )[:LOW_STOCK_SHOWN]
            )
    return render(request, "reports/dashboard.html", context)
