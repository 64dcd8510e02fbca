"""The campaigns report (reports/library/campaigns.py). Every expected number below is worked out by
hand from the data set of the ``campaign_data`` fixture, written down in its docstring.

The range under test is March 2026 (2026-03-01 … 2026-03-31).
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from cims.models import PersonalDataAccess
from customers.models import CustomerSource, Transaction
from followups.models import Campaign, CampaignMember
from reports.facts import facts_refresh
from tests.customers.factories import CustomerFactory

D = datetime.date
URL = reverse("reports:report", args=["campaigns"])
RANGE = {"start": "2026-03-01", "end": "2026-03-31", "period": "month"}
Member = CampaignMember.Status


def M(value: str) -> Decimal:
    return Decimal(value)


@pytest.fixture
def campaign_data(manager, sales_rep, other_sales_rep):
    """Customers: c1, c2, c5, c7 owned by sales_rep; c3, c4, c6 by other_sales_rep; all of source
    展会 but c6 (官网).

    Campaigns (dates, budget, actual cost) and members (status):
      K1 春季展会 02-20 … 03-05, 10000.00, 12000.00: c1 converted, c2 responded, c3 converted,
         c4 reached, c5 reached, c6 converted
      K2 线上推广 03-31 … 04-30, 3000.00, no actual cost: c1 reached, c3 converted, c7 converted
      K5 空活动 03-10 … 03-12, 500.00, no actual cost: no member
      K3 冬季促销 01-01 … 02-28 (ends before March) and K4 四月研讨会 04-01 … 04-10 (starts after):
         not in the range; c1 converted in K3.

    Transactions (date, amount):
      c1: 02-25 1000.00 (K1), 03-06 500.00 (after K1), 04-15 200.00 (K2, but c1 only reached there)
      c2: 03-01 999.00 (K1, but c2 only responded)
      c3: 02-19 100.00 (before K1), 03-05 2000.00 and 03-05 -300.00 (K1's last day), 04-30 800.00 (K2's last day)
      c7: 03-31 450.00 (K2's first day)
    """
    fair = CustomerSource.objects.get_or_create(name="展会")[0]
    web = CustomerSource.objects.get_or_create(name="官网")[0]
    names = {"c1": sales_rep, "c2": sales_rep, "c3": other_sales_rep, "c4": other_sales_rep}
    names.update({"c5": sales_rep, "c6": other_sales_rep, "c7": sales_rep})
    customers = {
        key: CustomerFactory(
            name=f"活动客户{key}", mobile=f"+861370000{index:04d}", owner=owner, source=web if key == "c6" else fair
        )
        for index, (key, owner) in enumerate(names.items(), start=1)
    }

    def campaign(name, start, end, budget, actual=None, **extra):
        return Campaign.objects.create(
            name=name, start_date=start, end_date=end, budget=M(budget), actual_cost=actual, owner=manager, **extra
        )

    k1 = campaign("春季展会", D(2026, 2, 20), D(2026, 3, 5), "10000.00", M("12000.00"), kind=Campaign.Kind.TRADE_SHOW)
    k2 = campaign("线上推广", D(2026, 3, 31), D(2026, 4, 30), "3000.00", kind=Campaign.Kind.ONLINE)
    k5 = campaign("空活动", D(2026, 3, 10), D(2026, 3, 12), "500.00")
    k3 = campaign("冬季促销", D(2026, 1, 1), D(2026, 2, 28), "800.00")
    campaign("四月研讨会", D(2026, 4, 1), D(2026, 4, 10), "900.00")
    members = [
        (k1, "c1", Member.CONVERTED),
        (k1, "c2", Member.RESPONDED),
        (k1, "c3", Member.CONVERTED),
        (k1, "c4", Member.TARGETED),
        (k1, "c5", Member.TARGETED),
        (k1, "c6", Member.CONVERTED),
        (k2, "c1", Member.TARGETED),
        (k2, "c3", Member.CONVERTED),
        (k2, "c7", Member.CONVERTED),
        (k3, "c1", Member.CONVERTED),
    ]
    for target, key, status in members:
        CampaignMember.objects.create(campaign=target, customer=customers[key], status=status)
    sales = [
        ("c1", D(2026, 2, 25), "1000.00"),
        ("c1", D(2026, 3, 6), "500.00"),
        ("c1", D(2026, 4, 15), "200.00"),
        ("c2", D(2026, 3, 1), "999.00"),
        ("c3", D(2026, 2, 19), "100.00"),
        ("c3", D(2026, 3, 5), "2000.00"),
        ("c3", D(2026, 3, 5), "-300.00"),
        ("c3", D(2026, 4, 30), "800.00"),
        ("c7", D(2026, 3, 31), "450.00"),
    ]
    for key, day, amount in sales:
        customer = customers[key]
        Transaction.objects.create(customer=customer, date=day, amount=M(amount), product="x", rep=customer.owner)
    facts_refresh()
    return {"fair": fair, "k1": k1, "k2": k2, "k5": k5, **customers}


def fetch(client, **params):
    # In English: the expected labels below are the source strings, whatever the translations say.
    response = client.get(URL, {**RANGE, **params}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["form"].is_valid(), response.context["form"].errors
    return response.context["result"]


def counts(result) -> list[list]:
    """Campaign, reached, responded, converted, response rate, conversion rate, budget, actual
    cost, cost per conversion, sales from converted customers."""
    return [[row[0], *row[5:12], row[13], row[14]] for row in result.table("campaigns").rows]


def figures(result) -> dict:
    with translation.override("en"):
        return {str(figure.label): figure.value for figure in result.figures}


def test_it_counts_each_campaign_of_the_range(campaign_data, client_for, manager):
    result = fetch(client_for(manager))
    assert counts(result) == [
        ["春季展会", 6, 4, 3, M("0.6667"), M("0.5000"), M("10000.00"), M("12000.00"), M("4000.00"), M("2700.00")],
        ["空活动", 0, 0, 0, None, None, M("500.00"), None, None, M("0.00")],
        ["线上推广", 3, 2, 2, M("0.6667"), M("0.6667"), M("3000.00"), None, M("1500.00"), M("1250.00")],
    ]
    assert [row[12] for row in result.table("campaigns").rows] == ["Actual cost", "Budget", "Budget"]
    assert result.table("campaigns").rows[0][1:5] == ["Trade show", "Planned", D(2026, 2, 20), D(2026, 3, 5)]
    assert figures(result) == {
        "Campaigns": 3,
        "Reached": 9,
        "Responded": 6,
        "Converted": 5,
        "Response rate": M("0.6667"),
        "Conversion rate": M("0.5556"),  # 5 / 9
        "Cost": M("15500.00"),  # 12000 actual + 500 and 3000 budgets
        "Cost per conversion": M("3100.00"),  # 15500 / 5
        "Sales from converted customers": M("3950.00"),
    }
    chart = result.charts[0]
    assert chart.figure["data"][0]["x"] == ["春季展会", "线上推广", "空活动"]
    assert [trace["y"] for trace in chart.figure["data"]] == [[6, 3, 0], [4, 2, 0], [3, 2, 0]]


def test_it_counts_a_reps_own_customers_and_keeps_the_whole_campaigns_cost_per_conversion(
    campaign_data, client_for, sales_rep
):
    result = fetch(client_for(sales_rep))
    # K1: c1 converted, c2 responded, c5 reached; K2: c1 reached, c7 converted. The cost per
    # conversion is the campaign's (12000 / 3, 3000 / 2), as on the campaign page.
    assert counts(result) == [
        ["春季展会", 3, 2, 1, M("0.6667"), M("0.3333"), M("10000.00"), M("12000.00"), M("4000.00"), M("1000.00")],
        ["空活动", 0, 0, 0, None, None, M("500.00"), None, None, M("0.00")],
        ["线上推广", 2, 1, 1, M("0.5000"), M("0.5000"), M("3000.00"), None, M("1500.00"), M("450.00")],
    ]
    found = figures(result)
    assert (found["Reached"], found["Responded"], found["Converted"]) == (5, 3, 2)
    assert found["Cost per conversion"] == M("3100.00")
    assert found["Sales from converted customers"] == M("1450.00")
    with translation.override("en"):
        assert any("customers you may see" in str(note) for note in result.notes)


def test_it_lets_a_manager_filter_members_by_owner_and_customer_dimension(
    campaign_data, client_for, manager, other_sales_rep
):
    by_rep = fetch(client_for(manager), rep=other_sales_rep.pk)
    # Members whose customers other_sales_rep owns: K1 c3 (converted), c4, c6 (converted); K2 c3.
    assert [row[:4] for row in counts(by_rep)] == [["春季展会", 3, 2, 2], ["空活动", 0, 0, 0], ["线上推广", 1, 1, 1]]
    assert figures(by_rep)["Sales from converted customers"] == M("2500.00")  # 1700 in K1, 800 in K2
    by_source = fetch(client_for(manager), source=campaign_data["fair"].pk)
    # c6 (官网) is left out: K1 counts 5 members, 3 responded, 2 converted.
    assert [row[:4] for row in counts(by_source)] == [["春季展会", 5, 3, 2], ["空活动", 0, 0, 0], ["线上推广", 3, 2, 2]]
    assert counts(by_source)[0][8] == M("4000.00")


def test_it_shows_no_campaign_in_an_empty_range(campaign_data, client_for, manager):
    result = fetch(client_for(manager), start="2025-06-01", end="2025-06-30")
    assert result.table("campaigns").rows == []
    assert figures(result)["Campaigns"] == 0 and figures(result)["Cost per conversion"] is None


def test_it_renders_the_page_within_its_query_budget(
    campaign_data, client_for, manager, sales_rep, django_assert_max_num_queries
):
    for user in (manager, sales_rep):
        client = client_for(user)
        client.get(URL, RANGE)
        with django_assert_max_num_queries(15):
            response = client.get(URL, RANGE)
        assert response.status_code == 200 and response.context["result"] is not None


def test_it_shows_analysts_no_personal_field(campaign_data, client_for, analyst):
    client = client_for(analyst)
    page = client.get(URL, RANGE).content.decode()
    assert "春季展会" in page
    xlsx = client.get(URL, {**RANGE, "format": "xlsx"})
    workbook = load_workbook(io.BytesIO(xlsx.content))
    cells = " ".join(str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True) for cell in row)
    text = client.get(URL, {**RANGE, "format": "csv"}).content.decode("utf-8-sig")
    for found in (page, cells, text):
        assert "活动客户" not in found and "1370000" not in found


def test_it_exports_the_campaigns_to_xlsx_and_csv_and_logs_it(campaign_data, client_for, manager):
    client = client_for(manager)
    response = client.get(URL, {**RANGE, "format": "xlsx"}, HTTP_ACCEPT_LANGUAGE="en")
    sheet = load_workbook(io.BytesIO(response.content))["Campaigns"]
    assert [cell.value for cell in sheet[1]][:6] == ["Campaign", "Type", "Status", "Start date", "End date", "Reached"]
    row = [cell.value for cell in sheet[2]]
    assert row[0] == "春季展会" and row[5:8] == [6, 4, 3] and row[13] == M("4000.00")
    response = client.get(URL, {**RANGE, "format": "csv"}, HTTP_ACCEPT_LANGUAGE="en")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [
        "线上推广",
        "Online promotion",
        "Planned",
        "2026-03-31",
        "2026-04-30",
        "3",
        "2",
        "2",
        "0.6667",
        "0.6667",
        "3000.00",
        "",
        "Budget",
        "1500.00",
        "1250.00",
    ] in lines
    logged = PersonalDataAccess.objects.filter(action="export", object_type="report", object_id="campaigns")
    assert logged.filter(user=manager).count() == 2


def test_it_lets_reps_managers_and_analysts_in_and_no_one_else(
    client_for, client, manager, sales_rep, analyst, service_agent, roleless_user
):
    for user in (manager, sales_rep, analyst):
        assert client_for(user).get(URL).status_code == 200
    # The service role holds neither every report nor the campaigns.
    assert client_for(service_agent).get(URL).status_code == 403
    assert client_for(roleless_user).get(URL).status_code == 403
    assert client_for(manager).post(URL).status_code == 405
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize(
    "params",
    [{"start": "2026-02-30"}, {"start": "2026-04-01", "end": "2026-03-01"}, {"rep": "x"}, {"industry": "0"}],
)
def test_it_answers_bad_filters_with_a_form_error(client_for, manager, params):
    response = client_for(manager).get(URL, params)
    assert response.status_code == 200
    assert response.context["result"] is None and response.context["form"].errors
