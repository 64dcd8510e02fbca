import json

import pytest

from accounts import roles
from accounts.models import PortalAccount
from customers.models import Consent, DataRequest
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory
from tests.followups.factories import FollowUpFactory

pytestmark = pytest.mark.browser


def test_a_customer_downloads_their_data_and_withdraws_marketing_consent(page, sales_rep):
    customer = CustomerFactory(
        name="欧阳女士", mobile="+8613800001234", id_number="11010519491231002X", owner=sales_rep
    )
    FollowUpFactory(customer=customer, content="电话介绍新品", created_by=sales_rep)
    user = UserFactory(username="ouyang", name="欧阳女士", role=roles.CUSTOMER)
    PortalAccount.objects.create(user=user, customer=customer, created_by=sales_rep)
    log_in(page, user)

    page.locator("[data-testid=portal-nav] a[href='/portal/privacy/']").click()
    page.get_by_test_id("portal-export").wait_for()
    with page.expect_download() as info:
        page.get_by_test_id("export-json").click()
    name = info.value.suggested_filename
    assert name.startswith(f"my-data-{customer.code}-") and name.endswith(".json")
    with open(info.value.path(), encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["profile"]["name"] == "欧阳女士"
    assert data["profile"]["id_number"] == "11010519491231002X"
    assert data["follow_ups"][0]["content"] == "电话介绍新品"
    assert DataRequest.objects.get().kind == "export"

    # Withdrawing marketing consent takes effect at once; the page then offers to agree again.
    page.get_by_test_id("marketing-withdraw").click()
    page.get_by_test_id("marketing-grant").wait_for()
    consent = Consent.objects.get()
    assert (consent.purpose, consent.granted, consent.channel) == ("marketing", False, "portal")
    page.screenshot(path="test-results/portal-privacy.png", full_page=True)
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_a_manager_refuses_a_correction_and_the_customer_reads_why(page, sales_rep, manager):
    customer = CustomerFactory(name="欧阳女士", owner=sales_rep)
    user = UserFactory(username="ouyang", name="欧阳女士", role=roles.CUSTOMER)
    PortalAccount.objects.create(user=user, customer=customer, created_by=sales_rep)
    log_in(page, user)
    page.goto("/portal/privacy/")
    page.get_by_test_id("correction-form").locator("textarea").fill("我的地址已改为杭州市西湖区")
    page.get_by_test_id("correction-submit").click()
    page.get_by_test_id("portal-request").first.wait_for()
    page.get_by_test_id("logout").click()

    log_in(page, manager)
    page.goto("/customers/data-requests/")
    page.get_by_test_id("data-request-open").first.click()
    assert "我的地址已改为杭州市西湖区" in page.get_by_test_id("data-request-details").inner_text()
    page.get_by_test_id("decision-form").locator("textarea").fill("请先提供新地址的证明")
    page.get_by_test_id("decision-refuse").click()
    page.get_by_test_id("data-request-reason").wait_for()
    page.screenshot(path="test-results/data-request-refused.png", full_page=True)
    assert DataRequest.objects.get().status == "refused"
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()

    log_in(page, user)
    page.goto("/portal/privacy/")
    assert "请先提供新地址的证明" in page.get_by_test_id("portal-request-reason").inner_text()
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
