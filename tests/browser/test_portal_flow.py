import re

import pytest
from django.core import mail

from accounts.models import PortalAccount
from complaints.models import Ticket, TicketCategory
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory
from tests.customers.test_attachments import PNG_BYTES

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
CUSTOMER_PASSWORD = "Blue-lantern-river-42"


def _log_out_of_the_portal(page):
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/accounts/login/")


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_rep_invites_a_customer_who_files_a_complaint_service_resolves_it_and_the_customer_rates_it(
    page, service_agent, sales_rep, tmp_path
):
    customer = CustomerFactory(name="刘女士", owner=sales_rep, email="liu@example.com")
    category, _ = TicketCategory.objects.get_or_create(name="产品质量")
    category.agents.add(service_agent)
    photo = tmp_path / "划痕.png"
    photo.write_bytes(PNG_BYTES)

    # The sales rep creates the portal account from the 360 page; the invitation goes by e-mail.
    log_in(page, sales_rep)
    page.goto(f"/customers/{customer.pk}/")
    page.get_by_test_id("action-portal-account").click()
    form = page.get_by_test_id("portal-account-form")
    assert form.locator("[name=username]").input_value() == customer.code.lower()
    form.locator("[name=username]").fill("liu")
    form.locator("button[type=submit]").click()
    page.get_by_test_id("invitation-emailed").wait_for()
    link = re.search(r"(http\S+/portal/welcome/\S+)", mail.outbox[-1].body).group(1)
    page.screenshot(path="test-results/portal-account-staff.png", full_page=True)
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/accounts/login/")

    # The customer, on a phone, opens the link and chooses a password: logged in to the portal.
    page.set_viewport_size(PHONE)
    page.goto(link)
    form = page.get_by_test_id("invitation-form")
    form.locator("[name=new_password1]").fill(CUSTOMER_PASSWORD)
    form.locator("[name=new_password2]").fill(CUSTOMER_PASSWORD)
    form.locator("button[type=submit]").click()
    page.get_by_test_id("portal-home").wait_for()
    customer_user = PortalAccount.objects.get(customer=customer).user
    assert PortalAccount.objects.get(customer=customer).activated_at is not None
    assert _fits_the_screen(page)

    # Home → service requests → new request.
    page.get_by_test_id("card-tickets").click()
    page.get_by_test_id("ticket-empty").wait_for()
    page.get_by_test_id("ticket-new").click()
    form = page.get_by_test_id("ticket-form")
    form.locator("[name=kind]").select_option("complaint")
    form.locator("[name=category]").select_option(str(category.pk))
    form.locator("[name=subject]").fill("显示器屏幕有划痕")
    form.locator("[name=description]").fill("昨天收到的显示器，屏幕右下角有一道划痕。")
    form.locator("[name=files]").set_input_files(str(photo))
    assert _fits_the_screen(page)
    page.get_by_test_id("ticket-submit").click()
    page.wait_for_url(re.compile(r".*/portal/tickets/T\d{4}-\d{6}/$"))
    ticket = Ticket.objects.get(customer=customer)
    assert ticket.assignee == service_agent and ticket.channel == Ticket.Channel.PORTAL
    assert "划痕.png" in page.get_by_test_id("ticket-timeline").inner_text()
    assert _fits_the_screen(page)
    page.screenshot(path="test-results/portal-ticket-phone.png", full_page=True)
    _log_out_of_the_portal(page)

    # The service agent resolves it at the desk.
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, service_agent)
    _resolve_at_the_desk(page, ticket)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/accounts/login/")

    # The customer sees the answer and rates it.
    page.set_viewport_size(PHONE)
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(customer_user.username)
    page.get_by_label("密码").fill(CUSTOMER_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_test_id("portal-home").wait_for()
    page.goto(f"/portal/tickets/{ticket.number}/")
    timeline = page.get_by_test_id("ticket-timeline").inner_text()
    assert "已为您更换新显示器" in timeline
    assert service_agent.name not in page.content()
    page.get_by_test_id("rating-5").click()
    page.get_by_test_id("rate-form").locator("[name=comment]").fill("换货很快，谢谢！")
    page.get_by_test_id("rate-submit").click()
    page.get_by_test_id("ticket-rating").wait_for()
    ticket.refresh_from_db()
    assert ticket.rating == 5 and ticket.rating_comment == "换货很快，谢谢！"
    assert page.get_by_test_id("rate-form").count() == 0
    assert _fits_the_screen(page)
    page.screenshot(path="test-results/portal-ticket-rated-phone.png", full_page=True)
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def _resolve_at_the_desk(page, ticket):
    """On the desk page (complaints:detail): start work, then resolve with a comment the customer sees."""
    page.goto(f"/complaints/{ticket.number}/")
    page.get_by_test_id("step-in_progress").click()
    page.get_by_test_id("step-resolved").wait_for()
    page.locator("[data-testid=transition-form] [name=comment]").fill("已为您更换新显示器。")
    page.get_by_test_id("step-resolved").click()
    page.get_by_test_id("step-closed").wait_for()
