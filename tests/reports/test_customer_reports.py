"""The customer report (客户分析) and the conversion funnel (转化漏斗) against a small data set
whose every figure was worked out by hand (see the table in ``dataset``)."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from openpyxl import load_workbook

from cims.models import PersonalDataAccess
from customers.models import Customer, CustomerLevel, CustomerSource, CustomerType, Industry, Province, StatusChange
from customers.services import customer_transfer
from reports.facts import facts_refresh
from reports.library.customers import percentile_of_counts
from tests.customers.factories import CustomerFactory
from tests.factories import DepartmentFactory, EmployeeFactory

SH = ZoneInfo("Asia/Shanghai")
URL = "/reports/customers/"
FUNNEL = "/reports/funnel/"
Q1 = {"start": "2026-01-01", "end": "2026-03-31", "period": "month"}

D = Decimal


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SH)


# The data set. created_on / intent_on / won_on are Asia/Shanghai dates:
#
# name   owner            created      source level type province industry status   intent  won
# 甲一   sales_rep        2025-11-15   官网   A     普通  北京市   制造业   won      11-20   12-01
# 甲二   sales_rep        2026-01-10   官网   A     重点  北京市   信息技术 intent   01-13   -
# 甲三   sales_rep        2026-02-28*  展会   VIP   重点  上海市   信息技术 won      03-01*  03-11
# 甲四   sales_rep        2026-03-01*  官网   A     普通  -        -        prospect -       -
# 甲五   other → rep      2026-03-15   转介绍 B     普通  广东省   -        won, no status change
#                                                                         recorded: 03-15   03-15
# 乙六   other            2026-01-20   展会   VIP   -     上海市   -        intent   01-27   -
# 乙七   other, shared    2026-02-05   展会   A     -     广东省   -        lost     02-10   -
# 乙八   other            2026-03-31*  -      -     -     -        -        prospect -       -
# 乙九   other            2026-04-01*  官网   A     -     -        -        intent   04-02   -
# 乙十一 other            2025-12-31*  官网   A     -     北京市   -        won      01-05   01-20
# 甲十   sales_rep        2026-02-10   官网   A     deleted: never counted
#
# * around midnight: 甲三 created 2026-02-28 23:30 +08:00 and reached intent 2026-03-01 00:30
# +08:00 (the 28th in UTC); 甲四 2026-03-01 00:30 +08:00 (2026-02-28 16:30 UTC); 乙八 2026-03-31
# 23:59 +08:00; 乙九 2026-04-01 00:10 +08:00 (2026-03-31 16:10 UTC); 乙十一 2025-12-31 23:30 +08:00.
# "other → rep": created by other_sales_rep, transferred to sales_rep; "shared": other_sales_rep's,
# shared read-only with sales_rep.
# fmt: off
CUSTOMERS = [
    # name, owner, created, source, level, type, province, industry, status, [(status, changed at)]
    ("甲一", "rep", at(2025, 11, 15, 10), "官网", "A", "普通客户", "北京市", "制造业", "won",
     [("intent", at(2025, 11, 20, 10)), ("won", at(2025, 12, 1, 10))]),
    ("甲二", "rep", at(2026, 1, 10, 9), "官网", "A", "重点客户", "北京市", "信息技术", "intent",
     [("intent", at(2026, 1, 13, 9))]),
    ("甲三", "rep", at(2026, 2, 28, 23, 30), "展会", "VIP", "重点客户", "上海市", "信息技术", "won",
     [("intent", at(2026, 3, 1, 0, 30)), ("won", at(2026, 3, 11, 10))]),
    ("甲四", "rep", at(2026, 3, 1, 0, 30), "官网", "A", "普通客户", None, None, "prospect", []),
    ("甲五", "other", at(2026, 3, 15, 12), "转介绍", "B", "普通客户", "广东省", None, "won", []),
    ("乙六", "other", at(2026, 1, 20, 8), "展会", "VIP", None, "上海市", None, "intent",
     [("intent", at(2026, 1, 27, 8))]),
    ("乙七", "other", at(2026, 2, 5, 10), "展会", "A", None, "广东省", None, "lost",
     [("intent", at(2026, 2, 10, 10)), ("lost", at(2026, 2, 20, 10))]),
    ("乙八", "other", at(2026, 3, 31, 23, 59), None, None, None, None, None, "prospect", []),
    ("乙九", "other", at(2026, 4, 1, 0, 10), "官网", "A", None, None, None, "intent",
     [("intent", at(2026, 4, 2, 10))]),
    ("乙十一", "other", at(2025, 12, 31, 23, 30), "官网", "A", None, "北京市", None, "won",
     [("intent", at(2026, 1, 5, 10)), ("won", at(2026, 1, 20, 10))]),
    ("甲十", "rep", at(2026, 2, 10, 10), "官网", "A", None, None, None, "prospect", []),
]
# fmt: on


def _named(model, name):
    return model.objects.get(name=name) if name else None


@pytest.fixture
def dataset(manager, sales_rep, other_sales_rep, analyst):
    one, two = DepartmentFactory(name="销售一部"), DepartmentFactory(name="销售二部")
    EmployeeFactory(user=sales_rep, department=one)
    EmployeeFactory(user=other_sales_rep, department=two)
    owners = {"rep": sales_rep, "other": other_sales_rep}
    found = {}
    for name, owner, created, source, level, type_, province, industry, status, changes in CUSTOMERS:
        customer = CustomerFactory(
            name=name,
            owner=owners[owner],
            created_at=created,
            status=status,
            source=_named(CustomerSource, source),
            level=_named(CustomerLevel, level),
            customer_type=_named(CustomerType, type_),
            province=_named(Province, province),
            industry=_named(Industry, industry),
        )
        previous = "prospect"
        for to, when in changes:
            StatusChange.objects.create(customer=customer, from_status=previous, to_status=to, changed_at=when)
            previous = to
        found[name] = customer
    Customer.all_objects.filter(pk=found["甲十"].pk).update(deleted_at=timezone.now())
    customer_transfer(customer_ids=[found["甲五"].pk], to=sales_rep, by=manager)
    assign_perm("customers.view_customer", sales_rep, found["乙七"])
    facts_refresh()
    found["departments"] = (one, two)
    return found


def _result(client, url=URL, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    assert response.context["form"].is_valid(), response.context["form"].errors
    return response.context["result"]


def _rows(result, key) -> list:
    return result.table(key).rows


def _counts(result, key) -> dict:
    return {row[0]: row[1] for row in _rows(result, key)}


# --- 客户分析 -------------------------------------------------------------------------------------


def test_it_counts_every_customer_for_a_manager(dataset, manager, client_for):
    result = _result(client_for(manager), **Q1)
    assert [(f.value, f.previous) for f in result.figures] == [(9, 2), (7, 2)]
    assert _rows(result, "growth") == [["2026-01", 2, 4], ["2026-02", 2, 6], ["2026-03", 3, 9]]
    assert _rows(result, "source") == [
        ["官网", 4, D("0.4444")],
        ["展会", 3, D("0.3333")],
        ["转介绍", 1, D("0.1111")],
        ["线下门店", 0, D("0")],
        ["电话营销", 0, D("0")],
        ["合作伙伴", 0, D("0")],
        ["网络推广", 0, D("0")],
        ["其他", 0, D("0")],
        ["未填写", 1, D("0.1111")],
    ]
    assert _rows(result, "level") == [
        ["A", 5, D("0.5556")],
        ["VIP", 2, D("0.2222")],
        ["B", 1, D("0.1111")],
        ["C", 0, D("0")],
        ["未填写", 1, D("0.1111")],
    ]
    assert _counts(result, "customer_type") == {"普通客户": 3, "重点客户": 2, "代理商": 0, "合作伙伴": 0, "未填写": 4}
    provinces = _rows(result, "province")
    assert len(provinces) == 35
    assert provinces[:4] == [
        ["北京市", 3, D("0.3333")],
        ["上海市", 2, D("0.2222")],
        ["广东省", 2, D("0.2222")],
        ["天津市", 0, D("0")],
    ]
    assert provinces[-1] == ["未填写", 2, D("0.2222")]
    assert sum(row[1] for row in provinces) == 9
    industries = _rows(result, "industry")
    assert industries[:2] == [["信息技术", 2, D("0.2222")], ["制造业", 1, D("0.1111")]]
    assert industries[-1] == ["未填写", 6, D("0.6667")]
    assert _counts(result, "status") == {"潜在客户": 2, "意向客户": 2, "成交客户": 4, "售后中": 0, "流失": 1}
    # Each chart draws its table's numbers: growth as bars (new) and a line on the second axis.
    assert {chart.key: chart.table for chart in result.charts} == {
        key: key for key in ("growth", "source", "level", "customer_type", "province", "industry", "status")
    }
    bars, line = result.charts[0].figure["data"]
    # "2026-01" is a period's name, not a date for plotly to place on a calendar axis.
    assert result.charts[0].figure["layout"]["xaxis"]["type"] == "category"
    assert (bars["type"], list(bars["y"])) == ("bar", [2, 2, 3])
    assert (line["yaxis"], list(line["y"])) == ("y2", [4, 6, 9])
    province = next(chart for chart in result.charts if chart.key == "province").figure["data"][0]
    assert (province["orientation"], len(province["y"]), list(province["x"])[:3]) == ("h", 35, [3, 2, 2])


def test_it_counts_only_a_reps_own_and_shared_customers(dataset, sales_rep, client_for):
    result = _result(client_for(sales_rep), **Q1)
    # 乙六 and 乙八 (the other rep's) are out; 乙七 (shared) and 甲五 (moved to the rep) are in.
    assert [(f.value, f.previous) for f in result.figures] == [(6, 1), (5, 1)]
    assert _rows(result, "growth") == [["2026-01", 1, 2], ["2026-02", 2, 4], ["2026-03", 2, 6]]
    assert list(_counts(result, "source").items())[:3] == [("官网", 3), ("展会", 2), ("转介绍", 1)]
    assert _counts(result, "source")["未填写"] == 0
    assert _rows(result, "province")[:3] == [
        ["北京市", 2, D("0.3333")],
        ["广东省", 2, D("0.3333")],
        ["上海市", 1, D("0.1667")],
    ]
    assert _rows(result, "province")[-1] == ["未填写", 1, D("0.1667")]
    assert _counts(result, "status") == {"潜在客户": 1, "意向客户": 1, "成交客户": 3, "售后中": 0, "流失": 1}


def test_it_counts_a_moved_customer_for_its_new_owner_only(dataset, other_sales_rep, client_for):
    result = _result(client_for(other_sales_rep), **Q1)
    # 乙六, 乙七, 乙八, 乙十一 — not 甲五, moved to sales_rep; not 乙九, created after the range.
    assert [(f.value, f.previous) for f in result.figures] == [(4, 1), (3, 1)]
    assert "转介绍" not in {row[0] for row in _rows(result, "source") if row[1]}


def test_it_lets_a_manager_filter_by_rep_and_department(dataset, manager, sales_rep, client_for):
    client = client_for(manager)
    by_rep = _result(client, rep=sales_rep.pk, **Q1)
    # Owned by the rep: 甲一 … 甲五 (a shared customer is not the rep's own).
    assert [(f.value, f.previous) for f in by_rep.figures] == [(5, 1), (4, 1)]
    assert _rows(by_rep, "growth") == [["2026-01", 1, 2], ["2026-02", 1, 3], ["2026-03", 2, 5]]
    _one, two = dataset["departments"]
    by_department = _result(client, department=two.pk, **Q1)
    assert [(f.value, f.previous) for f in by_department.figures] == [(4, 1), (3, 1)]
    assert _counts(by_department, "status") == {"潜在客户": 1, "意向客户": 1, "成交客户": 1, "售后中": 0, "流失": 1}


def test_it_gives_the_same_numbers_from_rollups_and_facts(dataset, manager, sales_rep, client_for):
    client = client_for(manager)
    website = CustomerSource.objects.get(name="官网").pk
    level_a = CustomerLevel.objects.get(name="A").pk
    # Every 官网 customer is level A: one dimension filter (rollups) and two (facts) select the same.
    for url in (URL, FUNNEL):
        rollup = _result(client, url, source=website, **Q1)
        facts = _result(client, url, source=website, level=level_a, **Q1)
        assert [(f.value, f.previous) for f in rollup.figures] == [(f.value, f.previous) for f in facts.figures]
        assert rollup.tables == facts.tables
    rollup = _result(client, URL, source=website, **Q1)
    assert [(f.value, f.previous) for f in rollup.figures] == [(4, 2), (2, 2)]
    assert _rows(rollup, "growth") == [["2026-01", 1, 3], ["2026-02", 0, 3], ["2026-03", 1, 4]]
    assert _counts(rollup, "level")["A"] == 4
    # A rep's facts (their scope) and a manager's rollups filtered by that rep agree where the
    # rep has no shared customer: the 官网 ones.
    rep = _result(client_for(sales_rep), URL, source=website, **Q1)
    managed = _result(client, URL, source=website, rep=sales_rep.pk, **Q1)
    assert (
        [(f.value, f.previous) for f in rep.figures]
        == [(f.value, f.previous) for f in managed.figures]
        == [(3, 1), (2, 1)]
    )
    assert rep.tables == managed.tables
    rep = _result(client_for(sales_rep), FUNNEL, source=website, **Q1)
    managed = _result(client, FUNNEL, source=website, rep=sales_rep.pk, **Q1)
    assert rep.tables == managed.tables


def test_it_splits_days_at_midnight_in_shanghai(dataset, manager, client_for):
    result = _result(client_for(manager), start="2026-02-28", end="2026-03-01", period="day")
    # 甲三 at 23:30 on the 28th, 甲四 at 00:30 on the 1st (still the 28th in UTC).
    assert _rows(result, "growth") == [["2026-02-28", 1, 6], ["2026-03-01", 1, 7]]
    result = _result(client_for(manager), start="2026-03-31", end="2026-03-31", period="day")
    # 乙八 at 23:59 on the 31st counts; 乙九 at 00:10 on April 1st (the 31st in UTC) does not.
    assert [(f.value, f.previous) for f in result.figures] == [(9, 8), (1, 0)]


def test_it_names_iso_weeks_and_shows_empty_ones(dataset, manager, client_for):
    result = _result(client_for(manager), start="2026-02-23", end="2026-03-08", period="week")
    assert _rows(result, "growth") == [["2026-W09", 2, 7], ["2026-W10", 0, 7]]


def test_it_shows_empty_months_and_names_quarters_and_years(dataset, manager, client_for):
    client = client_for(manager)
    result = _result(client, start="2026-01-01", end="2026-06-30", period="month")
    assert _rows(result, "growth")[3:] == [["2026-04", 1, 10], ["2026-05", 0, 10], ["2026-06", 0, 10]]
    result = _result(client, start="2025-10-01", end="2026-03-31", period="quarter")
    assert _rows(result, "growth") == [["2025 Q4", 2, 2], ["2026 Q1", 7, 9]]
    result = _result(client, start="2025-01-01", end="2026-12-31", period="year")
    assert _rows(result, "growth") == [["2025", 2, 2], ["2026", 8, 10]]


def test_it_counts_nothing_in_an_empty_range(dataset, manager, client_for):
    result = _result(client_for(manager), start="2024-01-01", end="2024-03-31", period="month")
    assert [(f.value, f.previous) for f in result.figures] == [(0, 0), (0, 0)]
    assert _rows(result, "growth") == [["2024-01", 0, 0], ["2024-02", 0, 0], ["2024-03", 0, 0]]
    assert _rows(result, "source")[0] == ["官网", 0, None]
    result = _result(client_for(manager), FUNNEL, start="2024-01-01", end="2024-03-31", period="month")
    assert [(f.value, f.previous) for f in result.figures] == [
        (0, 0),
        (0, 0),
        (0, 0),
        (None, None),
        (None, None),
        (None, None),
        (None, None),
        (None, None),
    ]
    assert _rows(result, "by_source") == []


def test_it_keeps_customer_names_off_the_analysts_page_and_exports(dataset, analyst, client_for):
    client = client_for(analyst)
    for url in (URL, FUNNEL):
        response = client.get(url, Q1)
        assert response.status_code == 200
        page = response.content.decode()
        assert "官网" in page
        for name in ("甲一", "甲二", "乙七", "乙十一"):
            assert name not in page
        for fmt in ("csv", "xlsx"):
            content = client.get(url, {**Q1, "format": fmt}).content
            text = content.decode("utf-8-sig") if fmt == "csv" else _xlsx_text(content)
            assert "甲一" not in text and "乙七" not in text


def _xlsx_text(content: bytes) -> str:
    workbook = load_workbook(io.BytesIO(content))
    return " ".join(
        str(cell) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True) for cell in row
    )


# --- 转化漏斗 ---------------------------------------------------------------------------------------


def test_it_converts_the_cohort_for_a_manager(dataset, manager, client_for):
    result = _result(client_for(manager), FUNNEL, **Q1)
    # Cohort: 甲二 甲三 甲四 甲五 乙六 乙七 乙八; reached 意向: 甲二 甲三 甲五 乙六 乙七; 成交: 甲三 甲五.
    # The previous 90 days: 甲一 and 乙十一, both won.
    assert [(f.value, f.previous) for f in result.figures] == [
        (7, 2),
        (5, 2),
        (2, 2),
        (D("0.7143"), D("1")),
        (D("0.4"), D("1")),
        (D("0.2857"), D("1")),
        (3.0, None),
        (5.0, None),
    ]
    assert list(result.charts[0].figure["data"][0]["x"]) == [7, 5, 2]
    assert _rows(result, "funnel") == [
        ["潜在客户", 7, None, D("1")],
        ["意向客户", 5, D("0.7143"), D("0.7143")],
        ["成交客户", 2, D("0.4"), D("0.2857")],
    ]
    assert _rows(result, "by_source") == [
        ["展会", 3, 3, 1, D("1"), D("0.3333"), D("0.3333")],
        ["官网", 2, 1, 0, D("0.5"), D("0"), D("0")],
        ["转介绍", 1, 1, 1, D("1"), D("1"), D("1")],
        ["未填写", 1, 0, 0, D("0"), None, D("0")],
    ]
    assert _rows(result, "periods") == [
        ["2026-01", 2, 2, 0, D("0")],
        ["2026-02", 2, 2, 1, D("0.5")],
        ["2026-03", 3, 1, 1, D("0.3333")],
    ]
    # Days to 意向: 甲五 0, 甲三 1 (across midnight in Shanghai), 甲二 3, 乙七 5, 乙六 7;
    # 意向 to 成交: 甲五 0, 甲三 10.
    assert [row[1:] for row in _rows(result, "stage_days")] == [
        [5, 3.0, pytest.approx(6.2)],
        [2, 5.0, pytest.approx(9.0)],
    ]


def test_it_converts_only_a_reps_cohort(dataset, sales_rep, client_for):
    result = _result(client_for(sales_rep), FUNNEL, **Q1)
    # 甲二 甲三 甲四 甲五 and the shared 乙七; 乙六 and 乙八 are another rep's.
    assert [(f.value, f.previous) for f in result.figures][:6] == [
        (5, 1),
        (4, 1),
        (2, 1),
        (D("0.8"), D("1")),
        (D("0.5"), D("1")),
        (D("0.4"), D("1")),
    ]
    assert _rows(result, "by_source") == [
        ["官网", 2, 1, 0, D("0.5"), D("0"), D("0")],
        ["展会", 2, 2, 1, D("1"), D("0.5"), D("0.5")],
        ["转介绍", 1, 1, 1, D("1"), D("1"), D("1")],
    ]
    # Days to 意向: 0, 1 (甲三, across midnight: 0 if counted in UTC), 3, 5 → median 2, p90 4.4;
    # 意向 to 成交: 0, 10 (11 in UTC) → median 5.
    assert [row[1:] for row in _rows(result, "stage_days")] == [
        [4, 2.0, pytest.approx(4.4)],
        [2, 5.0, pytest.approx(9.0)],
    ]


def test_it_folds_cohorts_into_weeks(dataset, manager, client_for):
    result = _result(client_for(manager), FUNNEL, start="2026-02-23", end="2026-03-08", period="week")
    assert _rows(result, "periods") == [["2026-W09", 2, 1, 1, D("0.5")], ["2026-W10", 0, 0, 0, None]]


def test_it_takes_percentiles_from_counts_of_whole_days():
    # Days 0, 0, 0, 2, 10, 10: the median lies halfway between the 3rd and 4th (0 and 2), the 90th
    # percentile at 4.5 of 5 steps, between two tens.
    counts = {0.0: 3, 2.0: 1, 10.0: 2, None: 4}
    assert (percentile_of_counts(counts, 50), percentile_of_counts(counts, 90)) == (1.0, 10.0)
    assert percentile_of_counts({None: 2}, 50) is None


# --- Exports ---------------------------------------------------------------------------------------


def test_it_exports_the_chart_data_to_xlsx(dataset, manager, client_for):
    response = client_for(manager).get(URL, {**Q1, "format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(response.content))
    # The first sheet holds the filters; then one per table, in the page's order (growth first).
    growth = list(workbook.worksheets[1].iter_rows(values_only=True))
    assert growth[1:] == [("2026-01", 2, 4), ("2026-02", 2, 6), ("2026-03", 3, 9)]
    sources = list(workbook.worksheets[2].iter_rows(values_only=True))
    assert sources[1] == ("官网", 4, pytest.approx(0.4444))
    log = PersonalDataAccess.objects.get()
    assert (log.action, log.object_type, log.object_id, log.user) == ("export", "report", "customers", manager)


def test_it_exports_the_funnel_to_csv(dataset, manager, client_for):
    response = client_for(manager).get(FUNNEL, {**Q1, "format": "csv"})
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert ["潜在客户", "7", "", "1.0000"] in lines
    assert ["展会", "3", "3", "1", "1.0000", "0.3333", "0.3333"] in lines
    assert ["2026-02", "2", "2", "1", "0.5000"] in lines
    log = PersonalDataAccess.objects.get()
    assert (log.action, log.object_type, log.object_id) == ("export", "report", "funnel")


# --- Access and bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("url", [URL, FUNNEL])
def test_it_refuses_a_user_without_a_role(url, roleless_user, client_for):
    assert client_for(roleless_user).get(url).status_code == 403


@pytest.mark.parametrize("url", [URL, FUNNEL])
def test_it_sends_anonymous_users_to_log_in(url, db, client):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("url", [URL, FUNNEL])
def test_it_answers_post_with_405(url, manager, client_for):
    assert client_for(manager).post(url).status_code == 405


@pytest.mark.parametrize(
    "params",
    [
        {"start": "garbage"},
        {"start": "2026-03-01", "end": "2026-02-01"},
        {"start": "2020-01-01", "end": "2026-01-01", "period": "day"},
        {"source": "not-a-number"},
        {"period": "fortnight"},
    ],
)
@pytest.mark.parametrize("url", [URL, FUNNEL])
def test_it_shows_a_form_error_for_bad_filters(url, params, manager, client_for):
    response = client_for(manager).get(url, params)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert response.context["result"] is None


# The page's own queries (session, user, permissions, freshness, the filter form's choices, the
# session save) are 11; the customer report adds at most 4, the funnel at most 5, and on
# PostgreSQL one more each (SET LOCAL jit = off).
@pytest.mark.parametrize(("url", "budget"), [(URL, 16), (FUNNEL, 17)])
def test_it_shows_the_page_in_few_queries(
    url, budget, dataset, manager, sales_rep, client_for, django_assert_max_num_queries
):
    for user in (manager, sales_rep):
        client = client_for(user)
        with django_assert_max_num_queries(budget):
            assert client.get(url, Q1).status_code == 200
