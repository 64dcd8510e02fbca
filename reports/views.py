from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.access import staff_required
from accounts.roles import ROLE_LABELS
from cims.models import Heartbeat
from cims.navigation import visible_items


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff home page. Key figures per role arrive with the reports issue; until then it shows
    the user's roles, the modules they may use and whether background jobs are alive."""
    context = {
        "roles": [ROLE_LABELS.get(name, name) for name in request.user.groups.values_list("name", flat=True)],
        "modules": [item for item in visible_items(request.user) if item["url"] != request.path],
        "heartbeat": Heartbeat.objects.filter(name="celery").first(),
    }
    return render(request, "reports/dashboard.html", context)
