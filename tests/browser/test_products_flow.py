from decimal import Decimal

import pytest

from customers.models import Product, StockMovement, Transaction
from followups.models import Notification
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


def test_a_manager_adds_a_product_a_rep_is_refused_beyond_stock_then_sells_the_rest_and_it_is_low(
    page, manager, sales_rep
):
    customer = CustomerFactory(name="杭州云帆科技有限公司", owner=sales_rep)

    # The manager creates a product with 2 in stock, low at 1.
    log_in(page, manager)
    page.get_by_test_id("dashboard").wait_for()
    page.goto("/customers/products/")
    page.get_by_test_id("product-new").click()
    form = page.get_by_test_id("product-form")
    form.locator("[name=code]").fill("p-ink")
    form.locator("[name=name]").fill("墨盒")
    form.locator("[name=unit]").fill("盒")
    form.locator("[name=list_price]").fill("180")
    form.locator("[name=stock_quantity]").fill("2")
    form.locator("[name=low_stock_threshold]").fill("1")
    page.get_by_test_id("product-save").click()
    page.get_by_test_id("product-stock").wait_for()
    product = Product.objects.get(code="P-INK")
    assert product.stock_quantity == 2 and page.get_by_test_id("product-stock").inner_text().startswith("2")

    # A sales rep asks for 3: refused, with the product and both quantities on the page.
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id("logout").click()
    log_in(page, sales_rep)
    page.get_by_test_id("dashboard").wait_for()
    page.goto(f"/customers/{customer.pk}/transactions/new/")
    form = page.get_by_test_id("transaction-form")
    form.locator("[name=lines-0-product]").select_option(str(product.pk))
    form.locator("[name=lines-0-quantity]").fill("3")
    page.get_by_test_id("transaction-save").click()
    errors = page.get_by_test_id("transaction-errors")
    errors.wait_for()
    assert "P-INK" in errors.inner_text() and "2" in errors.inner_text() and "3" in errors.inner_text()
    assert not Transaction.objects.exists()

    # Two it is: sold at the list price, the stock is 0 and the dashboard warns.
    form = page.get_by_test_id("transaction-form")
    form.locator("[name=lines-0-quantity]").fill("2")
    page.get_by_test_id("transaction-save").click()
    page.wait_for_url(f"**/customers/{customer.pk}/")
    record = Transaction.objects.get()
    assert record.amount == Decimal("360.00")
    product.refresh_from_db()
    assert product.stock_quantity == 0
    assert StockMovement.objects.filter(transaction=record, reason="sale").count() == 1
    assert Notification.objects.filter(user=manager, key__startswith="low-stock:").count() == 0  # not its manager

    page.goto("/")
    card = page.get_by_test_id("low-stock-card")
    card.wait_for()
    assert "P-INK" in card.inner_text() and page.get_by_test_id("low-stock-count").inner_text() == "1"
    card.get_by_test_id("low-stock-link").click()
    page.wait_for_url("**/customers/products/?low=on")
    assert page.get_by_test_id("product-row").count() == 1
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
