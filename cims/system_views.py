"""The system page (运行环境). PLACEHOLDER: to be written."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required


@staff_permission_required("cims.view_system_status")
@require_http_methods(["GET", "HEAD"])
def status(request: HttpRequest) -> HttpResponse:
    return HttpResponse("system status")
