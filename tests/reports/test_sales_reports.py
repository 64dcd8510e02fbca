"""The sales report (reports/library/sales.py). Every expected number below is worked out by hand
from the data set of the ``sales_data`` fixture, written down in its docstring.

The range under test is 2026-02-01 … 2026-05-31 by month (May is an empty month); the previous range
of the same length (120 days) is 2025-10-04 … 2026-01-31.
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from accounts import roles
from accounts.models import Employee
from cims.models import PersonalDataAccess
from customers.models import CustomerLevel, CustomerSource, Transaction
from followups.models import Opportunity
from reports.facts import facts_refresh
from reports.filters import ReportFilterForm
from reports.library.sales import SalesReport, average
from reports.sources import uses_rollup
from tests.customers.factories import CustomerFactory
from tests.factories import DepartmentFactory, UserFactory

SH = ZoneInfo("Asia/Shanghai")
D = datetime.date
URL = reverse("reports:report", args=["sales"])
RANGE = {"start": "2026-02-01", "end": "2026-05-31", "period": "month"}
Stage = Opportunity.Stage


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


def M(value: str) -> Decimal:
    return Decimal(value)


@pytest.fixture
def lookups(db):
    return {
        "source": CustomerSource.objects.get_or_create(name="转介绍")[0],
        "level": CustomerLevel.objects.get_or_create(name="重点")[0],
    }


@pytest.fixture
def sales_data(lookups, sales_rep, other_sales_rep):
    """Customers (all of source 转介绍 and level 重点):

    - c1, owned by sales_rep throughout;
    - c2, sold by sales_rep on 2026-02-15, then moved to other_sales_rep (who sold on 04-10);
    - c3, owned by other_sales_rep; c4, owned by no one; gone, in the recycle bin.

    Transactions (date, amount, credited rep):
      c1: 2025-10-03 700.00 (before both ranges), 2025-10-04 300.00 and 2026-01-31 500.00 (previous
          range), 02-01 1000.00, 02-28 250.50, 03-01 -200.00 (refund), 04-30 300.00, 06-01 999.00 (after)
      c2: 02-15 800.00 sales_rep; 04-10 400.00 other_sales_rep
      c3: 2026-01-10 -50.00 (previous range, refund), 04-05 1200.00, 04-06 -100.00 (refund)
      c4: 02-20 50.00 no rep
      gone: 02-10 9999.00 sales_rep (never counted)

    Opportunities (closed_at in Asia/Shanghai; amounts, probability %):
      won:  O1 c1 sales_rep 10000.00 at 01-31 23:30 (previous range)
            O2 c1 sales_rep 20000.00 at 02-01 00:30 (= 01-31 16:30 UTC: February)
            O3 c3 other 5000.00 at 02-28 23:30 (February)
            O4 c3 other 7000.00 at 03-01 00:30 (= 02-28 16:30 UTC: March)
            O15 gone sales_rep 99999.00 at 02-10 (recycle bin: never counted)
      lost: O9 c1 sales_rep 600.00 at 01-15 "价格太高" (previous range)
            O5 c1 sales_rep 3000.00 at 03-10 "价格太高"; O6 c3 other 4000.00 at 04-01 00:30 "价格太高"
            O7 c3 other 1000.00 at 05-31 23:30 (no reason); O8 c1 sales_rep 2000.00 at 06-01 00:30
            (= 05-31 16:30 UTC: after the range) "选择了竞品"
      open: O10 c1 sales_rep initial 1000.00 10% expected 03-15
            O11 c1 sales_rep proposal 3333.33 50% expected 05-31
            O12 c3 other proposal 2000.00 35% expected 06-01 (after the range)
            O13 c3 other negotiation 8000.00 75% no expected date
            O14 c2 sales_rep needs 500.00 30% expected 02-10 (c2 is other_sales_rep's customer now)
    """
    dims = {"source": lookups["source"], "level": lookups["level"]}
    c1 = CustomerFactory(name="保密客户甲", mobile="+8613900001111", owner=sales_rep, **dims)
    c2 = CustomerFactory(name="保密客户乙", owner=sales_rep, **dims)
    c3 = CustomerFactory(name="保密客户丙", owner=other_sales_rep, **dims)
    c4 = CustomerFactory(name="保密客户丁", owner=None, **dims)
    gone = CustomerFactory(name="保密客户戊", owner=sales_rep, **dims)
    sales = [
        (c1, D(2025, 10, 3), "700.00", sales_rep),
        (c1, D(2025, 10, 4), "300.00", sales_rep),
        (c1, D(2026, 1, 31), "500.00", sales_rep),
        (c1, D(2026, 2, 1), "1000.00", sales_rep),
        (c1, D(2026, 2, 28), "250.50", sales_rep),
        (c1, D(2026, 3, 1), "-200.00", sales_rep),
        (c1, D(2026, 4, 30), "300.00", sales_rep),
        (c1, D(2026, 6, 1), "999.00", sales_rep),
        (c2, D(2026, 2, 15), "800.00", sales_rep),
        (c3, D(2026, 1, 10), "-50.00", other_sales_rep),
        (c3, D(2026, 4, 5), "1200.00", other_sales_rep),
        (c3, D(2026, 4, 6), "-100.00", other_sales_rep),
        (c4, D(2026, 2, 20), "50.00", None),
        (gone, D(2026, 2, 10), "9999.00", sales_rep),
    ]
    for customer, day, amount, rep in sales:
        Transaction.objects.create(customer=customer, date=day, amount=M(amount), product="x", rep=rep)
    # c2 moves to other_sales_rep after sales_rep's sale; the later sale is credited to the new owner.
    c2.owner = other_sales_rep
    c2.save()
    Transaction.objects.create(customer=c2, date=D(2026, 4, 10), amount=M("400.00"), product="x", rep=other_sales_rep)
    gone.deleted_at = at(2026, 3, 1, 9)
    gone.save()

    def opportunity(customer, owner, stage, amount, **extra):
        return Opportunity.objects.create(
            customer=customer, owner=owner, stage=stage, amount=M(amount), title="商机", **extra
        )

    won = {"stage": Stage.WON, "probability": 100}
    opportunity(c1, sales_rep, amount="10000.00", closed_at=at(2026, 1, 31, 23, 30), **won)
    opportunity(c1, sales_rep, amount="20000.00", closed_at=at(2026, 2, 1, 0, 30), **won)
    opportunity(c3, other_sales_rep, amount="5000.00", closed_at=at(2026, 2, 28, 23, 30), **won)
    opportunity(c3, other_sales_rep, amount="7000.00", closed_at=at(2026, 3, 1, 0, 30), **won)
    opportunity(gone, sales_rep, amount="99999.00", closed_at=at(2026, 2, 10, 12), **won)
    lost = {"stage": Stage.LOST, "probability": 0}
    opportunity(c1, sales_rep, amount="600.00", closed_at=at(2026, 1, 15, 12), lost_reason="价格太高", **lost)
    opportunity(c1, sales_rep, amount="3000.00", closed_at=at(2026, 3, 10, 12), lost_reason="价格太高", **lost)
    opportunity(c3, other_sales_rep, amount="4000.00", closed_at=at(2026, 4, 1, 0, 30), lost_reason="价格太高", **lost)
    opportunity(c3, other_sales_rep, amount="1000.00", closed_at=at(2026, 5, 31, 23, 30), **lost)
    opportunity(c1, sales_rep, amount="2000.00", closed_at=at(2026, 6, 1, 0, 30), lost_reason="选择了竞品", **lost)
    opportunity(c1, sales_rep, Stage.INITIAL, "1000.00", probability=10, expected_close_date=D(2026, 3, 15))
    opportunity(c1, sales_rep, Stage.PROPOSAL, "3333.33", probability=50, expected_close_date=D(2026, 5, 31))
    opportunity(c3, other_sales_rep, Stage.PROPOSAL, "2000.00", probability=35, expected_close_date=D(2026, 6, 1))
    opportunity(c3, other_sales_rep, Stage.NEGOTIATION, "8000.00", probability=75)
    opportunity(c2, sales_rep, Stage.NEEDS, "500.00", probability=30, expected_close_date=D(2026, 2, 10))
    facts_refresh()
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "gone": gone, **dims}


def fetch(client, **params):
    # In English: the expected labels below are the source strings, whatever the translations say.
    response = client.get(URL, {**RANGE, **params}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["form"].is_valid(), response.context["form"].errors
    return response.context["result"]


def rows(result, key: str) -> list[list]:
    return result.table(key).rows


def figures(result) -> dict[str, tuple]:
    with translation.override("en"):
        return {str(figure.label): (figure.value, figure.previous) for figure in result.figures}


def compute(user, **params):
    form = ReportFilterForm({**RANGE, **params}, user=user)
    assert form.is_valid(), form.errors
    return SalesReport().compute(form.filters())


# --- Transactions --------------------------------------------------------------------------------


def test_it_sums_sales_per_month_with_refunds_and_an_empty_month(sales_data, client_for, manager):
    result = fetch(client_for(manager))
    # Period, net sales, orders, 客单价, refunds, refunded. February: 1000 + 250.50 + 800 + 50 over
    # 4 orders = 525.125, rounded half up; March holds only a refund; May is empty.
    assert rows(result, "by_period") == [
        ["2026-02", M("2100.50"), 4, M("525.13"), 0, M("0.00")],
        ["2026-03", M("-200.00"), 0, None, 1, M("200.00")],
        ["2026-04", M("1800.00"), 3, M("600.00"), 1, M("100.00")],
        ["2026-05", M("0.00"), 0, None, 0, M("0.00")],
    ]
    found = figures(result)
    assert found["Net sales"] == (M("3700.50"), M("750.00"))
    assert found["Orders"] == (7, 2)
    # 3700.50 / 7 = 528.6428…; previous 750 / 2.
    assert found["Average order value"] == (M("528.64"), M("375.00"))
    assert found["Refunds"] == (2, 1)
    refunds = next(f for f in result.figures if f.value == 2 and f.lower_is_better)
    assert "300.00" in str(refunds.note)
    net = result.figures[0]
    assert net.change == M("3.9340")  # (3700.50 - 750) / 750


def test_it_ranks_reps_by_the_rep_credited_on_each_transaction(sales_data, client_for, manager):
    result = fetch(client_for(manager))
    # Rank, rep, net, share, orders, 客单价, refunds, refunded, won, won amount. c2's February sale
    # stays with sales_rep although c2 is other_sales_rep's now.
    assert rows(result, "by_rep") == [
        [1, "李销售", M("2150.50"), M("0.5811"), 4, M("537.63"), 1, M("200.00"), 1, M("20000.00")],
        [2, "王销售", M("1500.00"), M("0.4054"), 2, M("750.00"), 1, M("100.00"), 2, M("12000.00")],
        [None, "Unassigned", M("50.00"), M("0.0135"), 1, M("50.00"), 0, M("0.00"), 0, M("0.00")],
    ]
    chart = next(chart for chart in result.charts if chart.key == "rep_ranking")
    assert chart.figure["data"][0]["y"] == ["李销售", "王销售"]
    assert chart.figure["data"][0]["x"] == [2150.50, 1500.00]


def test_it_covers_a_reps_customers_as_they_are_now(sales_data, client_for, sales_rep, other_sales_rep):
    """A rep's report covers the customers they own (or that are shared with them) now: sales_rep
    no longer sees c2's February sale, other_sales_rep does — still credited to sales_rep."""
    mine = fetch(client_for(sales_rep))
    assert rows(mine, "by_period") == [
        ["2026-02", M("1250.50"), 2, M("625.25"), 0, M("0.00")],
        ["2026-03", M("-200.00"), 0, None, 1, M("200.00")],
        ["2026-04", M("300.00"), 1, M("300.00"), 0, M("0.00")],
        ["2026-05", M("0.00"), 0, None, 0, M("0.00")],
    ]
    assert figures(mine)["Net sales"] == (M("1350.50"), M("800.00"))
    assert figures(mine)["Average order value"][0] == M("450.17")  # 1350.50 / 3
    assert rows(mine, "by_rep") == [
        [1, "李销售", M("1350.50"), M("1.0000"), 3, M("450.17"), 1, M("200.00"), 1, M("20000.00")],
    ]
    theirs = fetch(client_for(other_sales_rep))
    assert [row[:3] for row in rows(theirs, "by_period")] == [
        ["2026-02", M("800.00"), 1],
        ["2026-03", M("0.00"), 0],
        ["2026-04", M("1500.00"), 2],
        ["2026-05", M("0.00"), 0],
    ]
    assert figures(theirs)["Net sales"] == (M("2300.00"), M("-50.00"))
    # 2300 / 3 = 766.666…; the previous range had a refund and no order.
    assert figures(theirs)["Average order value"] == (M("766.67"), None)
    assert rows(theirs, "by_rep") == [
        [1, "王销售", M("1500.00"), M("0.6522"), 2, M("750.00"), 1, M("100.00"), 2, M("12000.00")],
        [2, "李销售", M("800.00"), M("0.3478"), 1, M("800.00"), 0, M("0.00"), 0, M("0.00")],
    ]
    with translation.override("en"):
        assert any("customers you may see now" in str(note) for note in theirs.notes)


def test_it_lets_a_manager_filter_by_rep_and_department(sales_data, client_for, manager, other_sales_rep):
    result = fetch(client_for(manager), rep=other_sales_rep.pk)
    assert figures(result)["Net sales"] == (M("1500.00"), M("-50.00"))
    assert figures(result)["Won opportunities"] == (2, 0)
    assert [row[1] for row in rows(result, "by_rep")] == ["王销售"]
    # Pipeline of other_sales_rep's own opportunities: O12 and O13.
    assert rows(result, "pipeline")[2:] == [
        ["Proposal and quote", 1, M("2000.00"), M("700.00")],
        ["Negotiation", 1, M("8000.00"), M("6000.00")],
    ]


def test_it_filters_by_department_through_the_credited_rep(lookups, client_for, manager, sales_rep, other_sales_rep):
    east = DepartmentFactory(name="华东")
    Employee.objects.create(name="王销售", department=east, user=other_sales_rep)
    Employee.objects.create(name="李销售", department=DepartmentFactory(name="华北"), user=sales_rep)
    customer = CustomerFactory(owner=other_sales_rep)
    Transaction.objects.create(customer=customer, date=D(2026, 3, 5), amount=M("880.00"), product="x", rep=sales_rep)
    Transaction.objects.create(
        customer=customer, date=D(2026, 3, 6), amount=M("120.00"), product="x", rep=other_sales_rep
    )
    Opportunity.objects.create(
        customer=customer,
        owner=other_sales_rep,
        stage=Stage.WON,
        amount=M("60.00"),
        title="x",
        closed_at=at(2026, 3, 7),
    )
    facts_refresh()
    result = fetch(client_for(manager), department=east.pk)
    assert figures(result)["Net sales"][0] == M("120.00")
    assert figures(result)["Won amount"][0] == M("60.00")


def test_it_gives_the_same_numbers_from_rollups_and_facts(sales_data, manager):
    plain = compute(manager)
    one_dim = compute(manager, source=sales_data["source"].pk)
    two_dims = compute(manager, source=sales_data["source"].pk, level=sales_data["level"].pk)
    form = ReportFilterForm({**RANGE, "source": sales_data["source"].pk, "level": sales_data["level"].pk}, user=manager)
    form.is_valid()
    assert uses_rollup(compute_filters(manager)) and not uses_rollup(form.filters())
    for other in (one_dim, two_dims):
        assert [table.rows for table in other.tables] == [table.rows for table in plain.tables]
        assert [(f.value, f.previous) for f in other.figures] == [(f.value, f.previous) for f in plain.figures]


def compute_filters(user, **params):
    form = ReportFilterForm({**RANGE, **params}, user=user)
    assert form.is_valid()
    return form.filters()


def test_it_shows_a_service_agent_every_customer(sales_data, client_for, service_agent, manager):
    """The service role holds customers.view_transaction and sees every customer, through the rollups."""
    result = fetch(client_for(service_agent))
    assert uses_rollup(compute_filters(service_agent))
    expected = compute(manager)
    assert [t.rows for t in result.tables if t.key != "lost_reasons"] == [
        t.rows for t in expected.tables if t.key != "lost_reasons"
    ]
    # Lost reasons are free text a rep typed: without view_personal_data only their total.
    [(label, count, amount, share)] = rows(result, "lost_reasons")
    assert (count, amount, share) == (3, M("8000.00"), M("1.0000")) and "价格太高" not in label
    assert figures(result)["Net sales"] == (M("3700.50"), M("750.00"))


def test_it_computes_the_average_order_value_half_up_and_none_without_orders():
    assert average(M("2100.50"), 4) == M("525.13")
    assert average(M("-200.00"), 0) is None
    assert average(M("10.00"), 3) == M("3.33")


# --- Opportunities -------------------------------------------------------------------------------


def test_it_counts_won_and_lost_by_the_shanghai_day_they_closed(sales_data, client_for, manager):
    result = fetch(client_for(manager))
    # Period, won, won amount, lost, lost amount, win rate: O2 (00:30 on 02-01) is February's, O4
    # (00:30 on 03-01) March's, O6 (00:30 on 04-01) April's, O7 (23:30 on 05-31) May's; O8 (00:30
    # on 06-01) is after the range, O1 (23:30 on 01-31) in the previous one.
    assert rows(result, "won_lost") == [
        ["2026-02", 2, M("25000.00"), 0, M("0.00"), M("1.0000")],
        ["2026-03", 1, M("7000.00"), 1, M("3000.00"), M("0.5000")],
        ["2026-04", 0, M("0.00"), 1, M("4000.00"), M("0.0000")],
        ["2026-05", 0, M("0.00"), 1, M("1000.00"), M("0.0000")],
    ]
    found = figures(result)
    assert found["Won opportunities"] == (3, 1)
    assert found["Won amount"] == (M("32000.00"), M("10000.00"))
    assert found["Win rate"] == (M("0.5000"), M("0.5000"))


def test_it_lists_lost_reasons_with_the_blank_ones_together(sales_data, client_for, manager):
    result = fetch(client_for(manager))
    assert rows(result, "lost_reasons") == [
        ["价格太高", 2, M("7000.00"), M("0.6667")],
        ["No reason given", 1, M("1000.00"), M("0.3333")],
    ]
    chart = next(chart for chart in result.charts if chart.key == "lost_reasons")
    assert chart.figure["data"][0]["x"] == [2, 1]


def test_it_hides_the_words_of_lost_reasons_from_an_analyst(sales_data, client_for, analyst):
    url = reverse("reports:report", args=["sales"])
    params = {"start": "2026-02-01", "end": "2026-05-31"}
    assert "价格太高" not in client_for(analyst).get(url, params).content.decode()
    assert "价格太高" not in client_for(analyst).get(url, params | {"format": "csv"}).content.decode("utf-8")


def test_it_weighs_the_open_pipeline_and_the_forecast_by_month(sales_data, client_for, manager):
    result = fetch(client_for(manager))
    # Weighted: 1000 × 10% = 100; 500 × 30% = 150; 3333.33 × 50% + 2000 × 35% = 1666.665 + 700 =
    # 2366.665 → 2366.66 (the board's rounding); 8000 × 75% = 6000. The deleted customer's is out.
    assert rows(result, "pipeline") == [
        ["Initial contact", 1, M("1000.00"), M("100.00")],
        ["Needs confirmed", 1, M("500.00"), M("150.00")],
        ["Proposal and quote", 2, M("5333.33"), M("2366.66")],
        ["Negotiation", 1, M("8000.00"), M("6000.00")],
    ]
    assert figures(result)["Open pipeline"] == (M("14833.33"), None)
    note = next(f.note for f in result.figures if f.value == M("14833.33"))
    assert "8,616.66" in str(note)
    # Expected close within 02-01 … 05-31: O14 (02-10), O10 (03-15), O11 (05-31); not O12 (06-01)
    # nor O13 (no date).
    assert rows(result, "forecast") == [
        ["2026-02", 1, M("500.00"), M("150.00")],
        ["2026-03", 1, M("1000.00"), M("100.00")],
        ["2026-04", 0, M("0.00"), M("0.00")],
        ["2026-05", 1, M("3333.33"), M("1666.66")],
    ]


def test_it_limits_a_reps_opportunities_to_their_customers(sales_data, client_for, sales_rep, other_sales_rep):
    mine = fetch(client_for(sales_rep))
    assert figures(mine)["Won opportunities"] == (1, 1)
    assert figures(mine)["Win rate"] == (M("0.5000"), M("0.5000"))
    assert [row[1:] for row in rows(mine, "pipeline")] == [
        [1, M("1000.00"), M("100.00")],
        [0, M("0.00"), M("0.00")],
        [1, M("3333.33"), M("1666.66")],
        [0, M("0.00"), M("0.00")],
    ]
    # O14 belongs to sales_rep but its customer c2 is other_sales_rep's now: it is theirs to see.
    theirs = fetch(client_for(other_sales_rep))
    assert figures(theirs)["Won opportunities"] == (2, 0)
    assert figures(theirs)["Win rate"] == (M("0.5000"), None)
    assert [row[1:] for row in rows(theirs, "pipeline")] == [
        [0, M("0.00"), M("0.00")],
        [1, M("500.00"), M("150.00")],
        [1, M("2000.00"), M("700.00")],
        [1, M("8000.00"), M("6000.00")],
    ]


# --- The page, its exports and who may open it ----------------------------------------------------


def test_it_renders_the_page_within_its_query_budget(
    sales_data, client_for, manager, sales_rep, django_assert_max_num_queries
):
    for user in (manager, sales_rep):
        client = client_for(user)
        client.get(URL, RANGE)  # warm the session and permission caches the budget does not measure
        with django_assert_max_num_queries(18):
            response = client.get(URL, RANGE)
        assert response.status_code == 200
        assert response.context["result"] is not None


def test_it_shows_analysts_no_personal_field(sales_data, client_for, analyst):
    client = client_for(analyst)
    page = client.get(URL, RANGE).content.decode()
    assert "2,150.50" in page and "李销售" in page
    exports = [client.get(URL, {**RANGE, "format": fmt}) for fmt in ("xlsx", "csv")]
    csv_text = exports[1].content.decode("utf-8-sig")
    workbook = load_workbook(io.BytesIO(exports[0].content))
    cells = " ".join(str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True) for cell in row)
    for text in (page, csv_text, cells):
        for secret in ("保密客户", "13900001111", "1111"):
            assert secret not in text


