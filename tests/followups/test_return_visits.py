"""Who is due a return visit (回访): the rule in followups.return_visits and the managers' page."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from followups.models import FollowUp, Opportunity
from followups.return_visits import return_visits_due
from tests.customers.factories import CustomerFactory, TransactionFactory
from tests.followups.factories import FollowUpFactory, OpportunityFactory

pytestmark = pytest.mark.django_db

URL = reverse("followups:return_visits")


def days_ago(n: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=n)


def at_noon(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=timezone.get_default_timezone())


def due_names(user, **kwargs) -> list[str]:
    return [customer.name for customer in return_visits_due(user=user, **kwargs)]


@pytest.fixture(autouse=True)
def _seven_days(settings):
    settings.RETURN_VISIT_AFTER_DAYS = 7


def test_it_lists_a_customer_a_week_after_a_sale_until_a_return_visit(manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep, name="已购客户")
    TransactionFactory(customer=customer, date=days_ago(10))
    assert due_names(manager) == ["已购客户"]
    # An ordinary phone call is not a return visit.
    FollowUpFactory(customer=customer, kind=FollowUp.Kind.PHONE, happened_at=at_noon(days_ago(2)))
    assert due_names(manager) == ["已购客户"]
    FollowUpFactory(
        customer=customer, kind=FollowUp.Kind.RETURN_VISIT, satisfaction=5, happened_at=at_noon(days_ago(1))
    )
    assert due_names(manager) == []


def test_a_return_visit_before_the_latest_sale_does_not_count(manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep, name="复购客户")
    TransactionFactory(customer=customer, date=days_ago(60))
    FollowUpFactory(customer=customer, kind=FollowUp.Kind.RETURN_VISIT, happened_at=at_noon(days_ago(50)))
    assert due_names(manager) == []
    TransactionFactory(customer=customer, date=days_ago(8))  # bought again: a new visit is due
    due = list(return_visits_due(user=manager))
    assert [c.name for c in due] == ["复购客户"] and due[0].last_sale == days_ago(8)
    assert timezone.localtime(due[0].last_return_visit).date() == days_ago(50)


def test_a_sale_less_than_a_week_ago_is_falling_due_not_due(manager, sales_rep):
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="刚买"), date=days_ago(3))
    assert due_names(manager) == []
    assert due_names(manager, upcoming=True) == ["刚买"]


def test_the_seventh_day_is_due(manager, sales_rep):
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="第七天"), date=days_ago(7))
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="第六天"), date=days_ago(6))
    assert due_names(manager) == ["第七天"]


def test_a_won_opportunity_is_a_sale(manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep, name="赢单客户")
    OpportunityFactory(customer=customer, stage=Opportunity.Stage.WON, closed_at=at_noon(days_ago(9)))
    OpportunityFactory(
        customer=CustomerFactory(owner=sales_rep), stage=Opportunity.Stage.LOST, closed_at=at_noon(days_ago(9))
    )
    due = list(return_visits_due(user=manager))
    assert [c.name for c in due] == ["赢单客户"] and due[0].last_sale == days_ago(9)


def test_sales_older_than_the_window_are_left_out(manager, sales_rep):
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="老客户"), date=days_ago(120))
    assert due_names(manager) == []
    assert due_names(manager, window_days=180) == ["老客户"]


def test_the_longest_overdue_comes_first_and_rep_filters(manager, sales_rep, other_sales_rep):
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="近"), date=days_ago(8))
    TransactionFactory(customer=CustomerFactory(owner=other_sales_rep, name="远"), date=days_ago(30))
    assert due_names(manager) == ["远", "近"]
    assert due_names(manager, rep=sales_rep) == ["近"]


def test_it_lists_only_customers_the_user_may_see(sales_rep, other_sales_rep):
    TransactionFactory(customer=CustomerFactory(owner=sales_rep, name="我的"), date=days_ago(8))
    TransactionFactory(customer=CustomerFactory(owner=other_sales_rep, name="别人的"), date=days_ago(8))
    assert due_names(sales_rep) == ["我的"]


def test_deleted_customers_are_left_out(manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep, name="删掉的")
    TransactionFactory(customer=customer, date=days_ago(8))
    customer.deleted_at = timezone.now()
    customer.save(update_fields=["deleted_at"])
    assert due_names(manager) == []


# --- The page --------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("who", ["sales_rep", "service_agent", "analyst", "portal_customer"])
def test_roles_without_the_permission_are_refused(who, request, client_for):
    assert client_for(request.getfixturevalue(who)).get(URL).status_code == 403


def test_a_manager_sees_the_due_list_with_a_link_to_record_the_visit(manager, sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, name="待回访")
    TransactionFactory(customer=customer, date=days_ago(10))
    client = client_for(manager)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    body = client.get(URL).content.decode()
    assert "待回访" in body and "3 days overdue" in body
    assert f"{reverse('followups:create', args=[customer.pk])}?kind=return_visit" in body
    assert 'data-testid="return-visit-empty"' in client.get(URL, {"show": "upcoming"}).content.decode()


def test_the_record_link_preselects_the_return_visit_type(manager, sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    body = (
        client_for(manager)
        .get(reverse("followups:create", args=[customer.pk]), {"kind": "return_visit"})
        .content.decode()
    )
    assert '<option value="return_visit" selected>' in body


def test_the_page_survives_bad_filters_and_refuses_post(manager, client_for):
    client = client_for(manager)
    assert client.get(URL, {"window": "abc", "rep": "999999", "show": "x", "page": "-3"}).status_code == 200
    assert client.post(URL).status_code == 405


def test_the_page_stays_within_its_query_budget(manager, sales_rep, client_for, django_assert_max_num_queries):
    for n in range(15):
        TransactionFactory(customer=CustomerFactory(owner=sales_rep), date=days_ago(8 + n))
    client = client_for(manager)
    client.get(URL)
    with django_assert_max_num_queries(12):
        response = client.get(URL)
    assert response.content.decode().count('data-testid="return-visit-row"') == 15


def test_a_resolved_complaint_is_due_a_return_visit_and_an_open_one_is_not(manager, sales_rep):
    from complaints.models import Ticket, TicketCategory

    category = TicketCategory.objects.first()
    resolved = CustomerFactory(owner=sales_rep, name="投诉已解决")
    still_open = CustomerFactory(owner=sales_rep, name="投诉处理中")
    inquiry = CustomerFactory(owner=sales_rep, name="咨询已解决")
    common = {"category": category, "subject": "设备故障", "description": "无法开机"}
    Ticket.objects.create(
        customer=resolved, kind=Ticket.Kind.COMPLAINT, status=Ticket.Status.CLOSED,
        resolved_at=at_noon(days_ago(9)), **common,
    )  # fmt: skip
    Ticket.objects.create(customer=still_open, kind=Ticket.Kind.COMPLAINT, status=Ticket.Status.IN_PROGRESS, **common)
    Ticket.objects.create(
        customer=inquiry, kind=Ticket.Kind.INQUIRY, status=Ticket.Status.RESOLVED,
        resolved_at=at_noon(days_ago(9)), **common,
    )  # fmt: skip
    assert due_names(manager) == ["投诉已解决"]
    FollowUpFactory(customer=resolved, kind=FollowUp.Kind.RETURN_VISIT, happened_at=at_noon(days_ago(1)))
    assert due_names(manager) == []
