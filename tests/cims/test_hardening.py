"""Rate limits on searches and exports (429), login throttling, no-store on signed-in pages, and
session expiry (cims.hardening, django-axes, settings)."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone, translation

from cims import hardening
from tests.customers.factories import CustomerFactory
from tests.factories import PASSWORD

LIST = reverse("customers:list")
PHONEBOOK = reverse("customers:phonebook")
EXPORT = reverse("customers:export")


def english(client: Client) -> Client:
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _url_names(resolver: URLResolver | None = None, namespace: str = "") -> set[str]:
    names = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(namespace + pattern.name)
    return names


def test_it_names_only_urls_that_exist_in_its_rules():
    # A renamed URL would silently drop out of the limits.
    assert set(hardening.RULES) - _url_names() == set()


def test_it_limits_every_export_url():
    # An export added without a rule would not be limited: every URL named like one is in the table.
    exports = {name for name in _url_names() if "export" in name.split(":")[-1]}
    assert exports - set(hardening.RULES) == set()


# --- Searches ------------------------------------------------------------------------------------


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=3)
def test_it_answers_429_to_the_search_beyond_the_limit(client_for, sales_rep):
    client = english(client_for(sales_rep))
    for term in ("王", "李", "13800138000"):
        assert client.get(LIST, {"q": term}).status_code == 200
    response = client.get(LIST, {"q": "张"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.content.decode()
    assert "Too many searches" in body and "Please wait" in body and "try again" in body
    assert 'data-testid="rate-limited"' in body
    assert "no-store" in response["Cache-Control"]


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=2)
def test_it_counts_searches_of_the_list_and_the_phone_book_together(client_for, sales_rep):
    client = client_for(sales_rep)
    assert client.get(LIST, {"q": "王"}).status_code == 200
    assert client.get(PHONEBOOK, {"q": "王"}).status_code == 200
    assert client.get(PHONEBOOK, {"q": "李"}).status_code == 429


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1)
def test_it_does_not_count_a_list_without_a_search_term(client_for, sales_rep):
    client = client_for(sales_rep)
    for _ in range(3):
        assert client.get(LIST).status_code == 200
        assert client.get(LIST, {"q": "  ", "status": ""}).status_code == 200
    assert client.get(LIST, {"q": "王"}).status_code == 200
    assert client.get(LIST, {"q": "王"}).status_code == 429


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1)
def test_it_limits_each_user_on_their_own(client_for, sales_rep, other_sales_rep):
    client_for(sales_rep).get(LIST, {"q": "王"})
    assert client_for(sales_rep).get(LIST, {"q": "王"}).status_code == 429
    assert client_for(other_sales_rep).get(LIST, {"q": "王"}).status_code == 200


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1)
def test_it_answers_htmx_with_a_short_fragment(client_for, sales_rep):
    client = english(client_for(sales_rep))
    client.get(LIST, {"q": "王"}, HTTP_HX_REQUEST="true")
    response = client.get(LIST, {"q": "王"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 429 and response["Retry-After"]
    body = response.content.decode()
    assert body.lstrip().startswith('<div class="alert') and "<html" not in body
    assert "Too many searches" in body


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1)
def test_it_says_how_long_to_wait_in_the_users_language(client_for, sales_rep):
    client = client_for(sales_rep)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    client.get(LIST, {"q": "王"})
    response = client.get(LIST, {"q": "王"})
    assert response.status_code == 429
    with translation.override("zh-hans"):
        heading = translation.gettext("Too many searches")
    assert heading in response.content.decode()


def test_it_opens_a_new_window_after_the_old_one(db, settings):
    settings.RATE_LIMIT_SEARCH_PER_MINUTE = 2
    start = 1_000_000 * 60 + 10.0  # 10 s into a minute
    assert hardening.hit(hardening.SEARCH, "u1", now=start) is None
    assert hardening.hit(hardening.SEARCH, "u1", now=start + 1) is None
    assert hardening.hit(hardening.SEARCH, "u1", now=start + 2) == 48  # seconds to the next minute
    assert hardening.hit(hardening.SEARCH, "u1", now=start + 50) is None


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1)
def test_it_limits_the_customer_lookup_before_filing_a_ticket(client_for, service_agent):
    client = client_for(service_agent)
    url = reverse("complaints:create")
    assert client.get(url).status_code == 200  # the empty lookup form is not a search
    assert client.get(url, {"code": "C2026-000001"}).status_code == 200
    assert client.get(url, {"code": "C2026-000002"}).status_code == 429


# --- Exports and downloads -----------------------------------------------------------------------


@override_settings(RATE_LIMIT_EXPORT_PER_HOUR=2)
def test_it_answers_429_to_the_export_beyond_the_limit(client_for, manager, sales_rep):
    CustomerFactory(owner=sales_rep)
    client = english(client_for(manager))
    for _ in range(2):
        response = client.get(EXPORT, {"format": "csv"})
        assert response.status_code == 200
        b"".join(response.streaming_content)
    response = client.get(reverse("customers:export_contracts"), {"format": "csv"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "Too many downloads" in response.content.decode()
    # Another user still exports.
    other = client_for(sales_rep).get(EXPORT, {"format": "csv"})
    assert other.status_code == 200


@override_settings(RATE_LIMIT_EXPORT_PER_HOUR=1)
def test_it_counts_the_htmx_hop_of_an_export_button_once(client_for, manager):
    client = client_for(manager)
    hop = client.get(EXPORT, {"format": "csv"}, HTTP_HX_REQUEST="true")
    assert hop.status_code == 204 and hop["HX-Redirect"]
    assert client.get(EXPORT, {"format": "csv"}).status_code == 200
    assert client.get(EXPORT, {"format": "csv"}).status_code == 429


@override_settings(RATE_LIMIT_EXPORT_PER_HOUR=1)
def test_it_limits_the_portal_copy_of_my_data(client_for, portal_customer, portal_customer_record):
    client = client_for(portal_customer)
    url = reverse("portal:privacy_export", args=["json"])
    assert client.post(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 429 and response["Retry-After"]


@override_settings(RATE_LIMIT_SEARCH_PER_MINUTE=1, RATE_LIMIT_EXPORT_PER_HOUR=1)
def test_it_limits_anonymous_requests_by_address(db):
    first, second = Client(REMOTE_ADDR="10.1.1.1"), Client(REMOTE_ADDR="10.1.1.2")
    assert first.get(LIST, {"q": "王"}).status_code == 302  # to the login page, but counted
    assert first.get(LIST, {"q": "王"}).status_code == 429
    assert second.get(LIST, {"q": "王"}).status_code == 302


# --- Login throttling (django-axes) --------------------------------------------------------------


def test_it_still_locks_out_login_after_repeated_failures(sales_rep, settings):
    client = Client()
    url = reverse("accounts:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(url, {"username": sales_rep.username, "password": "wrong-password-1"})
    assert response.status_code == 429
    # Even the right password is refused while locked out.
    response = client.post(url, {"username": sales_rep.username, "password": PASSWORD})
    assert response.status_code == 429
    assert 'data-testid="locked-out"' in response.content.decode()


# --- No-store ------------------------------------------------------------------------------------


def _no_store(response) -> bool:
    value = response.get("Cache-Control", "")
    return "no-store" in value and "private" in value


def test_it_marks_the_360_page_and_lists_no_store(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    client = client_for(sales_rep)
    for url in (reverse("customers:detail", args=[customer.pk]), LIST, PHONEBOOK):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), url


def test_it_marks_portal_pages_no_store(client_for, portal_customer, portal_customer_record):
    client = client_for(portal_customer)
    for url in (reverse("accounts:portal_home"), reverse("portal:privacy"), reverse("portal:tickets")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), url


def test_it_marks_error_pages_of_signed_in_users_no_store(client_for, sales_rep):
    response = client_for(sales_rep).get("/no-such-page/")
    assert response.status_code == 404 and _no_store(response)


def test_it_keeps_the_cache_control_a_view_chose(client_for, manager):
    from django.http import HttpResponse

    from cims.hardening import NoStoreMiddleware

    request = RequestFactory().get("/")
    request.user = manager
    chosen = HttpResponse("x")
    chosen["Cache-Control"] = "max-age=60"
    response = NoStoreMiddleware(lambda request: chosen)(request)
    assert response["Cache-Control"] == "max-age=60"  # the view's own value, not rewritten


def test_it_leaves_anonymous_public_pages_alone(db):
    response = Client().get("/healthz")
    assert response["Cache-Control"] != "private, no-store"  # never_cache's own value
    response = Client().get(reverse("lottery:verifier_script"))
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Cookie" not in response.get("Vary", "")  # the session was not even loaded


def test_the_login_page_is_not_cached_either(db):
    # Django's login view is never_cache: it holds a CSRF token, no personal data.
    response = Client().get(reverse("accounts:login"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_it_leaves_static_files_cacheable_for_signed_in_users(client_for, sales_rep):
    response = client_for(sales_rep).get("/static/cims/cims.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


# --- Sessions ------------------------------------------------------------------------------------


def test_it_refuses_a_session_idle_longer_than_the_cookie_age(client_for, sales_rep, settings):
    client = client_for(sales_rep)
    assert client.get(LIST).status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    # The expiry slides with each request: now + SESSION_COOKIE_AGE.
    left = session.expire_date - timezone.now()
    assert datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE - 60) < left
    assert left <= datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    # Idle for longer than that: the session is gone, the user must log in again.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - datetime.timedelta(seconds=1))
    response = client.get(LIST)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_it_ends_the_session_on_logout(client_for, sales_rep):
    client = client_for(sales_rep)
    key = client.session.session_key
    assert client.get(LIST).status_code == 200
    assert client.get(reverse("accounts:logout")).status_code == 405  # logging out is a POST
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(LIST).status_code == 302


@pytest.mark.parametrize("name", ["SESSION_COOKIE_HTTPONLY", "SESSION_SAVE_EVERY_REQUEST"])
def test_it_keeps_the_session_settings_safe(settings, name):
    assert getattr(settings, name) is True
    assert settings.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")


# --- No personal data in the access log ----------------------------------------------------------


def test_the_access_log_names_the_path_but_never_the_query_string_or_referer():
    import shlex
    from pathlib import Path

    import yaml
    from django.conf import settings as django_settings

    root = Path(django_settings.BASE_DIR)
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    commands = [shlex.split(compose["services"]["web"]["command"][-1])]
    dockerfile = (root / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    import json

    commands.append(json.loads(cmd[4:]))
    for args in commands:
        log_format = args[args.index("--access-logformat") + 1]
        assert "%(U)s" in log_format
        for leak in ("%(r)s", "%(q)s", "%(f)s", "%({"):
            assert leak not in log_format
