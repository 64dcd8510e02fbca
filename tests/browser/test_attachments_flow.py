import pytest

from customers.models import Attachment
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import ContractFactory, CustomerFactory
from tests.customers.test_attachments import PDF_BYTES

pytestmark = pytest.mark.browser


def test_a_rep_uploads_a_scanned_contract_on_the_360_page_sees_it_listed_and_downloads_it(page, sales_rep, tmp_path):
    customer = CustomerFactory(name="杭州云帆科技有限公司", owner=sales_rep)
    contract = ContractFactory(customer=customer, title="年度合作协议")
    scan = tmp_path / "合同扫描件.pdf"
    scan.write_bytes(PDF_BYTES)
    log_in(page, sales_rep)

    page.goto(f"/customers/{customer.pk}/")
    page.locator("#tab-files-btn").click()
    form = page.get_by_test_id("attachment-form")
    form.locator("[name=kind]").select_option("contract")
    form.locator("[name=contract]").select_option(str(contract.pk))
    form.locator("[name=file]").set_input_files(str(scan))
    form.get_by_test_id("attachment-submit").click()

    # Saved by htmx: the Files tab shows it without a page load.
    page.get_by_test_id("attachment-saved").wait_for()
    row = page.get_by_test_id("attachment-row")
    assert row.count() == 1
    assert page.locator("#tab-files-btn .badge").inner_text() == "1"  # the tab's count follows
    text = row.inner_text()
    assert "合同扫描件.pdf" in text and contract.number in text
    attachment = Attachment.objects.get()
    assert attachment.contract == contract and attachment.uploaded_by == sales_rep

    with page.expect_download() as info:
        page.get_by_test_id("attachment-download").click()
    assert info.value.suggested_filename == "合同扫描件.pdf"
    with open(info.value.path(), "rb") as handle:
        assert handle.read() == PDF_BYTES

    # A file that is not what its name says is refused with the message on the form.
    fake = tmp_path / "营业执照.pdf"
    fake.write_bytes(b"<html><script>alert(1)</script></html>")
    form = page.get_by_test_id("attachment-form")
    form.locator("[name=file]").set_input_files(str(fake))
    form.get_by_test_id("attachment-submit").click()
    page.locator("#attachments-panel .invalid-feedback").wait_for()
    assert "PDF" in page.locator("#attachments-panel .invalid-feedback").inner_text()
    assert Attachment.objects.count() == 1

    # Delete, confirmed in the browser's dialog.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("attachment-delete").locator("button").click()
    page.get_by_test_id("attachment-row").wait_for(state="detached")
    assert not Attachment.objects.exists()
    assert page.locator("#tab-files-btn .badge").inner_text() == "0"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
