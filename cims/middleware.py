from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from cims.views import healthz


class HealthCheckMiddleware:
    """Answer ``/healthz`` before anything else runs.

    Container and load-balancer probes reach the app by its internal address (127.0.0.1, a pod
    IP), which is rightly not in ALLOWED_HOSTS and not on HTTPS; answering first keeps host
    validation and the HTTPS redirect strict for every real page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