def test_it_exports_the_figures_to_xlsx_and_csv_and_logs_it(sales_data, client_for, manager):
    client = client_for(manager)
    response = client.get(URL, {**RANGE, "format": "xlsx"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.content))
    sheet = workbook["Sales by rep"]
    assert [cell.value for cell in sheet[1]][:4] == ["Rank", "Sales rep", "Net sales", "Share of net sales"]
    assert [cell.value for cell in sheet[2]][:5] == [1, "李销售", M("2150.50"), pytest.approx(0.5811), 4]
    assert sheet["A4"].value is None and sheet["B4"].value == "Unassigned"
    period = workbook["Sales by period"]
    assert [cell.value for cell in period[3]] == ["2026-03", M("-200.00"), 0, None, 1, M("200.00")]
    assert period["B2"].number_format == "#,##0.00"

    response = client.get(URL, {**RANGE, "format": "csv"}, HTTP_ACCEPT_LANGUAGE="en")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert ["2026-02", "2100.50", "4", "525.13", "0", "0.00"] in lines
    assert ["1", "李销售", "2150.50", "0.5811", "4", "537.63", "1", "200.00", "1", "20000.00"] in lines
    assert ["Negotiation", "1", "8000.00", "6000.00"] in lines
    logged = PersonalDataAccess.objects.filter(action="export", object_type="report", object_id="sales", user=manager)
    assert logged.count() == 2


