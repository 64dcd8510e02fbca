"""Staff create a customer's portal account and invite them; the customer sets a first password
through the one-time link (customers:portal_account, portal:invitation)."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import PortalAccount, User
from accounts.portal import invitation_path, portal_account_create, portal_invitation_send
from customers.services import customer_share
from tests.customers.factories import CustomerFactory
from tests.factories import PASSWORD

NEW_PASSWORD = "Blue-lantern-river-42"


def _url(customer) -> str:
    return f"/customers/{customer.pk}/portal-account/"


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="周先生", email="zhou@example.com")


def _create(client, customer, **data):
    return client.post(_url(customer), {"action": "create", **data}, HTTP_ACCEPT_LANGUAGE="en")


def _link_in(response) -> str:
    found = re.search(r'value="(http[^"]+/portal/welcome/[^"]+)"', response.content.decode())
    assert found, "no invitation link on the page"
    return found.group(1)


def _link_in_mail() -> str:
    found = re.search(r"(http\S+/portal/welcome/\S+)", mail.outbox[-1].body)
    assert found, "no invitation link in the e-mail"
    return found.group(1)


def _logs_in(username: str, password: str) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def _in_site_language(msgid: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(msgid)


def _path(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


# --- Who may open the page -------------------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(customer):
    response = Client().get(_url(customer))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ["service_agent", "analyst", "portal_customer"])
def test_it_refuses_roles_without_the_permission(request, customer, client_for, role):
    assert client_for(request.getfixturevalue(role)).get(_url(customer)).status_code == 403


def test_it_hides_another_reps_customer(customer, other_sales_rep, client_for):
    assert client_for(other_sales_rep).get(_url(customer)).status_code == 404
    assert client_for(other_sales_rep).post(_url(customer), {"action": "create", "username": "x"}).status_code == 404
    assert not PortalAccount.objects.exists()


def test_it_refuses_a_customer_shared_read_only(customer, sales_rep, other_sales_rep, client_for):
    customer_share(customer=customer, user=other_sales_rep, by=sales_rep)
    assert client_for(other_sales_rep).get(_url(customer)).status_code == 403


def test_it_hides_a_deleted_customer(customer, sales_rep, client_for):
    customer.deleted_at = timezone.now()
    customer.save(update_fields=["deleted_at"])
    assert client_for(sales_rep).get(_url(customer)).status_code == 404


def test_it_answers_405_to_other_methods(customer, sales_rep, client_for):
    assert client_for(sales_rep).delete(_url(customer)).status_code == 405


# --- Creating and inviting ---------------------------------------------------------------------


def test_it_proposes_the_customer_code_and_email(customer, sales_rep, client_for):
    page = client_for(sales_rep).get(_url(customer)).content.decode()
    assert f'value="{customer.code.lower()}"' in page
    assert 'value="zhou@example.com"' in page


@override_settings(SITE_URL="https://cims.example.com")
def test_it_creates_the_account_and_emails_the_invitation_in_chinese(customer, sales_rep, client_for):
    response = _create(client_for(sales_rep), customer, username="zhou", email="Zhou@Example.com")
    assert response.status_code == 200
    account = PortalAccount.objects.select_related("user").get(customer=customer)
    user = account.user
    assert user.username == "zhou" and user.email == "zhou@example.com"
    assert user.is_active and not user.has_usable_password()
    assert user.is_portal_customer and not user.is_staff_member
    assert account.created_by == sales_rep and account.invited_at is not None and account.activated_at is None
    # E-mailed, the link is not shown: it logs in as the customer (no staff takeover).
    assert 'data-testid="invitation-emailed"' in response.content.decode()
    assert "/portal/welcome/" not in response.content.decode()
    link = _link_in_mail()
    assert link.startswith("https://cims.example.com/portal/welcome/")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["zhou@example.com"]
    # The staff user works in English; the customer's e-mail is in the site's language.
    assert message.subject == _in_site_language("Your customer portal account")
    assert link in message.body and "zhou" in message.body
    assert account.history.latest().history_user == sales_rep


def test_it_shows_the_link_when_there_is_no_email(customer, sales_rep, client_for):
    response = _create(client_for(sales_rep), customer, username="zhou", email="")
    assert response.status_code == 200
    assert 'data-testid="invitation-not-emailed"' in response.content.decode()
    assert "/portal/welcome/" in _link_in(response)
    assert mail.outbox == []


def test_it_still_shows_the_link_when_the_mail_server_fails(customer, sales_rep, client_for, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr("accounts.portal.send_mail", broken)
    response = _create(client_for(sales_rep), customer, username="zhou", email="zhou@example.com")
    assert response.status_code == 200
    assert 'data-testid="invitation-not-emailed"' in response.content.decode()
    assert PortalAccount.objects.filter(customer=customer).exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": "t_sales2"}, "username", "taken"),
        ({"username": "T_SALES2"}, "username", "taken"),
        ({"username": "has space"}, "username", "valid username"),
        ({"username": ""}, "username", "required"),
        ({"username": "zhou", "email": "not-an-address"}, "email", "valid email"),
    ],
)
def test_it_refuses_bad_input_with_a_message(customer, sales_rep, other_sales_rep, client_for, data, field, message):
    response = _create(client_for(sales_rep), customer, **data)
    assert response.status_code == 422
    assert message in str(response.context["form"].errors[field]).lower()
    assert not PortalAccount.objects.exists()
    assert not User.objects.filter(username__in=["zhou", "has space"]).exists()


def test_it_refuses_an_unknown_action(customer, sales_rep, client_for):
    response = client_for(sales_rep).post(_url(customer), {"action": "explode"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409
    assert "Unknown action." in response.content.decode()


def test_it_refuses_an_erased_customer(customer, sales_rep, client_for):
    # An erased customer is nobody's to edit (customers.access.can_edit): the page is refused.
    customer.erased_at = timezone.now()
    customer.save(update_fields=["erased_at"])
    client = client_for(sales_rep)
    assert client.get(_url(customer), HTTP_ACCEPT_LANGUAGE="en").status_code == 403
    response = _create(client, customer, username="zhou")
    assert response.status_code == 403
    assert not User.objects.filter(username="zhou").exists()


def test_it_makes_one_account_per_customer(customer, sales_rep, client_for):
    client = client_for(sales_rep)
    _create(client, customer, username="zhou")
    response = _create(client, customer, username="zhou2")
    # The page now shows the account: a second "create" is refused, not a second user.
    assert response.status_code == 409
    assert PortalAccount.objects.filter(customer=customer).count() == 1
    assert not User.objects.filter(username="zhou2").exists()


def test_a_manager_creates_one_for_any_customer(customer, manager, client_for):
    assert _create(client_for(manager), customer, username="zhou").status_code == 200
    assert PortalAccount.objects.get(customer=customer).created_by == manager


# --- The account afterwards --------------------------------------------------------------------


@pytest.fixture
def account(customer, sales_rep):
    return portal_account_create(customer=customer, username="zhou", email="zhou@example.com", by=sales_rep)


def test_it_shows_the_state_of_the_account(account, customer, sales_rep, client_for):
    page = client_for(sales_rep).get(_url(customer), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "zhou" in page and "Invited, no password yet" in page
    assert 'data-testid="portal-account-form"' not in page
    assert "/portal/welcome/" not in page  # a link is shown only when it is made


def test_it_sends_a_new_invitation_and_both_links_work_until_a_password_is_set(
    account, customer, sales_rep, client_for
):
    client = client_for(sales_rep)
    client.post(_url(customer), {"action": "invite"})
    first = _path(_link_in_mail())
    client.post(_url(customer), {"action": "invite"})
    second = _path(_link_in_mail())
    assert len(mail.outbox) == 2
    visitor = Client()
    assert visitor.get(first, follow=True).context["valid"] is True
    _set_password(Client(), second)
    # The first link died with the password set through the second.
    assert Client().get(first, follow=True).context["valid"] is False


def test_it_deactivates_and_reactivates(account, customer, sales_rep, client_for):
    account.user.set_password(PASSWORD)
    account.user.save()
    portal = client_for(account.user)
    assert portal.get("/portal/profile/").status_code == 200
    client = client_for(sales_rep)
    response = client.post(_url(customer), {"action": "deactivate"})
    assert response.status_code == 302
    account.user.refresh_from_db()
    assert not account.user.is_active
    # The open session ends: an inactive user is not loaded from it.
    assert portal.get("/portal/profile/").status_code == 302
    assert not _logs_in("zhou", PASSWORD)
    client.post(_url(customer), {"action": "reactivate"})
    account.user.refresh_from_db()
    assert account.user.is_active


def test_it_refuses_to_invite_a_deactivated_account(account, customer, sales_rep, client_for):
    client = client_for(sales_rep)
    client.post(_url(customer), {"action": "deactivate"})
    response = client.post(_url(customer), {"action": "invite"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409 and "deactivated" in response.content.decode()
    assert mail.outbox == []


# --- The invitation link -------------------------------------------------------------------------


def _set_password(client: Client, path: str, password: str = NEW_PASSWORD):
    page = client.get(path, follow=True)
    assert page.context["valid"] is True, "the link was refused"
    form_url = page.redirect_chain[-1][0]
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_it_sets_the_first_password_logs_in_and_records_activation(account):
    client = Client()
    path = invitation_path(account.user)
    page = client.get(path)
    # The token leaves the address bar at once (no Referer leaks it).
    assert page.status_code == 302 and page["Location"].endswith("/set-password/")
    response = _set_password(client, path)
    assert response.status_code == 302 and response["Location"] == "/accounts/portal/"
    account.refresh_from_db()
    assert account.activated_at is not None
    assert client.get("/accounts/portal/").status_code == 200
    assert _logs_in("zhou", NEW_PASSWORD)


def test_it_works_once(account):
    path = invitation_path(account.user)
    _set_password(Client(), path)
    again = Client().get(path, follow=True)
    assert again.status_code == 200 and again.context["valid"] is False
    assert 'data-testid="invitation-invalid"' in again.content.decode()


def test_it_refuses_an_expired_link(account, monkeypatch):
    path = invitation_path(account.user)
    real_now = default_token_generator._now
    # PORTAL_INVITATION_DAYS (7 by default) later and a day.
    monkeypatch.setattr(default_token_generator, "_now", lambda: real_now() + datetime.timedelta(days=8))
    response = Client().get(path, follow=True)
    assert response.status_code == 200 and response.context["valid"] is False


def test_it_never_accepts_a_staff_users_uid(sales_rep):
    uid = urlsafe_base64_encode(force_bytes(sales_rep.pk))
    token = default_token_generator.make_token(sales_rep)
    response = Client().get(f"/portal/welcome/{uid}/{token}/", follow=True)
    assert response.status_code == 200 and response.context["valid"] is False
    sales_rep.refresh_from_db()
    assert sales_rep.check_password(PASSWORD)


def test_it_never_accepts_a_customer_group_user_without_a_portal_account(portal_customer):
    uid = urlsafe_base64_encode(force_bytes(portal_customer.pk))
    token = default_token_generator.make_token(portal_customer)
    assert Client().get(f"/portal/welcome/{uid}/{token}/", follow=True).context["valid"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/portal/welcome/sample/sample/",
        "/portal/welcome/!!!/abc-def/",
        "/portal/welcome/OTk5OTk5/abc-def/",
        "/portal/welcome/OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk/abc-def/",
        "/portal/welcome/LTE/abc-def/",
        "/portal/welcome/sample/set-password/",
    ],
)
def test_it_answers_a_bad_link_with_a_friendly_page(db, path):
    with translation.override("en"):
        response = Client().get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "This link no longer works" in response.content.decode()


def test_it_refuses_a_link_of_a_deactivated_account(account, customer, sales_rep):
    path = invitation_path(account.user)
    account.user.is_active = False
    account.user.save()
    assert Client().get(path, follow=True).context["valid"] is False


def test_it_refuses_a_link_of_an_erased_customer(account, customer):
    path = invitation_path(account.user)
    customer.erased_at = timezone.now()
    customer.save(update_fields=["erased_at"])
    assert Client().get(path, follow=True).context["valid"] is False


def test_it_checks_the_password_rules(account):
    client = Client()
    page = client.get(invitation_path(account.user), follow=True)
    form_url = page.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "12345", "new_password2": "12345"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    account.refresh_from_db()
    assert account.activated_at is None and not account.user.has_usable_password()


def test_it_lets_a_customer_who_forgot_the_password_set_a_new_one(account, customer, sales_rep, client_for):
    _set_password(Client(), invitation_path(account.user))
    response = client_for(sales_rep).post(_url(customer), {"action": "invite"})
    assert mail.outbox[-1].subject == _in_site_language("Set a new password for the customer portal")
    assert "/portal/welcome/" not in response.content.decode()  # to the customer's address only
    _set_password(Client(), _path(_link_in_mail()), password="Another-long-pass-77")
    assert _logs_in("zhou", "Another-long-pass-77")


def test_a_new_password_link_never_reaches_the_staff_user(account, customer, sales_rep, client_for, monkeypatch):
    """After activation the link would log the staff user in as the customer: without an address,
    or when the mail server fails, it is refused rather than shown."""
    from cims.models import PersonalDataAccess

    _set_password(Client(), invitation_path(account.user))
    client = client_for(sales_rep)

    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr("accounts.portal.send_mail", broken)
    response = client.post(_url(customer), {"action": "invite"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409 and "/portal/welcome/" not in response.content.decode()
    account.user.email = ""
    account.user.save(update_fields=["email"])
    response = client.post(_url(customer), {"action": "invite"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409 and "/portal/welcome/" not in response.content.decode()
    assert "only ever sent by e-mail" in response.content.decode()
    assert not PersonalDataAccess.objects.filter(field="invitation_link").exists()


def test_a_first_invitation_shown_to_staff_is_written_to_the_access_log(customer, sales_rep, client_for):
    from cims.models import PersonalDataAccess

    _create(client_for(sales_rep), customer, username="zhou", email="")
    entry = PersonalDataAccess.objects.get(field="invitation_link")
    assert entry.user == sales_rep and entry.object_label == customer.code


def test_the_service_emails_in_the_site_language(account, sales_rep):
    with translation.override("en"):
        link, emailed = portal_invitation_send(account=account, by=sales_rep)
    assert emailed and link == "" and "/portal/welcome/" in mail.outbox[0].body
    assert mail.outbox[0].subject == _in_site_language("Your customer portal account")


def test_a_username_that_folding_lengthens_is_a_form_error_not_a_500(customer, sales_rep, client_for):
    response = _create(client_for(sales_rep), customer, username="㌖" * 150, email="")  # ㌖ folds to キロメートル
    assert response.status_code == 422
    assert "At most 150 characters" in response.content.decode()
    assert not PortalAccount.objects.exists()


def test_a_portal_account_change_needs_its_permission_and_the_customers_edit_right(
    account, customer, sales_rep, other_sales_rep, client_for
):
    from django.contrib.auth.models import Group, Permission

    from accounts import roles

    # The sales role without change_portalaccount: the existing account cannot be re-invited,
    # deactivated or reactivated; another rep does not even find the customer.
    sales = Group.objects.get(name=roles.SALES)
    sales.permissions.remove(Permission.objects.get(codename="change_portalaccount"))
    for action in ("invite", "deactivate", "reactivate"):
        assert client_for(sales_rep).post(_url(customer), {"action": action}).status_code == 403
        assert client_for(other_sales_rep).post(_url(customer), {"action": action}).status_code == 404
    account.user.refresh_from_db()
    assert account.user.is_active and mail.outbox == []
