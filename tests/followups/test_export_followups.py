"""Follow-ups export like transactions and contracts: scoped, filtered by day, logged."""

from __future__ import annotations

import csv
import datetime
import io
import zoneinfo

import pytest
from django.urls import reverse

from cims.models import PersonalDataAccess
from tests.customers.factories import CustomerFactory
from tests.followups.factories import FollowUpFactory

pytestmark = pytest.mark.django_db
EXPORT = reverse("customers:export_followups")
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_it_exports_only_the_follow_ups_of_the_reps_own_customers(client_for, sales_rep, other_sales_rep):
    FollowUpFactory(customer=CustomerFactory(name="我的客户", owner=sales_rep), content="报价已发")
    FollowUpFactory(customer=CustomerFactory(name="别人的客户", owner=other_sales_rep), content="别人的跟进")
    response = client_for(sales_rep).get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    table = rows(response)
    assert table[0][:4] == ["客户编号", "客户名称", "跟进方式", "跟进时间"]
    assert [row[1] for row in table[1:]] == ["我的客户"] and table[1][4] == "报价已发"
    logged = PersonalDataAccess.objects.get()
    assert (logged.object_type, logged.rows, logged.user) == ("followups.followup", 1, sales_rep)


def test_it_filters_by_the_day_in_shanghai_time(client_for, manager):
    customer = CustomerFactory(owner=manager)
    late = datetime.datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI)  # still the 23rd in UTC
    FollowUpFactory(customer=customer, happened_at=late, content="凌晨")
    FollowUpFactory(customer=customer, happened_at=late - datetime.timedelta(hours=1), content="前一天")
    table = rows(client_for(manager).get(EXPORT, {"format": "csv", "date_from": "2026-11-24", "date_to": "2026-11-24"}))
    assert [row[4] for row in table[1:]] == ["凌晨"]
    assert table[1][3] == "2026-11-24 00:30:00"


@pytest.mark.parametrize("cast", ["analyst", "portal_customer", "roleless_user"])
def test_it_refuses_roles_without_export_or_follow_up_rights(request, client_for, cast):
    response = client_for(request.getfixturevalue(cast)).get(EXPORT, {"format": "csv"})
    assert response.status_code == 403
    assert not PersonalDataAccess.objects.exists()


def test_it_answers_a_bad_date_with_400_and_logs_nothing(client_for, manager):
    assert client_for(manager).get(EXPORT, {"format": "csv", "date_from": "明天"}).status_code == 400
    assert not PersonalDataAccess.objects.exists()
