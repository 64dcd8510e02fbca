"""Webhooks: events told to systems outside CIMS, signed, retried, masked unless trusted.

A service calls ``emit(event, payload_for=...)`` inside its transaction. Nothing happens until the
transaction commits (a rolled-back write tells nobody); then one WebhookDelivery per active endpoint
subscribed to the event is written, all with the same event id, and a Celery task sends each. The
delivery row is the source of truth: a task claims its row with a conditional UPDATE before
sending, so a duplicate task (the sweeper, a broker redelivering) sends nothing twice at once and a
task for a row already settled does nothing.

Receivers verify ``X-CIMS-Signature`` with ``verify_signature`` (docs/webhooks.md).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cims.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

# The test event of the "ping" button. Stored in WebhookDelivery.event although it is not one of
# WebhookEvent's choices (no endpoint subscribes to it): the administrator sees its outcome like
# any other delivery's. A ping is tried once and never alerts anyone.
PING = "ping"
USER_AGENT = "CIMS-Webhooks/1"
SIGNATURE_TOLERANCE = 300
EXCERPT_LIMIT = 500
READ_LIMIT = 64 * 1024  # what is read of a response: enough for the excerpt, never a whole download
BACKOFF_BASE = 30
BACKOFF_CAP = 6 * 3600
# A task that fires this much before the row's next_attempt_at still counts as due (clock skew
# between the worker that scheduled it and the one that runs it).
EARLY = datetime.timedelta(seconds=5)
# While an attempt is in flight its row's next_attempt_at is pushed this far past the timeout, so
# the sweeper leaves it alone; a worker killed mid-attempt leaves a row the sweeper picks up later.
LEASE_MARGIN = datetime.timedelta(seconds=60)

OPEN_STATUSES = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING)
_jitter = random.SystemRandom()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def event_label(event: str) -> str:
    if event == PING:
        return _("Test (ping)")
    return str(dict(WebhookEvent.choices).get(event, event))


# --- Payloads ------------------------------------------------------------------------------------
# Small on purpose: the object's own columns and the ids of what it points to, never its lists.


def customer_ref(customer) -> dict:
    return {"id": customer.pk, "code": customer.code, "name": customer.name}


def customer_data(customer) -> dict:
    return {
        **customer_ref(customer),
        "kind": customer.kind,
        "status": customer.status,
        "company": customer.company,
        "owner_id": customer.owner_id,
        "city": customer.city,
        "phone": customer.phone,
        "mobile": customer.mobile,
        "email": customer.email,
        "address": customer.address,
        "id_number": customer.id_number,
        "bank_account": customer.bank_account,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def merge_data(survivor, merged) -> dict:
    return {"survivor": customer_data(survivor), "merged": {"id": merged.pk, "code": merged.code}}


def opportunity_data(opportunity) -> dict:
    return {
        "id": opportunity.pk,
        "title": opportunity.title,
        "stage": opportunity.stage,
        "amount": opportunity.amount,
        "probability": opportunity.probability,
        "expected_close_date": opportunity.expected_close_date,
        "lost_reason": opportunity.lost_reason,
        "closed_at": opportunity.closed_at,
        "owner_id": opportunity.owner_id,
        "customer": customer_ref(opportunity.customer),
    }


def contract_data(contract) -> dict:
    customer = contract.customer
    return {
        "id": contract.pk,
        "number": contract.number,
        "title": contract.title,
        "amount": contract.amount,
        "start_date": contract.start_date,
        "end_date": contract.end_date,
        "status": contract.status,
        "customer": {**customer_ref(customer), "owner_id": customer.owner_id},
    }


def ticket_data(ticket) -> dict:
    # The description is left out: free text a customer wrote, often with personal details in it.
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "kind": ticket.kind,
        "category": ticket.category.name if ticket.category_id else None,
        "severity": ticket.severity,
        "channel": ticket.channel,
        "status": ticket.status,
        "subject": ticket.subject,
        "assignee_id": ticket.assignee_id,
        "created_at": ticket.created_at,
        "sla_due_at": ticket.sla_due_at,
        "resolved_at": ticket.resolved_at,
        "customer": customer_ref(ticket.customer),
    }


def _masks() -> dict[str, Callable[[str], str]]:
    from customers.access import PERSONAL_FIELDS, SENSITIVE_FIELDS

    return {**PERSONAL_FIELDS, **SENSITIVE_FIELDS}


def mask_data(value, masks: dict | None = None):
    """``value`` with every personal or sensitive field (by key, at any depth) masked."""
    masks = _masks() if masks is None else masks
    if isinstance(value, dict):
        return {
            key: masks[key](item) if key in masks and isinstance(item, str) else mask_data(item, masks)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_data(item, masks) for item in value]
    return value


def build_body(*, event_id, event: str, created_at, data: dict, masked: bool) -> str:
    """The JSON body as sent. ``masked`` is part of it: a resend to an endpoint no longer trusted
    must know whether the stored body still needs masking."""
    payload = {
        "id": str(event_id),
        "event": event,
        "created_at": created_at,
        "masked": masked,
        "data": mask_data(data) if masked else data,
    }
    return json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


# --- Emission ------------------------------------------------------------------------------------


def emit(event: str, *, payload_for: Callable[[], dict]) -> None:
    """Tell the subscribed endpoints of ``event`` once the current transaction commits.

    ``payload_for`` builds the event's data; it is called after the commit, and only when some
    active endpoint listens. Never raises: a webhook must not break the business write."""
    if event not in WebhookEvent.values:
        logger.error("webhook event %s is not one of WebhookEvent's", event)
        return
    try:
        created_at = timezone.now()
        transaction.on_commit(lambda: record_event(event, payload_for=payload_for, created_at=created_at), robust=True)
    except Exception:  # noqa: BLE001 - see the docstring
        logger.exception("webhook event %s not registered", event)


def customer_of(data: dict) -> int | None:
    """The id of the customer an event's data is about (a customer, a merge's survivor, or the
    customer of an opportunity, contract or ticket)."""
    subject = data.get("survivor") or data.get("customer") or data
    value = subject.get("id") if isinstance(subject, dict) else None
    return value if isinstance(value, int) else None


def record_event(event: str, *, payload_for: Callable[[], dict], created_at=None) -> list[WebhookDelivery]:
    """One delivery per active endpoint subscribed to ``event``, each enqueued. Never raises."""
    try:
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(is_active=True).only("pk", "events", "trusted")
            if event in (endpoint.events or [])
        ]
        if not endpoints:
            return []
        data = payload_for()
        event_id = uuid.uuid4()
        created_at = created_at or timezone.now()
        bodies = {}
        for masked in {not endpoint.trusted for endpoint in endpoints}:
            bodies[masked] = build_body(event_id=event_id, event=event, created_at=created_at, data=data, masked=masked)
        customer_id = customer_of(data)
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=endpoint,
                    event=event,
                    event_id=event_id,
                    payload=bodies[not endpoint.trusted],
                    customer_id=customer_id,
                )
                for endpoint in endpoints
            ]
        )
    except Exception:  # noqa: BLE001 - the business write is committed; losing the event is logged
        logger.exception("webhook event %s not recorded", event)
        return []
    for delivery in deliveries:
        enqueue(delivery.pk)
    return deliveries


def enqueue(delivery_id: int, *, countdown: float | None = None) -> None:
    """Queue the delivery task; a broker that is down leaves the row to the sweeper."""
    from cims.tasks_webhooks import deliver

    try:
        deliver.apply_async(args=[delivery_id], countdown=countdown)
    except Exception:  # noqa: BLE001 - the row stays pending; sweep_deliveries sends it later
        logger.exception("webhook delivery %s not queued", delivery_id)


def enqueue_on_commit(delivery_id: int) -> None:
    transaction.on_commit(lambda: enqueue(delivery_id), robust=True)


def body_for(endpoint: WebhookEndpoint, body: str) -> str:
    """``body`` as ``endpoint`` may receive it now: a plain body (written while the endpoint was
    trusted) is masked once it no longer is, for a retry or a resend alike."""
    if endpoint.trusted:
        return body
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    if not isinstance(payload, dict) or payload.get("masked", True):
        return body
    return build_body(
        event_id=payload["id"],
        event=payload["event"],
        created_at=payload["created_at"],
        data=payload.get("data") or {},
        masked=True,
    )


def delivery_resend(*, delivery: WebhookDelivery, by) -> WebhookDelivery:
    """A new delivery of the same event (same event id and body) to the same endpoint, queued."""
    endpoint = delivery.endpoint
    body = body_for(endpoint, delivery.payload)
    with transaction.atomic():
        resent = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=delivery.event,
            event_id=delivery.event_id,
            payload=body,
            resent_from=delivery,
            resent_by=by,
        )
        enqueue_on_commit(resent.pk)
    return resent


def endpoint_ping(*, endpoint: WebhookEndpoint, by) -> WebhookDelivery:
    """A test event to ``endpoint`` (active or not), recorded as a delivery and queued."""
    event_id = uuid.uuid4()
    data = {"endpoint": {"id": endpoint.pk, "name": endpoint.name}, "requested_by": by.pk}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=PING,
            event_id=event_id,
            payload=build_body(
                event_id=event_id, event=PING, created_at=timezone.now(), data=data, masked=not endpoint.trusted
            ),
            resent_by=by,
        )
        enqueue_on_commit(delivery.pk)
    return delivery


# --- Addresses -----------------------------------------------------------------------------------


class UnsafeURL(ValueError):
    pass


def _refused_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not ip.is_global


def check_url(url: str, *, resolve: bool = False) -> str | None:
    """Raise UnsafeURL unless ``url`` may receive webhooks.

    https only, and never a loopback, private or link-local address (a webhook must not become a
    way to reach the services inside our own network), unless WEBHOOK_ALLOW_HTTP allows both. With
    ``resolve`` the host name is looked up and every address it has is checked; the first is
    returned so that the connection goes to that very address (a second lookup by the HTTP client
    could be answered differently: DNS rebinding). None when WEBHOOK_ALLOW_HTTP checks nothing."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeURL(_("This is not a valid URL.")) from error
    allow = settings.WEBHOOK_ALLOW_HTTP
    schemes = ("https", "http") if allow else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeURL(_("Use an https:// address.") if not allow else _("Use an http:// or https:// address."))
    if not parts.hostname:
        raise UnsafeURL(_("The URL has no host name."))
    if parts.username or parts.password:
        raise UnsafeURL(_("Leave the user name and password out of the URL: deliveries are signed instead."))
    if allow:
        return None
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or _refused_address(host):
        raise UnsafeURL(_("The address is on this machine or a private network."))
    if resolve:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as error:
            raise UnsafeURL(_("The host name cannot be resolved.")) from error
        if not infos or any(_refused_address(info[4][0]) for info in infos):
            raise UnsafeURL(_("The address is on this machine or a private network."))
        return infos[0][4][0]
    return None


