"""Webhooks: events emitted on commit, signed POSTs to a real local HTTP server, retries, masking."""

from __future__ import annotations

import datetime
import http.server
import json
import logging
import socket
import threading
import time
import uuid
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone, translation

from cims import webhooks
from cims.models import WebhookDelivery, WebhookEndpoint
from cims.tasks_webhooks import deliver, sweep
from customers.services import customer_save
from followups.models import Notification
from tests.customers.factories import ContractFactory, CustomerFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_test-secret"
S = WebhookDelivery.Status


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each request and answers from a script:
    a status code, "slow" (longer than the timeout) or "redirect"; 200 once the script is used up."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # self.headers matches names case-insensitively, as receivers do.
                receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                answer = receiver.script.pop(0) if receiver.script else 200
                if answer == "slow":
                    time.sleep(1.5)
                    answer = 200
                self.send_response(302 if answer == "redirect" else answer)
                if answer == "redirect":
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {answer}".encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOK_MAX_ATTEMPTS = 8
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


def make_endpoint(url, *, events=("customer.created",), trusted=False, is_active=True, name=None, by=None):
    from tests.factories import UserFactory

    return WebhookEndpoint.objects.create(
        name=name or f"hook-{WebhookEndpoint.objects.count()}",
        url=url,
        events=list(events),
        secret=SECRET,
        trusted=trusted,
        is_active=is_active,
        created_by=by or UserFactory(),
    )


