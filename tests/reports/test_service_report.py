"""The service report (服务分析): tickets by period, category, severity and channel, response and
resolution times, the SLA breach rate and satisfaction, each figure worked out by hand from the
tickets below; who may open it and whose tickets it covers.

The range is March 2026 (Asia/Shanghai) by ISO week; the previous range is 2026-01-29…02-28.
2026-03-01 is a Sunday: it is alone in week 2026-W09, and its 00:30 is 2026-02-28 16:30 UTC.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation
from django.utils.functional import Promise

from accounts import roles
from complaints.models import Ticket, TicketCategory
from customers import services as customer_services
from customers.models import Customer
from reports import periods
from reports.facts import facts_refresh
from reports.filters import ReportFilters
from reports.library.service import Hours, ServiceReport
from tests.customers.factories import CustomerFactory
from tests.factories import DepartmentFactory, EmployeeFactory, UserFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
D = datetime.date
S = Ticket.Status
URL = "/reports/service/"
MARCH = {"start": "2026-03-01", "end": "2026-03-31", "period": "week"}


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


def ticket(customer, category, *, created, severity="medium", channel="phone", status=S.NEW, **fields) -> Ticket:
    return Ticket.objects.create(
        customer=customer,
        category=category,
        severity=severity,
        channel=channel,
        status=status,
        subject="测试工单",
        description="测试",
        created_at=created,
        **fields,
    )


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def agent2(db):
    return UserFactory(username="t_service2", name="周客服", role=roles.SERVICE)


@pytest.fixture
def data(sales_rep, other_sales_rep, service_agent, agent2):
    quality, _ = TicketCategory.objects.get_or_create(name="产品质量", defaults={"sort_order": 0})
    attitude, _ = TicketCategory.objects.get_or_create(name="服务态度", defaults={"sort_order": 10})
    mine = CustomerFactory(owner=sales_rep, name="海淀科技")
    theirs = CustomerFactory(owner=other_sales_rep, name="朝阳贸易")
    # Moved from the other rep to ours: its tickets follow the customer to its current owner.
    moved = CustomerFactory(owner=other_sales_rep, name="西城商行")
    moved.owner = sales_rep
    moved.save(update_fields=["owner"])
    shared = CustomerFactory(owner=other_sales_rep, name="东城物流")
    customer_services.customer_share(customer=shared, user=sales_rep, by=other_sales_rep)
    # In the recycle bin: its tickets count for no one.
    gone = CustomerFactory(owner=sales_rep, name="已删客户")
    ticket(
        gone,
        quality,
        created=at(2026, 3, 15, 10, 0),
        sla_due_at=at(2026, 3, 16, 10, 0),
        rating=1,
        rated_at=at(2026, 3, 15, 12),
    )
    Customer.all_objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    later = timezone.now() + datetime.timedelta(days=30)
    tickets = {
        # The first minutes of March in Shanghai, still February 28 in UTC.
        "t1": ticket(
            mine,
            quality,
            created=at(2026, 3, 1, 0, 30),
            severity="high",
            channel="phone",
            status=S.RESOLVED,
            assignee=service_agent,
            first_response_at=at(2026, 3, 1, 2, 0),  # 1.5 h
            resolved_at=at(2026, 3, 1, 20, 30),  # 20 h
            sla_due_at=at(2026, 3, 2, 0, 30),
            rating=5,
            rated_at=at(2026, 3, 3, 10, 0),
        ),
        # Resolved after its due time: breached.
        "t2": ticket(
            mine,
            quality,
            created=at(2026, 3, 2, 9, 0),
            severity="medium",
            channel="email",
            status=S.CLOSED,
            assignee=agent2,
            first_response_at=at(2026, 3, 2, 13, 0),  # 4 h
            resolved_at=at(2026, 3, 6, 9, 0),  # 96 h
            sla_due_at=at(2026, 3, 5, 9, 0),
            rating=2,
            rated_at=at(2026, 3, 7, 9, 0),
        ),
        # The other rep's customer, unresolved and long past due: breached.
        "t3": ticket(
            theirs,
            attitude,
            created=at(2026, 3, 3, 10, 0),
            severity="low",
            channel="portal",
            status=S.IN_PROGRESS,
            assignee=service_agent,
            first_response_at=at(2026, 3, 3, 11, 0),  # 1 h
            sla_due_at=at(2026, 3, 8, 10, 0),
        ),
        # Unresolved, not yet due, never answered.
        "t4": ticket(moved, attitude, created=at(2026, 3, 30, 23, 59), severity="medium", sla_due_at=later),
        # Filed in the last half hour of the range, resolved and rated after it.
        "t5": ticket(
            shared,
            quality,
            created=at(2026, 3, 31, 23, 30),
            severity="critical",
            channel="onsite",
            status=S.RESOLVED,
            assignee=agent2,
            first_response_at=at(2026, 3, 31, 23, 45),  # 0.25 h
            resolved_at=at(2026, 4, 1, 1, 30),  # 2 h
            sla_due_at=at(2026, 4, 1, 3, 30),
            rating=4,
            rated_at=at(2026, 4, 1, 9, 0),
        ),
        # No due time: not in the breach rate.
        "t6": ticket(
            mine,
            attitude,
            created=at(2026, 3, 10, 12, 0),
            severity="low",
            channel="phone",
            status=S.CLOSED,
            assignee=service_agent,
            first_response_at=at(2026, 3, 10, 18, 0),  # 6 h
            resolved_at=at(2026, 3, 12, 12, 0),  # 48 h
            rating=3,
            rated_at=at(2026, 3, 12, 13, 0),
        ),
        # Half an hour before March in Shanghai: the previous range, rated in it too.
        "t7": ticket(
            mine,
            quality,
            created=at(2026, 2, 28, 23, 30),
            severity="high",
            status=S.CLOSED,
            assignee=service_agent,
            first_response_at=at(2026, 3, 1, 1, 30),  # 2 h
            resolved_at=at(2026, 3, 1, 3, 30),  # 4 h
            sla_due_at=at(2026, 3, 1, 23, 30),
            rating=1,
            rated_at=at(2026, 2, 28, 23, 50),
        ),
        # April 1st 00:00 in Shanghai: after the range.
        "t8": ticket(mine, quality, created=at(2026, 4, 1, 0, 0)),
        # Filed in February (previous range, breached), rated in March.
        "t9": ticket(
            theirs,
            quality,
            created=at(2026, 2, 10, 10, 0),
            severity="high",
            status=S.CLOSED,
            assignee=agent2,
            first_response_at=at(2026, 2, 10, 12, 0),  # 2 h
            resolved_at=at(2026, 2, 12, 10, 0),  # 48 h
            sla_due_at=at(2026, 2, 11, 10, 0),
            rating=4,
            rated_at=at(2026, 3, 5, 10, 0),
        ),
    }
    # The report reads the ticket facts (reports.facts); the refresh judges t3 overdue now.
    facts_refresh()
    return tickets


def march(user, **extra) -> ReportFilters:
    return ReportFilters(user=user, start=D(2026, 3, 1), end=D(2026, 3, 31), period=periods.WEEK, **extra)


def figures(result) -> dict:
    return {str(figure.label): (figure.value, figure.previous) for figure in result.figures}


def rows(result, key: str) -> list[list]:
    return [[str(value) if isinstance(value, Promise) else value for value in row] for row in result.table(key).rows]


# --- Figures -----------------------------------------------------------------------------------


def test_it_measures_hours_between_two_datetimes_in_the_database(data):
    found = dict(
        Ticket.objects.filter(pk__in=[data["t1"].pk, data["t2"].pk, data["t4"].pk])
        .annotate(hours=Hours("resolved_at", "created_at"))
        .values_list("pk", "hours")
    )
    assert found[data["t1"].pk] == pytest.approx(20.0, abs=1e-6)
    assert found[data["t2"].pk] == pytest.approx(96.0, abs=1e-6)
    assert found[data["t4"].pk] is None
    response = Ticket.objects.annotate(hours=Hours("first_response_at", "created_at")).get(pk=data["t5"].pk)
    assert response.hours == pytest.approx(0.25, abs=1e-6)


def test_it_computes_every_figure_for_a_manager(data, manager):
    result = ServiceReport().compute(march(manager))
    found = figures(result)
    assert found["Tickets filed"] == (6, 2)
    # 2 of the 5 March tickets with a due time breached (t2 late, t3 open and overdue); February 1 of 2.
    assert found["SLA breach rate"] == (periods.ratio(2, 5), periods.ratio(1, 2))
    # Medians of the range only (no comparison: a second sort of the previous range's tickets).
    assert found["First response, median"] == (1.5, None)
    assert found["Resolution, median"] == (34.0, None)
    # Rated in March: t1 5, t2 2, t6 3, t9 4 (filed in February); t5 was rated in April.
    assert found["Average satisfaction"][0] == periods.ratio(14, 4, digits=2) == periods.ratio(7, 2)
    assert str(found["Average satisfaction"][0]) == "3.50"
    assert str(found["Average satisfaction"][1]) == "1.00"


def test_it_folds_tickets_into_weeks_with_empty_weeks_and_the_midnight_boundary(data, manager):
    result = ServiceReport().compute(march(manager))
    assert rows(result, "periods") == [
        ["2026-W09", 1, 1, 1, 0, periods.ratio(0, 1)],
        ["2026-W10", 2, 1, 2, 2, periods.ratio(1, 1)],
        ["2026-W11", 1, 1, 0, 0, None],
        ["2026-W12", 0, 0, 0, 0, None],
        ["2026-W13", 0, 0, 0, 0, None],
        ["2026-W14", 2, 1, 2, 0, periods.ratio(0, 1)],
    ]
    chart = next(chart for chart in result.charts if chart.key == "periods")
    assert chart.table == "periods"
    assert list(chart.figure["data"][0]["y"]) == [1.0, 2.0, 1.0, 0.0, 0.0, 2.0]


def test_it_breaks_tickets_down_by_category_severity_and_channel(data, manager):
    result = ServiceReport().compute(march(manager))
    q, h = periods.ratio(1, 3), periods.ratio(1, 2)
    assert rows(result, "categories") == [
        ["产品质量", 3, h, 0, 1, q],
        ["服务态度", 3, h, 2, 1, h],
    ]
    sixth, third = periods.ratio(1, 6), periods.ratio(1, 3)
    assert rows(result, "severities") == [
        ["Low", 2, third, 1, periods.ratio(1, 1)],
        ["Medium", 2, third, 1, h],
        ["High", 1, sixth, 0, periods.ratio(0, 1)],
        ["Critical", 1, sixth, 0, periods.ratio(0, 1)],
    ]
    assert rows(result, "channels") == [
        ["Portal", 1, sixth],
        ["Phone", 3, h],
        ["E-mail", 1, sixth],
        ["On site", 1, sixth],
    ]
    assert {chart.key: chart.table for chart in result.charts} == {
        "periods": "periods",
        "categories": "categories",
        "severities": "severities",
        "channels": "channels",
        "times": "times",
        "satisfaction_categories": "satisfaction_categories",
        "satisfaction_agents": "satisfaction_agents",
    }


def test_it_gives_median_and_p90_times_overall_and_by_category(data, manager):
    result = ServiceReport().compute(march(manager))
    # First response: 0.25, 1, 1.5, 4, 6 h (t4 never answered); resolution: 2, 20, 48, 96 h.
    # 产品质量: 1.5, 4, 0.25 / 20, 96, 2; 服务态度: 1, 6 / 48.
    assert rows(result, "times") == [
        ["All categories", 1.5, 5.2, 34.0, 81.6],
        ["产品质量", 1.5, 3.5, 20.0, 80.8],
        ["服务态度", 3.5, 5.5, 48.0, 48.0],
    ]


def test_it_averages_satisfaction_by_category_and_by_agent(data, manager):
    result = ServiceReport().compute(march(manager))
    assert [[row[0], row[1], str(row[2])] for row in rows(result, "satisfaction_categories")] == [
        ["产品质量", 3, "3.67"],
        ["服务态度", 1, "3.00"],
    ]
    assert [[row[0], row[1], str(row[2])] for row in rows(result, "satisfaction_agents")] == [
        ["陈客服", 2, "4.00"],
        ["周客服", 2, "3.00"],
    ]


def test_it_gives_nothing_to_divide_by_in_an_empty_range(data, manager):
    filters = ReportFilters(user=manager, start=D(2025, 6, 1), end=D(2025, 6, 30), period=periods.MONTH)
    result = ServiceReport().compute(filters)
    found = figures(result)
    assert found["Tickets filed"] == (0, 0)
    assert found["SLA breach rate"] == (None, None)
    assert found["First response, median"] == (None, None)
    assert found["Average satisfaction"] == (None, None)
    assert rows(result, "periods") == [["2025-06", 0, 0, 0, 0, None]]
    assert rows(result, "times") == [["All categories", None, None, None, None]]
    assert rows(result, "categories") == [] and rows(result, "satisfaction_agents") == []
    assert [chart.key for chart in result.charts] == ["periods"]


# --- Scope -------------------------------------------------------------------------------------


def test_it_limits_a_rep_to_the_tickets_of_their_customers(data, sales_rep):
    result = ServiceReport().compute(march(sales_rep))
    found = figures(result)
    # Own (t1, t2, t6), moved to them (t4), shared with them (t5); not the other rep's t3.
    assert found["Tickets filed"] == (5, 1)
    assert found["SLA breach rate"] == (periods.ratio(1, 4), periods.ratio(0, 1))
    assert str(found["Average satisfaction"][0]) == "3.33"
    assert [row[:2] for row in rows(result, "categories")] == [["产品质量", 3], ["服务态度", 2]]


def test_it_lets_a_manager_filter_by_the_customers_current_owner(data, manager, sales_rep, other_sales_rep):
    assert figures(ServiceReport().compute(march(manager, rep=sales_rep)))["Tickets filed"] == (4, 1)
    assert figures(ServiceReport().compute(march(manager, rep=other_sales_rep)))["Tickets filed"] == (2, 1)


def test_it_lets_a_manager_filter_by_the_owners_department(data, manager, sales_rep):
    department = DepartmentFactory(name="华北销售部")
    EmployeeFactory(user=sales_rep, department=department, name=sales_rep.name)
    facts_refresh()  # the facts carry the owner's department as of the refresh
    found = figures(ServiceReport().compute(march(manager, department=department)))
    assert found["Tickets filed"] == (4, 1)


def test_it_shows_the_service_desk_every_ticket_of_a_live_customer(data, service_agent):
    found = figures(ServiceReport().compute(march(service_agent)))
    assert found["Tickets filed"] == (6, 2)
    assert str(found["Average satisfaction"][0]) == "3.50"


# --- The page ----------------------------------------------------------------------------------


def test_it_renders_the_report_for_a_manager_with_its_charts(data, manager, client_for):
    response = client_for(manager).get(URL, MARCH, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="chart-periods"' in page and 'data-testid="table-satisfaction_agents"' in page
    assert "周客服" in page


def test_it_shows_an_analyst_aggregates_and_no_customer(data, analyst, client_for):
    client = client_for(analyst)
    page = client.get(URL, MARCH).content.decode()
    export = client.get(URL, {**MARCH, "format": "csv"}).content.decode("utf-8")
    for text in (page, export):
        for name in ("海淀科技", "朝阳贸易", "西城商行", "东城物流", "+86138"):
            assert name not in text
    assert "产品质量" in export


def test_it_exports_the_tables(data, manager, client_for):
    response = client_for(manager).get(URL, {**MARCH, "format": "csv"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    text = response.content.decode("utf-8")
    assert "Satisfaction by agent" in text and "陈客服,2,4.00" in text


@pytest.mark.parametrize("role", ["sales", "service", "admin"])
def test_it_opens_for_the_roles_that_may_see_tickets(cast, client_for, role):
    assert client_for(cast[role]).get(URL).status_code == 200


def test_it_refuses_the_roleless_and_sends_the_anonymous_to_log_in(roleless_user, client_for, client):
    assert client_for(roleless_user).get(URL).status_code == 403
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_answers_a_post_with_405(manager, client_for):
    assert client_for(manager).post(URL).status_code == 405


def test_it_answers_bad_filters_with_a_form_error(manager, client_for):
    response = client_for(manager).get(
        URL, {"start": "2026-13-45", "end": "tomorrow", "period": "hourly", "rep": "x"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert response.context["result"] is None and response.context["form"].errors


def test_it_reads_a_few_queries_whatever_the_range(data, manager, client_for, django_assert_max_num_queries):
    client = client_for(manager)
    with django_assert_max_num_queries(20):
        assert client.get(URL, MARCH).status_code == 200
