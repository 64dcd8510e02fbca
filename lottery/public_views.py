"""Public verification pages: no login, for customers and auditors alike.

Only what the draw publishes is shown (docs/lottery.md §4): the rules in words, the prize table, the
entry list under pseudonymous entry ids with its hash, the commitment, the public value and — after
the draw — the secret and the winners by entry id with a masked name. Never a phone number or a
customer code. A draft is a 404 for everyone: until it is published nothing about it is fixed.

The three downloads are exactly what ``verify_lottery.py published.json`` needs side by side; the
script is served from the file next to this module, so what outsiders run is the one CIMS tests.
"""

from __future__ import annotations

import json
from functools import wraps
from pathlib import Path

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from lottery import algorithm, services
from lottery.display import tiers_with_winners
from lottery.models import LotteryEvent

VERIFIER = Path(__file__).with_name("verify_lottery.py")
DOCUMENT_NAME = "published.json"
ENTRIES_NAME = "entries.tsv"
VERIFIER_NAME = "verify_lottery.py"


def _noindex(view):
    """Public, but not for search engines: a customer's masked name is still theirs."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["X-Robots-Tag"] = "noindex"
        return response

    return wrapper


def _public_event(pk: int) -> LotteryEvent:
    return get_object_or_404(LotteryEvent.objects.published(), pk=pk)


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _public_tiers(event: LotteryEvent) -> list[dict]:
    """The prize table in draw order with each tier's winners, reduced to what is public: the
    position, the entry id and the masked name (never a phone or a customer code)."""
    return tiers_with_winners(event, full=False, fields=("position", "entry_id", "name"))


@_noindex
@require_safe
def public_page(request: HttpRequest, pk: int) -> HttpResponse:
    event = _public_event(pk)
    rules = event.published_rules or {}
    context = {
        "event": event,
        "rules": rules,
        "weights": rules.get("weights") or [],
        "tiers": _public_tiers(event),
        "algorithm": algorithm.ALGORITHM,
        "document_name": DOCUMENT_NAME,
        "entries_name": ENTRIES_NAME,
        "verifier_name": VERIFIER_NAME,
    }
    return render(request, "lottery/public.html", context)


@_noindex
@require_safe
def public_document(request: HttpRequest, pk: int) -> HttpResponse:
    """published.json: before the draw its secret and winners are null."""
    event = _public_event(pk)
    content = json.dumps(services.publication(event), ensure_ascii=False, indent=2) + "\n"
    response = HttpResponse(content.encode("utf-8"), content_type="application/json; charset=utf-8")
    return _attachment(response, DOCUMENT_NAME)


@_noindex
@require_safe
def public_entries(request: HttpRequest, pk: int) -> HttpResponse:
    """entries.tsv: the canonical entry list, byte for byte what was hashed, streamed (a million
    entries are about 26 MB)."""
    event = _public_event(pk)
    response = StreamingHttpResponse(
        services.entry_list_chunks(event), content_type="text/tab-separated-values; charset=utf-8"
    )
    return _attachment(response, ENTRIES_NAME)


@_noindex
@require_safe
def verifier_script(request: HttpRequest) -> HttpResponse:
    """The standalone checker, read from disk: one source of truth for CIMS's tests and outsiders."""
    response = HttpResponse(VERIFIER.read_bytes(), content_type="text/x-python; charset=utf-8")
    return _attachment(response, VERIFIER_NAME)
