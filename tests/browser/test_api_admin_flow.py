"""The administrator's integration pages in Chromium: an API token (created, used, revoked) and a
webhook endpoint (created, pinged, told of a new customer) against a real local receiver."""

import json
import re
import urllib.error
import urllib.request

import pytest
from django.utils import translation

from accounts.models import ApiToken
from cims import webhooks
from cims.models import WebhookDelivery, WebhookEndpoint
from customers.services import customer_save
from tests.browser.test_audit_flow import settle
from tests.browser.test_customers_flow import log_in
from tests.cims.test_webhooks import Receiver
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def webhook_settings(settings):
    # The receiver listens on 127.0.0.1 over http; deliveries run in the thread that queued them.
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    return settings


@pytest.fixture
def uncaught(page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def zh(text) -> str:
    """What the default Chinese UI shows for an English msgid (or a lazy model label)."""
    with translation.override("zh-hans"):
        return translation.gettext(text) if isinstance(text, str) else str(text)


def api_get(base_url: str, path: str, secret: str) -> tuple[int, dict]:
    """What the integration does: a plain HTTP call with the secret, outside the browser."""
    request = urllib.request.Request(  # noqa: S310 - http to the live server
        base_url + path, headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def open_from_sidebar(page, href: str) -> None:
    settle(page)
    page.goto("/")
    settle(page)
    page.locator(f"#cims-sidebar a[href='{href}']").click()
    page.wait_for_url(re.compile(rf".*{re.escape(href)}$"))


def test_it_lets_an_administrator_create_use_and_revoke_an_api_token(
    page, live_server, administrator, sales_rep, other_sales_rep, uncaught
):
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    settle(page)
    log_in(page, administrator)

    open_from_sidebar(page, "/system/api-tokens/")
    assert "API 令牌" in page.locator("#cims-sidebar a[href='/system/api-tokens/']").inner_text()
    assert page.get_by_test_id("token-row").count() == 0
    settle(page)
    page.get_by_test_id("token-new").click()
    page.wait_for_url(re.compile(r".*/system/api-tokens/new/$"))
    form = page.get_by_test_id("token-form")
    form.locator("#id_name").fill("ERP 同步")
    form.locator("#id_user").select_option(str(sales_rep.pk))
    form.locator("#id_scope").select_option(ApiToken.Scope.READ.value)
    settle(page)
    form.get_by_test_id("token-submit").click()
    page.get_by_test_id("token-secret-card").wait_for()

    # The secret is on this page and nowhere else: read it as the person copying it would.
    secret = page.get_by_test_id("token-secret").input_value()
    assert secret.startswith("cims_")
    assert secret in page.get_by_test_id("token-usage").inner_text()
    card = page.get_by_test_id("token-secret-card").inner_text()
    assert zh("Copy the secret now: it will not be shown again") in card
    token = ApiToken.objects.get()
    assert token.name == "ERP 同步" and token.user == sales_rep and token.scope == ApiToken.Scope.READ
    assert token.created_by == administrator
    assert secret not in str(ApiToken.objects.values().get())  # only a fingerprint is stored

    settle(page)
    page.get_by_test_id("token-done").click()
    page.wait_for_url(re.compile(rf".*/system/api-tokens/{token.pk}/$"))
    assert secret not in page.content()
    assert zh(ApiToken.Scope.READ.label) in page.get_by_test_id("token-facts").inner_text()
    open_from_sidebar(page, "/system/api-tokens/")
    row = page.get_by_test_id("token-row")
    assert row.count() == 1
    assert "ERP 同步" in row.inner_text() and sales_rep.username in row.inner_text()
    assert row.get_by_test_id("token-status").locator(".badge.text-bg-success").count() == 1
    assert secret not in page.content()

    # The integration calls the API with it and sees what the sales rep sees.
    status, body = api_get(live_server.url, "/api/v1/customers/", secret)
    assert status == 200, body
    ids = {customer["id"] for customer in body["results"]}
    assert mine.pk in ids and theirs.pk not in ids

    # The administrator revokes it from its page, confirming the browser's dialog.
    settle(page)
    row.locator(f"a[href='/system/api-tokens/{token.pk}/']").click()
    page.wait_for_url(re.compile(rf".*/system/api-tokens/{token.pk}/$"))
    assert page.get_by_test_id("token-last-used").inner_text() != zh("never")
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    settle(page)
    page.get_by_test_id("token-revoke-submit").click()
    page.get_by_test_id("token-revoked").wait_for()
    page.remove_listener("dialog", accept)
    assert len(dialogs) == 1 and "ERP 同步" in dialogs[0]
    assert zh("Revoked") in page.get_by_test_id("token-status").inner_text()
    assert page.get_by_test_id("token-revoke").count() == 0
    assert page.get_by_test_id("token-history-row").count() == 2
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == administrator

    status, body = api_get(live_server.url, "/api/v1/customers/", secret)
    assert status == 401, body
    assert "results" not in body
    page.screenshot(path="test-results/api-token-revoked.png", full_page=True)
    # Console errors include every Content-Security-Policy violation.
    assert not page.console_errors, page.console_errors
    assert not uncaught, uncaught


def test_it_lets_an_administrator_add_a_webhook_ping_it_and_receive_a_signed_customer_created(
    page, administrator, sales_rep, receiver, webhook_settings, uncaught
):
    settle(page)
    log_in(page, administrator)

    open_from_sidebar(page, "/system/webhooks/")
    assert "Webhook 推送" in page.locator("#cims-sidebar a[href='/system/webhooks/']").inner_text()
    assert page.get_by_test_id("webhook-row").count() == 0
    settle(page)
    page.get_by_test_id("webhook-add").click()
    page.wait_for_url(re.compile(r".*/system/webhooks/new/$"))
    form = page.get_by_test_id("webhook-form")
    form.locator("#id_name").fill("ERP 客户同步")
    form.locator("#id_url").fill(receiver.url)
    form.locator("input[name=events][value='customer.created']").check()
    settle(page)
    form.get_by_test_id("webhook-save").click()
    page.wait_for_url(re.compile(r".*/system/webhooks/\d+/$"))

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == receiver.url and endpoint.events == ["customer.created"]
    assert endpoint.is_active and not endpoint.trusted
    # The signing secret is shown on this first view, and only on it.
    shown = page.get_by_test_id("webhook-secret")
    secret = shown.locator(".font-monospace").inner_text().strip()
    assert secret.startswith("whsec_")
    assert secret == endpoint.secret
    facts = page.get_by_test_id("webhook-facts").inner_text()
    assert receiver.url in facts and zh(webhooks.event_label("customer.created")) in facts
    settle(page)
    page.reload()
    page.get_by_test_id("webhook-facts").wait_for()
    assert page.get_by_test_id("webhook-secret").count() == 0
    assert secret not in page.content()

    # "Send test event": the receiver answers 200 and the delivery page says so.
    settle(page)
    page.get_by_test_id("webhook-ping").click()
    page.wait_for_url(re.compile(r".*/system/webhooks/deliveries/\d+/$"))
    ping = WebhookDelivery.objects.get(event=webhooks.PING)
    assert ping.status == WebhookDelivery.Status.SUCCEEDED, ping.error
    status = page.get_by_test_id("delivery-status")
    assert status.locator(".badge.text-bg-success").count() == 1
    assert zh(WebhookDelivery.Status.SUCCEEDED.label) in status.inner_text()
    assert page.get_by_test_id("delivery-code").inner_text().strip() == "200"
    assert page.get_by_test_id("delivery-error").count() == 0
    assert "answer 200" in page.get_by_test_id("delivery-response").inner_text()
    assert len(receiver.requests) == 1 and receiver.bodies()[0]["event"] == webhooks.PING

    # A sales rep's new customer (committed: this test is transactional) reaches the receiver.
    customer = customer_save(customer=CustomerFactory.build(owner=sales_rep, name="深圳蓝海贸易有限公司"), by=sales_rep)
    delivery = WebhookDelivery.objects.get(event="customer.created")
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED, delivery.error

    settle(page)
    page.locator(f"a[href='/system/webhooks/{endpoint.pk}/']").first.click()
    page.wait_for_url(re.compile(rf".*/system/webhooks/{endpoint.pk}/$"))
    rows = page.get_by_test_id("delivery-row")
    assert rows.count() == 2
    created_row = rows.filter(has_text=zh(webhooks.event_label("customer.created")))
    assert created_row.count() == 1
    assert created_row.locator(".badge.text-bg-success").inner_text() == zh(WebhookDelivery.Status.SUCCEEDED.label)
    assert created_row.locator(".badge.text-bg-success").inner_text() == "已送达"
    assert "200" in created_row.inner_text()
    ping_row = rows.filter(has_text=zh(webhooks.event_label(webhooks.PING)))
    assert ping_row.locator(".badge.text-bg-success").count() == 1
    page.screenshot(path="test-results/webhook-deliveries.png", full_page=True)

    # What the receiving system checks: the signature over the exact body, with the shown secret.
    request = receiver.requests[-1]
    headers = request["headers"]
    assert headers["X-CIMS-Event"] == "customer.created"
    assert headers["X-CIMS-Delivery"] == str(delivery.pk)
    assert webhooks.verify_signature(secret, headers["X-CIMS-Timestamp"], request["body"], headers["X-CIMS-Signature"])
    assert not webhooks.verify_signature(
        "whsec_other", headers["X-CIMS-Timestamp"], request["body"], headers["X-CIMS-Signature"]
    )
    body = json.loads(request["body"])
    assert body["event"] == "customer.created" and body["data"]["id"] == customer.pk

    # The list tells the administrator at a glance that the last delivery went through.
    open_from_sidebar(page, "/system/webhooks/")
    last = page.get_by_test_id("webhook-row").get_by_test_id("webhook-last-status")
    assert last.locator(".badge.text-bg-success").count() == 1
    assert not page.console_errors, page.console_errors
    assert not uncaught, uncaught
