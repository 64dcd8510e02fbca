"""The permission matrix as a table: every URL of the project × every role, the answer expected.

``ALLOW`` names, for each URL name, the roles that may open it; every other logged-in role must be
refused (403), and an anonymous visitor sent to log in. A URL that ``walk_urls()`` finds but this
table does not name fails the suite: a new view cannot ship without someone deciding who may use it.

The entries follow the views' decorators (``accounts.access``) and the role matrix
(``accounts.roles``). The sample arguments of ``tests.urlwalk`` point at records that do not exist,
so an allowed role may also get a 404 (no such record), a 405 (the page only takes POST) or a
redirect elsewhere than the login page; what it must never get is a 403 or the login page.
"""

from __future__ import annotations

import warnings

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client

from accounts import roles
from tests.urlwalk import WalkedUrl, walk_urls

ANONYMOUS = "anonymous"
ROLELESS = "roleless"  # logged in, but in no role group
A, M, S, V, N, C = roles.ADMIN, roles.MANAGER, roles.SALES, roles.SERVICE, roles.ANALYST, roles.CUSTOMER
ROLES = (ANONYMOUS, A, M, S, V, N, C, ROLELESS)

STAFF = frozenset({A, M, S, V, N})
# Staff who work with customer records (everyone but the analyst, who sees aggregates only).
CUSTOMER_WORK = frozenset({A, M, S, V})
# Staff who own customers and sell to them.
SELLERS = frozenset({A, M, S})
# Managers and administrators: everyone's customers, decisions, the audit views.
LEADS = frozenset({A, M})
ADMIN_ONLY = frozenset({A})
PORTAL = frozenset({C})
# Anyone, logged in or not: the login page, signed links, the lottery's public verification.
PUBLIC = "public"

