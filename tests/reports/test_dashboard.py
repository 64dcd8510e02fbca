"""The dashboard's key figures: the period switch and its spans, every figure worked out by hand from
the data below for a manager and for a rep, the charts' tables, each role's view, the htmx partial,
bad input and the query budget.

"Now" is Tuesday 2026-11-24 10:00 in Shanghai: this month is November 1–24 against October 1–24;
this week Monday 23–Tuesday 24 against Monday 16–Tuesday 17. 2026-11-01 00:30 in Shanghai is still
October 31 in UTC.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation

from complaints.models import Ticket, TicketCategory
from customers.models import Contract, Customer, StatusChange, Transaction
from followups.models import Task
from reports import dashboard
from reports.facts import facts_refresh
from tests.customers.factories import ContractFactory, CustomerFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D = datetime.date
C = Customer.Status
S = Ticket.Status
URL = "/"
FIGURES_URL = "/dashboard/figures/"
NAMES = ("海淀科技", "朝阳贸易", "西城商行", "东城物流")


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


NOW = at(2026, 11, 24, 10, 0)


@pytest.fixture(autouse=True)
def _english_and_fixed_now(monkeypatch):
    monkeypatch.setattr(dashboard, "current_time", lambda: NOW)
    with translation.override("en"):
        yield


@pytest.fixture
def data(sales_rep, other_sales_rep):
    def customer(owner, created, status=C.PROSPECT, name=None):
        kwargs = {"name": name} if name else {}
        return CustomerFactory(owner=owner, status=status, created_at=created, **kwargs)

    a = customer(sales_rep, at(2026, 11, 1, 0, 30), C.WON, "海淀科技")  # won when created
    b = customer(sales_rep, at(2026, 11, 10, 10, 0))
    c = customer(sales_rep, at(2026, 10, 5, 9, 0), C.WON)  # won on November 3
    StatusChange.objects.create(customer=c, from_status=C.PROSPECT, to_status=C.WON, changed_at=at(2026, 11, 3, 10))
    d = customer(sales_rep, at(2026, 10, 24, 23, 50))  # the last minutes of the previous span
    customer(sales_rep, at(2026, 10, 25, 0, 10))  # after it: in neither span
    f = customer(sales_rep, at(2025, 6, 1, 9, 0))
    g = customer(other_sales_rep, at(2026, 11, 5, 9, 0), C.WON, "朝阳贸易")
    # Moved from the other rep, who keeps the credit for its sale.
    h = customer(other_sales_rep, at(2026, 11, 12, 9, 0), name="西城商行")
    h.owner = sales_rep
    h.save(update_fields=["owner"])

    for who, day, amount, rep in (
        (a, D(2026, 11, 2), "1000.00", sales_rep),
        (a, D(2026, 11, 20), "-200.00", sales_rep),  # a refund
        (b, D(2026, 11, 24), "500.50", sales_rep),
        (c, D(2026, 10, 10), "300.00", sales_rep),
        (d, D(2026, 10, 24), "99.99", sales_rep),
        (d, D(2026, 10, 25), "1000.00", sales_rep),  # in neither span
        (g, D(2026, 11, 5), "2000.00", other_sales_rep),
        (h, D(2026, 11, 12), "400.00", other_sales_rep),
    ):
        Transaction.objects.create(customer=who, date=day, amount=Decimal(amount), product="套餐", rep=rep)

    for who, start, amount, status in (
        (a, "2026-11-01", "50000.00", Contract.Status.ACTIVE),
        (b, "2026-11-24", "12000.00", Contract.Status.DRAFT),  # a draft is no contract value yet
        (c, "2026-10-24", "8000.00", Contract.Status.ACTIVE),
        (g, "2026-11-15", "30000.00", Contract.Status.ACTIVE),
        (f, "2026-10-25", "1000.00", Contract.Status.EXPIRED),  # in neither span
    ):
        ContractFactory(customer=who, start_date=start, end_date="2027-12-31", amount=amount, status=status)

    for assignee, due, done in (
        (sales_rep, at(2026, 11, 20, 9), False),  # overdue
        (sales_rep, at(2026, 11, 30, 9), False),
        (sales_rep, at(2026, 11, 1, 9), True),
        (other_sales_rep, at(2026, 11, 1, 9), False),  # overdue
    ):
        Task.objects.create(title="回访", assignee=assignee, due_at=due, done=done, customer=a)

    category, _ = TicketCategory.objects.get_or_create(name="产品质量", defaults={"sort_order": 0})

    def ticket(who, created, status=S.NEW, **fields):
        return Ticket.objects.create(
            customer=who,
            category=category,
            subject="工单",
            description="工单",
            status=status,
            created_at=created,
            **fields,
        )

    ticket(a, at(2026, 11, 1, 0, 30), sla_due_at=at(2026, 11, 2, 0, 30))  # open, past due
    ticket(b, at(2026, 11, 20, 9), S.IN_PROGRESS, sla_due_at=at(2026, 11, 30, 9))  # open, within the SLA
    ticket(
        c,
        at(2026, 10, 24, 23, 30),
        S.RESOLVED,
        resolved_at=at(2026, 10, 24, 23, 40),
        rating=4,
        rated_at=at(2026, 10, 24, 23, 45),
    )
    ticket(g, at(2026, 11, 5, 9), S.ASSIGNED, sla_due_at=at(2026, 11, 6, 9))  # open, past due
    ticket(a, at(2026, 10, 1, 10), S.CLOSED, resolved_at=at(2026, 10, 2), rating=5, rated_at=at(2026, 11, 3, 10))
    ticket(h, at(2026, 11, 12, 9), S.RESOLVED, resolved_at=at(2026, 11, 13), rating=2, rated_at=at(2026, 11, 13, 9))
    ticket(d, at(2026, 10, 25, 1), S.NEW)  # open, no due time, filed in neither span
    # In the recycle bin: its contract, sale and open ticket count for no one.
    gone = customer(sales_rep, at(2026, 11, 3, 9, 0), C.WON, "已删客户")
    Transaction.objects.create(
        customer=gone, date=D(2026, 11, 3), amount=Decimal("777.00"), product="套餐", rep=sales_rep
    )
    ContractFactory(customer=gone, start_date="2026-11-03", end_date="2027-12-31", amount="9999.00")
    ticket(gone, at(2026, 11, 3, 10), sla_due_at=at(2026, 11, 4, 10))
    Customer.all_objects.filter(pk=gone.pk).update(deleted_at=NOW)
    facts_refresh()


@pytest.fixture(autouse=True)
def _english(settings):
    """Figures are looked up by their English labels, on pages and in direct calls alike."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def figures(board) -> dict[str, tuple]:
    return {str(figure.label): (figure.value, figure.previous) for figure in board.figures}