# --- Signing -------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    message = f"{timestamp}.{body}".encode()
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, timestamp: int | str, body: str | bytes, signature: str, tolerance: int = SIGNATURE_TOLERANCE
) -> bool:
    """What a receiver does with the headers: the signature matches and the timestamp is recent.

    ``tolerance`` (seconds) bounds how old (or how far ahead) the timestamp may be: an intercepted
    request replayed later is refused."""
    try:
        sent = int(timestamp)
        expected = sign(secret, sent, body)
    except (TypeError, ValueError, UnicodeDecodeError):
        return False
    if abs(time.time() - sent) > tolerance:
        return False
    return hmac.compare_digest(expected, str(signature or ""))


def signed_headers(*, secret: str, event: str, delivery_id: int, body: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-CIMS-Event": event,
        "X-CIMS-Delivery": str(delivery_id),
        "X-CIMS-Timestamp": str(timestamp),
        "X-CIMS-Signature": sign(secret, timestamp, body),
    }


# --- Sending -------------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address check_url() approved instead of looking the name up again."""

    def __init__(self, *args, address: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked against the host name (SNI), not the address."""

    def __init__(self, *args, address: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class Outcome:
    ok: bool
    code: int | None = None
    ms: int | None = None
    excerpt: str = ""
    error: str = ""


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:EXCERPT_LIMIT]


def _read(response, deadline: float) -> bytes:
    """At most READ_LIMIT bytes of the body, and no later than ``deadline``: the socket timeout
    bounds each read, not a receiver that trickles bytes to hold the worker."""
    chunks, size = [], 0
    while size < READ_LIMIT and time.monotonic() < deadline:
        chunk = response.read(min(4096, READ_LIMIT - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def post(*, url: str, headers: dict[str, str], body: str) -> Outcome:
    """One POST; any failure (refused address, timeout, connection, non-2xx) is an Outcome, never raised.

    Redirects are not followed: a 3xx is answered as what it is (following it would send the signed
    body, perhaps with personal data, to an address nobody registered)."""
    try:
        address = check_url(url, resolve=True)
    except UnsafeURL as error:
        return Outcome(ok=False, error=str(error))
    parts = urlsplit(url)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    https = parts.scheme == "https"
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    code, raw, error = None, b"", ""
    connection = connection_class(parts.hostname, parts.port, timeout=timeout, address=address)
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        code = response.status
        raw = _read(response, started + 2 * timeout)
        if 300 <= code < 400:
            error = f"redirect to {response.getheader('Location', '?')} not followed"
    except TimeoutError:
        error = f"timed out after {timeout} s"
    except (OSError, http.client.HTTPException, ValueError) as failure:
        error = f"connection failed: {type(failure).__name__}: {failure}"
    finally:
        connection.close()
    ms = int((time.monotonic() - started) * 1000)
    ok = code is not None and 200 <= code < 300
    if not ok and not error and code is not None:
        error = f"HTTP {code}"
    return Outcome(ok=ok, code=code, ms=ms, excerpt=_excerpt(raw), error=error[:EXCERPT_LIMIT])


def backoff_seconds(attempts: int) -> float:
    """Wait after the ``attempts``-th failed attempt: 30 s doubling up to 6 h, ±20 % so that
    deliveries failed together (an endpoint down) do not all come back at the same second."""
    base = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return base * _jitter.uniform(0.8, 1.2)


def max_attempts(delivery: WebhookDelivery) -> int:
    return 1 if delivery.event == PING else settings.WEBHOOK_MAX_ATTEMPTS


def attempt(delivery_id: int) -> float | None:
    """Make the next attempt of a delivery if it is due; returns the seconds until the attempt
    after it (None when there is none: sent, failed for good, or not ours to make now)."""
    now = timezone.now()
    lease = now + datetime.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS) + LEASE_MARGIN
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status__in=OPEN_STATUSES)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + EARLY))
        .update(next_attempt_at=lease, last_attempt_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event != PING:
        outcome = Outcome(ok=False, error="the endpoint is inactive")
        final = True
    else:
        body = body_for(endpoint, delivery.payload)
        if body != delivery.payload:  # trust withdrawn while the delivery was waiting for a retry
            delivery.payload = body
            delivery.save(update_fields=["payload"])
        timestamp = int(time.time())
        headers = signed_headers(
            secret=endpoint.secret,
            event=delivery.event,
            delivery_id=delivery.pk,
            body=delivery.payload,
            timestamp=timestamp,
        )
        outcome = post(url=endpoint.url, headers=headers, body=delivery.payload)
        final = outcome.ok or delivery.attempts >= max_attempts(delivery)
    return _record(delivery, outcome, final=final)


def _record(delivery: WebhookDelivery, outcome: Outcome, *, final: bool) -> float | None:
    now = timezone.now()
    delivery.response_code = outcome.code
    delivery.response_ms = outcome.ms
    delivery.response_excerpt = outcome.excerpt
    delivery.error = outcome.error
    countdown = None
    if outcome.ok:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif final:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = None
    else:
        countdown = backoff_seconds(delivery.attempts)
        delivery.status = WebhookDelivery.Status.RETRYING
        delivery.next_attempt_at = now + datetime.timedelta(seconds=countdown)
    delivery.save(
        update_fields=[
            "response_code",
            "response_ms",
            "response_excerpt",
            "error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    if delivery.status == WebhookDelivery.Status.FAILED and delivery.event != PING and delivery.endpoint.is_active:
        _alert(delivery)
    return countdown


def _alert(delivery: WebhookDelivery) -> None:
    from django.core.cache import cache

    from followups.reminders import notify_administrators

    endpoint = delivery.endpoint
    # One alert per endpoint and day: a receiver down for a day must not send an e-mail per event.
    day = timezone.localdate().isoformat()
    if not cache.add(f"webhook-failed-alert:{endpoint.pk}:{day}", 1, timeout=25 * 3600):
        return
    notify_administrators(
        key=f"webhook-failed:{endpoint.pk}:{day}",
        title=_("Webhook delivery to %(name)s failed") % {"name": endpoint.name},
        body=_("%(event)s could not be delivered after %(attempts)d attempts: %(error)s")
        % {"event": delivery.event, "attempts": delivery.attempts, "error": delivery.error}
        + " "
        + _("Further failures of this endpoint today are not announced again: see its delivery log."),
        url=reverse("system:webhook_delivery", args=[delivery.pk]),
    )


def overdue(*, now=None, grace: datetime.timedelta = datetime.timedelta(minutes=2)):
    """Open deliveries whose task was lost: never queued (broker down), or its attempt overdue
    (a worker killed mid-attempt, a scheduled task dropped)."""
    now = now or timezone.now()
    return WebhookDelivery.objects.filter(status__in=OPEN_STATUSES).filter(
        Q(next_attempt_at__lte=now - grace) | Q(next_attempt_at__isnull=True, created_at__lte=now - grace)
    )
