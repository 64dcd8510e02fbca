"""The API token pages: administrators only; the secret shown once; revoking stops the token at once."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken
from cims.api.authentication import digest
from tests.api.conftest import ApiClient, make_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("system:api_tokens")
CREATE = reverse("system:api_token_create")
# The one API address that exists whatever resource endpoints are installed.
SCHEMA = "/api/v1/schema/?format=json"


def detail_url(token) -> str:
    return reverse("system:api_token_detail", args=[token.pk])


def revoke_url(token) -> str:
    return reverse("system:api_token_revoke", args=[token.pk])


@pytest.fixture
def erp_token(sales_rep, administrator):
    token, _raw = make_token(sales_rep, name="ERP sync", scope=ApiToken.Scope.READ, created_by=administrator)
    return token


@pytest.fixture
def admin_client(client_for, administrator):
    """The administrator, reading the pages in English (the default language is zh-hans)."""
    client = client_for(administrator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def created_secret(response) -> str:
    return response.context["secret"]


def test_it_sends_anonymous_visitors_to_the_login_page(client, erp_token):
    for response in (
        client.get(LIST),
        client.get(CREATE),
        client.get(detail_url(erp_token)),
        client.post(revoke_url(erp_token)),
    ):
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]
    erp_token.refresh_from_db()
    assert erp_token.revoked_at is None


@pytest.mark.parametrize(
    "role", ["manager", "sales_rep", "service_agent", "analyst", "portal_customer", "roleless_user"]
)
def test_it_refuses_the_pages_to_other_roles(request, client_for, role, erp_token, sales_rep):
    client = client_for(request.getfixturevalue(role))
    assert client.get(LIST).status_code == 403
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, {"name": "sneaky", "user": sales_rep.pk, "scope": "read_write"}).status_code == 403
    assert client.get(detail_url(erp_token)).status_code == 403
    assert client.post(revoke_url(erp_token)).status_code == 403
    assert not ApiToken.objects.filter(name="sneaky").exists()
    erp_token.refresh_from_db()
    assert erp_token.revoked_at is None


def test_it_lists_active_and_revoked_tokens_with_their_service_user(
    admin_client, administrator, erp_token, manager, django_assert_max_num_queries
):
    revoked, _raw = make_token(manager, name="Old website", created_by=administrator)
    services.api_token_revoke(token=revoked, by=administrator)
    with django_assert_max_num_queries(12):
        response = admin_client.get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="token-row"') == 2
    assert "ERP sync" in body and "Old website" in body
    assert "李销售" in body and "Sales" in body  # the service user and their role
    assert "Revoked" in body and "Active" in body
    assert f"cims_{erp_token.prefix}_" in body
    assert 'data-testid="token-new"' in body


def test_it_offers_only_active_staff_as_service_users(admin_client, administrator, sales_rep, portal_customer):
    UserFactory(username="t_gone", name="离职员工", role="sales", is_active=False)
    response = admin_client.get(CREATE)
    assert response.status_code == 200
    offered = set(response.context["form"].fields["user"].queryset)
    assert sales_rep in offered and administrator in offered
    assert portal_customer not in offered
    assert not any(user.username == "t_gone" for user in offered)
    assert "sees and may change exactly what this user" in response.content.decode()


def test_it_creates_a_token_and_shows_the_secret_once(admin_client, administrator, sales_rep):
    response = admin_client.post(
        CREATE, {"name": "Call centre", "user": sales_rep.pk, "scope": "read", "rate_limit": "30"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="Call centre")
    assert (token.user, token.scope, token.rate_limit, token.created_by) == (sales_rep, "read", 30, administrator)
    secret = created_secret(response)
    body = response.content.decode()
    assert secret in body and f"Authorization: Bearer {secret}" in body
    assert "/api/v1/docs/" in body
    assert "no-store" in response["Cache-Control"]
    # Only the digest is kept: neither the row nor any later page holds the secret.
    assert token.key_hash == digest(secret) and secret not in (token.key_hash, token.prefix)
    assert secret not in admin_client.get(detail_url(token)).content.decode()
    assert secret not in admin_client.get(LIST).content.decode()
    # The secret works at once, as the service user.
    api = ApiClient(secret)
    assert api.get(SCHEMA).status_code == 200
    assert token.history.first().history_user == administrator


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "scope": "read"}, "name"),
        ({}, "name"),
        ({"name": "erp SYNC", "scope": "read"}, "name"),  # taken by "ERP sync", case aside
        ({"name": "X", "scope": "everything"}, "scope"),
        ({"name": "X", "scope": "read", "rate_limit": "0"}, "rate_limit"),
        ({"name": "X", "scope": "read", "rate_limit": "lots"}, "rate_limit"),
        ({"name": "X", "scope": "read", "user": "999999"}, "user"),
        ({"name": "X", "scope": "read", "user": "abc"}, "user"),
    ],
)
def test_it_refuses_bad_input_with_a_message(admin_client, administrator, sales_rep, erp_token, data, field):
    data = {"user": sales_rep.pk, **data} if data else {}
    before = ApiToken.objects.count()
    response = admin_client.post(CREATE, data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert "secret" not in response.context
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize("who", ["portal_customer", "roleless_user"])
def test_it_refuses_a_service_user_who_is_not_staff(request, admin_client, administrator, who):
    user = request.getfixturevalue(who)
    response = admin_client.post(CREATE, {"name": "Portal bot", "user": user.pk, "scope": "read"})
    assert response.status_code == 400
    assert response.context["form"].errors["user"]
    assert not ApiToken.objects.filter(name="Portal bot").exists()


def test_it_shows_the_history_and_last_use(admin_client, administrator, sales_rep):
    response = admin_client.post(CREATE, {"name": "Shop", "user": sales_rep.pk, "scope": "read_write"})
    token = ApiToken.objects.get(name="Shop")
    assert ApiClient(created_secret(response)).get(SCHEMA).status_code == 200
    admin_client.post(revoke_url(token))
    response = admin_client.get(detail_url(token))
    assert response.status_code == 200
    kinds = [str(event["kind"]) for event in response.context["history"]]
    assert kinds == ["Revoked", "Created"]
    assert all(event["row"].history_user == administrator for event in response.context["history"])
    body = response.content.decode()
    assert 'data-testid="token-revoked"' in body
    assert 'data-testid="token-revoke-submit"' not in body  # nothing left to revoke
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at.strftime("%Y-%m-%d") in body


def test_it_answers_404_for_an_unknown_token(admin_client, administrator):
    assert admin_client.get(reverse("system:api_token_detail", args=[999999])).status_code == 404
    assert admin_client.post(reverse("system:api_token_revoke", args=[999999])).status_code == 404


def test_it_revokes_a_token_which_stops_working_at_once(admin_client, administrator, sales_rep):
    token, raw = make_token(sales_rep, name="Website", created_by=administrator)
    api = ApiClient(raw)
    assert api.get(SCHEMA).status_code == 200
    response = admin_client.post(revoke_url(token))
    assert response.status_code == 302 and response["Location"] == detail_url(token)
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == administrator
    refused = api.get(SCHEMA)
    assert refused.status_code == 401
    assert json.loads(refused.content)["error"]["code"] == "authentication_failed"
    # Still listed, as revoked.
    assert "Website" in admin_client.get(LIST).content.decode()


def test_it_revokes_only_by_post(admin_client, administrator, erp_token):
    assert admin_client.get(revoke_url(erp_token)).status_code == 405
    erp_token.refresh_from_db()
    assert erp_token.revoked_at is None


def test_it_keeps_the_first_revocation(client_for, administrator, erp_token):
    other_admin = UserFactory(username="t_admin2", role="admin", is_staff=True)
    services.api_token_revoke(token=erp_token, by=administrator)
    first = ApiToken.objects.get(pk=erp_token.pk).revoked_at
    response = client_for(other_admin).post(revoke_url(erp_token), follow=True)
    assert response.status_code == 200
    erp_token.refresh_from_db()
    assert (erp_token.revoked_at, erp_token.revoked_by) == (first, administrator)
    assert erp_token.history.count() == 2  # created, revoked: the second click wrote nothing


def test_the_service_refuses_a_deactivated_or_portal_service_user(administrator, portal_customer, sales_rep):
    sales_rep.is_active = False
    sales_rep.save(update_fields=["is_active"])
    for user in (portal_customer, sales_rep):
        with pytest.raises(ValidationError) as caught:
            services.api_token_create(name=f"t-{user.pk}", user=user, scope="read", rate_limit=None, by=administrator)
        assert "user" in caught.value.message_dict
    assert not ApiToken.objects.exists()


def test_the_service_refuses_a_taken_name(administrator, sales_rep, erp_token):
    with pytest.raises(ValidationError) as caught:
        services.api_token_create(name="ERP sync", user=sales_rep, scope="read", rate_limit=None, by=administrator)
    assert "name" in caught.value.message_dict