def board_for(user, period="month", now=NOW):
    return dashboard.key_figures(user, period, now=now)


# --- Spans -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "today", "expected"),
    [
        ("month", D(2026, 11, 24), (D(2026, 11, 1), D(2026, 11, 24), D(2026, 10, 1), D(2026, 10, 24))),
        ("month", D(2026, 3, 31), (D(2026, 3, 1), D(2026, 3, 31), D(2026, 2, 1), D(2026, 2, 28))),
        ("week", D(2026, 11, 24), (D(2026, 11, 23), D(2026, 11, 24), D(2026, 11, 16), D(2026, 11, 17))),
        ("week", D(2026, 11, 23), (D(2026, 11, 23), D(2026, 11, 23), D(2026, 11, 16), D(2026, 11, 16))),
        ("quarter", D(2026, 11, 24), (D(2026, 10, 1), D(2026, 11, 24), D(2026, 7, 1), D(2026, 8, 24))),
        ("quarter", D(2026, 5, 31), (D(2026, 4, 1), D(2026, 5, 31), D(2026, 1, 1), D(2026, 2, 28))),
        # The quarter's last day against the whole quarter before (June 30 → March 31, not 30).
        ("quarter", D(2026, 6, 30), (D(2026, 4, 1), D(2026, 6, 30), D(2026, 1, 1), D(2026, 3, 31))),
        ("month", D(2026, 4, 30), (D(2026, 4, 1), D(2026, 4, 30), D(2026, 3, 1), D(2026, 3, 31))),
        ("year", D(2026, 11, 24), (D(2026, 1, 1), D(2026, 11, 24), D(2025, 1, 1), D(2025, 11, 24))),
        ("year", D(2028, 2, 29), (D(2028, 1, 1), D(2028, 2, 29), D(2027, 1, 1), D(2027, 2, 28))),
        ("month", D(2026, 1, 15), (D(2026, 1, 1), D(2026, 1, 15), D(2025, 12, 1), D(2025, 12, 15))),
    ],
)
def test_it_compares_a_period_to_date_with_the_same_span_before_it(period, today, expected):
    span = dashboard.span_for(period, today)
    assert (span.start, span.end, span.previous_start, span.previous_end) == expected


