import logging

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from tests.factories import PASSWORD

LOGIN = "/accounts/login/"


def login(client: Client, username: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


@pytest.mark.parametrize(
    "role, landing",
    [
        (roles.ADMIN, "/"),
        (roles.MANAGER, "/"),
        (roles.SALES, "/"),
        (roles.SERVICE, "/"),
        (roles.ANALYST, "/"),
        (roles.CUSTOMER, "/accounts/portal/"),
    ],
)
def test_it_lands_each_role_on_its_home(cast, role, landing):
    client = Client()
    response = login(client, cast[role].username, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == landing


def test_it_shows_the_login_page_in_chinese_by_default(db):
    response = Client().get(LOGIN)
    assert response.status_code == 200
    assert "登录" in response.content.decode()


def test_it_refuses_a_wrong_password_with_a_clear_message(sales_rep):
    response = login(Client(), sales_rep.username, "wrong-password")
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_it_ignores_an_offsite_next_parameter(sales_rep):
    response = Client().post(
        LOGIN + "?next=https://evil.example.com/",
        {"username": sales_rep.username, "password": PASSWORD, "next": "https://evil.example.com/"},
    )
    assert response.status_code == 302
    assert "evil.example.com" not in response["Location"]


def test_it_locks_an_account_out_after_five_failures(sales_rep):
    for attempt in range(5):
        # Each try from another address: the account limit must hold on its own.
        login(Client(), sales_rep.username, "wrong", REMOTE_ADDR=f"10.0.0.{attempt + 1}")
    response = login(Client(), sales_rep.username, PASSWORD, REMOTE_ADDR="10.0.0.99")
    assert response.status_code == 429
    assert "尝试次数过多" in response.content.decode()
    assert "_auth_user_id" not in response.client.session


def test_it_locks_an_address_out_after_five_failures(sales_rep, other_sales_rep):
    for attempt in range(5):
        login(Client(), f"nobody{attempt}", "wrong", REMOTE_ADDR="10.9.9.9")
    # A real account with the right password, from the locked address, is refused too…
    assert login(Client(), other_sales_rep.username, PASSWORD, REMOTE_ADDR="10.9.9.9").status_code == 429
    # …while the same account from another address gets in.
    assert login(Client(), other_sales_rep.username, PASSWORD, REMOTE_ADDR="10.9.9.10").status_code == 302


def test_it_does_not_lock_out_after_four_failures(sales_rep):
    for _ in range(4):
        login(Client(), sales_rep.username, "wrong")
    assert login(Client(), sales_rep.username).status_code == 302


def test_it_logs_every_success_and_failure(sales_rep, caplog):
    with caplog.at_level(logging.INFO, logger="cims.security"):
        login(Client(), sales_rep.username, "wrong", REMOTE_ADDR="10.1.1.1")
        login(Client(), sales_rep.username, PASSWORD, REMOTE_ADDR="10.1.1.1")
    messages = [record.getMessage() for record in caplog.records if record.name == "cims.security"]
    assert f"login failed user={sales_rep.username} ip=10.1.1.1" in messages
    assert f"login succeeded user={sales_rep.username} ip=10.1.1.1" in messages
    assert AccessFailureLog.objects.filter(username=sales_rep.username, ip_address="10.1.1.1").count() == 1
    assert AccessLog.objects.filter(username=sales_rep.username, ip_address="10.1.1.1").count() == 1
    # The password never reaches the log.
    assert all("wrong" not in message for message in messages)


def test_it_resets_the_failure_count_after_a_successful_login(sales_rep):
    for _ in range(3):
        login(Client(), sales_rep.username, "wrong")
    assert login(Client(), sales_rep.username).status_code == 302
    assert not AccessAttempt.objects.filter(username=sales_rep.username).exists()


def test_it_rotates_the_session_key_on_login(sales_rep):
    client = Client()
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    login(client, sales_rep.username)
    assert client.session.session_key != before


def test_it_expires_sessions_when_idle(sales_rep, settings):
    client = Client()
    login(client, sales_rep.username)
    client.get("/")
    expiry = client.session.get_expiry_date()
    idle = (expiry - timezone.now()).total_seconds()
    assert abs(idle - settings.SESSION_COOKIE_AGE) < 60
    assert settings.SESSION_SAVE_EVERY_REQUEST  # each request pushes the expiry forward


def test_it_ends_access_at_once_when_a_user_is_deactivated(sales_rep, client_for):
    client = client_for(sales_rep)
    assert client.get("/").status_code == 200
    sales_rep.is_active = False
    sales_rep.save(update_fields=["is_active"])
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_it_refuses_login_to_a_deactivated_user(sales_rep):
    sales_rep.is_active = False
    sales_rep.save(update_fields=["is_active"])
    response = login(Client(), sales_rep.username)
    assert response.status_code == 200
    assert "_auth_user_id" not in response.client.session


def test_it_logs_out_on_post_only(sales_rep, client_for):
    client = client_for(sales_rep)
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_it_changes_the_password(sales_rep, client_for):
    client = client_for(sales_rep)
    new = "a-new-long-password-42"
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    sales_rep.refresh_from_db()
    assert sales_rep.check_password(new)
    # The session stays valid after the change (Django updates the session hash).
    assert client.get("/").status_code == 200


def test_it_refuses_a_password_change_with_the_wrong_old_password(sales_rep, client_for):
    client = client_for(sales_rep)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": "not-it",
            "new_password1": "a-new-long-password-42",
            "new_password2": "a-new-long-password-42",
        },
    )
    assert response.status_code == 200
    sales_rep.refresh_from_db()
    assert sales_rep.check_password(PASSWORD)


def test_it_lets_a_portal_customer_change_their_password(portal_customer, client_for):
    client = client_for(portal_customer)
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 200
    assert "客户门户" in response.content.decode()
