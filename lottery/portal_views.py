"""The lottery in the customer portal.

A customer sees the events they were entered in (``request.portal_customer``'s entries, never an id
from the URL), with their entry id so they can find themselves in the published list, and — once the
event is announced (已公布), not merely drawn — whether they won.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.portal import portal_view
from lottery.display import customer_entries, win_of


@portal_view
@require_safe
def lottery_list(request: HttpRequest) -> HttpResponse:
    rows = []
    for entry in customer_entries(request.portal_customer):
        # Before the announcement the result is not told, even though the draw may have been made.
        announced = entry.event.is_announced
        rows.append(
            {"entry": entry, "event": entry.event, "announced": announced, "win": win_of(entry) if announced else None}
        )
    return render(request, "lottery/portal.html", {"rows": rows})