def test_it_falls_back_to_this_month_for_a_period_it_does_not_know():
    assert dashboard.period_from({"period": "decade"}) == "month"
    assert dashboard.period_from({}) == "month"
    assert dashboard.period_from({"period": "quarter"}) == "quarter"


# --- Figures -----------------------------------------------------------------------------------


def test_it_gives_a_manager_every_figure_of_this_month(data, manager):
    found = figures(board_for(manager))
    assert found["Customers"] == (8, 3)
    assert found["New customers"] == (4, 2)
    assert found["Conversion rate (won ÷ new)"] == (Decimal("0.7500"), Decimal("0.0000"))
    assert found["Net sales"] == (Decimal("3700.50"), Decimal("399.99"))
    # 3,700.50 / 4 orders = 925.125 → 925.13; 399.99 / 2 = 199.995 → 200.00 (half up, to the cent).
    assert found["Average order value"] == (Decimal("925.13"), Decimal("200.00"))
    assert found["Contract value"] == (Decimal("80000.00"), Decimal("8000.00"))
    assert found["Open tasks"] == (3, None)
    assert found["Overdue tasks"] == (2, None)
    assert found["Open tickets"] == (4, None)
    assert found["Open tickets past their SLA"] == (2, None)
    assert found["Tickets filed"] == (4, 2)
    assert [str(value) for value in found["Average satisfaction"]] == ["3.50", "4.00"]


def test_it_limits_a_rep_to_their_customers_and_their_own_tasks(data, sales_rep):
    found = figures(board_for(sales_rep))
    # Not the other rep's customer (g); the customer moved to them (h) with its sale, whoever has the credit.
    assert found["Customers"] == (7, 3)
    assert found["New customers"] == (3, 2)
    assert found["Conversion rate (won ÷ new)"] == (Decimal("0.6667"), Decimal("0.0000"))
    assert found["Net sales"] == (Decimal("1700.50"), Decimal("399.99"))
    assert found["Average order value"] == (Decimal("566.83"), Decimal("200.00"))
    assert found["Contract value"] == (Decimal("50000.00"), Decimal("8000.00"))
    assert found["Open tasks"] == (2, None)
    assert found["Overdue tasks"] == (1, None)
    assert found["Open tickets"] == (3, None)
    assert found["Open tickets past their SLA"] == (1, None)
    assert found["Tickets filed"] == (3, 2)
    assert [str(value) for value in found["Average satisfaction"]] == ["3.50", "4.00"]


def test_it_reads_open_tickets_live_and_the_filed_ones_from_the_facts(data, manager):
    customer = Customer.objects.get(name="海淀科技")
    # Since the refresh: b's ticket was resolved, and a new one filed at 09:00 was due at 09:30.
    Ticket.objects.filter(status=S.IN_PROGRESS).update(status=S.RESOLVED, resolved_at=at(2026, 11, 24, 8))
    Ticket.objects.create(
        customer=customer,
        category=TicketCategory.objects.get(name="产品质量"),
        subject="工单",
        description="工单",
        created_at=at(2026, 11, 24, 9),
        sla_due_at=at(2026, 11, 24, 9, 30),
    )
    found = figures(board_for(manager))
    # Open now: a, g, d and the new one (b's is resolved); past due: a, g and the new one.
    assert found["Open tickets"] == (4, None)
    assert found["Open tickets past their SLA"] == (3, None)
    # Filed: the facts as of the refresh, until the next one.
    assert found["Tickets filed"] == (4, 2)
    facts_refresh()
    assert figures(board_for(manager))["Tickets filed"] == (5, 2)