def test_it_refuses_the_roleless_and_other_methods(client_for, roleless_user, manager, analyst, client):
    assert client_for(roleless_user).get(URL).status_code == 403
    assert client_for(manager).post(URL).status_code == 405
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]
    assert client_for(analyst).get(URL).status_code == 200


def test_it_opens_an_empty_report_for_a_new_database(client_for, manager):
    result = fetch(client_for(manager))
    assert figures(result)["Net sales"] == (M("0.00"), M("0.00"))
    assert figures(result)["Average order value"] == (None, None)
    assert figures(result)["Win rate"] == (None, None)
    assert rows(result, "by_rep") == [] and rows(result, "lost_reasons") == []


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-13-01"},
        {"end": "yesterday"},
        {"start": "2026-05-01", "end": "2026-04-01"},
        {"period": "century"},
        {"rep": "999999"},
        {"rep": "abc"},
        {"department": "x"},
        {"source": "abc"},
        {"province": "99999"},
        {"start": "2000-01-01", "end": "2026-01-01", "period": "day"},
    ],
)
def test_it_answers_bad_filters_with_a_form_error(client_for, manager, params):
    response = client_for(manager).get(URL, params)
    assert response.status_code == 200
    assert response.context["result"] is None and response.context["form"].errors


def test_it_folds_the_rarer_lost_reasons_into_one_row(db, client_for, manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    # Twelve reasons: 原因01 lost twice (100.00 each), the others once (100.00); the two rarest
    # by name (原因11, 原因12) are beyond the ten shown.
    for index in range(1, 13):
        for _repeat in range(2 if index == 1 else 1):
            Opportunity.objects.create(
                customer=customer,
                owner=sales_rep,
                stage=Stage.LOST,
                amount=M("100.00"),
                title="x",
                lost_reason=f"原因{index:02d}",
                closed_at=at(2026, 3, 2, 10),
            )
    found = rows(fetch(client_for(manager)), "lost_reasons")
    assert found[0] == ["原因01", 2, M("200.00"), M("0.1538")]  # 2 of 13
    assert [row[0] for row in found[1:10]] == [f"原因{index:02d}" for index in range(2, 11)]
    assert found[10] == ["Other reasons", 2, M("200.00"), M("0.1538")]
    assert len(found) == 11


def test_it_tells_reps_of_the_same_name_apart(db, client_for, manager, sales_rep):
    namesake = UserFactory(username="t_sales3", name="李销售", role=roles.SALES)
    for rep, amount in ((sales_rep, "300.00"), (namesake, "200.00")):
        customer = CustomerFactory(owner=rep)
        Transaction.objects.create(customer=customer, date=D(2026, 3, 3), amount=M(amount), product="x", rep=rep)
    facts_refresh()
    found = rows(fetch(client_for(manager)), "by_rep")
    assert [row[:3] for row in found] == [[1, "李销售 (t_sales1)", M("300.00")], [2, "李销售 (t_sales3)", M("200.00")]]
