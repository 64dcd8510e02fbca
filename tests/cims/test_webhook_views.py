"""The webhook pages: administrators only; endpoints with a secret shown once, deliveries, ping, resend."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from cims.models import WebhookDelivery, WebhookEndpoint
from tests.cims.test_webhooks import SECRET, Receiver, make_endpoint

pytestmark = pytest.mark.django_db

LIST = reverse("system:webhooks")
CREATE = reverse("system:webhook_create")
S = WebhookDelivery.Status


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def endpoint(administrator):
    return make_endpoint("https://hooks.example.com/cims", name="erp", by=administrator)


@pytest.fixture
def delivery(endpoint):
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="customer.created",
        event_id="6f1c2a2e-8d1b-4c55-9a39-3c8d0f6b7a10",
        payload=json.dumps({"id": "6f1c2a2e", "event": "customer.created", "masked": True, "data": {"id": 7}}),
        status=S.FAILED,
        attempts=8,
        response_code=500,
        error="HTTP 500",
    )


def urls(endpoint, delivery) -> dict[str, str]:
    return {
        "list": LIST,
        "create": CREATE,
        "detail": reverse("system:webhook_detail", args=[endpoint.pk]),
        "edit": reverse("system:webhook_edit", args=[endpoint.pk]),
        "delivery": reverse("system:webhook_delivery", args=[delivery.pk]),
    }


def posts(endpoint, delivery) -> list[str]:
    return [
        CREATE,
        reverse("system:webhook_edit", args=[endpoint.pk]),
        reverse("system:webhook_ping", args=[endpoint.pk]),
        reverse("system:webhook_resend", args=[delivery.pk]),
    ]


def form_data(**overrides) -> dict:
    data = {
        "name": "crm-sync",
        "url": "https://hooks.example.com/in",
        "events": ["customer.created"],
        "is_active": "on",
    }
    data.update(overrides)
    return data


# --- Who may ------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_the_login_page(client, endpoint, delivery):
    for url in [*urls(endpoint, delivery).values(), *posts(endpoint, delivery)]:
        response = client.post(url) if url in posts(endpoint, delivery) else client.get(url)
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"], url


@pytest.mark.parametrize("role", ["manager", "sales_rep", "service_agent", "analyst", "portal_customer"])
def test_it_refuses_every_page_to_other_roles(request, client_for, role, endpoint, delivery):
    client = client_for(request.getfixturevalue(role))
    for url in urls(endpoint, delivery).values():
        assert client.get(url).status_code == 403, url
    for url in posts(endpoint, delivery):
        assert client.post(url, form_data()).status_code == 403, url
    assert WebhookEndpoint.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


def test_it_refuses_a_post_without_the_csrf_token(administrator, endpoint):
    client = Client(enforce_csrf_checks=True)
    client.force_login(administrator, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(reverse("system:webhook_ping", args=[endpoint.pk])).status_code == 403
    assert client.post(CREATE, form_data()).status_code == 403
    assert not WebhookDelivery.objects.exists() and WebhookEndpoint.objects.count() == 1


def test_it_refuses_get_on_the_actions(client_for, administrator, endpoint, delivery):
    client = client_for(administrator)
    assert client.get(reverse("system:webhook_ping", args=[endpoint.pk])).status_code == 405
    assert client.get(reverse("system:webhook_resend", args=[delivery.pk])).status_code == 405
    assert WebhookDelivery.objects.count() == 1


def test_it_answers_404_for_unknown_ids(client_for, administrator):
    client = client_for(administrator)
    assert client.get(reverse("system:webhook_detail", args=[999])).status_code == 404
    assert client.get(reverse("system:webhook_delivery", args=[999])).status_code == 404
    assert client.post(reverse("system:webhook_resend", args=[999])).status_code == 404


# --- The list -----------------------------------------------------------------------------------


def test_it_lists_endpoints_with_their_last_delivery(
    client_for, administrator, endpoint, delivery, django_assert_max_num_queries
):
    make_endpoint("https://other.example.com/", name="bi", trusted=True, by=administrator)
    client = client_for(administrator)
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="webhook-row"') == 2
    assert "https://hooks.example.com/cims" in body and 'data-testid="webhook-trusted"' in body
    assert str(delivery.get_status_display()) in body
    assert SECRET not in body


# --- Create and edit -----------------------------------------------------------------------------


def test_it_creates_an_endpoint_and_shows_its_secret_once(client_for, administrator):
    client = client_for(administrator)
    assert client.get(CREATE).status_code == 200
    response = client.post(CREATE, form_data(events=["complaint.resolved", "customer.created"], trusted="on"))
    endpoint = WebhookEndpoint.objects.get(name="crm-sync")
    assert response.status_code == 302 and response["Location"] == reverse("system:webhook_detail", args=[endpoint.pk])
    assert endpoint.created_by == administrator and endpoint.trusted and endpoint.is_active
    assert endpoint.events == ["customer.created", "complaint.resolved"]
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    first = client.get(response["Location"]).content.decode()
    assert 'data-testid="webhook-secret"' in first and endpoint.secret in first
    again = client.get(response["Location"]).content.decode()
    assert endpoint.secret not in again and 'data-testid="webhook-secret"' not in again


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "http://hooks.example.com/in"}, "url"),
        ({"url": "https://192.168.0.10/in"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["customer.exploded"]}, "events"),
        ({"name": ""}, "name"),
    ],
)
def test_it_refuses_bad_input_with_form_errors(client_for, administrator, settings, overrides, field):
    settings.WEBHOOK_ALLOW_HTTP = False
    response = client_for(administrator).post(CREATE, form_data(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not WebhookEndpoint.objects.exists()


def test_it_says_why_an_http_address_is_refused(client_for, administrator, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    client = client_for(administrator)
    url = form_data(url="http://hooks.example.com/in")
    response = client.post(CREATE, url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.context["form"].errors["url"] == ["Use an https:// address."]
    response = client.post(CREATE, url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.context["form"].errors["url"] == ["请使用 https:// 地址。"]


def test_it_accepts_an_http_address_when_allowed(client_for, administrator):
    response = client_for(administrator).post(CREATE, form_data(url="http://127.0.0.1:9999/in"))
    assert response.status_code == 302 and WebhookEndpoint.objects.get().url == "http://127.0.0.1:9999/in"


def test_it_refuses_a_duplicate_name(client_for, administrator, endpoint):
    response = client_for(administrator).post(CREATE, form_data(name="erp"))
    assert response.status_code == 400 and "name" in response.context["form"].errors


def test_it_edits_an_endpoint_keeping_its_secret(client_for, administrator, endpoint):
    client = client_for(administrator)
    edit = reverse("system:webhook_edit", args=[endpoint.pk])
    assert client.get(edit).status_code == 200
    response = client.post(edit, form_data(name="erp", events=["opportunity.won"]))
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["opportunity.won"] and endpoint.secret == SECRET
    assert SECRET not in client.get(response["Location"]).content.decode()


def test_it_rotates_the_secret_and_shows_the_new_one_once(client_for, administrator, endpoint):
    client = client_for(administrator)
    response = client.post(
        reverse("system:webhook_edit", args=[endpoint.pk]), form_data(name="erp", rotate_secret="on")
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != SECRET and endpoint.secret.startswith("whsec_")
    assert endpoint.secret in client.get(response["Location"]).content.decode()
    assert endpoint.secret not in client.get(response["Location"]).content.decode()


def test_it_refuses_a_bad_edit(client_for, administrator, endpoint, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    response = client_for(administrator).post(
        reverse("system:webhook_edit", args=[endpoint.pk]), form_data(name="erp", url="ftp://x.example.com/")
    )
    assert response.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/cims"


# --- Detail, delivery, ping, resend --------------------------------------------------------------


def test_it_shows_an_endpoints_deliveries_page_by_page(
    client_for, administrator, endpoint, delivery, django_assert_max_num_queries
):
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=endpoint, event="customer.updated", event_id=delivery.event_id, payload="{}")
            for _ in range(35)
        ]
    )
    client = client_for(administrator)
    url = reverse("system:webhook_detail", args=[endpoint.pk])
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="delivery-row"') == 30 and 'data-testid="page-next"' in body
    assert SECRET not in body
    second = client.get(f"{url}?{response.context['next_query']}").content.decode()
    assert second.count('data-testid="delivery-row"') == 6


def test_it_shows_a_delivery_with_its_headers_and_payload(client_for, administrator, delivery):
    body = client_for(administrator).get(reverse("system:webhook_delivery", args=[delivery.pk])).content.decode()
    assert "X-CIMS-Event" in body and "X-CIMS-Delivery" in body and "customer.created" in body
    assert 'data-testid="delivery-payload"' in body and "&quot;masked&quot;: true" in body
    assert 'data-testid="delivery-error"' in body and "HTTP 500" in body
    assert SECRET not in body


def test_it_shows_a_trusted_endpoints_payload_masked(client_for, administrator, endpoint):
    body = {
        "id": "1",
        "event": "customer.created",
        "masked": False,
        "data": {"id": 7, "id_number": "110101199003078515"},
    }
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="customer.created",
        event_id="6f1c2a2e-8d1b-4c55-9a39-3c8d0f6b7a11",
        payload=json.dumps(body),
        status=S.SUCCEEDED,
    )
    page = client_for(administrator).get(reverse("system:webhook_delivery", args=[delivery.pk])).content.decode()
    assert 'data-testid="payload-unmasked"' in page
    assert "110101199003078515" not in page


def test_it_pings_an_endpoint(client_for, administrator, receiver, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, name="local", by=administrator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(administrator).post(reverse("system:webhook_ping", args=[endpoint.pk]))
    ping = WebhookDelivery.objects.get(endpoint=endpoint)
    assert response.status_code == 302 and response["Location"] == reverse("system:webhook_delivery", args=[ping.pk])
    assert (ping.event, ping.status) == ("ping", S.SUCCEEDED)
    assert json.loads(receiver.requests[0]["body"])["event"] == "ping"
    page = client_for(administrator).get(response["Location"])
    assert page.status_code == 200


def test_it_resends_a_delivery(client_for, administrator, receiver, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(receiver.url, name="local", by=administrator)
    original = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="customer.created",
        event_id="6f1c2a2e-8d1b-4c55-9a39-3c8d0f6b7a10",
        payload='{"id":"6f1c2a2e","masked":true}',
        status=S.FAILED,
        attempts=8,
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(administrator).post(reverse("system:webhook_resend", args=[original.pk]))
    resent = WebhookDelivery.objects.exclude(pk=original.pk).get()
    assert response["Location"] == reverse("system:webhook_delivery", args=[resent.pk])
    assert (resent.resent_from, resent.resent_by, resent.status) == (original, administrator, S.SUCCEEDED)
    assert receiver.requests[0]["body"] == b'{"id":"6f1c2a2e","masked":true}'
    original.refresh_from_db()
    assert original.status == S.FAILED  # the original stays as it was


def test_it_refuses_to_resend_to_an_inactive_endpoint(client_for, administrator, endpoint, delivery):
    WebhookEndpoint.objects.update(is_active=False)
    response = client_for(administrator).post(reverse("system:webhook_resend", args=[delivery.pk]))
    assert response.status_code == 302
    assert WebhookDelivery.objects.count() == 1
