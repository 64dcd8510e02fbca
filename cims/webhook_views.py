"""The webhook pages (Webhooks): endpoints, their deliveries, ping and resend. Administrators only."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from cims import webhooks
from cims.forms_webhook import WebhookEndpointForm
from cims.models import WebhookDelivery, WebhookEndpoint
from cims.pagination import KeysetPaginator, page_links

# The secret of a new or rotated endpoint waits here for the one page view that shows it.
SHOWN_ONCE_SESSION_KEY = "cims.webhook_secret"


def _remember_secret(request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> None:
    request.session[SHOWN_ONCE_SESSION_KEY] = {"pk": endpoint.pk, "secret": secret}


def _take_secret(request: HttpRequest, endpoint: WebhookEndpoint) -> str:
    shown = request.session.get(SHOWN_ONCE_SESSION_KEY)
    if not isinstance(shown, dict) or shown.get("pk") != endpoint.pk:
        return ""
    del request.session[SHOWN_ONCE_SESSION_KEY]
    return str(shown.get("secret") or "")


@staff_permission_required("cims.view_webhookendpoint")
@require_http_methods(["GET", "HEAD"])
def endpoint_list(request: HttpRequest) -> HttpResponse:
    latest = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-id")
    endpoints = WebhookEndpoint.objects.annotate(
        last_status=Subquery(latest.values("status")[:1]),
        last_event=Subquery(latest.values("event")[:1]),
        last_at=Subquery(latest.values("created_at")[:1]),
    ).defer("secret")
    statuses = dict(WebhookDelivery.Status.choices)
    rows = [
        {
            "endpoint": endpoint,
            "events": [webhooks.event_label(event) for event in endpoint.events or []],
            "last_status_label": statuses.get(endpoint.last_status, ""),
        }
        for endpoint in endpoints
    ]
    context = {"rows": rows, "may_add": request.user.has_perm("cims.add_webhookendpoint")}
    return render(request, "system/webhook_list.html", context)


def _form_page(request: HttpRequest, form: WebhookEndpointForm, endpoint: WebhookEndpoint | None, status: int = 200):
    return render(request, "system/webhook_form.html", {"form": form, "endpoint": endpoint}, status=status)


@staff_permission_required("cims.add_webhookendpoint")
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form_page(request, WebhookEndpointForm(), None)
    form = WebhookEndpointForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, None, status=400)
    endpoint = form.save(commit=False)
    secret = webhooks.new_secret()
    endpoint.secret = secret
    endpoint.created_by = request.user
    endpoint._history_user = request.user
    endpoint.save()
    _remember_secret(request, endpoint, secret)
    messages.success(request, _("The endpoint %(name)s was added.") % {"name": endpoint.name})
    return redirect("system:webhook_detail", pk=endpoint.pk)


@staff_permission_required("cims.change_webhookendpoint")
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if request.method != "POST":
        return _form_page(request, WebhookEndpointForm(instance=endpoint), endpoint)
    form = WebhookEndpointForm(request.POST, instance=endpoint)
    if not form.is_valid():
        return _form_page(request, form, endpoint, status=400)
    endpoint = form.save(commit=False)
    if form.cleaned_data.get("rotate_secret"):
        secret = webhooks.new_secret()
        endpoint.secret = secret
        _remember_secret(request, endpoint, secret)
        messages.warning(request, _("The signing secret was rotated: update the receiving system."))
    endpoint._history_user = request.user
    endpoint.save()
    messages.success(request, _("The endpoint %(name)s was saved.") % {"name": endpoint.name})
    return redirect("system:webhook_detail", pk=endpoint.pk)


@staff_permission_required("cims.view_webhookendpoint")
@require_http_methods(["GET", "HEAD"])
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    paginator = KeysetPaginator(
        WebhookDelivery.objects.filter(endpoint=endpoint).defer("payload"), key="created_at", per_page=30
    )
    page = paginator.page(after=request.GET.get("after"), before=request.GET.get("before"))
    for delivery in page.object_list:
        delivery.event_label = webhooks.event_label(delivery.event)
    context = {
        "endpoint": endpoint,
        "events": [webhooks.event_label(event) for event in endpoint.events or []],
        "secret": _take_secret(request, endpoint),
        "page": page,
        **page_links(request, page),
        "may_change": request.user.has_perm("cims.change_webhookendpoint"),
    }
    return render(request, "system/webhook_detail.html", context)


@staff_permission_required("cims.change_webhookendpoint")
@require_POST
def endpoint_ping(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    delivery = webhooks.endpoint_ping(endpoint=endpoint, by=request.user)
    messages.info(request, _("A test event was queued; this page shows its outcome."))
    return redirect("system:webhook_delivery", pk=delivery.pk)


@staff_permission_required("cims.view_webhookendpoint")
@require_http_methods(["GET", "HEAD"])
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("endpoint", "resent_by"), pk=pk)
    endpoint = delivery.endpoint
    try:
        parsed = json.loads(delivery.payload)
        unmasked = isinstance(parsed, dict) and parsed.get("masked") is False
        if unmasked:
            # Sent plain to a trusted endpoint; shown masked here, like personal data everywhere else.
            parsed["data"] = webhooks.mask_data(parsed.get("data") or {})
        payload = json.dumps(parsed, ensure_ascii=False, indent=2)
    except ValueError:
        payload, unmasked = delivery.payload, False
    headers = {
        "Content-Type": "application/json",
        "User-Agent": webhooks.USER_AGENT,
        "X-CIMS-Event": delivery.event,
        "X-CIMS-Delivery": str(delivery.pk),
    }
    if delivery.last_attempt_at:
        # A whole signature would be a valid one for a replay within the tolerance window: only
        # its start is shown, enough to compare with what the receiver logged.
        timestamp = int(delivery.last_attempt_at.timestamp())
        headers["X-CIMS-Timestamp"] = str(timestamp)
        headers["X-CIMS-Signature"] = webhooks.sign(endpoint.secret, timestamp, delivery.payload)[:15] + "…"
    context = {
        "delivery": delivery,
        "endpoint": endpoint,
        "event_label": webhooks.event_label(delivery.event),
        "headers": sorted(headers.items()),
        "payload": payload,
        "unmasked": unmasked,
        "max_attempts": webhooks.max_attempts(delivery),
        "resends": WebhookDelivery.objects.filter(resent_from=delivery).defer("payload")[:20],
        "may_resend": request.user.has_perm("cims.change_webhookendpoint"),
    }
    return render(request, "system/webhook_delivery.html", context)


@staff_permission_required("cims.change_webhookendpoint")
@require_POST
def delivery_resend(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery.objects.select_related("endpoint"), pk=pk)
    if not delivery.endpoint.is_active and delivery.event != webhooks.PING:
        messages.error(request, _("The endpoint is inactive: activate it before resending."))
        return redirect("system:webhook_delivery", pk=delivery.pk)
    resent = webhooks.delivery_resend(delivery=delivery, by=request.user)
    messages.success(request, _("The event was queued again as a new delivery."))
    return redirect("system:webhook_delivery", pk=resent.pk)
