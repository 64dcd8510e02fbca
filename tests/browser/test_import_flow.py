import re

import pytest

from customers.models import Customer, ImportJob
from tests.browser.test_customers_flow import log_in

pytestmark = pytest.mark.browser

ROWS = "客户名称,手机,邮箱,所在省份,客户级别\n张伟,138 1234 5678,zhang.wei@example.com,广东,A\n李娜,13912345678,,浙江省,B\n王芳,12345,,,\n"


def test_a_manager_uploads_a_gbk_file_reads_the_preview_confirms_and_finds_the_customers(
    page, manager, tmp_path, shipped_reference_data
):
    path = tmp_path / "老系统导出.csv"
    path.write_bytes(ROWS.encode("gbk"))  # as older Excel and WPS save CSV in China
    log_in(page, manager)

    page.goto("/customers/import/")
    page.set_input_files("#id_file", str(path))
    page.get_by_test_id("import-form").locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/customers/import/jobs/\d+/$"))

    # The preview: two rows to create, one rejected with its line and reason, the encoding detected.
    job = ImportJob.objects.get()
    assert page.get_by_test_id("count-create").inner_text() == "2", (job.errors, job.message)
    assert page.get_by_test_id("count-rejected").inner_text() == "1"
    assert "GB" in page.get_by_test_id("import-encoding").inner_text()
    errors = page.get_by_test_id("import-errors").inner_text()
    assert "4" in errors and "12345" in errors
    assert not Customer.objects.exists()
    page.screenshot(path="test-results/import-preview.png", full_page=True)

    page.get_by_test_id("import-confirm").click()
    page.get_by_test_id("import-done").wait_for()
    assert page.get_by_test_id("count-created").inner_text() == "2"

    page.goto("/customers/")
    table = page.get_by_test_id("customer-table")
    table.get_by_text("张伟").wait_for()
    assert "李娜" in table.inner_text() and "王芳" not in table.inner_text()
    assert Customer.objects.get(name="张伟").mobile == "+8613812345678"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
