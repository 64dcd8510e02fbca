from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.access import staff_required
from accounts.roles import ROLE_LABELS
from cims.models import Heartbeat
from cims.navigation import visible_items
from followups.models import Task

OVERDUE_SHOWN = 5


@staff_required
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
    return render(request, "reports/dashboard.html", context)