def test_it_computes_this_week_and_this_quarter(data, manager):
    week = figures(board_for(manager, "week"))
    assert week["New customers"] == (0, 0)
    assert week["Conversion rate (won ÷ new)"] == (None, None)
    assert week["Net sales"] == (Decimal("500.50"), Decimal("0.00"))
    assert week["Average order value"] == (Decimal("500.50"), None)
    assert week["Tickets filed"] == (0, 0)
    quarter = figures(board_for(manager, "quarter"))
    assert quarter["New customers"] == (7, 0)
    assert quarter["Conversion rate (won ÷ new)"] == (Decimal("0.4286"), None)
    assert quarter["Net sales"] == (Decimal("5100.49"), Decimal("0.00"))
    assert quarter["Average order value"] == (Decimal("728.64"), None)


def test_it_shows_an_empty_period_without_dividing_by_zero(data, manager):
    found = figures(board_for(manager, "year", now=at(2030, 3, 1, 9)))
    assert found["Customers"] == (8, 8)
    assert found["New customers"] == (0, 0)
    assert found["Conversion rate (won ÷ new)"] == (None, None)
    assert found["Net sales"] == (Decimal("0.00"), Decimal("0.00"))
    assert found["Average order value"] == (None, None)
    assert found["Contract value"] == (Decimal("0.00"), Decimal("0.00"))
    assert found["Average satisfaction"] == (None, None)
    assert all(figure.change is None for figure in board_for(manager, "year", now=at(2030, 3, 1, 9)).figures[1:])


def test_it_puts_the_charts_data_in_tables(data, manager):
    board = board_for(manager)
    assert [chart.key for chart in board.charts] == ["sales", "customers", "tickets"]
    assert [chart.table for chart in board.charts] == ["sales", "customers", "tickets"]
    sales = next(table for table in board.tables if table.key == "sales")
    assert len(sales.rows) == 24
    assert sales.rows[1] == ["2026-11-02", Decimal("1000.00"), "2026-10-02", Decimal("0.00")]
    assert sales.rows[9] == ["2026-11-10", Decimal("0.00"), "2026-10-10", Decimal("300.00")]
    assert sales.rows[19] == ["2026-11-20", Decimal("-200.00"), "2026-10-20", Decimal("0.00")]
    assert sales.rows[23] == ["2026-11-24", Decimal("500.50"), "2026-10-24", Decimal("99.99")]
    customers = next(table for table in board.tables if table.key == "customers")
    # The customer created at 00:30 on November 1st in Shanghai is on November 1st.
    assert customers.rows[0] == ["2026-11-01", 1, "2026-10-01", 0]
    assert customers.rows[23] == ["2026-11-24", 0, "2026-10-24", 1]
    tickets = next(table for table in board.tables if table.key == "tickets")
    assert tickets.rows == [["New", 1, 1], ["Assigned", 0, 1], ["In progress", 1, 0]]
    year = board_for(manager, "year")
    months = next(table for table in year.tables if table.key == "sales")
    assert [row[0] for row in months.rows][:2] == ["2026-01", "2026-02"] and len(months.rows) == 11
    assert months.rows[9] == ["2026-10", Decimal("1399.99"), "2025-10", Decimal("0.00")]


def test_it_puts_tickets_first_for_the_service_desk(data, service_agent):
    board = board_for(service_agent)
    labels = [str(figure.label) for figure in board.figures]
    assert labels[:4] == ["Open tickets", "Open tickets past their SLA", "Tickets filed", "Average satisfaction"]
    assert board.charts[0].key == "tickets"
    found = figures(board)
    # The desk sees every customer's tickets; its tasks are its own (none).
    assert found["Open tickets"] == (4, None) and found["Open tasks"] == (0, None)
    assert found["Customers"] == (8, 3)


