"""The pipeline board as a rep uses it: drag a deal along the stages, then onto 赢单."""

import pytest

from customers.models import Customer
from followups.models import Opportunity
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory
from tests.followups.factories import OpportunityFactory

pytestmark = pytest.mark.browser


def test_a_rep_drags_a_deal_to_won_and_the_customer_becomes_a_buyer(page, sales_rep):
    customer = CustomerFactory(name="苏州恒信精密机械有限公司", owner=sales_rep, status=Customer.Status.INTENT)
    deal = OpportunityFactory(customer=customer, title="数控机床年度维保", amount="86000.00")
    log_in(page, sales_rep)
    page.goto("/followups/pipeline/")
    card = page.locator(f"[data-testid=opportunity-card][data-id='{deal.pk}']")

    # Dragged onto 方案报价: the board is swapped in place and the column totals follow.
    card.drag_to(page.locator("[data-testid=pipeline-column][data-stage=proposal] .card"))
    proposal = page.locator("[data-testid=pipeline-column][data-stage=proposal]")
    proposal.locator(f"[data-testid=opportunity-card][data-id='{deal.pk}']").wait_for()
    assert proposal.get_by_test_id("column-count").inner_text() == "1"
    assert proposal.get_by_test_id("column-amount").inner_text() == "¥86000.00"
    deal.refresh_from_db()
    assert deal.stage == Opportunity.Stage.PROPOSAL and deal.probability == 50

    # Dragged onto 赢单: the win page asks what the step needs; confirming makes the customer 成交客户.
    card = page.locator(f"[data-testid=opportunity-card][data-id='{deal.pk}']")
    card.drag_to(page.locator("[data-testid=pipeline-column][data-stage=won] .card"))
    page.get_by_test_id("win-form").wait_for()
    page.get_by_test_id("win-submit").click()
    page.wait_for_url(lambda url: "/win/" not in url)
    deal.refresh_from_db()
    customer.refresh_from_db()
    assert deal.stage == Opportunity.Stage.WON
    assert customer.status == Customer.Status.WON

    page.goto(f"/customers/{customer.pk}/")
    assert "成交客户" in page.locator("main").inner_text()
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