def make_due(delivery: WebhookDelivery) -> None:
    """Time passes until the next attempt (instead of sleeping through the backoff)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def create_customer(by, capture, **fields):
    with capture(execute=True):
        return customer_save(customer=CustomerFactory.build(**fields), by=by)


# --- Signatures ----------------------------------------------------------------------------------


def test_it_verifies_a_signature_and_refuses_a_changed_body_an_old_timestamp_or_another_secret():
    body = '{"id":"1","event":"customer.created"}'
    now = int(time.time())
    signature = webhooks.sign(SECRET, now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert webhooks.verify_signature(SECRET, now, body, signature)
    assert webhooks.verify_signature(SECRET, str(now), body.encode(), signature)
    assert not webhooks.verify_signature(SECRET, now, body.replace("created", "updated"), signature)
    assert not webhooks.verify_signature("whsec_other", now, body, signature)
    old = now - 301
    assert not webhooks.verify_signature(SECRET, old, body, webhooks.sign(SECRET, old, body))
    assert webhooks.verify_signature(SECRET, old, body, webhooks.sign(SECRET, old, body), tolerance=600)
    assert not webhooks.verify_signature(SECRET, "yesterday", body, signature)
    assert not webhooks.verify_signature(SECRET, now, body, "")


# --- Emission ------------------------------------------------------------------------------------


def test_it_delivers_a_new_customer_signed_to_a_subscribed_endpoint_only(
    receiver, administrator, django_capture_on_commit_callbacks
):
    subscribed = make_endpoint(receiver.url)
    other_event = make_endpoint(receiver.url, events=["customer.updated"])
    inactive = make_endpoint(receiver.url, is_active=False)

    customer = create_customer(administrator, django_capture_on_commit_callbacks, name="张三", mobile="+8613800000001")

    delivery = WebhookDelivery.objects.get()
    assert delivery.endpoint == subscribed and delivery.event == "customer.created"
    assert not WebhookDelivery.objects.filter(endpoint__in=[other_event, inactive]).exists()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (S.SUCCEEDED, 1, 200)
    assert delivery.delivered_at is not None and delivery.response_ms is not None
    assert delivery.response_excerpt == "answer 200"

    [request] = receiver.requests
    headers = request["headers"]
    assert headers["X-CIMS-Event"] == "customer.created"
    assert headers["X-CIMS-Delivery"] == str(delivery.pk)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "CIMS-Webhooks/1"
    assert webhooks.verify_signature(SECRET, headers["X-CIMS-Timestamp"], request["body"], headers["X-CIMS-Signature"])
    body = json.loads(request["body"])
    assert body["id"] == str(delivery.event_id) and body["event"] == "customer.created"
    assert body["data"]["id"] == customer.pk and body["data"]["code"] == customer.code
    assert body["data"]["name"] == "张三" and body["data"]["owner_id"] == administrator.pk
    assert request["body"].decode() == delivery.payload  # the body as recorded is the body as sent


def test_it_tells_of_an_updated_customer(receiver, administrator, django_capture_on_commit_callbacks):
    customer = CustomerFactory(owner=administrator)
    make_endpoint(receiver.url, events=["customer.updated"])
    customer.name = "新名字"
    with django_capture_on_commit_callbacks(execute=True):
        customer_save(customer=customer, by=administrator)
    assert [b["event"] for b in receiver.bodies()] == ["customer.updated"]
    assert receiver.bodies()[0]["data"]["name"] == "新名字"


def test_it_sends_nothing_for_a_rolled_back_write(receiver, administrator, django_capture_on_commit_callbacks):
    make_endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_save(customer=CustomerFactory.build(), by=administrator)
            raise RuntimeError("the rest of the write failed")
    assert callbacks == []
    assert not WebhookDelivery.objects.exists() and receiver.requests == []


def test_it_masks_personal_data_for_an_untrusted_endpoint_and_not_for_a_trusted_one(
    receiver, administrator, django_capture_on_commit_callbacks
):
    masked_endpoint = make_endpoint(receiver.url)
    trusted_endpoint = make_endpoint(receiver.url, trusted=True)
    create_customer(
        administrator,
        django_capture_on_commit_callbacks,
        mobile="+8613812345678",
        email="zhang.wei@example.com",
        id_number="110101199003071234",
        bank_account="6222020200112233445",
        address="上海市浦东新区世纪大道100号",
    )
    masked = json.loads(WebhookDelivery.objects.get(endpoint=masked_endpoint).payload)
    plain = json.loads(WebhookDelivery.objects.get(endpoint=trusted_endpoint).payload)
    assert masked["id"] == plain["id"]  # one event, one id
    assert masked["masked"] is True and plain["masked"] is False
    assert masked["data"]["mobile"] == "138****5678" and plain["data"]["mobile"] == "+8613812345678"
    assert masked["data"]["email"] == "z***@example.com" and plain["data"]["email"] == "zhang.wei@example.com"
    assert masked["data"]["id_number"] == "1101**********1234"
    assert masked["data"]["bank_account"] == "6222 **** **** 3445"
    assert "世纪大道" not in masked["data"]["address"] and "世纪大道" in plain["data"]["address"]
    assert "13812345678" not in json.dumps([b for b in receiver.bodies() if b["masked"]], ensure_ascii=False)


def test_it_never_breaks_the_business_write_when_recording_deliveries_fails(
    receiver, administrator, django_capture_on_commit_callbacks, caplog
):
    make_endpoint(receiver.url)
    with (
        mock.patch.object(webhooks, "customer_data", side_effect=RuntimeError("broken payload")),
        caplog.at_level(logging.ERROR, logger="cims.webhooks"),
    ):
        customer = create_customer(administrator, django_capture_on_commit_callbacks)
    assert customer.pk and not WebhookDelivery.objects.exists()
    assert "webhook event customer.created not recorded" in caplog.text


def test_it_does_not_load_the_payload_when_no_endpoint_listens(administrator, django_capture_on_commit_callbacks):
    payload_for = mock.Mock(return_value={})
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.emit("customer.created", payload_for=payload_for)
    payload_for.assert_not_called()


def test_it_refuses_an_unknown_event_name(receiver, django_capture_on_commit_callbacks):
    make_endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        webhooks.emit("customer.exploded", payload_for=dict)
    assert callbacks == [] and not WebhookDelivery.objects.exists()


# --- The other events ----------------------------------------------------------------------------


def events_sent(receiver) -> list[str]:
    return [body["event"] for body in receiver.bodies()]


def test_it_tells_of_a_won_and_a_lost_opportunity(receiver, sales_rep, django_capture_on_commit_callbacks):
    from followups import opportunities
    from tests.followups.factories import OpportunityFactory

    make_endpoint(receiver.url, events=["opportunity.won", "opportunity.lost"])
    customer = CustomerFactory(owner=sales_rep)
    won, lost = OpportunityFactory(customer=customer), OpportunityFactory(customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        opportunities.opportunity_win(opportunity=won, by=sales_rep)
    with django_capture_on_commit_callbacks(execute=True):
        opportunities.opportunity_lose(opportunity=lost, by=sales_rep, reason="价格太高")
    assert events_sent(receiver) == ["opportunity.won", "opportunity.lost"]
    won_body, lost_body = receiver.bodies()
    assert won_body["data"]["id"] == won.pk and won_body["data"]["stage"] == "won"
    assert won_body["data"]["customer"]["code"] == customer.code
    assert lost_body["data"]["lost_reason"] == "价格太高"


def test_it_tells_of_a_merge_with_both_ids(receiver, administrator, django_capture_on_commit_callbacks):
    from customers.merging import customer_merge

    make_endpoint(receiver.url, events=["customer.merged"])
    survivor, merged = CustomerFactory(owner=administrator), CustomerFactory(owner=administrator)
    with django_capture_on_commit_callbacks(execute=True):
        customer_merge(survivor=survivor, merged=merged, choices={}, by=administrator)
    [body] = receiver.bodies()
    assert body["event"] == "customer.merged"
    assert body["data"]["survivor"]["id"] == survivor.pk and body["data"]["merged"] == {
        "id": merged.pk,
        "code": merged.code,
    }


def test_it_tells_of_a_filed_and_a_resolved_complaint(receiver, service_agent, django_capture_on_commit_callbacks):
    from complaints.models import Ticket
    from tests.complaints.test_services import category, file_ticket, walk

    make_endpoint(receiver.url, events=["complaint.created", "complaint.resolved"])
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = file_ticket(customer, service_agent, category=category("产品质量", service_agent))
    with django_capture_on_commit_callbacks(execute=True):
        walk(ticket, Ticket.Status.IN_PROGRESS, by=service_agent)
    assert events_sent(receiver) == ["complaint.created"]
    with django_capture_on_commit_callbacks(execute=True):
        walk(ticket, Ticket.Status.RESOLVED, by=service_agent)
    assert events_sent(receiver) == ["complaint.created", "complaint.resolved"]
    created, resolved = receiver.bodies()
    assert created["data"]["number"] == ticket.number and created["data"]["customer"]["id"] == customer.pk
    assert "description" not in created["data"]
    assert resolved["data"]["status"] == "resolved" and resolved["data"]["resolved_at"]


def test_it_tells_of_an_expiring_contract_once(receiver, sales_rep, settings, django_capture_on_commit_callbacks):
    from followups import renewals

    settings.CONTRACT_RENEWAL_DAYS = 30
    today = datetime.date(2026, 6, 1)
    contract = ContractFactory(
        customer=CustomerFactory(owner=sales_rep), start_date="2025-01-01", end_date=datetime.date(2026, 6, 20)
    )
    make_endpoint(receiver.url, events=["contract.expiring"])
    with django_capture_on_commit_callbacks(execute=True):
        renewals.notify_renewals(today=today)
    with django_capture_on_commit_callbacks(execute=True):
        renewals.notify_renewals(today=today)  # already reminded: no second event
    [body] = receiver.bodies()
    assert body["event"] == "contract.expiring"
    assert body["data"]["number"] == contract.number and body["data"]["end_date"] == "2026-06-20"
    assert body["data"]["customer"]["owner_id"] == sales_rep.pk


# --- Attempts and retries ------------------------------------------------------------------------


def queued(receiver, *, script=(), event="customer.created", **endpoint_options) -> WebhookDelivery:
    """A delivery recorded and tried once (eagerly) against ``receiver`` answering ``script``."""
    receiver.script[:] = list(script)
    make_endpoint(receiver.url, events=[event], **endpoint_options)
    [delivery] = webhooks.record_event(event, payload_for=lambda: {"id": 1, "mobile": "+8613800000001"})
    delivery.refresh_from_db()
    return delivery


def test_it_retries_a_failure_with_a_growing_wait_until_it_succeeds(receiver):
    delivery = queued(receiver, script=[500, 503, 200])
    assert (delivery.status, delivery.attempts, delivery.response_code) == (S.RETRYING, 1, 500)
    assert delivery.error == "HTTP 500" and delivery.response_excerpt == "answer 500"
    first_wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert datetime.timedelta(seconds=23) < first_wait < datetime.timedelta(seconds=37)

    deliver(delivery.pk)  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    make_due(delivery)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (S.RETRYING, 2, 503)
    second_wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert second_wait > first_wait

    make_due(delivery)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (S.SUCCEEDED, 3, 200)
    assert delivery.error == "" and delivery.next_attempt_at is None and delivery.delivered_at is not None
    # Each attempt is signed afresh, with the same delivery id and body.
    assert len({r["headers"]["X-CIMS-Delivery"] for r in receiver.requests}) == 1
    assert len({r["body"] for r in receiver.requests}) == 1


def test_it_does_nothing_for_a_delivery_already_sent(receiver):
    delivery = queued(receiver)
    assert delivery.status == S.SUCCEEDED
    deliver(delivery.pk)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1 and delivery.attempts == 1


def test_it_fails_after_the_last_attempt_and_alerts_the_administrators(receiver, administrator, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    delivery = queued(receiver, script=[500, 500, 500, 500], name="erp")
    for _attempt in range(2):
        make_due(delivery)
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (S.FAILED, 3, None)
    assert len(receiver.requests) == 3
    day = timezone.localdate().isoformat()
    note = Notification.objects.get(user=administrator, key=f"webhook-failed:{delivery.endpoint_id}:{day}")
    assert "erp" in note.title and note.url.endswith(f"/webhooks/deliveries/{delivery.pk}/")
    make_due(delivery)
    deliver(delivery.pk)  # failed for good: no fourth request
    assert len(receiver.requests) == 3


def test_it_alerts_once_a_day_per_endpoint_however_many_deliveries_fail(receiver, administrator, settings, mailoutbox):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.ADMINS = [("Ops", "ops@example.com")]
    first = queued(receiver, script=[500, 500], name="erp")
    [second] = webhooks.record_event("customer.created", payload_for=lambda: {"id": 2})
    second.refresh_from_db()
    assert first.status == second.status == S.FAILED
    assert Notification.objects.filter(user=administrator, key__startswith="webhook-failed:").count() == 1
    assert len(mailoutbox) == 1


def test_it_masks_a_waiting_retry_once_the_endpoint_is_no_longer_trusted(receiver):
    delivery = queued(receiver, script=[500, 200], trusted=True)
    assert json.loads(receiver.requests[0]["body"])["data"]["mobile"] == "+8613800000001"
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(trusted=False)
    make_due(delivery)
    deliver(delivery.pk)
    sent = json.loads(receiver.requests[1]["body"])
    assert sent["masked"] is True and sent["data"]["mobile"] != "+8613800000001"
    delivery.refresh_from_db()
    assert delivery.status == S.SUCCEEDED and json.loads(delivery.payload)["masked"] is True


def test_it_connects_to_the_address_it_checked_not_to_a_second_lookup(settings, monkeypatch):
    # DNS rebinding: the name is resolved once, checked, and the connection goes to that address.
    settings.WEBHOOK_ALLOW_HTTP = False
    lookups, connected = [], []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def fake_connect(address, timeout=None, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError("test")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", fake_connect)
    outcome = webhooks.post(url="https://hooks.example.com/in", headers={}, body="{}")
    assert not outcome.ok and outcome.error.startswith("connection failed")
    assert lookups == ["hooks.example.com"]
    assert connected == [("93.184.216.34", 443)]


def test_it_retries_a_timeout(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    delivery = queued(receiver, script=["slow"])
    assert delivery.status == S.RETRYING and delivery.response_code is None
    assert "timed out" in delivery.error


def test_it_retries_a_refused_connection(receiver):
    receiver.stop()
    delivery = queued(receiver)
    assert delivery.status == S.RETRYING and delivery.response_code is None
    assert delivery.error.startswith("connection failed")


def test_it_does_not_follow_a_redirect(receiver):
    delivery = queued(receiver, script=["redirect"])
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    assert (delivery.status, delivery.response_code) == (S.RETRYING, 302)
    assert "not followed" in delivery.error


def test_it_fails_a_delivery_to_an_endpoint_deactivated_since_without_sending(receiver, administrator):
    delivery = queued(receiver, script=[500])
    WebhookEndpoint.objects.update(is_active=False)
    make_due(delivery)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == S.FAILED and delivery.error == "the endpoint is inactive"
    assert len(receiver.requests) == 1
    assert not Notification.objects.filter(key__startswith="webhook-failed:").exists()


def test_it_sweeps_up_a_delivery_whose_task_was_lost(receiver):
    endpoint = make_endpoint(receiver.url)
    lost = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="customer.created",
        event_id="6f1c2a2e-8d1b-4c55-9a39-3c8d0f6b7a10",
        payload='{"id":"x"}',
        created_at=timezone.now() - datetime.timedelta(minutes=10),
    )
    fresh = WebhookDelivery.objects.create(
        endpoint=endpoint, event="customer.created", event_id=lost.event_id, payload='{"id":"y"}'
    )
    assert sweep() == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == S.SUCCEEDED and fresh.status == S.PENDING
    assert [r["body"] for r in receiver.requests] == [b'{"id":"x"}']


def test_backoff_doubles_from_thirty_seconds_up_to_six_hours():
    for attempts, base in [(1, 30), (2, 60), (3, 120), (8, 3840), (20, 6 * 3600)]:
        for _ in range(20):
            assert base * 0.8 <= webhooks.backoff_seconds(attempts) <= base * 1.2


# --- Resend and ping -----------------------------------------------------------------------------


def test_it_resends_the_same_event_as_a_new_delivery(receiver, administrator, django_capture_on_commit_callbacks):
    original = queued(receiver, script=[500])
    with django_capture_on_commit_callbacks(execute=True):
        resent = webhooks.delivery_resend(delivery=original, by=administrator)
    resent.refresh_from_db()
    assert resent.pk != original.pk and resent.resent_from == original and resent.resent_by == administrator
    assert resent.event_id == original.event_id and resent.payload == original.payload
    assert resent.status == S.SUCCEEDED and len(receiver.requests) == 2
    assert receiver.requests[1]["headers"]["X-CIMS-Delivery"] == str(resent.pk)


def test_it_masks_a_resend_to_an_endpoint_no_longer_trusted(receiver, administrator):
    original = queued(receiver, trusted=True)
    assert json.loads(original.payload)["data"]["mobile"] == "+8613800000001"
    WebhookEndpoint.objects.update(trusted=False)
    resent = webhooks.delivery_resend(delivery=WebhookDelivery.objects.get(pk=original.pk), by=administrator)
    body = json.loads(resent.payload)
    assert body["masked"] is True and body["data"]["mobile"] == "138****0001"
    assert body["id"] == str(original.event_id)


def test_a_ping_is_tried_once_and_alerts_nobody(receiver, administrator, django_capture_on_commit_callbacks):
    receiver.script[:] = [500]
    endpoint = make_endpoint(receiver.url, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhooks.endpoint_ping(endpoint=endpoint, by=administrator)
    delivery.refresh_from_db()
    assert (delivery.event, delivery.status, delivery.attempts) == ("ping", S.FAILED, 1)
    assert receiver.requests[0]["headers"]["X-CIMS-Event"] == "ping"
    assert not Notification.objects.filter(key__startswith="webhook-failed:").exists()


# --- Addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://user:pass@example.com/hook",
        "https:///hook",
    ],
)
def test_it_refuses_unsafe_addresses_unless_allowed(settings, url):
    settings.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url(url)


def test_it_accepts_a_public_https_address(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    webhooks.check_url("https://hooks.example.com/cims")
    webhooks.check_url("https://203.0.114.9:8443/cims")


def test_it_refuses_a_host_name_that_resolves_to_a_private_address(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    answer = [(2, 1, 6, "", ("192.168.1.20", 443))]
    with mock.patch("socket.getaddrinfo", return_value=answer), pytest.raises(webhooks.UnsafeURL):
        webhooks.check_url("https://intranet.example.com/hook", resolve=True)


def test_an_attempt_to_a_refused_address_is_a_failed_attempt_not_a_crash(receiver, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    with translation.override("en"):
        delivery = queued(receiver)
    assert delivery.status == S.RETRYING and receiver.requests == []
    assert "https://" in delivery.error


def test_it_forgets_settled_deliveries_after_the_retention_days(db, administrator, settings):
    import datetime

    from django.utils import timezone

    from cims.models import WebhookDelivery, WebhookEndpoint
    from cims.tasks_webhooks import purge_settled

    settings.WEBHOOK_RETENTION_DAYS = 30
    endpoint = WebhookEndpoint.objects.create(
        name="erp", url="https://erp.example.com/hook", events=["customer.created"], created_by=administrator
    )
    old = timezone.now() - datetime.timedelta(days=31)

    def delivery(status, created_at):
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            event="customer.created",
            event_id=uuid.uuid4(),
            payload="{}",
            status=status,
            created_at=created_at,
        )

    old_done = delivery(WebhookDelivery.Status.SUCCEEDED, old)
    old_failed = delivery(WebhookDelivery.Status.FAILED, old)
    old_open = delivery(WebhookDelivery.Status.RETRYING, old)
    recent = delivery(WebhookDelivery.Status.SUCCEEDED, timezone.now())
    assert purge_settled() == 2
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {old_open.pk, recent.pk}
    assert old_done.pk not in left and old_failed.pk not in left


def test_it_forgets_the_deliveries_about_an_erased_customer(receiver, manager, django_capture_on_commit_callbacks):
    from customers import privacy

    make_endpoint(receiver.url, events=["customer.created", "customer.updated"], trusted=True)
    with django_capture_on_commit_callbacks(execute=True):
        customer = customer_save(customer=CustomerFactory.build(mobile="+8613800000099"), by=manager)
        other = customer_save(customer=CustomerFactory.build(), by=manager)
    assert WebhookDelivery.objects.filter(customer_id=customer.pk).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        privacy.customer_erase(customer=customer, by=manager)
    assert not WebhookDelivery.objects.filter(customer_id=customer.pk).exists()
    assert WebhookDelivery.objects.filter(customer_id=other.pk).exists()
