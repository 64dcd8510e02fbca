"""Reports in a browser: plotly draws under the Content-Security-Policy, a filter redraws a chart,
and the dashboard's period switch updates its charts in place."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from customers.models import Transaction
from reports.charts import bar
from reports.facts import facts_refresh
from reports.periods import today
from reports.registry import REPORTS, Chart, Report, ReportResult, Table
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


class _Periods(Report):
    """One bar per period of the chosen range: the chart's shape follows the period filter."""

    key = "browser_probe"
    title = "Browser probe"

    def compute(self, filters):
        labels = [str(start) for start in filters.buckets()]
        table = Table("p", "Periods", ["Period", "Count"], [[label, 1] for label in labels])
        return ReportResult(
            charts=[Chart("p", "Periods", bar(labels, [("Count", [1] * len(labels))]), table="p")], tables=[table]
        )


@pytest.fixture
def probe():
    REPORTS[_Periods.key] = _Periods
    yield
    REPORTS.pop(_Periods.key, None)


def _bars(page, key: str) -> int:
    return page.evaluate(f"document.querySelector('[data-testid=chart-{key}]').data[0].x.length")


def test_a_chart_is_drawn_under_the_csp_and_follows_the_period_filter(page, manager, probe):
    log_in(page, manager)
    page.goto("/reports/browser_probe/?start=2026-01-01&end=2026-12-31&period=month")
    page.locator("[data-testid=chart-p][data-drawn]").wait_for()
    assert _bars(page, "p") == 12
    page.select_option("#id_period", "quarter")
    page.locator("[data-testid=report-filters] button[type=submit]").click()
    page.wait_for_url("**period=quarter**")
    page.locator("[data-testid=chart-p][data-drawn]").wait_for()
    assert _bars(page, "p") == 4
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e]


def test_a_manager_switches_the_dashboard_period_and_the_chart_follows(page, manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    Transaction.objects.create(customer=customer, date=today(), amount=Decimal("1280.00"), product="x", rep=sales_rep)
    Transaction.objects.create(
        customer=customer, date=today() - datetime.timedelta(days=40), amount=Decimal("300.00"), product="x"
    )
    facts_refresh()
    log_in(page, manager)
    page.goto("/")
    page.locator("[data-testid=chart-sales][data-drawn=dash-month-sales]").wait_for()
    month_points = _bars(page, "sales")
    page.get_by_test_id("dashboard-period-year").click()
    # The figures are swapped in place (htmx) and the chart drawn again with the year's months.
    page.locator("[data-testid=chart-sales][data-drawn=dash-year-sales]").wait_for()
    page.wait_for_url("**period=year**")
    year_points = _bars(page, "sales")
    # The year so far, month by month, where this month showed its days.
    assert year_points == today().month
    assert month_points == today().day
    assert page.get_by_test_id("dashboard-range").get_attribute("data-period") == "year"
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e]
