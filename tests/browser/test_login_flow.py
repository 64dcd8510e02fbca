import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_a_sales_rep_logs_in_and_sees_the_dashboard_in_chinese(page, sales_rep):
    page.goto("/")
    assert "/accounts/login/" in page.url
    page.get_by_label("用户名").fill(sales_rep.username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")
    dashboard = page.get_by_test_id("dashboard")
    assert dashboard.is_visible()
    assert "工作台" in page.title()
    assert sales_rep.name in dashboard.inner_text()
    assert "销售" in dashboard.inner_text()  # the role badge, in Chinese
    # The page's own CSS and scripts loaded from our static files, with no CSP violation.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("typeof window.bootstrap") == "object"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
    page.screenshot(path="test-results/dashboard-sales.png", full_page=True)


def test_a_portal_customer_lands_in_the_portal_and_switches_to_english(page, portal_customer):
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(portal_customer.username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/accounts/portal/")
    assert page.get_by_test_id("portal-home").is_visible()
    page.get_by_test_id("lang-en").click()
    page.wait_for_load_state()
    assert "Welcome to the customer self-service portal" in page.content()
