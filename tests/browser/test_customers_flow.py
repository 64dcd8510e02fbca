import re

import pytest

from customers.models import Customer
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(user.username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")


def test_a_sales_rep_creates_an_enterprise_customer_finds_it_and_service_sees_it_masked(page, sales_rep, service_agent):
    log_in(page, sales_rep)

    # Create an enterprise customer with two contacts in one form.
    page.goto("/customers/new/")
    page.check("input[name=kind][value=enterprise]")
    page.fill("#id_name", "杭州云帆科技有限公司")
    page.fill("#id_mobile", "138 0013 8000")
    page.fill("#id_email", "Info@YunFan.example.com")
    page.fill("#id_contacts-0-name", "张经理")
    page.fill("#id_contacts-0-phone", "139 0000 1111")
    page.fill("#id_contacts-1-name", "李助理")
    page.fill("#id_contacts-1-phone", "137 0000 2222")
    page.locator("[data-testid=customer-form] button[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/customers/\d+/$"))
    customer = Customer.objects.get(name="杭州云帆科技有限公司")
    assert customer.kind == Customer.ENTERPRISE and customer.owner == sales_rep
    assert customer.mobile == "+8613800138000"
    assert customer.contacts.count() == 2
    assert "张经理" in page.content() and "李助理" in page.content()

    # Find it by phone from the list, typed the way people type it.
    page.goto("/customers/")
    page.fill("#id_q", "13800138000")
    page.keyboard.press("Enter")
    table = page.get_by_test_id("customer-table")
    table.get_by_text("杭州云帆科技有限公司").wait_for()
    assert customer.code in table.inner_text()
    page.screenshot(path="test-results/customers-list-sales.png", full_page=True)

    # Service staff see the same customer, masked and read-only.
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    log_in(page, service_agent)
    page.goto(f"/customers/{customer.pk}/")
    mobile = page.locator("#personal-mobile").inner_text()
    assert "138****8000" in mobile and "13800138000" not in page.content()
    assert page.get_by_test_id("action-edit").count() == 0
    page.screenshot(path="test-results/customer-360-service.png", full_page=True)
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
