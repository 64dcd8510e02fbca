"""The audit views. PLACEHOLDER: to be written."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from accounts.access import staff_permission_required


@staff_permission_required("cims.view_change_history")
@require_http_methods(["GET", "HEAD"])
def history(request: HttpRequest) -> HttpResponse:
    return HttpResponse("history")


@staff_permission_required("cims.view_personaldataaccess")
@require_http_methods(["GET", "HEAD"])
def access_log(request: HttpRequest) -> HttpResponse:
    return HttpResponse("access log")


@staff_permission_required("cims.export_personaldataaccess")
@require_http_methods(["GET", "HEAD"])
def access_log_export(request: HttpRequest) -> HttpResponse:
    return HttpResponse("export")
