"""Rate limits on searches and exports, and no-store on every page served to a signed-in user.

Rate limits (``RateLimitMiddleware``)
    Searches and lookups (a term that may be a phone number or a name) are limited to
    ``RATE_LIMIT_SEARCH_PER_MINUTE`` a minute; exports and downloads of personal data to
    ``RATE_LIMIT_EXPORT_PER_HOUR`` an hour. Counters are fixed windows in Django's cache, one per
    user (or per client address when nobody is signed in) and window; beyond the limit the answer
    is HTTP 429 with ``Retry-After`` and a page (for htmx a fragment) saying how long to wait.
    The views limited are listed once, in ``RULES``, by URL name. The counters are only shared
    between processes when the cache is (Redis when REDIS_URL is set); the quick start's local
    memory cache counts per process. Login throttling is django-axes' (accounts.views.locked_out).

No-store (``NoStoreMiddleware``)
    Pages for signed-in users (staff and portal) hold personal data: they get
    ``Cache-Control: private, no-store`` so that neither a shared proxy nor the browser's history
    on a shared computer keeps them, unless the view chose its own Cache-Control. Static files
    (answered by WhiteNoise before this runs) and anonymous pages are left alone.

docs/security.md describes both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cims.request_ip import client_ip


@dataclass(frozen=True)
class Limit:
    key: str
    setting: str  # the number allowed per window
    window: int  # seconds

    @property
    def allowed(self) -> int:
        return getattr(settings, self.setting)


SEARCH = Limit("search", "RATE_LIMIT_SEARCH_PER_MINUTE", 60)
EXPORT = Limit("export", "RATE_LIMIT_EXPORT_PER_HOUR", 3600)
API = Limit("api", "API_RATE_LIMIT_PER_MINUTE", 60)  # per token: cims.api.throttling


def _param(name: str) -> Callable[[HttpRequest], bool]:
    """Counted when the query string has a non-blank ``name`` (a list without a search is not one)."""

    def applies(request: HttpRequest) -> bool:
        return bool(request.GET.get(name, "").strip())

    return applies


def _always(request: HttpRequest) -> bool:
    return True


def _file(request: HttpRequest) -> bool:
    # The list's export buttons first ask through htmx, which answers 204 + HX-Redirect to the same
    # address (customers.export_views._htmx_download): only the request that gets the file counts.
    return not request.headers.get("HX-Request")


# URL name → (limit, when it applies). The one list of what is rate-limited.
RULES: dict[str, tuple[Limit, Callable[[HttpRequest], bool]]] = {
    # Searches and lookups: by name, phone, e-mail or code.
    "customers:list": (SEARCH, _param("q")),
    "customers:phonebook": (SEARCH, _param("q")),
    "customers:recycle_bin": (SEARCH, _param("q")),
    "customers:pool": (SEARCH, _param("q")),
    "customers:duplicate_check": (SEARCH, _always),  # answers "is there a customer with this phone?"
    "complaints:list": (SEARCH, _param("q")),
    "complaints:create": (SEARCH, _param("code")),  # the customer lookup by code before filing
    # Exports and downloads of personal data.
    "customers:export": (EXPORT, _file),
    "customers:export_transactions": (EXPORT, _file),
    "customers:export_contracts": (EXPORT, _file),
    "customers:export_followups": (EXPORT, _file),
    "customers:import_errors": (EXPORT, _file),  # the rows of an import that failed, in full
    "customers:attachment_download": (EXPORT, _file),
    "complaints:attachment": (EXPORT, _file),
    "portal:ticket_attachment": (EXPORT, _file),
    "portal:privacy_export": (EXPORT, _file),
    "audit:access_log_export": (EXPORT, _file),
    "audit:history_export": (EXPORT, _file),
    "lottery:winners_export": (EXPORT, _file),
    "reports:report": (EXPORT, _param("format")),  # ?format=xlsx|csv downloads the report
}


def _who(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"u{user.pk}"
    return f"ip{client_ip(request) or 'unknown'}"


def hit(limit: Limit, who: str, *, now: float | None = None, allowed: int | None = None) -> int | None:
    """Count one request of ``who`` against ``limit``: None when allowed, else the seconds to wait.
    ``allowed`` overrides the limit's setting (an API token with a limit of its own)."""
    now = time.time() if now is None else now
    allowed = limit.allowed if allowed is None else allowed
    bucket = int(now // limit.window)
    key = f"ratelimit:{limit.key}:{who}:{bucket}"
    # add() creates the window's counter only if absent; incr() is atomic in Redis (and locmem).
    cache.add(key, 0, timeout=limit.window + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add() and incr()
        cache.set(key, 1, timeout=limit.window + 5)
        count = 1
    if count <= allowed:
        return None
    return max(1, math.ceil((bucket + 1) * limit.window - now))


def _wait_text(seconds: int) -> str:
    if seconds >= 120:
        minutes = math.ceil(seconds / 60)
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}


def too_many_requests(request: HttpRequest, limit: Limit, retry_after: int) -> HttpResponse:
    """HTTP 429: the full page, or for htmx the fragment swapped where the results would go."""
    if limit is SEARCH:
        heading = _("Too many searches")
        message = _("You have searched %(count)d times in a minute. Please wait %(wait)s and try again.")
    else:
        heading = _("Too many downloads")
        message = _("You have exported or downloaded %(count)d times in an hour. Please wait %(wait)s and try again.")
    context = {
        "heading": heading,
        "message": message % {"count": limit.allowed, "wait": _wait_text(retry_after)},
        "retry_after": retry_after,
    }
    template = "_partials/rate_limited.html" if request.headers.get("HX-Request") else "429.html"
    response = HttpResponse(render_to_string(template, context, request=request), status=429)
    response["Retry-After"] = str(retry_after)
    patch_cache_control(response, private=True, no_store=True)
    return response


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        match = request.resolver_match
        rule = RULES.get(match.view_name) if match is not None else None
        if rule is None:
            return None
        limit, applies = rule
        if not applies(request):
            return None
        retry_after = hit(limit, _who(request))
        if retry_after is None:
            return None
        return too_many_requests(request, limit, retry_after)


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control") or request.path.startswith(settings.STATIC_URL):
            return response
        # Without a session cookie nobody is signed in: the session is not even loaded (which would
        # add "Vary: Cookie" to public pages).
        if settings.SESSION_COOKIE_NAME not in request.COOKIES and not hasattr(request, "_cached_user"):
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
