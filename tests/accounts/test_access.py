"""Who may open which page: walks every URL of the project, so new pages are covered automatically."""

import pytest
from django.conf import settings
from django.test import Client

from tests.urlwalk import walk_urls

# Pages anyone may open without logging in (logout only ends a session, if there is one).
PUBLIC = {
    "accounts:login",
    "accounts:logout",
    "admin:login",
    "admin:logout",
    "set_language",
    "javascript-catalog",
    "healthz",
    # Signed one-time links: the invitation that sets a portal customer's first password, and the
    # satisfaction rating link sent when a ticket is resolved.
    "portal:invitation",
    "portal:rate_link",
    # The year-end lottery's public verification page and its downloads: anyone, customers and
    # auditors, may check a published draw (drafts are a 404).
    "lottery:public",
    "lottery:public_document",
    "lottery:public_entries",
    "lottery:verifier_script",
}
# Pages for portal customers (and the routing page every logged-in user may hit).
PORTAL = {"accounts:portal_home"} | {url.name for url in walk_urls() if url.name.startswith("portal:")} - PUBLIC
SHARED = {"accounts:home", "accounts:password_change"}


def _is_admin(url) -> bool:
    return url.path.startswith("/" + settings.ADMIN_URL)


def _pages():
    return [url for url in walk_urls() if url.name not in PUBLIC]


def test_it_finds_the_urls_to_walk():
    names = {url.name for url in walk_urls()}
    assert {"accounts:login", "reports:dashboard", "accounts:employee_list", "accounts:employee_edit"} <= names


@pytest.mark.django_db
def test_it_sends_anonymous_users_to_login_from_every_non_public_url():
    client = Client()
    for url in _pages():
        response = client.get(url.path)
        if url.path.startswith("/api/") and url.name != "api:docs":
            # The REST API redirects nobody: 401 in JSON, with the scheme to authenticate by.
            assert response.status_code == 401, f"{url.name} ({url.path}) answered {response.status_code}"
            assert response.json()["error"]["code"] == "not_authenticated", url.name
            assert response["WWW-Authenticate"].startswith("Bearer"), url.name
            continue
        assert response.status_code == 302, f"{url.name} ({url.path}) answered {response.status_code}"
        login = "/" + settings.ADMIN_URL + "login/" if _is_admin(url) else "/accounts/login/"
        assert response["Location"].startswith(login), f"{url.name} redirected to {response['Location']}"


def test_it_refuses_a_portal_customer_every_staff_page(portal_customer, client_for):
    client = client_for(portal_customer)
    for url in _pages():
        if url.name in PORTAL | SHARED:
            continue
        response = client.get(url.path)
        if _is_admin(url):
            assert response.status_code == 302 and "login" in response["Location"], url.name
        else:
            assert response.status_code == 403, f"{url.name} answered {response.status_code}"


def test_it_refuses_staff_the_portal(cast, client_for):
    for role, user in cast.items():
        if role == "customer":
            continue
        for name in PORTAL:
            response = client_for(user).get(next(u.path for u in walk_urls() if u.name == name))
            assert response.status_code == 403, f"{role} opened {name}"


def test_it_serves_the_portal_to_a_portal_customer(portal_customer, client_for):
    response = client_for(portal_customer).get("/accounts/portal/")
    assert response.status_code == 200
    assert portal_customer.name in response.content.decode()


def test_it_refuses_a_user_without_a_role(roleless_user, client_for):
    client = client_for(roleless_user)
    assert client.get("/accounts/home/").status_code == 403
    assert client.get("/").status_code == 403


def test_it_refuses_a_superuser_the_portal(db, client_for):
    from tests.factories import UserFactory

    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client = client_for(root)
    assert client.get("/").status_code == 200
    assert client.get("/accounts/portal/").status_code == 403


@pytest.mark.parametrize("role", ["admin", "manager", "sales", "service", "analyst"])
def test_it_shows_the_dashboard_to_every_staff_role(cast, client_for, role):
    response = client_for(cast[role]).get("/")
    assert response.status_code == 200
    assert "工作台" in response.content.decode()


def test_it_shows_each_role_only_the_navigation_it_may_use(cast, client_for):
    admin_page = client_for(cast["admin"]).get("/").content.decode()
    manager_page = client_for(cast["manager"]).get("/").content.decode()
    sales_page = client_for(cast["sales"]).get("/").content.decode()
    assert "/accounts/employees/" in admin_page and "/accounts/departments/" in admin_page
    assert "/accounts/employees/" in manager_page
    assert "/accounts/employees/" not in sales_page
    assert "/accounts/departments/" not in sales_page
    # The link to the Django admin is for administrators only.
    assert "/" + settings.ADMIN_URL in admin_page
    assert "/" + settings.ADMIN_URL not in sales_page
