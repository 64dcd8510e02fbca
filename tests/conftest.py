"""The cast of users every test can call on: one per role, plus a colleague and an outsider."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import roles
from tests.factories import UserFactory


@pytest.fixture(scope="session", autouse=True)
def _test_server_settings():
    """Tests speak plain HTTP (test client, live server) and serve static files without running
    collectstatic; the production values are checked by the deploy-check test."""
    from django.conf import settings
    from django.test.utils import override_settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override = override_settings(
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        SECURE_HSTS_SECONDS=0,
        STORAGES=storages,
        # Hashing strength is not under test; PBKDF2 at full cost made every cast user take ~0.3 s.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture
def administrator(db):
    return UserFactory(username="t_admin", name="管理员", role=roles.ADMIN, is_staff=True)


@pytest.fixture
def manager(db):
    return UserFactory(username="t_manager", name="经理", role=roles.MANAGER)


@pytest.fixture
def sales_rep(db):
    return UserFactory(username="t_sales1", name="李销售", role=roles.SALES)


@pytest.fixture
def other_sales_rep(db):
    return UserFactory(username="t_sales2", name="王销售", role=roles.SALES)


@pytest.fixture
def service_agent(db):
    return UserFactory(username="t_service", name="陈客服", role=roles.SERVICE)


@pytest.fixture
def analyst(db):
    return UserFactory(username="t_analyst", name="赵分析", role=roles.ANALYST)


@pytest.fixture
def portal_customer(db):
    return UserFactory(username="t_customer1", name="刘女士", role=roles.CUSTOMER)


@pytest.fixture
def other_portal_customer(db):
    return UserFactory(username="t_customer2", name="张先生", role=roles.CUSTOMER)


@pytest.fixture
def roleless_user(db):
    return UserFactory(username="t_nobody", name="无角色")


@pytest.fixture
def cast(administrator, manager, sales_rep, service_agent, analyst, portal_customer):
    return {
        roles.ADMIN: administrator,
        roles.MANAGER: manager,
        roles.SALES: sales_rep,
        roles.SERVICE: service_agent,
        roles.ANALYST: analyst,
        roles.CUSTOMER: portal_customer,
    }


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache: the rate limits' counters (cims.hardening) of one
    test must not refuse the requests of the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def client_for():
    """A logged-in test client for a user (force_login: django-axes needs a request to authenticate)."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return make


@pytest.fixture
def shipped_reference_data(db):
    """The provinces and default lookups migration 0002 ships, loaded again (idempotent): a
    transactional test that ran before may have emptied the tables they live in."""
    import importlib

    from django.apps import apps

    importlib.import_module("customers.migrations.0002_reference_data_and_roles").load_reference_data(apps, None)


def pytest_collection_modifyitems(items):
    """Every transactional test reloads the data the migrations ship (serialized rollback).

    A transactional test ends by emptying every table; Django then recreates content types and
    permissions unless the test uses serialized rollback, and a later serialized test, loading its
    copy, fails on the rows recreated. Making them all serialized keeps any order of tests working
    and every test starting with the shipped provinces, lookups and role groups.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            item.add_marker(
                pytest.mark.django_db(*marker.args, **{**marker.kwargs, "serialized_rollback": True}), append=False
            )


def _portal_record(user, name: str):
    from accounts.models import PortalAccount
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(name=name)
    PortalAccount.objects.create(user=user, customer=customer)
    return customer


@pytest.fixture
def portal_customer_record(portal_customer):
    """The customer whose portal account ``portal_customer`` is."""
    return _portal_record(portal_customer, "刘女士")


@pytest.fixture
def other_portal_customer_record(other_portal_customer):
    """Another customer with a portal account: what ``portal_customer`` must never reach."""
    return _portal_record(other_portal_customer, "张先生")