ALLOW: dict[str, frozenset[str] | str] = {
    # Reports and the dashboard (reports.*). Which report a role may open is the report's own rule.
    "reports:dashboard": STAFF,
    "reports:dashboard_figures": STAFF,
    "reports:index": STAFF,
    "reports:refresh": STAFF,
    "reports:profiles": frozenset({A, M, S, N}),
    "reports:profile_tag": SELLERS,
    "reports:profile_tasks": STAFF,  # POST only; the view checks reports.act_on_profiles on POST
    "reports:subscription_delete": STAFF,  # the subscriber's own rows only
    "reports:report": frozenset({A, M, S, N}),  # the "campaigns" report: view_all_reports or view_campaign
    "reports:subscribe": STAFF,  # POST only; the report's rule is checked on POST
    # Accounts.
    "accounts:login": PUBLIC,
    "accounts:logout": PUBLIC,
    "accounts:password_change": STAFF | PORTAL | {ROLELESS},
    "accounts:home": STAFF | PORTAL,  # routes staff to the dashboard, customers to the portal
    "accounts:portal_home": PORTAL,
    "accounts:employee_list": LEADS,
    "accounts:employee_create": ADMIN_ONLY,
    "accounts:employee_edit": ADMIN_ONLY,
    "accounts:employee_delete": ADMIN_ONLY,
    "accounts:department_list": LEADS,
    "accounts:department_create": ADMIN_ONLY,
    "accounts:department_edit": ADMIN_ONLY,
    "accounts:department_delete": ADMIN_ONLY,
    # Customers.
    "customers:list": CUSTOMER_WORK,
    "customers:bulk": CUSTOMER_WORK,
    "customers:recycle_bin": LEADS,
    "customers:phonebook": CUSTOMER_WORK,
    "customers:access_log": LEADS,
    "customers:detail": CUSTOMER_WORK,
    "customers:history": CUSTOMER_WORK,
    "customers:reveal": CUSTOMER_WORK,
    "customers:transfer": LEADS,
    "customers:share": SELLERS,
    "customers:delete": LEADS,
    "customers:restore": LEADS,
    "customers:create": SELLERS,
    "customers:duplicate_check": SELLERS,
    "customers:edit": SELLERS,
    "customers:transaction_create": SELLERS,
    "customers:transaction_edit": SELLERS,
    "customers:contract_create": SELLERS,
    "customers:contract_edit": SELLERS,
    "customers:settings": LEADS,
    "customers:lookup_list": CUSTOMER_WORK,  # the customer levels: read by everyone who sees customers
    "customers:lookup_create": ADMIN_ONLY,
    "customers:lookup_edit": ADMIN_ONLY,
    "customers:import": SELLERS,
    "customers:import_template": SELLERS,
    "customers:import_jobs": SELLERS,
    "customers:import_job": SELLERS,
    "customers:import_job_status": SELLERS,
    "customers:import_confirm": SELLERS,
    "customers:import_cancel": SELLERS,
    "customers:import_errors": SELLERS,
    "customers:export": CUSTOMER_WORK,  # masked by role
    "customers:export_transactions": CUSTOMER_WORK,
    "customers:export_contracts": CUSTOMER_WORK,
    "customers:export_followups": CUSTOMER_WORK,
    "customers:duplicates": LEADS,
    "customers:merge": LEADS,
    "customers:pool": SELLERS,
    "customers:pool_claim": SELLERS,
    "customers:pool_release": SELLERS,
    "customers:products": CUSTOMER_WORK,
    "customers:product_create": LEADS,
    "customers:product_detail": CUSTOMER_WORK,
    "customers:product_edit": LEADS,
    "customers:product_stock": LEADS,
    "customers:attachment_upload": SELLERS,
    "customers:attachment_download": SELLERS,
    "customers:attachment_delete": SELLERS,
    "customers:consents": CUSTOMER_WORK,
    "customers:data_requests": LEADS,
    "customers:data_request": LEADS,
    "customers:portal_account": SELLERS,
    # Access requests (数据访问权限审批): everyone who works with customers may ask; leads decide.
    "customers:access_requests": CUSTOMER_WORK,
    "customers:access_request_new": CUSTOMER_WORK,
    "customers:access_request_detail": CUSTOMER_WORK,
    "customers:access_request_decide": LEADS,
    "customers:access_request_revoke": CUSTOMER_WORK,  # a requester withdraws their own request
    # Follow-ups, the agenda, opportunities, campaigns.
    "followups:list": CUSTOMER_WORK,
    "followups:create": SELLERS,
    "followups:edit": SELLERS,
    "followups:status": SELLERS,
    "followups:timeline": CUSTOMER_WORK,
    "followups:return_visits": LEADS,
    "followups:tasks": CUSTOMER_WORK,
    "followups:task_create": CUSTOMER_WORK,
    "followups:task_edit": CUSTOMER_WORK,
    "followups:task_done": CUSTOMER_WORK,
    "followups:notifications": STAFF,
    "followups:bell": STAFF,
    "followups:notification_read": STAFF,
    "followups:notifications_read_all": STAFF,
    "followups:calendar": CUSTOMER_WORK,
    "followups:history": CUSTOMER_WORK,
    "followups:note_create": CUSTOMER_WORK,
    "followups:note_edit": CUSTOMER_WORK,
    "followups:note_delete": CUSTOMER_WORK,
    "followups:pipeline": SELLERS,
    "followups:opportunities": SELLERS,
    "followups:opportunity_create": SELLERS,
    "followups:opportunity_edit": SELLERS,
    "followups:opportunity_move": SELLERS,
    "followups:opportunity_win": SELLERS,
    "followups:opportunity_lose": SELLERS,
    "followups:campaigns": SELLERS,
    "followups:campaign_create": LEADS,
    "followups:campaign_detail": SELLERS,
    "followups:campaign_edit": LEADS,
    "followups:campaign_add_targets": LEADS,
    "followups:campaign_member_update": SELLERS,
    "followups:campaign_member_remove": LEADS,
    # Complaints and service tickets.
    "complaints:list": CUSTOMER_WORK,
    "complaints:create": CUSTOMER_WORK,
    "complaints:customer_tickets": CUSTOMER_WORK,
    "complaints:detail": CUSTOMER_WORK,
    "complaints:transition": CUSTOMER_WORK,
    "complaints:assign": LEADS,
    "complaints:comment": CUSTOMER_WORK,
    "complaints:attachment": CUSTOMER_WORK,
    # The year-end lottery: every staff member sees events and (masked) winners; the rest is the
    # administrator's.
    "lottery:list": STAFF,
    "lottery:create": ADMIN_ONLY,
    "lottery:detail": STAFF,
    "lottery:edit": ADMIN_ONLY,
    "lottery:delete": ADMIN_ONLY,
    "lottery:publish": ADMIN_ONLY,
    "lottery:public_value": ADMIN_ONLY,
    "lottery:announce": ADMIN_ONLY,
    "lottery:winners": STAFF,
    "lottery:winners_export": LEADS,
    "lottery:show": ADMIN_ONLY,
    "lottery:show_draw": ADMIN_ONLY,
    "lottery:public": PUBLIC,
    "lottery:public_document": PUBLIC,
    "lottery:public_entries": PUBLIC,
    "lottery:verifier_script": PUBLIC,
    # The customers' portal.
    "portal:invitation": PUBLIC,  # a signed one-time link
    "portal:profile": PORTAL,
    "portal:tickets": PORTAL,
    "portal:ticket_create": PORTAL,
    "portal:ticket_detail": PORTAL,
    "portal:ticket_reply": PORTAL,
    "portal:ticket_rate": PORTAL,
    "portal:ticket_reopen": PORTAL,
    "portal:ticket_attachment": PORTAL,
    "portal:rate_link": PUBLIC,  # a signed link sent when a ticket is resolved
    "portal:privacy": PORTAL,
    "portal:privacy_export": PORTAL,
    "portal:privacy_request": PORTAL,
    "portal:consent_withdraw": PORTAL,
    "portal:lottery": PORTAL,
    # The system pages (运行环境, backups) and the audit views.
    "system:status": ADMIN_ONLY,
    "system:backups": ADMIN_ONLY,
    "system:backup_create": ADMIN_ONLY,
    "system:backup_detail": ADMIN_ONLY,
    "system:backup_restore": ADMIN_ONLY,
    "system:api_tokens": ADMIN_ONLY,
    "system:api_token_create": ADMIN_ONLY,
    "system:api_token_detail": ADMIN_ONLY,
    "system:api_token_revoke": ADMIN_ONLY,
    "system:webhooks": ADMIN_ONLY,
    "system:webhook_create": ADMIN_ONLY,
    "system:webhook_detail": ADMIN_ONLY,
    "system:webhook_edit": ADMIN_ONLY,
    "system:webhook_ping": ADMIN_ONLY,
    "system:webhook_delivery": ADMIN_ONLY,
    "system:webhook_resend": ADMIN_ONLY,
    # 帮助: the user guide and the guided tour, for every staff member.
    "help:index": STAFF,
    "help:page": STAFF,
    "help:tour_done": STAFF,
    "help:tour_restart": STAFF,
    "audit:history": LEADS,
    "audit:history_export": LEADS,
    "audit:access_log": LEADS,
    "audit:access_log_export": LEADS,
    # Django's own.
    "set_language": PUBLIC,
    "javascript-catalog": PUBLIC,
}

