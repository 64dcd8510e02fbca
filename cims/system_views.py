"""The system page (运行环境): versions, database, background jobs, backups, disks and warnings."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required
from cims import system


@staff_permission_required("cims.view_system_status")
@require_http_methods(["GET", "HEAD"])
def status(request: HttpRequest) -> HttpResponse:
    facts = system.status_facts(request_is_secure=request.is_secure())
    return render(request, "system/status.html", {"facts": facts})
