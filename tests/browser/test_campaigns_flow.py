import datetime

import pytest
from django.utils import timezone

from followups.models import Campaign, CampaignMember
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.browser


def test_a_manager_runs_a_campaign_from_targets_to_conversions(page, manager, sales_rep):
    from playwright.sync_api import expect  # as conftest: collecting works without Playwright installed

    tag = TagFactory(name="展会意向")
    names = ["杭州云帆科技有限公司", "宁波海曙贸易公司", "温州瓯江机械厂"]
    for name in names:
        CustomerFactory(name=name, owner=sales_rep).tags.add(tag)
    CustomerFactory(name="未打标签的客户", owner=sales_rep)
    today = timezone.localdate()
    log_in(page, manager)

    # Create the campaign.
    page.goto("/followups/campaigns/")
    page.get_by_test_id("campaign-new").click()
    form = page.get_by_test_id("campaign-form")
    form.locator("[name=name]").fill("2026 春季工业展会")
    form.locator("[name=kind]").select_option("trade_show")
    form.locator("[name=status]").select_option("running")
    form.locator("[name=start_date]").fill(today.isoformat())
    form.locator("[name=end_date]").fill((today + datetime.timedelta(days=3)).isoformat())
    form.locator("[name=budget]").fill("9000")
    page.get_by_test_id("campaign-save").click()
    page.get_by_test_id("campaign-stats").wait_for()
    campaign = Campaign.objects.get()
    assert campaign.owner == manager and page.get_by_test_id("campaign-name").inner_text() == "2026 春季工业展会"

    # Pick the customers by tag: the count shows before anything is added (htmx), then add them.
    page.get_by_test_id("campaign-add-targets").click()
    page.get_by_test_id("target-form").locator("[name=tag]").select_option(str(tag.pk))
    page.get_by_test_id("target-count").wait_for()
    assert page.get_by_test_id("target-count").inner_text() == "3"
    assert not CampaignMember.objects.exists()
    page.get_by_test_id("target-submit").click()
    page.get_by_test_id("member-table").wait_for()
    assert page.get_by_test_id("stat-reached").inner_text() == "3"
    assert page.get_by_test_id("member-row").count() == 3

    # One responded, one converted: the buttons post with htmx and the numbers follow without a reload.
    page.evaluate("window.cimsSamePage = true")  # gone if a button reloaded the page instead
    first = page.get_by_test_id("member-row").filter(has_text=names[0])
    first.get_by_test_id("mark-responded").click()
    page.get_by_test_id("member-row").filter(has_text=names[0]).get_by_test_id("mark-targeted").wait_for()
    second = page.get_by_test_id("member-row").filter(has_text=names[1])
    second.get_by_test_id("mark-converted").click()
    expect(page.get_by_test_id("stat-converted")).to_have_text("1")  # polled without eval (the CSP forbids it)
    assert page.get_by_test_id("stat-reached").inner_text() == "3"
    assert page.get_by_test_id("stat-responded").inner_text() == "2"
    assert page.get_by_test_id("stat-cost-per-conversion").inner_text() == "¥9000.00"
    assert page.evaluate("window.cimsSamePage === true")
    statuses = dict(CampaignMember.objects.values_list("customer__name", "status"))
    assert statuses == {names[0]: "responded", names[1]: "converted", names[2]: "targeted"}
    assert not [e for e in page.console_errors if "Content Security Policy" in e]

    # The list shows the same numbers.
    page.goto("/followups/campaigns/")
    row = page.get_by_test_id("campaign-row")
    assert row.get_by_test_id("campaign-reached").inner_text() == "3"
    assert row.get_by_test_id("campaign-converted").inner_text() == "1"
