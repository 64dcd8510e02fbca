"""Stock (库存): receipts, corrections, sales through transactions with product lines, backorders,
low-stock notifications exactly once per crossing, and the race for the last unit."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import translation

from customers import products as services
from customers.models import Product, StockMovement, Transaction, TransactionLine
from followups.models import Notification
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory, ProductFactory, TransactionFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
TODAY = datetime.date(2026, 3, 1)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


def sell(customer, by, *lines, instance=None, **kwargs):
    """Record a transaction of ``lines``: (product, quantity[, unit_price])."""
    return services.transaction_record(
        customer=customer,
        by=by,
        date=TODAY,
        channel="offline",
        lines=[
            services.Line(line[0], Decimal(line[1]), Decimal(line[2]) if len(line) > 2 else line[0].list_price)
            for line in lines
        ],
        instance=instance,
        **kwargs,
    )


def stock(product) -> Decimal:
    return Product.objects.values_list("stock_quantity", flat=True).get(pk=product.pk)


# --- Receipts and corrections --------------------------------------------------------------------


def test_it_receives_goods_and_writes_a_movement(manager):
    product = ProductFactory(stock_quantity=3)
    movement = services.stock_receive(product=product, quantity=Decimal(5), note="送货单 123", by=manager)
    assert stock(product) == 8 and product.stock_quantity == 8
    assert (movement.reason, movement.change, movement.balance, movement.created_by) == ("receipt", 5, 8, manager)


def test_it_corrects_the_stock_to_a_counted_quantity(manager):
    product = ProductFactory(stock_quantity=10)
    movement = services.stock_adjust(product=product, new_count=Decimal(7), note="盘点", by=manager)
    assert stock(product) == 7 and (movement.reason, movement.change, movement.balance) == ("adjustment", -3, 7)


@pytest.mark.parametrize(
    "call",
    [
        lambda p, u: services.stock_receive(product=p, quantity=Decimal(0), by=u),
        lambda p, u: services.stock_receive(product=p, quantity=Decimal(-2), by=u),
        lambda p, u: services.stock_adjust(product=p, new_count=Decimal(-1), note="x", by=u),
        lambda p, u: services.stock_adjust(product=p, new_count=Decimal(4), note="  ", by=u),
        lambda p, u: services.stock_adjust(product=p, new_count=Decimal(10), note="same", by=u),
    ],
)
def test_it_refuses_bad_stock_changes(manager, call):
    product = ProductFactory(stock_quantity=10)
    with pytest.raises(ValidationError):
        call(product, manager)
    assert stock(product) == 10 and not StockMovement.objects.exists()


def test_a_sales_rep_cannot_change_stock(sales_rep):
    product = ProductFactory(stock_quantity=10)
    with pytest.raises(PermissionDenied):
        services.stock_receive(product=product, quantity=Decimal(5), by=sales_rep)
    assert stock(product) == 10


def test_a_product_without_stock_tracking_has_no_stock_to_change(manager):
    product = ProductFactory(is_stocked=False, stock_quantity=0)
    with pytest.raises(ValidationError):
        services.stock_receive(product=product, quantity=Decimal(5), by=manager)


def test_a_new_products_opening_stock_is_a_receipt(manager):
    product = services.product_save(
        product=Product(code="P-NEW", name="打印纸", list_price=Decimal("25.00"), low_stock_threshold=Decimal(5)),
        by=manager,
        opening_stock=Decimal(40),
    )
    assert product.stock_quantity == 40
    assert list(product.movements.values_list("reason", "change", "balance")) == [("receipt", 40, 40)]


def test_editing_a_product_keeps_the_stock_the_movements_made(manager):
    product = ProductFactory(stock_quantity=10)
    product.stock_quantity = Decimal(999)  # whatever a form held
    product.name = "新名称"
    services.product_save(product=product, by=manager)
    product.refresh_from_db()
    assert product.name == "新名称" and product.stock_quantity == 10


def test_a_sales_rep_cannot_create_a_product(sales_rep):
    with pytest.raises(PermissionDenied):
        services.product_save(product=Product(code="X", name="X"), by=sales_rep)
    assert not Product.objects.exists()


# --- Sales -----------------------------------------------------------------------------------------


def test_a_sale_takes_stock_and_the_amount_is_the_sum_of_the_lines(sales_rep, customer):
    paper = ProductFactory(name="打印纸", list_price=Decimal("25.00"), stock_quantity=10)
    ink = ProductFactory(name="墨盒", list_price=Decimal("180.00"), stock_quantity=4)
    record = sell(customer, sales_rep, (paper, 3), (ink, 2, "150.00"))
    assert record.amount == Decimal("375.00")
    assert record.product == "打印纸 × 3, 墨盒 × 2"
    assert stock(paper) == 7 and stock(ink) == 2
    sales = StockMovement.objects.filter(transaction=record, reason="sale")
    assert sorted(sales.values_list("change", "balance")) == [(-3, 7), (-2, 2)]
    assert sorted(record.lines.values_list("quantity", "unit_price")) == [(2, Decimal("150.00")), (3, Decimal("25.00"))]


def test_a_sale_beyond_stock_is_refused_naming_product_and_quantities(sales_rep, customer):
    product = ProductFactory(code="P-INK", name="墨盒", unit="盒", stock_quantity=2)
    with translation.override("en"), pytest.raises(ValidationError) as error:
        sell(customer, sales_rep, (product, 3))
    assert error.value.messages == ["Not enough stock of P-INK 墨盒: 2 盒 available, 3 requested."]
    assert stock(product) == 2
    assert not Transaction.objects.exists() and not StockMovement.objects.exists()


def test_two_lines_of_one_product_count_together_against_the_stock(sales_rep, customer):
    product = ProductFactory(stock_quantity=4)
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (product, 3), (product, 2))
    assert stock(product) == 4


def test_a_manager_may_sell_beyond_stock_as_a_backorder(manager, customer):
    product = ProductFactory(stock_quantity=2, low_stock_threshold=1)
    with translation.override("en"):
        record = sell(customer, manager, (product, 5))
    assert stock(product) == -3
    movement = StockMovement.objects.get(transaction=record)
    assert movement.balance == -3 and movement.note == "Backorder: 3 件 beyond stock"


def test_a_product_not_on_sale_cannot_be_sold(sales_rep, customer):
    product = ProductFactory(is_active=False)
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (product, 1))
    assert not Transaction.objects.exists()


def test_a_product_without_stock_tracking_sells_without_movements(sales_rep, customer):
    service = ProductFactory(is_stocked=False, stock_quantity=0, list_price=Decimal("500"))
    record = sell(customer, sales_rep, (service, 2))
    assert record.amount == Decimal("1000.00") and not StockMovement.objects.exists()


@pytest.mark.parametrize("quantity, price", [("0", "1"), ("-1", "1"), ("1", "-1"), ("0.001", "1")])
def test_it_refuses_bad_lines(sales_rep, customer, quantity, price):
    product = ProductFactory()
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (product, quantity, price))
    assert not Transaction.objects.exists()


def test_lines_worth_nothing_are_refused(sales_rep, customer):
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (ProductFactory(), 1, "0"))
    assert not Transaction.objects.exists()


def test_a_transaction_without_lines_keeps_its_text_and_amount(sales_rep, customer):
    record = sell(customer, sales_rep, product_text="年度服务", amount=Decimal("99.00"))
    assert (record.product, record.amount) == ("年度服务", Decimal("99.00")) and not record.lines.exists()
    with pytest.raises(ValidationError) as error:
        sell(customer, sales_rep, product_text="", amount=None)
    assert set(error.value.message_dict) == {"product", "amount"}


def test_another_reps_customer_is_refused(other_sales_rep, customer):
    with pytest.raises(PermissionDenied):
        sell(customer, other_sales_rep, (ProductFactory(), 1))


def test_editing_a_transaction_puts_the_old_lines_back_and_takes_the_new(sales_rep, customer):
    paper, ink = ProductFactory(stock_quantity=10), ProductFactory(stock_quantity=10)
    record = sell(customer, sales_rep, (paper, 4))
    assert stock(paper) == 6
    record = sell(customer, sales_rep, (paper, 1), (ink, 2), instance=record)
    assert stock(paper) == 9 and stock(ink) == 8
    reasons = list(StockMovement.objects.filter(product=paper).order_by("pk").values_list("reason", "change"))
    assert reasons == [("sale", -4), ("return", 4), ("sale", -1)]
    assert TransactionLine.objects.filter(transaction=record).count() == 2


def test_an_edit_may_sell_what_its_own_old_lines_held(sales_rep, customer):
    product = ProductFactory(stock_quantity=3)
    record = sell(customer, sales_rep, (product, 3))
    assert stock(product) == 0
    sell(customer, sales_rep, (product, 3, "80.00"), instance=record)  # a new price, the same goods
    assert stock(product) == 0
    record.refresh_from_db()
    assert record.amount == Decimal("240.00")


def test_an_edit_that_keeps_the_quantities_moves_no_stock(sales_rep, customer):
    product = ProductFactory(stock_quantity=5)
    record = sell(customer, sales_rep, (product, 2))
    services.transaction_record(
        customer=customer,
        by=sales_rep,
        date=TODAY + datetime.timedelta(days=1),
        channel="phone",
        lines=[services.Line(product, Decimal(2), product.list_price)],
        instance=record,
    )
    assert StockMovement.objects.count() == 1 and stock(product) == 3


def test_a_refused_edit_leaves_stock_and_lines_as_they_were(sales_rep, customer):
    product = ProductFactory(stock_quantity=5)
    record = sell(customer, sales_rep, (product, 2))
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (product, 9), instance=record)
    assert stock(product) == 3
    assert list(record.lines.values_list("quantity", flat=True)) == [2]
    assert StockMovement.objects.count() == 1


def test_removing_every_line_puts_the_stock_back(sales_rep, customer):
    product = ProductFactory(stock_quantity=5)
    record = sell(customer, sales_rep, (product, 2))
    sell(customer, sales_rep, instance=record, product_text="改为服务费", amount=Decimal("10"))
    assert stock(product) == 5 and not record.lines.exists()


def test_an_old_free_text_transaction_can_gain_lines(sales_rep, customer):
    record = TransactionFactory(customer=customer)
    product = ProductFactory(stock_quantity=5)
    sell(customer, sales_rep, (product, 1), instance=record)
    assert stock(product) == 4


# --- Low-stock notifications -----------------------------------------------------------------------


def test_crossing_the_threshold_notifies_admins_and_the_product_manager_once(
    administrator, manager, sales_rep, customer
):
    product = ProductFactory(stock_quantity=5, low_stock_threshold=2, manager=manager)
    sell(customer, sales_rep, (product, 2))  # 3: still above
    assert not Notification.objects.exists()
    sell(customer, sales_rep, (product, 1))  # 2: at the threshold → warned
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"t_admin", "t_manager"}
    sell(customer, sales_rep, (product, 1))  # 1: already low, no new crossing
    assert Notification.objects.count() == 2
    note = Notification.objects.get(user=manager)
    assert product.code in note.title and note.url.endswith(f"/products/{product.pk}/")


def test_a_new_crossing_after_a_receipt_warns_again(administrator, manager, sales_rep, customer):
    product = ProductFactory(stock_quantity=3, low_stock_threshold=2)
    sell(customer, sales_rep, (product, 1))
    services.stock_receive(product=product, quantity=Decimal(10), by=manager)
    sell(customer, sales_rep, (product, 10))
    assert Notification.objects.filter(user=administrator).count() == 2


def test_a_refused_sale_warns_nobody(administrator, sales_rep, customer):
    product = ProductFactory(stock_quantity=3, low_stock_threshold=2)
    with pytest.raises(ValidationError):
        sell(customer, sales_rep, (product, 1), (ProductFactory(is_active=False), 1))
    assert not Notification.objects.exists() and stock(product) == 3


def test_a_correction_below_the_threshold_warns(administrator, manager):
    product = ProductFactory(stock_quantity=10, low_stock_threshold=2)
    services.stock_adjust(product=product, new_count=Decimal(1), note="损坏", by=manager)
    assert Notification.objects.filter(user=administrator).count() == 1


def test_inactive_admins_are_not_notified(sales_rep, customer):
    UserFactory(username="old_admin", role="admin", is_active=False)
    product = ProductFactory(stock_quantity=3, low_stock_threshold=2)
    sell(customer, sales_rep, (product, 2))
    assert not Notification.objects.exists()


def test_a_backorder_warning_says_so(administrator, manager, customer):
    product = ProductFactory(stock_quantity=3, low_stock_threshold=1)
    with translation.override("en"):
        sell(customer, manager, (product, 5))
    assert "backorder" in Notification.objects.get(user=administrator).body


def test_the_low_stock_list_is_the_products_at_or_below_their_threshold():
    low = ProductFactory(stock_quantity=2, low_stock_threshold=2)
    ProductFactory(stock_quantity=3, low_stock_threshold=2)
    ProductFactory(stock_quantity=0, low_stock_threshold=2, is_active=False)
    ProductFactory(stock_quantity=0, low_stock_threshold=2, is_stocked=False)
    assert list(Product.objects.low_stock()) == [low] and low.is_low


# --- The race for the last unit --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_reps_buying_the_last_unit_at_once_one_wins():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    rep = UserFactory(role="sales")
    customer = CustomerFactory(owner=rep)
    product = ProductFactory(stock_quantity=1, low_stock_threshold=0)

    def buy():
        with translation.override("en"):
            try:
                sell(customer, rep, (Product.objects.get(pk=product.pk), 1))
            except ValidationError as error:
                return error.messages[0]
            return "sold"

    results, errors = run_at_once(buy, threads=2)
    assert errors == []
    assert sorted(results) == sorted(["sold", f"Not enough stock of {product}: 0 件 available, 1 requested."])
    assert stock(product) == 0
    assert Transaction.objects.count() == 1 and StockMovement.objects.count() == 1
