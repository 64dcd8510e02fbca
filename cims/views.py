from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token

from cims.system import broker_reachable

logger = logging.getLogger("cims")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness for load balancers and container probes: the database and the broker answer.

    The answer says nothing more than ok or error — no versions, no names of what failed — so
    that an unauthenticated caller learns nothing; the reason goes to the log instead.
    """
    failed = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means "unhealthy"
        failed.append(f"database ({type(exc).__name__})")
    try:
        if not broker_reachable():
            failed.append("broker (queue folder missing or not writable)")
    except Exception as exc:  # noqa: BLE001 - any broker failure means "unhealthy"
        failed.append(f"broker ({type(exc).__name__})")
    if failed:
        logger.warning("health check failed: %s", ", ".join(failed))
        return JsonResponse({"status": "error"}, status=503)
    return JsonResponse({"status": "ok"})


@requires_csrf_token
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    # The reason is for developers; the user is told what to do.
    return render(request, "403_csrf.html", status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    from cims.api.errors import is_api_path, json_error

    if is_api_path(request):
        return json_error(request, 404, "not_found", _("There is no such API address."))
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        # Plain JSON, no translation machinery: this must answer even when everything else is broken.
        from django.http import JsonResponse

        return JsonResponse(
            {"error": {"code": "server_error", "message": "Internal server error / 服务器内部错误"}}, status=500
        )
    # No context processors, no database: this page must render even when everything else is broken.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
