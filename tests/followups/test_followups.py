"""Follow-up records: the service's rules, quick entry on the 360 page, edit, and "my follow-ups"."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from followups import services
from followups.models import FollowUp, Task
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.followups.factories import FollowUpFactory

pytestmark = pytest.mark.django_db


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def form_data(**overrides):
    data = {
        "kind": "phone",
        "happened_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "content": "谈了续约",
        "result": "有意向",
        "next_contact_date": "",
        "satisfaction": "",
        "contact": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="王伟")


def create_url(customer):
    return reverse("followups:create", args=[customer.pk])


# --- The service ---------------------------------------------------------------------------------


def test_it_records_a_follow_up_with_history_and_a_task_at_nine(sales_rep, customer):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    followup = services.followup_create(customer=customer, by=sales_rep, content="电话", next_contact_date=tomorrow)
    assert followup.created_by == sales_rep and followup.history.count() == 1
    task = Task.objects.get(followup=followup)
    assert task.assignee == sales_rep and task.customer == customer
    assert task.title == "Contact 王伟" or "王伟" in task.title
    local = timezone.localtime(task.due_at, timezone.get_default_timezone())
    assert (local.date(), local.hour, local.minute) == (tomorrow, 9, 0)
    assert str(timezone.get_default_timezone()) == "Asia/Shanghai"


def test_it_assigns_the_task_to_the_customer_owner_when_a_manager_records(manager, sales_rep, customer):
    followup = services.followup_create(
        customer=customer, by=manager, content="拜访", next_contact_date=timezone.localdate()
    )
    assert followup.tasks.get().assignee == sales_rep


def test_it_refuses_a_follow_up_on_another_reps_customer(other_sales_rep, customer):
    with pytest.raises(PermissionDenied):
        services.followup_create(customer=customer, by=other_sales_rep, content="x")
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize(
    "values, field",
    [
        ({"happened_at": timezone.now() + datetime.timedelta(hours=2)}, "happened_at"),
        ({"satisfaction": 4}, "satisfaction"),  # a phone call has no satisfaction score
        ({"kind": FollowUp.Kind.RETURN_VISIT, "satisfaction": 6}, "satisfaction"),
        ({"next_contact_date": datetime.date(2000, 1, 1)}, "next_contact_date"),
        ({"content": "   "}, "content"),
    ],
)
def test_it_refuses_invalid_values(sales_rep, customer, values, field):
    values = {"content": "x", **values}
    with pytest.raises(ValidationError) as error:
        services.followup_create(customer=customer, by=sales_rep, **values)
    assert field in error.value.message_dict
    assert not FollowUp.objects.exists() and not Task.objects.exists()


def test_it_accepts_a_return_visit_with_a_score(sales_rep, customer):
    followup = services.followup_create(
        customer=customer, by=sales_rep, content="回访", kind=FollowUp.Kind.RETURN_VISIT, satisfaction=5
    )
    assert followup.satisfaction == 5


def test_it_refuses_a_contact_of_another_customer(sales_rep, customer):
    stranger = ContactFactory(customer=CustomerFactory(owner=sales_rep))
    with pytest.raises(ValidationError):
        services.followup_create(customer=customer, by=sales_rep, content="x", contact=stranger)


def test_it_moves_the_task_when_the_next_contact_date_changes(sales_rep, customer):
    today = timezone.localdate()
    followup = services.followup_create(customer=customer, by=sales_rep, content="x", next_contact_date=today)
    later = today + datetime.timedelta(days=3)
    services.followup_update(followup=followup, by=sales_rep, next_contact_date=later, content="改")
    task = Task.objects.get()
    assert timezone.localtime(task.due_at).date() == later
    assert followup.history.count() == 2 and followup.history.earliest().content == "x"
    services.followup_update(followup=followup, by=sales_rep, next_contact_date=None)
    assert not Task.objects.exists()


def test_only_the_author_or_a_manager_edits(sales_rep, other_sales_rep, manager, customer):
    followup = FollowUpFactory(customer=customer, created_by=manager)
    with pytest.raises(PermissionDenied):
        services.followup_update(followup=followup, by=sales_rep, content="改")
    mine = FollowUpFactory(customer=customer, created_by=sales_rep)
    services.followup_update(followup=mine, by=manager, content="经理改")
    mine.refresh_from_db()
    assert mine.content == "经理改"


# --- Quick entry (htmx) --------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(customer, client):
    response = client.get(create_url(customer))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_returns_the_form_fragment_to_htmx(sales_rep, client_for, customer):
    response = client_for(sales_rep).get(create_url(customer), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'data-testid="followup-form"' in body


def test_it_saves_and_returns_the_refreshed_timeline_and_a_cleared_form(sales_rep, client_for, customer):
    client = english(client_for(sales_rep))
    response = client.post(create_url(customer), form_data(content="谈了续约123"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="timeline" data-testid="timeline" hx-swap-oob="true"' in body
    assert "谈了续约123" in body  # in the timeline, not left in the form
    assert body.count("谈了续约123") == 1
    assert "The follow-up was recorded." in body
    assert FollowUp.objects.get().created_by == sales_rep


def test_it_re_renders_the_form_with_messages_on_bad_input(sales_rep, client_for, customer):
    client = english(client_for(sales_rep))
    response = client.post(
        create_url(customer), form_data(next_contact_date="2000-01-01", happened_at="garbage"), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'data-testid="followup-form"' in body
    assert "Enter a valid date/time." in body
    assert not FollowUp.objects.exists()
    response = client.post(create_url(customer), form_data(next_contact_date="2000-01-01"))
    assert response.status_code == 422 and "The next contact date cannot be in the past." in response.content.decode()


def test_it_redirects_a_plain_post_to_the_customer(sales_rep, client_for, customer):
    response = client_for(sales_rep).post(create_url(customer), form_data())
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[customer.pk])


def test_a_rep_cannot_add_to_another_reps_customer(other_sales_rep, client_for, customer):
    client = client_for(other_sales_rep)
    assert client.get(create_url(customer), HTTP_HX_REQUEST="true").status_code == 404
    assert client.post(create_url(customer), form_data()).status_code == 404
    assert not FollowUp.objects.exists()


def test_service_staff_cannot_add(service_agent, client_for, customer):
    client = client_for(service_agent)
    assert client.get(create_url(customer)).status_code == 403
    assert client.post(create_url(customer), form_data()).status_code == 403
    assert not FollowUp.objects.exists()


def test_it_refuses_the_wrong_method(sales_rep, client_for, customer):
    assert client_for(sales_rep).put(create_url(customer)).status_code == 405


def test_the_360_page_offers_quick_entry_to_the_owner_only(sales_rep, service_agent, client_for, customer):
    body = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="followup-form"' in body and 'data-testid="timeline"' in body
    body = client_for(service_agent).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="followup-form"' not in body and 'data-testid="timeline"' in body
    assert 'data-testid="action-status"' not in body


# --- Edit ----------------------------------------------------------------------------------------


def test_the_author_edits_through_the_page(sales_rep, client_for, customer):
    followup = FollowUpFactory(customer=customer, created_by=sales_rep, content="旧")
    url = reverse("followups:edit", args=[followup.pk])
    client = client_for(sales_rep)
    assert client.get(url).status_code == 200
    response = client.post(url, form_data(content="新"))
    assert response.status_code == 302
    followup.refresh_from_db()
    assert followup.content == "新" and followup.history.count() == 2


def test_edit_refuses_outsiders_and_colleagues(
    sales_rep, other_sales_rep, service_agent, manager, client_for, customer
):
    followup = FollowUpFactory(customer=customer, created_by=manager)
    url = reverse("followups:edit", args=[followup.pk])
    assert client_for(other_sales_rep).get(url).status_code == 404
    assert client_for(service_agent).get(url).status_code == 403
    assert client_for(sales_rep).post(url, form_data(content="改")).status_code == 403  # not the author
    assert client_for(sales_rep).get(reverse("followups:edit", args=[987654])).status_code == 404
    followup.refresh_from_db()
    assert followup.content != "改"


# --- My follow-ups -------------------------------------------------------------------------------


def test_a_rep_lists_their_own_follow_ups(sales_rep, client_for, customer, manager):
    mine = FollowUpFactory(customer=customer, created_by=sales_rep)
    theirs = FollowUpFactory(customer=customer, created_by=manager)
    body = client_for(sales_rep).get(reverse("followups:list")).content.decode()
    assert f'data-id="{mine.pk}"' in body and f'data-id="{theirs.pk}"' not in body


def test_a_manager_lists_everyones_and_filters(manager, sales_rep, other_sales_rep, client_for, customer):
    mine = FollowUpFactory(customer=customer, created_by=sales_rep, kind="visit")
    other = FollowUpFactory(customer=CustomerFactory(owner=other_sales_rep), created_by=other_sales_rep)
    old = FollowUpFactory(
        customer=customer, created_by=sales_rep, happened_at=timezone.now() - datetime.timedelta(days=40)
    )
    client = client_for(manager)
    body = client.get(reverse("followups:list")).content.decode()
    assert all(f'data-id="{f.pk}"' in body for f in (mine, other, old))
    body = client.get(reverse("followups:list"), {"rep": sales_rep.pk}).content.decode()
    assert f'data-id="{other.pk}"' not in body and f'data-id="{mine.pk}"' in body
    body = client.get(reverse("followups:list"), {"kind": "visit"}).content.decode()
    assert f'data-id="{mine.pk}"' in body and f'data-id="{old.pk}"' not in body
    since = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    body = client.get(reverse("followups:list"), {"date_from": since}).content.decode()
    assert f'data-id="{old.pk}"' not in body and f'data-id="{mine.pk}"' in body


def test_the_list_survives_bad_filters(sales_rep, client_for):
    response = client_for(sales_rep).get(
        reverse("followups:list"), {"date_from": "x", "kind": "nope", "page": "zz", "rep": "1"}
    )
    assert response.status_code == 200
    # The last day there is: "up to" it would end the day after, beyond what dates can hold.
    for extreme in ({"date_to": "9999-12-31"}, {"date_from": "0001-01-01"}):
        response = client_for(sales_rep).get(reverse("followups:list"), extreme)
        assert response.status_code == 200 and response.context["form"].errors


def test_the_list_is_refused_to_roles_without_follow_ups(analyst, client_for, client):
    assert client_for(analyst).get(reverse("followups:list")).status_code == 403
    assert client.get(reverse("followups:list")).status_code == 302
    assert client_for(analyst).post(reverse("followups:list")).status_code in (403, 405)


def test_the_list_stays_within_its_query_budget(manager, client_for, sales_rep, django_assert_max_num_queries):
    for _ in range(30):
        FollowUpFactory(customer=CustomerFactory(owner=sales_rep), created_by=sales_rep)
    client = client_for(manager)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("followups:list")).status_code == 200


# --- The follow-up's opportunity -----------------------------------------------------------------


def test_it_links_a_follow_up_to_an_open_opportunity_of_its_customer(sales_rep, client_for, customer):
    from tests.followups.factories import OpportunityFactory

    deal = OpportunityFactory(customer=customer, title="二期扩容")
    OpportunityFactory(customer=customer, title="旧项目", stage="lost")
    client = english(client_for(sales_rep))
    form = client.get(create_url(customer), HTTP_HX_REQUEST="true").content.decode()
    assert "二期扩容" in form and "旧项目" not in form  # closed deals are not offered
    response = client.post(create_url(customer), form_data(opportunity=deal.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert FollowUp.objects.get().opportunity == deal
    assert 'data-testid="followup-opportunity"' in response.content.decode()  # shown in the timeline


def test_it_refuses_an_opportunity_of_another_customer(sales_rep, client_for, customer):
    from tests.followups.factories import OpportunityFactory

    foreign = OpportunityFactory(customer=CustomerFactory(owner=sales_rep))
    with pytest.raises(ValidationError) as error:
        services.followup_create(customer=customer, by=sales_rep, content="电话", opportunity=foreign)
    assert "opportunity" in error.value.message_dict
    response = english(client_for(sales_rep)).post(create_url(customer), form_data(opportunity=foreign.pk))
    assert response.status_code == 422 and not FollowUp.objects.exists()


def test_a_follow_up_keeps_its_opportunity_after_the_deal_closes(sales_rep, client_for, customer):
    from tests.followups.factories import OpportunityFactory

    deal = OpportunityFactory(customer=customer, stage="won", probability=100)
    followup = FollowUpFactory(customer=customer, opportunity=deal, created_by=sales_rep)
    response = client_for(sales_rep).post(
        reverse("followups:edit", args=[followup.pk]), form_data(opportunity=deal.pk, content="改过")
    )
    assert response.status_code == 302
    followup.refresh_from_db()
    assert followup.opportunity == deal and followup.content == "改过"
