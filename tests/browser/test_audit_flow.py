"""Issue 9's audit flows clicked through in Chromium: asking for access to a colleague's customer,
the manager's approval and the access log that records it all; the change history of an edit."""

import re
import time

import pytest

from cims.models import PersonalDataAccess
from customers.models import AccessRequest
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


def settle(page):
    """Wait until the page's own requests are answered (the notification bell loads with every
    page) before the next navigation. On SQLite the live server shares one in-memory connection
    between its threads, and a request still running while the next one starts can find its session
    row mid-transaction and answer 400 ("the session was deleted"), an error no user would meet."""
    page.wait_for_load_state("networkidle")


def log_out(page):
    settle(page)
    page.get_by_test_id("user-menu").click()
    settle(page)
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/accounts/login/**")


def wait_for_row(**lookup) -> PersonalDataAccess:
    """VIEW rows are written once the response is closed, a moment after the page has arrived."""
    deadline = time.monotonic() + 5
    while True:
        row = PersonalDataAccess.objects.filter(**lookup).first()
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def test_a_sales_rep_asks_for_a_colleagues_customer_and_the_manager_approves_and_audits_it(
    page, sales_rep, other_sales_rep, manager
):
    customer = CustomerFactory(name="上官雨晴", owner=other_sales_rep)
    settle(page)
    log_in(page, sales_rep)

    # Out of scope: the 360 page is a 404 until a manager approves.
    settle(page)
    assert page.goto(f"/customers/{customer.pk}/").status == 404
    page.console_errors.clear()  # the browser reports that 404 as a console error

    settle(page)
    page.goto("/")
    settle(page)
    page.locator("#cims-sidebar a[href='/customers/access-requests/']").click()
    settle(page)
    page.get_by_test_id("access-request-new").click()
    form = page.get_by_test_id("access-request-form")
    form.locator("#id_code").fill(customer.code.lower())  # typed loosely: the form upper-cases it
    form.locator("#id_days").fill("1")
    form.locator("#id_reason").fill("客户来电要求协助处理售后问题，同事休假中")
    settle(page)
    page.get_by_test_id("access-request-submit").click()
    page.get_by_test_id("access-request-waiting").wait_for()
    filed = AccessRequest.objects.get()
    assert (filed.requester, filed.customer, filed.status) == (sales_rep, customer, AccessRequest.Status.PENDING)
    # Until approved the requester sees the code only, never the name.
    assert "上官雨晴" not in page.content()
    settle(page)
    log_out(page)

    settle(page)
    log_in(page, manager)
    settle(page)
    page.goto("/customers/access-requests/")
    row = page.locator(f"[data-testid=access-request-row][data-pk='{filed.pk}']")
    assert customer.code in row.inner_text()
    settle(page)
    row.get_by_test_id("access-request-open").click()
    assert "同事休假中" in page.get_by_test_id("access-request-reason").inner_text()
    decision = page.get_by_test_id("access-decision-form")
    decision.locator("#id_days").fill("1")
    settle(page)
    page.get_by_test_id("access-decision-approve").click()
    page.get_by_test_id("access-request-expires").wait_for()
    filed.refresh_from_db()
    assert filed.status == AccessRequest.Status.APPROVED and filed.decided_by == manager
    assert page.locator("[data-testid=access-request] [data-status=approved]").count() == 1
    settle(page)
    log_out(page)

    settle(page)
    log_in(page, sales_rep)
    settle(page)
    response = page.goto(f"/customers/{customer.pk}/")
    assert response.status == 200
    assert "上官雨晴" in page.content()
    viewed = wait_for_row(user=sales_rep, action=PersonalDataAccess.Action.VIEW, object_id=str(customer.pk))
    assert viewed is not None, "the rep's opening of the 360 page was not logged"
    settle(page)
    log_out(page)

    # The manager follows the 360 page's "who looked" link: the log is filtered by the code.
    settle(page)
    log_in(page, manager)
    other = CustomerFactory(owner=other_sales_rep)
    settle(page)
    page.goto(f"/customers/{other.pk}/")
    assert wait_for_row(user=manager, action=PersonalDataAccess.Action.VIEW, object_id=str(other.pk))
    settle(page)
    page.goto(f"/customers/{customer.pk}/")
    settle(page)
    page.get_by_test_id("action-access-log").click()
    page.wait_for_url(re.compile(r".*/audit/access-log/\?record=" + re.escape(customer.code)))
    assert page.locator("#id_record").input_value() == customer.code
    log = page.get_by_test_id("access-log")
    actions = log.locator("[data-testid=access-row]").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert {"view", "request", "decision"} <= set(actions), actions
    assert log.locator("[data-testid=access-row][data-action=view]", has_text=str(sales_rep)).count() >= 1
    assert log.locator("[data-testid=access-row][data-action=request]", has_text=str(sales_rep)).count() == 1
    assert log.locator("[data-testid=access-row][data-action=decision]", has_text=str(manager)).count() == 1
    # Only this customer's rows: the manager's look at another customer is left out.
    assert other.code not in log.inner_text()
    # The log names records by code, never by the person's name.
    assert "上官雨晴" not in log.inner_text()
    page.screenshot(path="test-results/access-request-audited.png", full_page=True)
    assert not page.console_errors, page.console_errors


def test_an_administrator_edits_a_phone_and_the_history_shows_it_masked(page, administrator, sales_rep):
    customer = CustomerFactory(name="诸葛明", mobile="+8613800001234", owner=sales_rep)
    settle(page)
    log_in(page, administrator)
    settle(page)
    page.goto(f"/customers/{customer.pk}/")
    settle(page)
    page.get_by_test_id("action-edit").click()
    # Leaving the field runs the duplicate check (htmx); let it answer before saving, as a person
    # would: on the live server's shared in-memory SQLite connection, a check still running while
    # the form posts can find its session row mid-transaction and answer 400.
    with page.expect_response(lambda response: "/customers/duplicates/" in response.url) as checked:
        page.fill("#id_mobile", "139 8765 4321")
        page.press("#id_mobile", "Tab")
    assert checked.value.status == 200
    settle(page)
    page.locator("[data-testid=customer-form] button[type=submit]").last.click()
    page.wait_for_url(re.compile(rf".*/customers/{customer.pk}/$"))
    customer.refresh_from_db()
    assert customer.mobile == "+8613987654321"

    settle(page)
    page.goto("/")
    settle(page)
    page.locator("#cims-sidebar a[href='/audit/history/']").click()
    page.locator("#id_record").fill(customer.code)
    settle(page)
    page.get_by_test_id("history-filter").locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/audit/history/\?.*record=" + re.escape(customer.code)))
    rows = page.locator("[data-testid=history-row][data-action='~']")
    assert rows.count() == 1, page.get_by_test_id("change-history").inner_text()
    assert rows.get_attribute("data-object") == str(customer.pk)
    assert str(administrator) in rows.inner_text()
    # The phone changed, masked on both sides of the arrow.
    change = rows.locator("li", has_text="→")
    assert change.count() == 1, rows.inner_text()
    shown = change.inner_text()
    assert "138****1234" in shown and "139****4321" in shown, shown
    body = page.content()
    for clear in ("13987654321", "139 8765 4321", "13800001234", "诸葛明"):
        assert clear not in body, clear
    page.screenshot(path="test-results/change-history-masked.png", full_page=True)
    assert not page.console_errors, page.console_errors
