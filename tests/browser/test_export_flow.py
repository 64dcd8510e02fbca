import csv, io
import pytest
from customers.models import Customer
from cims.models import PersonalDataAccess
from tests.customers.factories import CustomerFactory
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

def log_in(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(user.username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/")

def test_export_after_htmx_filter(page, sales_rep, other_sales_rep):
    CustomerFactory(owner=sales_rep, name="成交甲", status="won")
    CustomerFactory(owner=sales_rep, name="潜在乙", status="prospect")
    CustomerFactory(owner=other_sales_rep, name="别人的", status="won")
    log_in(page, sales_rep)
    page.goto("/customers/")
    page.select_option("#id_status", "won")
    page.get_by_test_id("customer-table").get_by_text("成交甲").wait_for()
    page.wait_for_timeout(500)
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    download = info.value
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    print(download.suggested_filename, rows)
    assert [r[1] for r in rows[1:]] == ["成交甲"]
    assert PersonalDataAccess.objects.first().detail.startswith("status=won")
    with page.expect_download() as info:
        page.get_by_test_id("export-xlsx").click()
    print(info.value.suggested_filename)
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
    print(page.console_errors)
