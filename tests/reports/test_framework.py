"""The reports' shared machinery: periods, the summary tables' refresh, rollups versus facts, the
filter form, the report page and its exports, and the index. Every expected number is worked out
by hand from the data each test builds."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from accounts.models import Department, Employee
from cims.models import PersonalDataAccess
from complaints.models import Ticket, TicketCategory
from customers.models import CustomerLevel, CustomerSource, StatusChange, Transaction
from reports import periods
from reports.facts import facts_refresh, freshness
from reports.filters import ReportFilterForm, default_filters
from reports.models import CustomerDaily, CustomerFact, SalesDaily, SalesFact, SummaryState, TicketFact
from reports.registry import MONEY, NUMBER, REPORTS, TEXT, Chart, Figure, Report, ReportResult, Table, display
from reports.sources import customer_source, money, sales_source, uses_rollup
from reports.sql import percentiles
from tests.customers.factories import CustomerFactory

SH = ZoneInfo("Asia/Shanghai")
D = datetime.date


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


# --- Periods -----------------------------------------------------------------------------------


def test_it_names_iso_weeks_quarters_and_years():
    # 2027-01-01 is a Friday: it belongs to ISO week 53 of 2026, which starts on Monday 2026-12-28.
    assert periods.bucket_start(D(2027, 1, 1), periods.WEEK) == D(2026, 12, 28)
    assert periods.label(D(2026, 12, 28), periods.WEEK) == "2026-W53"
    assert periods.label(periods.bucket_start(D(2026, 1, 1), periods.WEEK), periods.WEEK) == "2026-W01"
    assert periods.bucket_start(D(2026, 8, 15), periods.QUARTER) == D(2026, 7, 1)
    assert periods.label(D(2026, 7, 1), periods.QUARTER) == "2026 Q3"
    assert periods.label(D(2026, 2, 1), periods.MONTH) == "2026-02"
    assert periods.buckets(D(2026, 11, 15), D(2027, 2, 3), periods.MONTH) == [
        D(2026, 11, 1),
        D(2026, 12, 1),
        D(2027, 1, 1),
        D(2027, 2, 1),
    ]


def test_it_folds_days_into_periods_with_empty_ones_present():
    rows = [(D(2026, 1, 31), 5, Decimal("1.50")), (D(2026, 3, 1), 2, Decimal("-0.50")), (D(2025, 12, 31), 9, 9)]
    folded = periods.fold(rows, D(2026, 1, 1), D(2026, 3, 31), periods.MONTH, width=2)
    assert folded == {D(2026, 1, 1): [5, Decimal("1.50")], D(2026, 2, 1): [0, 0], D(2026, 3, 1): [2, Decimal("-0.50")]}


def test_it_computes_the_previous_range_ratios_and_percentiles():
    assert periods.previous_range(D(2026, 11, 1), D(2026, 11, 24)) == (D(2026, 10, 8), D(2026, 10, 31))
    assert periods.ratio(1, 3) == Decimal("0.3333")
    assert periods.ratio(1, 0) is None
    assert periods.change(150, 100) == Decimal("0.5000")
    assert periods.change(5, 0) is None
    assert periods.median([4, 1, 3, 2]) == 2.5
    assert periods.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert periods.median([]) is None


def test_it_computes_percentiles_in_the_database(db):
    customer = CustomerFactory()
    for amount in ("10.00", "20.00", "30.00", "40.00"):
        Transaction.objects.create(customer=customer, amount=Decimal(amount), product="x", date=D(2026, 5, 1))
    from django.db.models import F

    found = percentiles(Transaction.objects.all(), F("amount"), [50, 90])
    assert found[50] == pytest.approx(25.0) and found[90] == pytest.approx(37.0)
    assert percentiles(Transaction.objects.none(), F("amount"), [50])[50] is None


# --- The summary tables ----------------------------------------------------------------------------


@pytest.fixture
def lookups(db):
    return {
        "web": CustomerSource.objects.get_or_create(name="官网")[0],
        "fair": CustomerSource.objects.get_or_create(name="展会")[0],
        "vip": CustomerLevel.objects.get_or_create(name="VIP")[0],
        "a": CustomerLevel.objects.get_or_create(name="A")[0],
    }


@pytest.fixture
def data(lookups, sales_rep, other_sales_rep):
    """Four customers around the 2026-03-01 midnight (Asia/Shanghai), their status changes and sales."""
    c1 = CustomerFactory(
        owner=sales_rep, source=lookups["web"], level=lookups["vip"], created_at=at(2026, 2, 28, 23, 30)
    )
    c2 = CustomerFactory(owner=sales_rep, source=lookups["web"], level=lookups["a"], created_at=at(2026, 3, 1, 0, 30))
    c3 = CustomerFactory(
        owner=other_sales_rep, source=lookups["fair"], level=lookups["vip"], created_at=at(2026, 3, 2, 9)
    )
    gone = CustomerFactory(owner=sales_rep, source=lookups["fair"], created_at=at(2026, 3, 3, 9))
    gone.deleted_at = at(2026, 3, 4, 9)
    gone.save()
    StatusChange.objects.create(
        customer=c1, from_status="prospect", to_status="intent", changed_at=at(2026, 3, 5, 23, 59)
    )
    StatusChange.objects.create(customer=c1, from_status="intent", to_status="won", changed_at=at(2026, 3, 10, 0, 1))
    StatusChange.objects.create(customer=c3, from_status="prospect", to_status="won", changed_at=at(2026, 3, 20, 12))
    for customer in (c1, c3):
        customer.status = "won"
        customer.save()
    sales = [
        (c1, D(2026, 3, 10), "1000.00", sales_rep),
        (c1, D(2026, 3, 31), "-200.00", sales_rep),  # a refund
        (c2, D(2026, 4, 2), "300.50", sales_rep),
        (c3, D(2026, 3, 21), "5000.00", other_sales_rep),
        (gone, D(2026, 3, 3), "999.00", sales_rep),  # its customer is deleted: never counted
    ]
    for customer, day, amount, rep in sales:
        Transaction.objects.create(customer=customer, date=day, amount=Decimal(amount), product="x", rep=rep)
    return {"c1": c1, "c2": c2, "c3": c3, "gone": gone}


def test_it_builds_the_facts_with_shanghai_dates_and_drops_deleted_customers(data, sales_rep):
    facts_refresh()
    c1 = CustomerFact.objects.get(customer=data["c1"])
    assert (c1.created_on, c1.intent_on, c1.won_on) == (D(2026, 2, 28), D(2026, 3, 5), D(2026, 3, 10))
    c2 = CustomerFact.objects.get(customer=data["c2"])
    assert (c2.created_on, c2.intent_on, c2.won_on) == (D(2026, 3, 1), None, None)
    # Straight to 成交: it passed 意向 on the same day.
    c3 = CustomerFact.objects.get(customer=data["c3"])
    assert (c3.intent_on, c3.won_on) == (D(2026, 3, 20), D(2026, 3, 20))
    assert not CustomerFact.objects.filter(customer=data["gone"]).exists()
    assert SalesFact.objects.count() == 4
    assert SalesFact.objects.get(amount=Decimal("-200.00")).rep == sales_rep
    assert freshness() is not None


def test_it_refreshes_changes_and_removals_again(data, sales_rep, other_sales_rep):
    facts_refresh()
    data["c2"].owner = other_sales_rep
    data["c2"].save()
    Transaction.objects.filter(amount=Decimal("300.50")).delete()
    data["c1"].deleted_at = at(2026, 4, 1, 10)
    data["c1"].save()
    facts_refresh()
    assert CustomerFact.objects.get(customer=data["c2"]).owner == other_sales_rep
    assert set(CustomerFact.objects.values_list("customer_id", flat=True)) == {data["c2"].pk, data["c3"].pk}
    assert list(SalesFact.objects.values_list("amount", flat=True)) == [Decimal("5000.00")]
    assert SalesDaily.objects.filter(dim="").count() == 1
    assert CustomerDaily.objects.filter(dim="", created__gt=0).count() == 2


def test_it_builds_the_ticket_facts_with_hours_shanghai_dates_and_the_breach_at_refresh(
    data, lookups, sales_rep, other_sales_rep
):
    category = TicketCategory.objects.get_or_create(name="产品质量")[0]

    def ticket(customer, created, **fields):
        return Ticket.objects.create(
            customer=customer, category=category, subject="工单", description="工单", created_at=created, **fields
        )

    # Filed at 00:30 on March 1 in Shanghai (February 28 in UTC), resolved after its due time,
    # rated 00:10 on March 3 in Shanghai (March 2 in UTC).
    late = ticket(
        data["c1"],
        at(2026, 3, 1, 0, 30),
        status="closed",
        first_response_at=at(2026, 3, 1, 2, 0),  # 1.5 h
        resolved_at=at(2026, 3, 2, 0, 30),  # 24 h
        sla_due_at=at(2026, 3, 1, 12, 0),
        rating=4,
        rated_at=at(2026, 3, 3, 0, 10),
    )
    # Unresolved and past its due time at the refresh.
    overdue = ticket(data["c3"], at(2026, 3, 2, 9), status="in_progress", sla_due_at=at(2026, 3, 3, 9))
    # Unresolved, due long after the refresh; and one without a due time, filed 23:59 on February 28.
    pending = ticket(data["c3"], at(2026, 3, 2, 10), sla_due_at=at(2099, 1, 1, 9))
    undue = ticket(data["c2"], at(2026, 2, 28, 23, 59))
    ticket(data["gone"], at(2026, 3, 3, 10), sla_due_at=at(2026, 3, 4, 10))  # a deleted customer's
    facts_refresh()

    facts = {fact.ticket_id: fact for fact in TicketFact.objects.all()}
    assert set(facts) == {late.pk, overdue.pk, pending.pk, undue.pk}
    row = facts[late.pk]
    assert (row.created_on, row.rated_on, row.rating, row.status) == (D(2026, 3, 1), D(2026, 3, 3), 4, "closed")
    assert (row.first_response_hours, row.resolve_hours) == (pytest.approx(1.5), pytest.approx(24.0))
    assert (row.due, row.breached) == (True, True)
    assert (row.owner, row.source, row.level, row.category) == (sales_rep, lookups["web"], lookups["vip"], category)
    row = facts[overdue.pk]
    assert (row.first_response_hours, row.resolve_hours, row.due, row.breached) == (None, None, True, True)
    assert (row.owner, row.source, row.rated_on) == (other_sales_rep, lookups["fair"], None)
    assert (facts[pending.pk].due, facts[pending.pk].breached) == (True, False)
    assert (facts[undue.pk].created_on, facts[undue.pk].due, facts[undue.pk].breached) == (D(2026, 2, 28), False, False)
    assert SummaryState.objects.get(name="ticket_facts").rows == 4

    # Resolved in time after all, deleted, and a customer moved to the other rep: the next refresh follows.
    Ticket.objects.filter(pk=overdue.pk).update(status="resolved", resolved_at=at(2026, 3, 3, 8))
    Ticket.objects.filter(pk=undue.pk).delete()
    data["c1"].owner = other_sales_rep
    data["c1"].save()
    facts_refresh()
    facts = {fact.ticket_id: fact for fact in TicketFact.objects.all()}
    assert set(facts) == {late.pk, overdue.pk, pending.pk}
    assert (facts[overdue.pk].resolve_hours, facts[overdue.pk].breached) == (pytest.approx(23.0), False)
    assert facts[late.pk].owner == other_sales_rep
    assert SummaryState.objects.get(name="ticket_facts").rows == 3


def test_it_gives_the_same_numbers_from_the_rollups_and_from_the_facts(data, manager, lookups):
    facts_refresh()
    filters = default_filters(manager)
    filters.start, filters.end = D(2026, 2, 1), D(2026, 4, 30)
    assert uses_rollup(filters)
    rows, measures = sales_source(filters, filters.start, filters.end)
    rollup = rows.aggregate(**measures)
    # Hand sums: 1000 − 200 + 300.50 + 5000 = 6100.50 net; three orders worth 6300.50; one refund of −200.
    assert money(rollup["net_amount"]) == Decimal("6100.50")
    assert (rollup["orders"], money(rollup["order_amount"])) == (3, Decimal("6300.50"))
    assert (rollup["refunds"], money(rollup["refund_amount"])) == (1, Decimal("-200.00"))
    filters.source, filters.level = lookups["web"].pk, lookups["vip"].pk  # two dimensions: the facts
    assert not uses_rollup(filters)
    rows, measures = sales_source(filters, filters.start, filters.end)
    assert money(rows.aggregate(**measures)["net_amount"]) == Decimal("800.00")  # c1 only
    filters.level = None  # one dimension: the rollups again
    rows, measures = sales_source(filters, filters.start, filters.end)
    assert money(rows.aggregate(**measures)["net_amount"]) == Decimal("1100.50")  # c1 and c2

    filters.source = None
    by_day = {}
    for event in ("created", "intent", "won"):
        rows, measures = customer_source(filters, filters.start, filters.end, event)
        by_day[event] = {row["day"]: row["customers"] for row in rows.values("day").annotate(**measures)}
    assert by_day["created"] == {D(2026, 2, 28): 1, D(2026, 3, 1): 1, D(2026, 3, 2): 1}
    assert by_day["intent"] == {D(2026, 3, 5): 1, D(2026, 3, 20): 1}
    assert by_day["won"] == {D(2026, 3, 10): 1, D(2026, 3, 20): 1}
    rows, measures = customer_source(filters, D(2026, 3, 1), D(2026, 3, 31))
    assert rows.aggregate(**measures) == {"customers": 2, "cohort_intent": 1, "cohort_won": 1}


def test_it_limits_a_reps_figures_to_their_customers(data, sales_rep):
    facts_refresh()
    filters = default_filters(sales_rep)
    filters.start, filters.end = D(2026, 2, 1), D(2026, 4, 30)
    assert not uses_rollup(filters)
    rows, measures = sales_source(filters, filters.start, filters.end)
    assert money(rows.aggregate(**measures)["net_amount"]) == Decimal("1100.50")
    rows, measures = customer_source(filters, None, filters.end)
    assert rows.aggregate(**measures)["customers"] == 2


def test_it_filters_by_department_through_the_rep(data, manager, sales_rep):
    north = Department.objects.create(name="华北销售部")
    Employee.objects.create(
        name="销售甲", department=north, position="销售代表", hire_date=D(2025, 1, 1), user=sales_rep
    )
    facts_refresh()
    filters = default_filters(manager)
    filters.start, filters.end, filters.department = D(2026, 2, 1), D(2026, 4, 30), north
    rows, measures = sales_source(filters, filters.start, filters.end)
    assert money(rows.aggregate(**measures)["net_amount"]) == Decimal("1100.50")


# --- The filter form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ({"start": "garbage"}, "Enter a valid date."),
        ({"start": "2026-05-01", "end": "2026-04-01"}, "The start date is after the end date."),
        ({"start": "2020-01-01", "end": "2026-01-01", "period": "day"}, "too many periods"),
        ({"period": "fortnight"}, "Select a valid choice."),
        ({"source": "abc"}, "Select a valid choice."),
    ],
)
def test_it_refuses_bad_filters_with_a_message(manager, data, message):
    with translation.override("en"):
        form = ReportFilterForm(data, user=manager)
        assert not form.is_valid()
        assert message in str(form.errors)


def test_it_defaults_the_range_to_the_period(manager):
    filters = default_filters(manager, period=periods.DAY)
    assert (filters.end - filters.start).days == 29 and filters.end == periods.today()


def test_it_offers_no_rep_filter_to_a_rep_and_ignores_one_sent(sales_rep, other_sales_rep):
    form = ReportFilterForm({"rep": str(other_sales_rep.pk)}, user=sales_rep)
    assert "rep" not in form.fields and "department" not in form.fields
    assert form.is_valid() and form.filters().rep is None


# --- Pages ---------------------------------------------------------------------------------------


class _Probe(Report):
    key = "probe"
    title = "Probe"
    description = "A report for the framework's tests."
    summaries = ("customer_facts",)

    def compute(self, filters):
        rows, measures = sales_source(filters, filters.start, filters.end)
        total = rows.aggregate(**measures)
        table = Table("t", "Net sales", ["Rep", "Net"], [["=cmd()", money(total["net_amount"])]], [TEXT, MONEY])
        return ReportResult(
            figures=[Figure("Net sales", money(total["net_amount"]), MONEY, previous=Decimal("100.00"))],
            charts=[Chart("c", "Net sales", {"data": [], "layout": {}}, table="t")],
            tables=[table],
        )


@pytest.fixture
def probe():
    REPORTS["probe"] = _Probe
    yield _Probe
    REPORTS.pop("probe", None)


def test_it_lists_the_reports_a_role_may_open(client_for, manager, sales_rep, analyst, service_agent, roleless_user):
    url = reverse("reports:index")
    for user in (manager, sales_rep, analyst, service_agent):
        assert client_for(user).get(url).status_code == 200
    assert client_for(roleless_user).get(url).status_code == 403


def test_it_sends_the_anonymous_to_the_login_page(client):
    response = client.get(reverse("reports:report", args=["probe"]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_it_renders_a_report_and_refuses_others(probe, client_for, manager, roleless_user, data):
    facts_refresh()
    url = reverse("reports:report", args=["probe"])
    response = client_for(manager).get(url, {"start": "2026-02-01", "end": "2026-04-30"})
    assert response.status_code == 200
    assert response.context["result"].figures[0].value == Decimal("6100.50")
    assert b'data-chart="chart-c"' in response.content and b'id="chart-c"' in response.content
    assert client_for(roleless_user).get(url).status_code == 403
    assert client_for(manager).post(url).status_code == 405
    assert client_for(manager).get(reverse("reports:report", args=["nope"])).status_code == 404


def test_it_shows_filter_errors_instead_of_figures(probe, client_for, manager):
    response = client_for(manager).get(reverse("reports:report", args=["probe"]), {"start": "2026-13-01"})
    assert response.status_code == 200 and response.context["result"] is None
    assert response.context["form"].errors["start"]


def test_it_exports_xlsx_and_csv_and_logs_both(probe, client_for, manager, data):
    facts_refresh()
    url = reverse("reports:report", args=["probe"])
    response = client_for(manager).get(url, {"start": "2026-02-01", "end": "2026-04-30", "format": "xlsx"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.content))
    sheet = workbook["Net sales"]
    assert [cell.value for cell in sheet[1]] == ["Rep", "Net"]
    # A formula-looking text is made inert; money stays a number.
    assert sheet["A2"].value == "'=cmd()" and sheet["B2"].value == pytest.approx(6100.50)
    response = client_for(manager).get(url, {"start": "2026-02-01", "end": "2026-04-30", "format": "csv"})
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff") and "'=cmd(),6100.50" in text
    logged = PersonalDataAccess.objects.filter(action="export", object_type="report", object_id="probe")
    assert logged.count() == 2 and logged.filter(user=manager).count() == 2


def test_it_refuses_an_unknown_export_format_with_a_message(probe, client_for, manager):
    response = client_for(manager).get(reverse("reports:report", args=["probe"]), {"format": "pdf"}, follow=True)
    assert response.status_code == 200 and not PersonalDataAccess.objects.exists()


def test_it_lets_managers_queue_a_refresh_and_no_one_else(client_for, manager, sales_rep, monkeypatch):
    from reports import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_facts, "delay", lambda: queued.append(1))
    url = reverse("reports:refresh")
    assert client_for(sales_rep).post(url).status_code == 403
    assert client_for(manager).get(url).status_code == 405
    response = client_for(manager).post(url, {"next": "https://evil.example.com/"})
    assert response.status_code == 302 and response["Location"] == reverse("reports:index")
    assert queued == [1]


def test_it_writes_control_characters_and_markup_harmlessly(probe, client_for, manager, data, monkeypatch):
    from reports.charts import bar

    figure = bar(['<a href="https://phish.example">点此</a>'], [("n", [1])])
    assert figure["data"][0]["x"] == ['&lt;a href="https://phish.example"&gt;点此&lt;/a&gt;']
    original = _Probe.compute

    def with_control_characters(self, filters):
        result = original(self, filters)
        result.tables[0].rows[0][0] = "价格\x0b太高"
        return result

    monkeypatch.setattr(_Probe, "compute", with_control_characters)
    response = client_for(manager).get(reverse("reports:report", args=["probe"]), {"format": "xlsx", "x": "\x00"})
    assert response.status_code == 200
    assert load_workbook(io.BytesIO(response.content))["Net sales"]["A2"].value == "价格太高"
    assert PersonalDataAccess.objects.get().detail.startswith("format=xlsx&")


def test_it_lets_only_managers_refresh_and_not_twice_a_minute(client_for, manager, analyst, monkeypatch):
    from reports import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_facts, "delay", lambda: queued.append(1))
    assert client_for(analyst).post(reverse("reports:refresh")).status_code == 403
    facts_refresh()
    client_for(manager).post(reverse("reports:refresh"))
    assert queued == []  # refreshed a moment ago


def test_it_displays_values_the_way_chinese_finance_reads_them():
    assert display(Decimal("1234567.5"), MONEY) == "¥1,234,567.50"
    assert display(Decimal("0.1234"), "percent") == "12.3%"
    assert display(None, MONEY) == "—"
    assert display(12345, NUMBER) == "12,345"
