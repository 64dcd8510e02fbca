"""Every API list endpoint × every role, with a read-only token: the role matrix decides, as in the UI.

Built from the router's registry, so an endpoint registered tomorrow is covered without a new test.
The expectation comes from ``accounts.roles.ROLE_PERMISSIONS`` (the documented matrix), not from
the permission class under test.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from accounts import roles
from accounts.models import ApiToken
from cims.api.permissions import required_permission
from cims.api.urls import router

pytestmark = pytest.mark.django_db

ROLE_FIXTURES = {
    roles.ADMIN: "administrator",
    roles.MANAGER: "manager",
    roles.SALES: "sales_rep",
    roles.SERVICE: "service_agent",
    roles.ANALYST: "analyst",
    roles.CUSTOMER: "portal_customer",
}
ENDPOINTS = [(prefix, viewset) for prefix, viewset, _basename in router.registry]


def _role_holds(role: str, permission: str) -> bool:
    available = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    held = roles.expected_permissions(role, available)
    return "accounts.access_staff_ui" in held and permission in held


def test_the_router_has_endpoints_or_says_why():
    # Until the apps register their endpoints the matrix below is empty; this keeps that visible.
    if not ENDPOINTS:
        pytest.skip("no API endpoint is registered yet")
    assert all(prefix and viewset for prefix, viewset in ENDPOINTS)


@pytest.mark.parametrize("role", list(ROLE_FIXTURES))
@pytest.mark.parametrize(("prefix", "viewset"), ENDPOINTS, ids=[prefix for prefix, _viewset in ENDPOINTS])
def test_it_lets_a_role_list_exactly_what_its_permissions_allow(request, api_for, prefix, viewset, role):
    user = request.getfixturevalue(ROLE_FIXTURES[role])
    # An instance in the list action: a viewset may choose its permission per action.
    permission = required_permission(viewset(action="list"), "GET")
    assert permission and "." in permission, f"{viewset.__name__} names no model permission"
    api, _token = api_for(user, scope=ApiToken.Scope.READ)
    response = api.get(f"/api/v1/{prefix}/")
    if _role_holds(role, permission):
        assert response.status_code == 200, (role, prefix, response.content[:300])
        assert isinstance(response.json()["results"], list)
    else:
        assert response.status_code == 403, (role, prefix, response.content[:300])
        expected = "not_staff" if role == roles.CUSTOMER else "permission_denied"
        assert json.loads(response.content)["error"]["code"] == expected


@pytest.mark.parametrize(("prefix", "viewset"), ENDPOINTS, ids=[prefix for prefix, _viewset in ENDPOINTS])
def test_it_refuses_every_write_to_a_read_only_token(api_for, administrator, prefix, viewset):
    api, _token = api_for(administrator, scope=ApiToken.Scope.READ)
    methods = [name for name in ("post", "put", "patch") if name in viewset.http_method_names]
    for method in methods:
        path = f"/api/v1/{prefix}/" if method == "post" else f"/api/v1/{prefix}/1/"
        response = getattr(api, method)(path, {})
        assert response.status_code == 403, (method, path)
        assert json.loads(response.content)["error"]["code"] == "read_only_token"


@pytest.mark.parametrize(("prefix", "viewset"), ENDPOINTS, ids=[prefix for prefix, _viewset in ENDPOINTS])
def test_it_never_deletes(api_for, administrator, prefix, viewset):
    api, _token = api_for(administrator)
    assert "delete" not in viewset.http_method_names
    assert api.delete(f"/api/v1/{prefix}/1/").status_code == 405


@pytest.mark.parametrize("role", list(ROLE_FIXTURES))
def test_it_serves_the_schema_to_staff_only(request, api_for, role):
    api, _token = api_for(request.getfixturevalue(ROLE_FIXTURES[role]), scope=ApiToken.Scope.READ)
    response = api.get("/api/v1/schema/?format=json")
    assert response.status_code == (403 if role == roles.CUSTOMER else 200)
