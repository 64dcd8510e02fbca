"""The big screen (大屏) for the annual party: one full-screen page and its one write, the draw.

The screen always shows winners masked (张** / 138****5678), whoever is logged in: it is projected in
a hall. The draw happens once (lottery.services.event_draw is a compare-and-set); a second press of
the space bar — a reload mid-show, a second laptop — gets 409 with the result already drawn, so the
screen can still reveal it, and the refused attempt stays in the event's log.
"""

from __future__ import annotations

import logging
import secrets

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from cims.masking import mask_name, mask_phone
from lottery import display, services
from lottery.algorithm import LotteryError
from lottery.models import LotteryEntry, LotteryEvent

logger = logging.getLogger(__name__)

# Names cycling on the screen while a tier is drawn: a sample of the entrants, masked.
POOL_SIZE = 300


def _event(pk: int) -> LotteryEvent:
    """A published (or drawn, or announced) event; a draft has nothing to show: 404."""
    return get_object_or_404(LotteryEvent.objects.published(), pk=pk)


def _tiers(event: LotteryEvent) -> list[dict]:
    """The tiers in draw order with their winners, always masked, reduced to what the screen shows."""
    return display.tiers_with_winners(event, full=False, fields=("rank", "position", "entry_id", "name", "phone"))


def pool_positions(count: int, size: int = POOL_SIZE) -> list[int]:
    """Up to ``size`` positions of the entry list, evenly spaced from a random offset.

    The entry list is sorted by pseudonymous entry id, so evenly spaced lines are a fair sample of the
    entrants, and fetching them is one index lookup on (event, position) — no ORDER BY random() over a
    million rows. The offset comes from ``secrets``: Python's ``random`` is never used in the lottery.
    """
    if count <= size:
        return list(range(count))
    step = count // size
    offset = secrets.randbelow(step)
    return [offset + i * step for i in range(size)]


def _pool(event: LotteryEvent) -> list[dict]:
    entries = (
        LotteryEntry.objects.filter(event=event, position__in=pool_positions(event.entry_count or 0))
        .select_related("customer")
        .only("position", "customer__name", "customer__kind", "customer__mobile", "customer__phone")
        .filter(customer__erased_at__isnull=True)
        .order_by("position")
    )
    return [
        {
            "name": mask_name(entry.customer.name, enterprise=entry.customer.is_enterprise),
            "phone": mask_phone(entry.customer.mobile or entry.customer.phone),
        }
        for entry in entries
    ]


def _labels() -> dict[str, str]:
    """The screen's words for the script, in the user's language."""
    return {
        "press_space": _("Press Space to draw"),
        "press_space_reveal": _("Press Space to reveal"),
        "next": _("Press Space to continue"),
        "drawing": _("Drawing…"),
        "rolling": _("Drawing the winners…"),
        "network_error": _("The server could not be reached. Check the connection and press Space to try again."),
        "server_error": _("The draw did not go through (%(status)s). Press Space to try again."),
        "session_error": _("The request was refused: log in again in another tab, then press Space."),
        "already_drawn": _("This lottery was drawn already; showing its result."),
        "prizes": _("Places: %(count)s"),
        "page": _("Page %(page)s of %(pages)s"),
        "no_winners": _("No winner for this tier: every entrant has already won."),
        "thanks": _("Thank you for taking part"),
        "all_winners": _("All winners"),
        "entry": _("Entry id"),
        "tier_of": _("Tier %(number)s of %(count)s"),
    }


@staff_permission_required("lottery.draw_lotteryevent")
@require_http_methods(["GET", "HEAD"])
def show(request: HttpRequest, pk: int) -> HttpResponse:
    event = _event(pk)
    data = {
        "event": {"name": event.name, "year": event.year},
        "drawn": event.is_drawn,
        "draw_url": reverse("lottery:show_draw", args=[event.pk]),
        "tiers": _tiers(event),
        "pool": _pool(event),
        "labels": _labels(),
    }
    return render(request, "lottery/show.html", {"event": event, "show_data": data})


@staff_permission_required("lottery.draw_lotteryevent")
@require_POST
def show_draw(request: HttpRequest, pk: int) -> JsonResponse:
    event = _event(pk)
    try:
        services.event_draw(event=event, by=request.user)
    except services.LotteryRefused as exc:
        # event_draw has refreshed the event: drawn already means someone (or this screen, before a
        # reload) drew it; the fixed result is handed back so the show can go on.
        if event.is_drawn:
            return JsonResponse(
                {
                    "ok": False,
                    "drawn": True,
                    "message": _("This lottery was drawn already; showing its result."),
                    "tiers": _tiers(event),
                },
                status=409,
            )
        return JsonResponse({"ok": False, "drawn": False, "message": str(exc), "tiers": []}, status=409)
    except LotteryError:
        # Data the algorithm rejects (it should have been refused at publishing); nothing was written.
        logger.exception("lottery %s: the draw failed", event.pk)
        return JsonResponse(
            {
                "ok": False,
                "drawn": False,
                "message": _("The draw could not be made from this event's data."),
                "tiers": [],
            },
            status=409,
        )
    event.refresh_from_db()
    return JsonResponse({"ok": True, "drawn": True, "tiers": _tiers(event)})
