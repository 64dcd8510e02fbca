"""帮助: the user guide's pages and search, and the guided tour's done / restart switches."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from cims import help


@staff_required
@require_http_methods(["GET", "HEAD"])
def index(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("q", "")
    query = help.clean_query(raw)
    results = help.search(query) if query else []
    context = {
        "pages": help.all_pages(),
        "query": query,
        "results": results,
        "truncated": len(" ".join(raw.split())) > help.MAX_QUERY_LENGTH,
        "max_results": help.MAX_RESULTS,
    }
    return render(request, "help/index.html", context)


@staff_required
@require_http_methods(["GET", "HEAD"])
def page(request: HttpRequest, slug: str) -> HttpResponse:
    guide_page = help.load_page(slug)
    if guide_page is None:
        raise Http404(_("There is no such page in the user guide."))
    return render(request, "help/page.html", {"page": guide_page, "pages": help.all_pages()})


def _back(request: HttpRequest) -> str:
    """Where to return after a tour switch: the page it was pressed on, if it is one of ours."""
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("reports:dashboard")


@staff_required
@require_POST
def tour_done(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.tour_done_at is None:
        user.tour_done_at = timezone.now()
        user.save(update_fields=["tour_done_at"])
    # The card's script posts in the background and only needs to know it worked.
    if request.headers.get("HX-Request") or request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    return redirect(_back(request))


@staff_required
@require_POST
def tour_restart(request: HttpRequest) -> HttpResponse:
    user = request.user
    user.tour_done_at = None
    user.save(update_fields=["tour_done_at"])
    request.session[help.TOUR_RESTARTED] = True
    return redirect(_back(request))