# Where the project answers 404 rather than 403 on purpose, so as not to confirm that a record
# exists: {url name: roles that get the 404}. Empty today: every refusal is a 403.
HIDDEN: dict[str, frozenset[str]] = {}

# What an allowed role may get for a sample path: the page, a redirect elsewhere than the login
# page, no such record, or "this page takes POST".
ALLOWED_STATUSES = {200, 301, 302, 404, 405}


def _is_admin(path: str) -> bool:
    return path.startswith("/" + settings.ADMIN_URL)


def _is_api(path: str) -> bool:
    # The REST API answers 401/403 as JSON, never a login redirect: its own matrix is tests/api.
    return path.startswith("/api/")


def _app_urls():
    return [url for url in walk_urls() if not _is_admin(url.path) and not _is_api(url.path)]


def _admin_urls():
    return [url for url in walk_urls() if _is_admin(url.path)]


def _client(role: str, request) -> Client:
    if role == ANONYMOUS:
        return Client()
    client_for = request.getfixturevalue("client_for")
    if role == ROLELESS:
        return client_for(request.getfixturevalue("roleless_user"))
    if role == C:
        # A portal customer with their customer record: without one every portal page is a 404.
        request.getfixturevalue("portal_customer_record")
    return client_for(request.getfixturevalue("cast")[role])


