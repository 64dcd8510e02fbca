"""The product catalogue and its pages: list, detail, create, edit, stock; transactions and
opportunities with product lines; the low-stock card on the dashboard."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import products as services
from customers.models import Customer, Product, StockMovement, Transaction
from followups import opportunities as opportunity_services
from followups.models import Opportunity, OpportunityLine
from tests.customers.factories import CustomerFactory, ProductCategoryFactory, ProductFactory
from tests.followups.factories import OpportunityFactory

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def product():
    return ProductFactory(code="P-PAPER", name="打印纸", unit="箱", list_price=Decimal("25.00"), stock_quantity=10)


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


def product_data(**overrides):
    data = {
        "code": "p-ink",
        "name": "墨盒",
        "category": "",
        "unit": "盒",
        "list_price": "180.00",
        "is_stocked": "on",
        "stock_quantity": "2",
        "low_stock_threshold": "1",
        "manager": "",
        "description": "",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def lines_data(*rows, prefix="lines", initial=0):
    """Formset POST data of ``rows``: (product pk, quantity, unit price or "")."""
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial)}
    for n, (pk, quantity, price) in enumerate(rows):
        data.update(
            {f"{prefix}-{n}-product": str(pk), f"{prefix}-{n}-quantity": quantity, f"{prefix}-{n}-unit_price": price}
        )
    return data


def tx_data(*rows, **overrides):
    data = {"date": "2026-03-01", "channel": "offline", "amount": "", "product": "", **lines_data(*rows)}
    data.update(overrides)
    return data


def stock(product) -> Decimal:
    return Product.objects.values_list("stock_quantity", flat=True).get(pk=product.pk)


# --- Who may do what -------------------------------------------------------------------------------


def _urls(product):
    return [
        reverse("customers:products"),
        reverse("customers:product_create"),
        reverse("customers:product_detail", args=[product.pk]),
        reverse("customers:product_edit", args=[product.pk]),
        reverse("customers:product_stock", args=[product.pk]),
    ]


def test_anonymous_users_go_to_login(client, product):
    for url in _urls(product):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_portal_customers_and_analysts_get_403(portal_customer, analyst, client_for, product):
    for user in (portal_customer, analyst):
        client = client_for(user)
        for url in _urls(product):
            assert client.get(url).status_code == 403, (user, url)


def test_a_sales_rep_reads_the_catalogue_but_cannot_change_it(sales_rep, client_for, product):
    client = client_for(sales_rep)
    assert client.get(reverse("customers:products")).status_code == 200
    response = client.get(reverse("customers:product_detail", args=[product.pk]))
    assert response.status_code == 200 and response.context["movements"] is None
    assert client.get(reverse("customers:product_create")).status_code == 403
    assert client.post(reverse("customers:product_create"), product_data()).status_code == 403
    assert client.post(reverse("customers:product_edit", args=[product.pk]), product_data()).status_code == 403
    response = client.post(
        reverse("customers:product_stock", args=[product.pk]), {"action": "receive", "receive-quantity": "5"}
    )
    assert response.status_code == 403
    assert not Product.objects.exclude(pk=product.pk).exists() and stock(product) == 10


def test_unknown_products_are_404(manager, client_for):
    client = client_for(manager)
    for name in ("product_detail", "product_edit", "product_stock"):
        assert client.get(reverse(f"customers:{name}", args=[987654])).status_code == 404


def test_wrong_methods_are_405(manager, client_for, product):
    client = client_for(manager)
    assert client.post(reverse("customers:products")).status_code == 405
    assert client.post(reverse("customers:product_detail", args=[product.pk])).status_code == 405
    assert client.put(reverse("customers:product_stock", args=[product.pk])).status_code == 405


# --- The list --------------------------------------------------------------------------------------


def test_the_list_searches_filters_and_stays_within_its_query_budget(
    sales_rep, client_for, django_assert_max_num_queries
):
    paper = ProductCategoryFactory(name="纸品")
    for n in range(40):
        ProductFactory(code=f"A-{n:03d}", name=f"打印纸{n}", category=paper)
    low = ProductFactory(code="B-LOW", name="墨盒", stock_quantity=1, low_stock_threshold=2)
    ProductFactory(code="B-OFF", name="停售", is_active=False)
    client = client_for(sales_rep)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("customers:products"))
    assert response.status_code == 200
    page = response.context["page"]
    assert len(page.object_list) == 30 and page.has_next and response.context["count"].value == 41
    assert client.get(reverse("customers:products"), {"q": "b-low"}).context["page"].object_list == [low]
    assert client.get(reverse("customers:products"), {"q": "墨"}).context["page"].object_list == [low]
    assert client.get(reverse("customers:products"), {"low": "on"}).context["page"].object_list == [low]
    assert len(client.get(reverse("customers:products"), {"category": paper.pk}).context["page"].object_list) == 30
    codes = [p.code for p in client.get(reverse("customers:products"), {"inactive": "on", "q": "B-"}).context["page"]]
    assert codes == ["B-LOW", "B-OFF"]
    second = client.get(reverse("customers:products"), {"after": page.next_cursor})
    assert [p.code for p in second.context["page"]] == [f"A-{n:03d}" for n in range(30, 40)] + ["B-LOW"]


def test_bad_filters_and_cursors_are_not_errors(sales_rep, client_for, product):
    client = client_for(sales_rep)
    assert client.get(reverse("customers:products"), {"category": "nope"}).status_code == 200
    assert client.get(reverse("customers:products"), {"after": "garbage'--"}).status_code == 200


# --- Create, edit, stock ---------------------------------------------------------------------------


def test_a_manager_creates_a_product_with_its_opening_stock(manager, client_for):
    response = client_for(manager).post(reverse("customers:product_create"), product_data())
    product = Product.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "customers:product_detail", args=[product.pk]
    )
    assert (product.code, product.stock_quantity) == ("P-INK", 2)
    assert list(product.movements.values_list("reason", "change")) == [("receipt", 2)]
    assert product.history.first().history_user == manager


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("code", "", "This field is required."),
        ("list_price", "-1", "The price cannot be negative."),
        ("list_price", "abc", "Enter a number."),
        ("low_stock_threshold", "-1", "The low-stock threshold cannot be negative."),
        ("stock_quantity", "-5", "The opening stock cannot be negative."),
    ],
)
def test_it_rejects_a_bad_product(manager, client_for, field, value, message):
    response = client_for(manager).post(reverse("customers:product_create"), product_data(**{field: value}), **EN)
    assert response.status_code == 422
    assert message in response.context["form"].errors[field][0]
    assert not Product.objects.exists()


def test_a_product_code_is_unique(manager, client_for, product):
    response = client_for(manager).post(reverse("customers:product_create"), product_data(code="p-paper"), **EN)
    assert response.status_code == 422 and "code" in response.context["form"].errors
    assert Product.objects.count() == 1


def test_editing_a_product_does_not_touch_its_stock(manager, client_for, product):
    url = reverse("customers:product_edit", args=[product.pk])
    assert client_for(manager).get(url).status_code == 200
    response = client_for(manager).post(url, product_data(code="P-PAPER", name="A4 打印纸", stock_quantity="999"))
    assert response.status_code == 302
    product.refresh_from_db()
    assert product.name == "A4 打印纸" and product.stock_quantity == 10 and not StockMovement.objects.exists()


def test_a_manager_receives_and_corrects_stock(manager, client_for, product):
    url = reverse("customers:product_stock", args=[product.pk])
    client = client_for(manager)
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "receive", "receive-quantity": "5", "receive-note": "送货单"})
    assert response.status_code == 302 and stock(product) == 15
    response = client.post(url, {"action": "adjust", "adjust-new_count": "12", "adjust-note": "盘点"})
    assert response.status_code == 302 and stock(product) == 12
    detail = client.get(reverse("customers:product_detail", args=[product.pk]))
    assert [m.reason for m in detail.context["movements"]] == ["adjustment", "receipt"]


def test_bad_stock_input_shows_a_message(manager, client_for, product):
    url = reverse("customers:product_stock", args=[product.pk])
    client = client_for(manager)
    response = client.post(url, {"action": "receive", "receive-quantity": "-1"}, **EN)
    assert response.status_code == 422
    assert "more than zero" in response.context["receive_form"].errors["quantity"][0]
    response = client.post(url, {"action": "adjust", "adjust-new_count": "10", "adjust-note": "同"}, **EN)
    assert response.status_code == 422 and "already" in response.context["adjust_form"].errors["new_count"][0]
    assert client.post(url, {"action": "steal"}).status_code == 422
    assert stock(product) == 10 and not StockMovement.objects.exists()


def test_product_categories_are_a_system_setting(administrator, client_for):
    client = client_for(administrator)
    response = client.post(
        reverse("customers:lookup_create", args=["product-categories"]),
        {"name": "耗材", "sort_order": "1", "is_active": "on"},
    )
    assert response.status_code == 302
    assert client.get(reverse("customers:lookup_list", args=["product-categories"])).status_code == 200


def test_stock_movements_are_read_only_in_the_admin(administrator, client_for, manager, product):
    services.stock_receive(product=product, quantity=Decimal(1), by=manager)
    client = client_for(administrator)
    assert client.get(reverse("admin:customers_stockmovement_changelist")).status_code == 200
    assert client.get(reverse("admin:customers_stockmovement_add")).status_code == 403
    assert client.get(reverse("admin:customers_product_changelist")).status_code == 200


# --- Transactions with product lines ---------------------------------------------------------------


def test_a_rep_records_a_transaction_of_products(sales_rep, client_for, customer, product):
    url = reverse("customers:transaction_create", args=[customer.pk])
    client = client_for(sales_rep)
    assert client.get(url).status_code == 200
    response = client.post(url, tx_data((product.pk, "3", "")))
    assert response.status_code == 302
    record = Transaction.objects.get()
    assert record.amount == Decimal("75.00") and record.product == "打印纸 × 3"
    assert stock(product) == 7


def test_a_transaction_beyond_stock_is_refused_with_a_message(sales_rep, client_for, customer, product):
    url = reverse("customers:transaction_create", args=[customer.pk])
    response = client_for(sales_rep).post(url, tx_data((product.pk, "11", "")), **EN)
    assert response.status_code == 200
    assert "Not enough stock of P-PAPER 打印纸: 10 箱 available, 11 requested." in response.content.decode()
    assert not Transaction.objects.exists() and stock(product) == 10


def test_a_manager_may_backorder(manager, client_for, customer, product):
    response = client_for(manager).post(
        reverse("customers:transaction_create", args=[customer.pk]), tx_data((product.pk, "11", ""))
    )
    assert response.status_code == 302 and stock(product) == -1


def test_bad_lines_show_messages(sales_rep, client_for, customer, product):
    url = reverse("customers:transaction_create", args=[customer.pk])
    client = client_for(sales_rep)
    response = client.post(url, tx_data((product.pk, "", "")), **EN)
    assert response.status_code == 200 and response.context["formset"].errors[0]["quantity"]
    response = client.post(url, tx_data((987654, "1", "")), **EN)
    assert response.status_code == 200 and response.context["formset"].errors[0]["product"]
    response = client.post(url, tx_data(("", "2", "")), **EN)
    assert response.status_code == 200 and response.context["formset"].errors[0]["product"]
    response = client.post(url, tx_data((product.pk, "1", "-3")), **EN)
    assert response.status_code == 200 and response.context["formset"].errors[0]["unit_price"]
    assert not Transaction.objects.exists()


def test_a_product_not_on_sale_is_not_offered(sales_rep, client_for, customer):
    hidden = ProductFactory(is_active=False)
    url = reverse("customers:transaction_create", args=[customer.pk])
    response = client_for(sales_rep).post(url, tx_data((hidden.pk, "1", "")))
    assert response.status_code == 200 and response.context["formset"].errors[0]["product"]
    assert not Transaction.objects.exists()


def test_add_a_row_keeps_what_was_typed(sales_rep, client_for, customer, product):
    url = reverse("customers:transaction_create", args=[customer.pk])
    response = client_for(sales_rep).post(url, {**tx_data((product.pk, "2", "")), "add_line": "1"})
    assert response.status_code == 200 and len(response.context["formset"].forms) == 2
    assert not Transaction.objects.exists()


def test_editing_a_transaction_restocks_the_old_lines(sales_rep, client_for, customer, product):
    record = services.transaction_record(
        customer=customer,
        by=sales_rep,
        date=Transaction().date,
        channel="offline",
        lines=[services.Line(product, Decimal(4), Decimal(25))],
    )
    assert stock(product) == 6
    url = reverse("customers:transaction_edit", args=[record.pk])
    client = client_for(sales_rep)
    assert client.get(url).status_code == 200
    response = client.post(url, {**tx_data((product.pk, "1", "25")), "lines-INITIAL_FORMS": "1"})
    assert response.status_code == 302 and stock(product) == 9
    record.refresh_from_db()
    assert record.amount == Decimal("25.00")


def test_another_reps_transaction_is_404(other_sales_rep, sales_rep, client_for, customer, product):
    record = services.transaction_record(
        customer=customer,
        by=sales_rep,
        date=Transaction().date,
        channel="offline",
        lines=[services.Line(product, Decimal(1), Decimal(25))],
    )
    response = client_for(other_sales_rep).post(reverse("customers:transaction_edit", args=[record.pk]), tx_data())
    assert response.status_code == 404 and stock(product) == 9


def test_the_360_page_shows_the_lines_in_constant_queries(sales_rep, client_for, customer, product):
    client = client_for(sales_rep)
    url = reverse("customers:detail", args=[customer.pk])
    services.transaction_record(
        customer=customer,
        by=sales_rep,
        date=Transaction().date,
        channel="offline",
        lines=[services.Line(product, Decimal(1), Decimal(25))],
    )
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert 'data-testid="transaction-lines"' in response.content.decode()
    for _ in range(4):
        other = ProductFactory()
        services.transaction_record(
            customer=customer,
            by=sales_rep,
            date=Transaction().date,
            channel="offline",
            lines=[services.Line(product, Decimal(1), Decimal(25)), services.Line(other, Decimal(2), Decimal(5))],
        )
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.content.decode().count("× 2") >= 4
    assert len(many) == len(few)


# --- Opportunities with product lines --------------------------------------------------------------


def test_an_opportunity_with_lines_is_worth_their_sum(sales_rep, client_for, customer, product):
    data = {
        "title": "办公用品年采",
        "stage": "initial",
        "amount": "",
        "probability": "",
        "description": "",
        **lines_data((product.pk, "4", "20")),
    }
    response = client_for(sales_rep).post(reverse("followups:opportunity_create", args=[customer.pk]), data)
    assert response.status_code == 302
    opportunity = Opportunity.objects.get()
    assert opportunity.amount == Decimal("80.00")
    assert list(opportunity.lines.values_list("product__code", "quantity")) == [("P-PAPER", 4)]


def test_editing_an_opportunitys_lines_changes_its_amount(sales_rep, client_for, customer, product):
    opportunity = opportunity_services.opportunity_create(
        customer=customer, by=sales_rep, title="年采", lines=[services.Line(product, Decimal(2), Decimal(25))]
    )
    url = reverse("followups:opportunity_edit", args=[opportunity.pk])
    assert client_for(sales_rep).get(url).status_code == 200
    data = {"title": "年采", "probability": "10", "description": "", **lines_data((product.pk, "3", "25"), initial=1)}
    assert client_for(sales_rep).post(url, data).status_code == 302
    opportunity.refresh_from_db()
    assert opportunity.amount == Decimal("75.00") and opportunity.lines.get().quantity == 3


def test_winning_sells_the_lines_and_takes_the_stock(sales_rep, customer, product):
    opportunity = opportunity_services.opportunity_create(
        customer=customer, by=sales_rep, title="年采", lines=[services.Line(product, Decimal(4), Decimal(20))]
    )
    result = opportunity_services.opportunity_win(opportunity=opportunity, by=sales_rep, create_transaction=True)
    assert result.transaction.amount == Decimal("80.00") and stock(product) == 6
    assert list(result.transaction.lines.values_list("quantity", "unit_price")) == [(4, Decimal("20.00"))]


def test_a_win_beyond_stock_rolls_back_everything(sales_rep, client_for, customer, product):
    opportunity = OpportunityFactory(customer=customer)
    OpportunityLine.objects.create(opportunity=opportunity, product=product, quantity=11, unit_price=25)
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_win", args=[opportunity.pk]),
        {"create_transaction": "on", "transaction-date": "2026-03-01", "transaction-channel": "offline"},
        **EN,
    )
    assert response.status_code == 422
    assert "Not enough stock of P-PAPER 打印纸: 10 箱 available, 11 requested." in response.content.decode()
    opportunity.refresh_from_db()
    customer.refresh_from_db()
    assert opportunity.stage == "initial" and customer.status == Customer.Status.PROSPECT
    assert not Transaction.objects.exists() and stock(product) == 10 and not StockMovement.objects.exists()


# --- The dashboard -----------------------------------------------------------------------------------


def test_the_dashboard_shows_low_stock_to_those_who_see_products(sales_rep, analyst, client_for):
    ProductFactory(code="P-LOW", stock_quantity=1, low_stock_threshold=2)
    ProductFactory(code="P-OK", stock_quantity=9, low_stock_threshold=2)
    response = client_for(sales_rep).get("/")
    assert response.status_code == 200 and response.context["low_stock_count"] == 1
    assert [p.code for p in response.context["low_stock_products"]] == ["P-LOW"]
    assert 'data-testid="low-stock-card"' in response.content.decode()
    response = client_for(analyst).get("/")
    assert "low_stock_count" not in response.context
    assert 'data-testid="low-stock-card"' not in response.content.decode()


def test_the_dashboard_has_no_card_when_nothing_is_low(manager, client_for, product):
    response = client_for(manager).get("/")
    assert response.context["low_stock_count"] == 0
    assert 'data-testid="low-stock-card"' not in response.content.decode()


def test_the_movements_page_through_within_a_query_budget(manager, client_for, product, django_assert_max_num_queries):
    for _ in range(25):
        services.stock_receive(product=product, quantity=Decimal(1), by=manager)
    client = client_for(manager)
    url = reverse("customers:product_detail", args=[product.pk])
    with django_assert_max_num_queries(10):
        response = client.get(url)
    page = response.context["movements"]
    assert len(page.object_list) == 20 and page.has_next
    assert page.object_list[0].balance == 35
    rest = client.get(url, {"after": page.next_cursor}).context["movements"]
    assert [m.balance for m in rest] == [15, 14, 13, 12, 11]


# --- Numbers beyond the columns, forged row counts ------------------------------------------------------

HUGE = "999999999999.99"  # the largest a 14-digit, 2-place column holds


def test_receiving_beyond_what_the_stock_column_holds_is_a_message_not_a_500(manager, client_for):
    product = ProductFactory(stock_quantity=Decimal(HUGE))
    url = reverse("customers:product_stock", args=[product.pk])
    response = client_for(manager).post(url, {"action": "receive", "receive-quantity": "1"}, **EN)
    assert response.status_code == 422
    assert "beyond what can be recorded" in response.content.decode()
    assert stock(product) == Decimal(HUGE) and not StockMovement.objects.exists()


def test_a_backorder_sale_beyond_the_stock_column_is_refused(manager, client_for, customer):
    product = ProductFactory(stock_quantity=Decimal("-1"))  # already one on backorder
    response = client_for(manager).post(
        reverse("customers:transaction_create", args=[customer.pk]), tx_data((product.pk, HUGE, "0.01")), **EN
    )
    assert response.status_code == 200 and not Transaction.objects.exists()  # the form again, with the message
    assert "beyond what can be recorded" in response.content.decode()
    assert stock(product) == -1


def test_an_opportunity_whose_lines_outgrow_the_amount_column_is_refused(sales_rep, client_for, customer, product):
    data = {"title": "超大单", "stage": "initial", "amount": "", "probability": "", "description": ""}
    data |= lines_data((product.pk, HUGE, HUGE))
    response = client_for(sales_rep).post(reverse("followups:opportunity_create", args=[customer.pk]), data, **EN)
    assert response.status_code == 422 and not Opportunity.objects.exists()
    assert "digits" in response.content.decode()


def test_a_forged_row_count_builds_no_more_than_the_row_limit(sales_rep, client_for, customer, product):
    from customers.forms_product import MAX_LINE_ROWS

    data = tx_data((product.pk, "1", ""))
    data["lines-TOTAL_FORMS"] = "1000000"
    response = client_for(sales_rep).post(reverse("customers:transaction_create", args=[customer.pk]), data)
    assert response.content.decode().count('name="lines-') <= MAX_LINE_ROWS * 4 + 4


def test_creating_a_product_with_opening_stock_needs_only_the_add_permission(client_for):
    from django.contrib.auth.models import Permission

    from accounts import roles
    from tests.factories import UserFactory

    clerk = UserFactory(username="t_clerk", role=roles.SALES)
    clerk.user_permissions.add(Permission.objects.get(codename="add_product"))
    response = client_for(clerk).post(reverse("customers:product_create"), product_data())
    assert response.status_code == 302
    assert Product.objects.get().stock_quantity == 2
