import csv
import io

import openpyxl
import pytest

from cims.models import PersonalDataAccess
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


def test_a_sales_rep_filters_the_list_and_exports_just_their_matching_customers(page, sales_rep, other_sales_rep):
    CustomerFactory(owner=sales_rep, name="成交甲", status="won")
    CustomerFactory(owner=sales_rep, name="潜在乙", status="prospect")
    CustomerFactory(owner=other_sales_rep, name="别人的", status="won")
    log_in(page, sales_rep)
    page.goto("/customers/")
    # The filter is applied by htmx, without a page load: the export must still carry it.
    page.select_option("#id_status", "won")
    page.get_by_test_id("customer-table").get_by_text("潜在乙").wait_for(state="detached")

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    with open(info.value.path(), encoding="utf-8-sig") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0][:2] == ["客户编号", "客户名称"]
    assert [row[1] for row in rows[1:]] == ["成交甲"]
    logged = PersonalDataAccess.objects.get(action=PersonalDataAccess.Action.EXPORT)  # the login is logged too
    assert logged.rows == 1 and logged.detail.startswith("status=won")

    with page.expect_download() as info:
        page.get_by_test_id("export-xlsx").click()
    assert info.value.suggested_filename.endswith(".xlsx")
    with open(info.value.path(), "rb") as handle:  # the download's path has no extension
        sheet = openpyxl.load_workbook(io.BytesIO(handle.read())).active
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["成交甲"]
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