def _is_login_redirect(response, login_path: str) -> bool:
    return response.status_code in (301, 302) and response["Location"].startswith(login_path)


def _mismatch(name: str, path: str, role: str, response) -> str | None:
    """Why ``response`` is not what the table expects for ``role`` at ``name``, or None."""
    rule = ALLOW[name]
    status = response.status_code
    login = _is_login_redirect(response, resolve_url(settings.LOGIN_URL))
    where = f"{name} ({path}) answered {status}" + (f" → {response['Location']}" if status == 302 else "")
    if rule == PUBLIC:
        if status in {403, 500} or login:
            return f"{where}, but it is public"
        return None
    if role == ANONYMOUS:
        return None if login else f"{where}, expected a redirect to the login page"
    if role in rule:
        if status not in ALLOWED_STATUSES or login:
            return f"{where}, but the table allows {role}"
        return None
    refused = 404 if role in HIDDEN.get(name, ()) else 403
    return None if status == refused else f"{where}, expected {refused}: the table refuses {role}"


def test_it_names_every_url_in_the_table():
    names = {url.name for url in _app_urls()}
    missing = sorted(names - ALLOW.keys())
    assert not missing, (
        "These URLs have no entry in ALLOW of tests/accounts/test_url_matrix.py. Add each with the "
        "roles that may open it (and make sure the view checks exactly that): " + ", ".join(missing)
    )
    stale = sorted(ALLOW.keys() - names)
    if stale:
        # Not a failure: pages being written in parallel may not exist yet, and a removed page
        # refuses nobody. Prune the entry when the page is gone for good.
        warnings.warn(f"ALLOW names URLs that do not exist: {', '.join(stale)}", stacklevel=1)


def test_it_knows_every_role_it_names():
    named = {role for rule in ALLOW.values() if rule != PUBLIC for role in rule}
    assert named <= set(ROLES) - {ANONYMOUS}
    assert set(HIDDEN) <= set(ALLOW)


def _problems(client: Client, role: str, urls) -> list[str]:
    problems = []
    for url in urls:
        if url.name not in ALLOW:
            problems.append(f"{url.name} ({url.path}) is missing from ALLOW: add it with the roles that may open it")
            continue
        problem = _mismatch(url.name, url.path, role, client.get(url.path))
        if problem:
            problems.append(problem)
    return problems


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_it_answers_every_url_as_the_matrix_says(role, request):
    problems = _problems(_client(role, request), role, _app_urls())
    assert not problems, f"{role}:\n" + "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_it_keeps_the_django_admin_for_administrators(role, request):
    client = _client(role, request)
    admin_login = "/" + settings.ADMIN_URL + "login/"
    problems = []
    for url in _admin_urls():
        response = client.get(url.path)
        public = url.name in {"admin:login", "admin:logout"}
        if public:
            ok = response.status_code in ALLOWED_STATUSES
        elif role == A:
            # Inside the admin the model admins decide: read-only ones (the access log, stock
            # movements, provinces …) answer 403 to add and delete, on purpose.
            ok = response.status_code in ALLOWED_STATUSES | {403} and not _is_login_redirect(response, admin_login)
        else:
            ok = _is_login_redirect(response, admin_login)
        if not ok:
            location = response.get("Location", "")
            problems.append(f"{url.name} ({url.path}) answered {response.status_code} {location}")
    assert not problems, f"{role}:\n" + "\n".join(problems)


def test_it_fails_a_new_view_that_checks_nothing(client_for, sales_rep):
    # The guard itself: a URL the table does not name is a failure, and so is a refused role
    # getting a page (here a sales rep on an administrator's page, pretending it were unchecked).
    client = client_for(sales_rep)
    unnamed = _problems(client, S, [WalkedUrl(name="nowhere:new_view", path="/")])
    assert len(unnamed) == 1 and "missing from ALLOW" in unnamed[0]
    unchecked = _problems(client, S, [WalkedUrl(name="system:status", path="/")])
    assert len(unchecked) == 1 and "expected 403" in unchecked[0]
    assert _problems(client, S, [WalkedUrl(name="reports:dashboard", path="/")]) == []
