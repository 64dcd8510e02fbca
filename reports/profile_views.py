"""Customer profiles (客户画像): the automatic tags, who carries them and why, and the tasks they suggest."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required


@staff_required
@require_GET
def profiles(request: HttpRequest) -> HttpResponse:
    if not (request.user.has_perm("reports.view_profiletag") or request.user.has_perm("reports.view_all_reports")):
        raise PermissionDenied
    return render(request, "reports/profiles.html", {})


@staff_required
@require_GET
def profile_tag(request: HttpRequest, pk: int) -> HttpResponse:
    raise PermissionDenied


@staff_required
@require_POST
def profile_tasks(request: HttpRequest, pk: int) -> HttpResponse:
    raise PermissionDenied