# --- The page ----------------------------------------------------------------------------------


def test_it_shows_a_manager_the_figures_the_switch_and_how_fresh_they_are(data, manager, client_for):
    response = client_for(manager).get(URL, {"period": "quarter"})
    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["board"].period == "quarter"
    for testid in ("dashboard-figures", "dashboard-period-week", "dashboard-period-year", "chart-sales", "freshness"):
        assert f'data-testid="{testid}"' in page
    assert 'data-chart="dash-quarter-sales"' in page and 'id="dash-quarter-sales"' in page
    assert 'hx-get="/dashboard/figures/?period=week"' in page and 'href="/?period=week"' in page
    assert "plotly-finance.min.js" in page and "Figures as of" in page
    # The cards that were there before stay.
    assert 'data-testid="heartbeat"' in page


def test_it_swaps_in_the_figures_of_another_period(data, manager, client_for):
    response = client_for(manager).get(FIGURES_URL, {"period": "week"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert figures(response.context["board"])["Net sales"] == (Decimal("500.50"), Decimal("0.00"))
    assert 'data-chart="dash-week-sales"' in page and 'data-testid="chart-sales"' in page
    assert 'aria-current="page"' in page.split('data-testid="dashboard-period-week"')[0].rsplit("<a", 1)[1]
    assert "¥500.50" in page


def test_it_answers_an_unknown_period_with_this_month(data, manager, client_for):
    client = client_for(manager)
    for url in (URL, FIGURES_URL):
        response = client.get(url, {"period": "<script>"})
        assert response.status_code == 200
        assert response.context["board"].period == "month"


def test_it_shows_an_analyst_figures_but_no_customer(data, analyst, client_for):
    response = client_for(analyst).get(URL)
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="dashboard-figures"' in page
    for name in NAMES:
        assert name not in page
    assert "Open tasks" not in [str(figure.label) for figure in response.context["board"].figures]
    partial = client_for(analyst).get(FIGURES_URL, {"period": "year"}).content.decode()
    for name in NAMES:
        assert name not in partial


@pytest.mark.parametrize("role", ["admin", "manager", "sales", "service", "analyst"])
def test_it_shows_every_role_with_reports_its_figures(cast, client_for, role):
    response = client_for(cast[role]).get(URL)
    assert response.status_code == 200
    assert 'data-testid="dashboard-figures"' in response.content.decode()
    assert client_for(cast[role]).get(FIGURES_URL).status_code == 200


def test_it_shows_no_figures_to_staff_without_reports(client_for):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    user = UserFactory(username="t_reception")
    user.user_permissions.add(Permission.objects.get(codename="access_staff_ui"))
    client = client_for(user)
    response = client.get(URL)
    assert response.status_code == 200 and 'data-testid="dashboard-figures"' not in response.content.decode()
    assert "plotly" not in response.content.decode()
    assert client.get(FIGURES_URL).status_code == 403


def test_it_refuses_the_roleless_and_sends_the_anonymous_to_log_in(roleless_user, client_for, client):
    assert client_for(roleless_user).get(URL).status_code == 403
    assert client_for(roleless_user).get(FIGURES_URL).status_code == 403
    for url in (URL, FIGURES_URL):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_answers_a_post_with_405(manager, client_for):
    client = client_for(manager)
    assert client.post(URL).status_code == 405
    assert client.post(FIGURES_URL, {"period": "week"}).status_code == 405


def test_it_names_the_partials_url():
    assert reverse("reports:dashboard_figures") == FIGURES_URL


def test_it_renders_the_dashboard_in_a_few_queries(data, manager, sales_rep, client_for, django_assert_max_num_queries):
    for user in (manager, sales_rep):
        client = client_for(user)
        with django_assert_max_num_queries(25):
            assert client.get(URL).status_code == 200
        with django_assert_max_num_queries(16):
            assert client.get(FIGURES_URL, {"period": "year"}).status_code == 200
