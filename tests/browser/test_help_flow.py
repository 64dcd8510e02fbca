"""A new sales rep's first sign-in: the tour card, skipping it, bringing it back, and 帮助."""

import re

import pytest
from playwright.sync_api import expect

from accounts import roles
from tests.browser.test_audit_flow import settle
from tests.browser.test_customers_flow import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


def test_a_new_rep_walks_the_tour_skips_it_brings_it_back_and_reads_the_guide(page):
    rep = UserFactory(username="h_sales", name="新销售", role=roles.SALES)
    assert rep.tour_done_at is None
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))

    log_in(page, rep)
    tour = page.get_by_test_id("tour")
    expect(tour).to_have_attribute("data-ready", "true")
    counter = tour.get_by_test_id("tour-counter")
    expect(counter).to_have_text("1 / 5")
    expect(tour.locator("[data-tour-step]:visible")).to_have_count(1)
    expect(tour.locator("[data-tour-step]:visible")).to_contain_text("客户")
    expect(tour.get_by_test_id("tour-back")).to_be_disabled()
    page.screenshot(path="test-results/tour.png")

    # Step 2 leads to the follow-ups; the card follows to that page, still on step 2.
    tour.get_by_test_id("tour-next").click()
    expect(counter).to_have_text("2 / 5")
    settle(page)
    tour.locator("[data-tour-step]:visible").get_by_test_id("tour-go").click()
    page.wait_for_url(re.compile(r".*/followups/$"))
    expect(page.get_by_test_id("tour")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("tour-counter")).to_have_text("2 / 5")
    page.get_by_test_id("tour-next").click()
    expect(page.get_by_test_id("tour-counter")).to_have_text("3 / 5")
    page.get_by_test_id("tour-back").click()
    expect(page.get_by_test_id("tour-counter")).to_have_text("2 / 5")

    # Skip: the card goes at once and the server remembers it.
    settle(page)
    with page.expect_response(lambda response: "/help/tour/done/" in response.url) as done:
        page.get_by_test_id("tour-skip").click()
    assert done.value.status == 204
    expect(page.get_by_test_id("tour")).to_be_hidden()
    rep.refresh_from_db()
    assert rep.tour_done_at is not None
    page.reload()
    page.locator("main h1").wait_for()
    expect(page.get_by_test_id("tour")).to_have_count(0)

    # The user menu brings it back, from the first step, on the same page.
    settle(page)
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("tour-restart").click()
    page.wait_for_url(re.compile(r".*/followups/$"))
    expect(page.get_by_test_id("tour")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("tour-counter")).to_have_text("1 / 5")
    rep.refresh_from_db()
    assert rep.tour_done_at is None

    # 帮助: search a word and open a result at its section.
    settle(page)
    page.locator("#cims-sidebar a[href='/help/']").click()
    page.wait_for_url(re.compile(r".*/help/$"))
    page.locator("#id_q").fill("公海")
    page.get_by_test_id("help-search").locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/help/\?q="))
    results = page.get_by_test_id("help-result")
    expect(results.first).to_be_visible()
    expect(results.locator("mark").first).to_have_text("公海")
    settle(page)
    results.locator("a[href='/help/customers/#pool']").click()
    page.wait_for_url(re.compile(r".*/help/customers/#pool$"))
    expect(page.locator("#pool")).to_have_text("公海客户")
    expect(page.locator("#pool")).to_be_in_viewport()

    # The "?" beside the customer list's heading opens the customers page at the list's section.
    settle(page)
    page.goto("/customers/")
    settle(page)
    page.get_by_test_id("help-link").click()
    page.wait_for_url(re.compile(r".*/help/customers/#list$"))
    expect(page.locator("#list")).to_be_in_viewport()

    # Finish on the last step also ends the tour.
    settle(page)
    for _ in range(4):
        page.get_by_test_id("tour-next").click()
    expect(page.get_by_test_id("tour-counter")).to_have_text("5 / 5")
    expect(page.get_by_test_id("tour-next")).to_be_hidden()
    with page.expect_response(lambda response: "/help/tour/done/" in response.url):
        page.get_by_test_id("tour-finish").click()
    expect(page.get_by_test_id("tour")).to_be_hidden()
    rep.refresh_from_db()
    assert rep.tour_done_at is not None

    # Console errors include every Content-Security-Policy violation.
    assert not page.console_errors, page.console_errors
    assert not uncaught, uncaught


def test_an_ignored_offer_stays_out_of_the_way_for_the_rest_of_the_session(page):
    rep = UserFactory(username="h_busy", name="忙碌的销售", role=roles.SALES)
    log_in(page, rep)
    expect(page.get_by_test_id("tour")).to_be_visible()
    settle(page)
    page.goto("/customers/")
    page.locator("main h1").wait_for()
    expect(page.get_by_test_id("tour")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("tour")).to_be_hidden()
    # Not skipped either: the next session offers it again.
    rep.refresh_from_db()
    assert rep.tour_done_at is None
    assert not page.console_errors, page.console_errors
