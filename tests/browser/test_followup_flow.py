import datetime

import pytest
from django.utils import timezone

from followups.models import FollowUp, Notification, Task
from followups.reminders import send_due_reminders
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.browser


def test_a_rep_records_a_follow_up_with_a_next_contact_date_and_the_reminder_reaches_the_bell(page, sales_rep):
    customer = CustomerFactory(name="杭州云帆科技有限公司", owner=sales_rep)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    log_in(page, sales_rep)

    # Quick entry on the 360 page: saved by htmx, the timeline shows it without a page load.
    page.goto(f"/customers/{customer.pk}/")
    form = page.get_by_test_id("followup-form")
    form.locator("[name=content]").fill("电话沟通了年度服务方案，客户有兴趣")
    form.locator("[name=next_contact_date]").fill(tomorrow.isoformat())
    form.locator("button[type=submit]").click()
    page.get_by_test_id("followup-saved").wait_for()
    assert "年度服务方案" in page.get_by_test_id("timeline").inner_text()
    followup = FollowUp.objects.get(customer=customer)
    task = Task.objects.get(followup=followup)
    assert task.assignee == sales_rep and timezone.localtime(task.due_at).date() == tomorrow

    # The beat job runs when the task falls due (twice, as an overlapping worker would): one reminder.
    due = task.due_at + datetime.timedelta(minutes=1)
    send_due_reminders(now=due)
    send_due_reminders(now=due)
    assert Notification.objects.filter(user=sales_rep).count() == 1
    page.goto("/")
    page.get_by_test_id("bell-count").wait_for()
    assert page.get_by_test_id("bell-count").inner_text() == "1"
    assert not [e for e in page.console_errors if "Content Security Policy" in e]
