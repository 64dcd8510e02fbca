"""The backup page. PLACEHOLDER: to be written."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required


@staff_permission_required("cims.view_backup")
@require_http_methods(["GET", "HEAD"])
def backup_list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("backups")


@staff_permission_required("cims.add_backup")
@require_POST
def backup_create(request: HttpRequest) -> HttpResponse:
    return HttpResponse("backup")


@staff_permission_required("cims.view_backup")
@require_http_methods(["GET", "HEAD"])
def backup_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("backup")


@staff_permission_required("cims.restore_backup")
@require_POST
def backup_restore(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("restore")
