import re

import pytest

from customers.models import Customer
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import ContactFactory, CustomerFactory, TransactionFactory

pytestmark = pytest.mark.browser


def test_a_manager_finds_two_records_of_one_customer_and_merges_them_field_by_field(page, manager, sales_rep):
    older = CustomerFactory(name="张伟", mobile="+8613812345678", city="", owner=sales_rep)
    newer = CustomerFactory(name="张伟", mobile="+8613812345678", city="杭州", notes="展会认识", owner=sales_rep)
    ContactFactory(customer=newer, name="张助理")
    TransactionFactory(customer=newer)
    log_in(page, manager)
    page.on("dialog", lambda dialog: dialog.accept())  # the "merge these two?" confirmation

    page.goto("/customers/duplicates/archive/")
    group = page.get_by_test_id("duplicate-group").first
    assert older.code in group.inner_text() and newer.code in group.inner_text()
    group.get_by_test_id("merge-link").first.click()
    page.wait_for_url(re.compile(r".*/customers/merge/\d+/\d+/$"))

    # The older record stays by default; take the newer one's notes, keep its city (the only one).
    page.check(f"#survivor_{older.pk}")
    page.check("#pick_notes_b")
    page.get_by_test_id("merge-form").locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf".*/customers/{older.pk}/$"))

    older.refresh_from_db()
    assert (older.city, older.notes) == ("杭州", "展会认识")
    assert older.contacts.get().name == "张助理" and older.transactions.count() == 1
    merged = Customer.all_objects.get(pk=newer.pk)
    assert merged.merged_into == older and merged.deleted_at is not None
    assert newer.code in page.content()  # the survivor's page names the record merged into it
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
