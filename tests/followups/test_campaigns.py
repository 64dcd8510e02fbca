"""Marketing campaigns (市场营销活动): the rules of campaigns and members, bulk targeting, the numbers, the views."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts import roles
from customers.models import Customer
from followups import campaigns as services
from followups.models import Campaign, CampaignMember
from tests.customers.factories import CustomerFactory, TagFactory
from tests.factories import UserFactory
from tests.followups.factories import CampaignFactory, CampaignMemberFactory

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
HTMX = {"HTTP_HX_REQUEST": "true"}
TARGETED, RESPONDED, CONVERTED = (s.value for s in CampaignMember.Status)
TODAY = datetime.date(2026, 3, 1)


@pytest.fixture
def campaign(manager):
    return CampaignFactory(owner=manager, budget=Decimal("10000.00"))


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


@pytest.fixture
def member(campaign, customer):
    return CampaignMemberFactory(campaign=campaign, customer=customer)


@pytest.fixture
def others_member(campaign, other_sales_rep):
    return CampaignMemberFactory(campaign=campaign, customer=CustomerFactory(owner=other_sales_rep))


def _values(**changes):
    return {
        "name": "春季展会",
        "kind": Campaign.Kind.TRADE_SHOW,
        "status": Campaign.Status.PLANNED,
        "start_date": TODAY,
        "end_date": TODAY + datetime.timedelta(days=2),
        "budget": Decimal("50000"),
    } | changes


# --- Campaigns -----------------------------------------------------------------------------------


def test_it_creates_a_campaign_owned_by_its_creator(manager):
    campaign = services.campaign_create(by=manager, **_values(name="  春季展会  "))
    assert (campaign.name, campaign.owner, campaign.created_by) == ("春季展会", manager, manager)
    assert campaign.history.get().history_user == manager


def test_it_refuses_an_end_before_the_start_and_negative_money(manager):
    bad = _values(end_date=TODAY - datetime.timedelta(days=1), budget=Decimal("-1"), actual_cost=Decimal("-0.01"))
    with pytest.raises(ValidationError) as error:
        services.campaign_create(by=manager, **bad)
    assert set(error.value.message_dict) == {"end_date", "budget", "actual_cost"}
    assert not Campaign.objects.exists()


def test_it_refuses_a_blank_name_and_an_inactive_owner(manager):
    gone = UserFactory(role=roles.SALES, is_active=False)
    with pytest.raises(ValidationError) as error:
        services.campaign_create(by=manager, **_values(name="  ", owner=gone))
    assert set(error.value.message_dict) == {"name", "owner"}


def test_a_sales_rep_may_neither_create_nor_change_a_campaign(sales_rep, campaign):
    with pytest.raises(PermissionDenied):
        services.campaign_create(by=sales_rep, **_values())
    with pytest.raises(PermissionDenied):
        services.campaign_update(campaign=campaign, by=sales_rep, name="改名")
    campaign.refresh_from_db()
    assert campaign.name != "改名"


def test_it_updates_a_campaign_and_checks_the_dates_against_the_stored_ones(manager, campaign):
    services.campaign_update(campaign=campaign, by=manager, actual_cost=Decimal("8800.50"), status="finished")
    campaign.refresh_from_db()
    assert (campaign.actual_cost, campaign.status) == (Decimal("8800.50"), "finished")
    with pytest.raises(ValidationError) as error:
        services.campaign_update(campaign=campaign, by=manager, end_date=campaign.start_date - datetime.timedelta(1))
    assert "end_date" in error.value.message_dict


# --- Targets -------------------------------------------------------------------------------------


def test_it_adds_targets_in_bulk_and_skips_those_already_in(manager, campaign, member):
    others = CustomerFactory.create_batch(3)
    binned = CustomerFactory(deleted_at=timezone.now())
    customers = Customer.all_objects.filter(pk__in=[member.customer_id, binned.pk, *(c.pk for c in others)])
    added = services.campaign_add_targets(campaign=campaign, customers=customers, by=manager)
    assert added == 3
    assert set(campaign.members.values_list("customer_id", flat=True)) == {member.customer_id, *(c.pk for c in others)}
    new = campaign.members.exclude(pk=member.pk)
    assert {(m.status, m.added_by_id) for m in new} == {(TARGETED, manager.pk)}
    assert services.campaign_add_targets(campaign=campaign, customers=customers, by=manager) == 0


def test_it_adds_only_the_customers_the_user_may_see(sales_rep, campaign, customer):
    sales_rep.user_permissions.add(Permission.objects.get(codename="add_campaignmember"))
    sales_rep = type(sales_rep).objects.get(pk=sales_rep.pk)  # fresh permission cache
    unseen = CustomerFactory.create_batch(2, owner=UserFactory(role=roles.SALES))
    added = services.campaign_add_targets(campaign=campaign, customers=Customer.objects.all(), by=sales_rep)
    assert added == 1
    assert list(campaign.members.values_list("customer_id", flat=True)) == [customer.pk]
    assert not campaign.members.filter(customer__in=unseen).exists()


def test_the_portable_path_adds_in_batches(manager, campaign, monkeypatch):
    """The path SQLite takes (and any database without INSERT … SELECT … ON CONFLICT), run here on any."""
    monkeypatch.setattr(services, "TARGET_BATCH", 2)
    made = CustomerFactory.create_batch(5)
    CampaignMemberFactory(campaign=campaign, customer=made[2])
    ids = services.target_queryset(campaign=campaign, customers=Customer.objects.all(), by=manager)
    added = services._insert_in_batches(campaign=campaign, ids=ids, by=manager, now=timezone.now())
    assert added == 4
    assert campaign.members.count() == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="INSERT … SELECT … ON CONFLICT is the PostgreSQL path")
def test_on_postgresql_targets_are_added_in_one_statement(manager, campaign, django_assert_max_num_queries):
    tag = TagFactory()
    for made in CustomerFactory.create_batch(30):
        made.tags.add(tag)
    with django_assert_max_num_queries(8) as captured:
        added = services.campaign_add_targets(
            campaign=campaign, customers=Customer.objects.filter(tags=tag), by=manager
        )
    assert added == 30
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0]


@pytest.mark.parametrize("status", ["finished", "cancelled"])
def test_it_refuses_targets_for_a_finished_or_cancelled_campaign(manager, campaign, status):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    CustomerFactory()
    with pytest.raises(ValidationError):
        services.campaign_add_targets(campaign=campaign, customers=Customer.objects.all(), by=manager)
    assert not campaign.members.exists()


def test_a_sales_rep_cannot_add_targets(sales_rep, campaign, customer):
    with pytest.raises(PermissionDenied):
        services.campaign_add_targets(campaign=campaign, customers=Customer.objects.all(), by=sales_rep)


def test_the_preview_counts_matching_new_and_existing(manager, campaign, member):
    CustomerFactory.create_batch(2)
    preview = services.target_preview(campaign=campaign, customers=Customer.objects.all(), by=manager)
    assert preview == {"matching": 3, "new": 2, "existing": 1}


# --- Members -------------------------------------------------------------------------------------


def test_marking_sets_and_clears_the_times(sales_rep, member):
    services.member_mark(member=member, status=RESPONDED, by=sales_rep, note="到场参观")
    member.refresh_from_db()
    assert member.status == RESPONDED and member.responded_at and member.converted_at is None
    responded_at = member.responded_at
    services.member_mark(member=member, status=CONVERTED, by=sales_rep)
    member.refresh_from_db()
    assert member.converted_at and member.responded_at == responded_at and member.note == "到场参观"
    services.member_mark(member=member, status=TARGETED, by=sales_rep)
    member.refresh_from_db()
    assert (member.status, member.responded_at, member.converted_at) == (TARGETED, None, None)


def test_converting_straight_away_records_a_response_too(sales_rep, member):
    services.member_mark(member=member, status=CONVERTED, by=sales_rep)
    member.refresh_from_db()
    assert member.responded_at is not None and member.converted_at is not None


def test_a_rep_cannot_mark_a_member_whose_customer_they_cannot_see(sales_rep, others_member):
    with pytest.raises(PermissionDenied):
        services.member_mark(member=others_member, status=RESPONDED, by=sales_rep)
    others_member.refresh_from_db()
    assert others_member.status == TARGETED


def test_service_staff_cannot_mark(service_agent, member):
    with pytest.raises(PermissionDenied):
        services.member_mark(member=member, status=RESPONDED, by=service_agent)


def test_marking_refuses_an_unknown_status_a_long_note_and_a_cancelled_campaign(sales_rep, member):
    with pytest.raises(ValidationError):
        services.member_mark(member=member, status="won", by=sales_rep)
    with pytest.raises(ValidationError):
        services.member_mark(member=member, status=RESPONDED, by=sales_rep, note="长" * 201)
    Campaign.objects.filter(pk=member.campaign_id).update(status="cancelled")
    with pytest.raises(ValidationError):
        services.member_mark(member=member, status=RESPONDED, by=sales_rep)
    member.refresh_from_db()
    assert member.status == TARGETED


# --- The numbers ---------------------------------------------------------------------------------


def _members(campaign, *statuses):
    for status in statuses:
        CampaignMemberFactory(campaign=campaign, status=status)


def test_the_numbers_are_exact(campaign, django_assert_num_queries):
    _members(campaign, TARGETED, TARGETED, RESPONDED, CONVERTED, CONVERTED, CONVERTED)
    _members(CampaignFactory(), CONVERTED)  # another campaign's member counts there only
    with django_assert_num_queries(1):
        stats = services.campaign_stats(campaign)
    assert (stats.reached, stats.responded, stats.converted) == (6, 4, 3)
    assert (stats.response_rate, stats.conversion_rate) == (Decimal("66.7"), Decimal("50.0"))
    assert stats.cost == Decimal("10000.00")  # no actual cost yet: the budget
    assert stats.cost_per_conversion == Decimal("3333.33")
    Campaign.objects.filter(pk=campaign.pk).update(actual_cost=Decimal("12500.00"))
    campaign.refresh_from_db()
    stats = services.campaign_stats(campaign)
    assert (stats.cost, stats.cost_per_conversion, stats.over_budget) == (
        Decimal("12500.00"),
        Decimal("4166.67"),
        True,
    )


def test_without_conversions_there_is_no_cost_per_conversion(campaign):
    stats = services.campaign_stats(campaign)
    assert (stats.reached, stats.response_rate, stats.cost_per_conversion) == (0, None, None)
    _members(campaign, RESPONDED)
    assert services.campaign_stats(campaign).cost_per_conversion is None


def test_the_list_numbers_come_in_one_query_for_the_page(campaign, django_assert_num_queries):
    second = CampaignFactory()
    _members(campaign, TARGETED, CONVERTED)
    _members(second, RESPONDED)
    empty = CampaignFactory()
    with django_assert_num_queries(1):
        services.attach_stats([campaign, second, empty])
    assert (campaign.stats.reached, campaign.stats.converted, campaign.stats.cost_per_conversion) == (
        2,
        1,
        Decimal("10000.00"),
    )
    assert (second.stats.reached, second.stats.responded, empty.stats.reached) == (1, 1, 0)


def test_the_demo_campaigns_have_members_in_every_state(manager):
    CustomerFactory.create_batch(40)
    made = services.seed_demo_campaigns()
    assert len(made) == 2
    statuses = set(CampaignMember.objects.values_list("status", flat=True))
    assert statuses == {TARGETED, RESPONDED, CONVERTED}
    count = CampaignMember.objects.count()
    assert services.seed_demo_campaigns() and CampaignMember.objects.count() == count  # again: nothing new
    assert Campaign.objects.count() == 2


# --- Views: who may do what ----------------------------------------------------------------------


def _urls(campaign, member):
    return [
        ("get", reverse("followups:campaigns")),
        ("get", reverse("followups:campaign_create")),
        ("get", reverse("followups:campaign_detail", args=[campaign.pk])),
        ("get", reverse("followups:campaign_edit", args=[campaign.pk])),
        ("get", reverse("followups:campaign_add_targets", args=[campaign.pk])),
        ("post", reverse("followups:campaign_member_update", args=[member.pk])),
        ("post", reverse("followups:campaign_member_remove", args=[member.pk])),
    ]


def test_anonymous_goes_to_login(client, campaign, member):
    for method, url in _urls(campaign, member):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


@pytest.mark.parametrize("who", ["portal_customer", "service_agent", "analyst"])
def test_roles_without_campaigns_get_403(request, client_for, campaign, member, who):
    client = client_for(request.getfixturevalue(who))
    for method, url in _urls(campaign, member):
        assert getattr(client, method)(url, {"status": RESPONDED}).status_code == 403, url
    member.refresh_from_db()
    assert member.status == TARGETED and CampaignMember.objects.filter(pk=member.pk).exists()


def test_a_sales_rep_reads_campaigns_but_cannot_change_them(sales_rep, client_for, campaign, member):
    client = client_for(sales_rep)
    assert client.get(reverse("followups:campaigns")).status_code == 200
    assert client.get(reverse("followups:campaign_detail", args=[campaign.pk])).status_code == 200
    assert client.get(reverse("followups:campaign_create")).status_code == 403
    assert client.post(reverse("followups:campaign_create"), _values()).status_code == 403
    assert client.get(reverse("followups:campaign_edit", args=[campaign.pk])).status_code == 403
    assert (
        client.post(reverse("followups:campaign_add_targets", args=[campaign.pk]), {"everyone": "on"}).status_code
        == 403
    )
    assert client.post(reverse("followups:campaign_member_remove", args=[member.pk])).status_code == 403
    assert Campaign.objects.count() == 1 and campaign.members.count() == 1


def test_a_missing_campaign_is_404(manager, client_for):
    client = client_for(manager)
    for name in ("campaign_detail", "campaign_edit", "campaign_add_targets"):
        assert client.get(reverse(f"followups:{name}", args=[987654])).status_code == 404, name


def test_a_rep_marking_another_reps_customer_gets_404(sales_rep, client_for, others_member):
    client = client_for(sales_rep)
    response = client.post(reverse("followups:campaign_member_update", args=[others_member.pk]), {"status": RESPONDED})
    assert response.status_code == 404
    others_member.refresh_from_db()
    assert others_member.status == TARGETED


def test_wrong_methods_get_405(manager, client_for, campaign, member):
    client = client_for(manager)
    assert client.get(reverse("followups:campaign_member_update", args=[member.pk])).status_code == 405
    assert client.get(reverse("followups:campaign_member_remove", args=[member.pk])).status_code == 405
    assert client.post(reverse("followups:campaigns")).status_code == 405
    assert client.post(reverse("followups:campaign_detail", args=[campaign.pk])).status_code == 405
    assert client.put(reverse("followups:campaign_create")).status_code == 405


# --- Views: the list and the page ----------------------------------------------------------------


def test_the_list_shows_counts_and_filters(sales_rep, client_for, campaign):
    _members(campaign, TARGETED, RESPONDED, CONVERTED)
    CampaignFactory(name="年终答谢会", kind=Campaign.Kind.SEMINAR, status="finished")
    client = client_for(sales_rep)
    response = client.get(reverse("followups:campaigns"), {"status": "running"})
    assert [c.pk for c in response.context["page"]] == [campaign.pk]
    row = response.context["page"][0]
    assert (row.stats.reached, row.stats.responded, row.stats.converted) == (3, 2, 1)
    response = client.get(reverse("followups:campaigns"), {"q": "答谢", "kind": "seminar"})
    assert [c.name for c in response.context["page"]] == ["年终答谢会"]
    response = client.get(reverse("followups:campaigns"), {"status": "nonsense", "page": "x"})
    assert response.status_code == 200  # a bad filter is a form error, not a 500


def test_the_list_keeps_its_query_budget(manager, client_for, django_assert_max_num_queries):
    for _ in range(30):
        _members(CampaignFactory(), TARGETED, CONVERTED)
    client = client_for(manager)
    # session, user, 2 × permissions, count, page, the page's numbers (+ the session save)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("followups:campaigns"))
    assert len(response.context["page"].object_list) == 25


def test_the_page_shows_the_numbers_of_all_members_but_lists_only_visible_ones(
    sales_rep, client_for, campaign, member, others_member
):
    CampaignMember.objects.filter(pk=others_member.pk).update(status=CONVERTED)
    response = client_for(sales_rep).get(reverse("followups:campaign_detail", args=[campaign.pk]), **EN)
    assert response.status_code == 200
    stats = response.context["stats"]
    assert (stats.reached, stats.responded, stats.converted) == (2, 1, 1)
    assert [m.pk for m in response.context["page"]] == [member.pk]
    html = response.content.decode()
    assert others_member.customer.name not in html
    assert 'data-testid="mark-responded"' in html  # a rep records responses
    assert 'data-testid="member-remove"' not in html and 'data-testid="campaign-edit"' not in html


def test_the_page_filters_members_by_status(manager, client_for, campaign, member, others_member):
    CampaignMember.objects.filter(pk=others_member.pk).update(status=RESPONDED)
    client = client_for(manager)
    response = client.get(reverse("followups:campaign_detail", args=[campaign.pk]), {"status": RESPONDED})
    assert [m.pk for m in response.context["page"]] == [others_member.pk]
    assert client.get(reverse("followups:campaign_detail", args=[campaign.pk]), {"status": "x"}).status_code == 200


def test_the_page_keeps_its_query_budget(sales_rep, client_for, campaign, django_assert_max_num_queries):
    for made in CustomerFactory.create_batch(60, owner=sales_rep):
        CampaignMemberFactory(campaign=campaign, customer=made)
    client = client_for(sales_rep)
    # session, user, 2 × permissions, campaign, headed departments, member count, numbers, members (+ save)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("followups:campaign_detail", args=[campaign.pk]))
    assert len(response.context["page"].object_list) == 50


# --- Views: create and edit ----------------------------------------------------------------------


def _form(**changes):
    values = _values(**changes)
    return {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in values.items()} | {
        "actual_cost": "",
        "description": "展位 A-12",
    }


def test_a_manager_creates_a_campaign(manager, client_for):
    response = client_for(manager).post(reverse("followups:campaign_create"), _form(owner=manager.pk))
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "followups:campaign_detail", args=[campaign.pk]
    )
    assert (campaign.name, campaign.budget, campaign.owner, campaign.actual_cost) == (
        "春季展会",
        Decimal("50000.00"),
        manager,
        None,
    )


def test_the_owner_select_offers_staff_and_defaults_to_the_user(manager, sales_rep, portal_customer, client_for):
    response = client_for(manager).get(reverse("followups:campaign_create"))
    field = response.context["form"].fields["owner"]
    assert field.initial == manager.pk
    offered = set(field.queryset)
    assert {manager, sales_rep} <= offered and portal_customer not in offered


def test_bad_input_gets_messages_not_a_500(manager, client_for):
    with translation.override("en"):
        response = client_for(manager).post(
            reverse("followups:campaign_create"),
            _form(owner=manager.pk, end_date="2026-02-01", budget="-5", kind="nonsense"),
            **EN,
        )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert {"end_date", "budget", "kind"} <= set(errors)
    assert "The end date cannot be before the start date." in errors["end_date"]
    assert not Campaign.objects.exists()


def test_a_manager_edits_a_campaign(manager, client_for, campaign):
    data = _form(owner=manager.pk, name="改名后的活动", status="finished") | {"actual_cost": "9000.00"}
    response = client_for(manager).post(reverse("followups:campaign_edit", args=[campaign.pk]), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status, campaign.actual_cost) == ("改名后的活动", "finished", Decimal("9000.00"))
    assert campaign.history.first().history_user == manager


# --- Views: targets ------------------------------------------------------------------------------


@pytest.fixture
def tagged(sales_rep):
    tag = TagFactory(name="展会意向")
    made = CustomerFactory.create_batch(3, owner=sales_rep)
    for one in made:
        one.tags.add(tag)
    CustomerFactory(owner=sales_rep)  # not tagged
    return tag, made


def test_the_preview_counts_before_adding(manager, client_for, campaign, tagged):
    tag, made = tagged
    CampaignMemberFactory(campaign=campaign, customer=made[0])
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    response = client_for(manager).get(url, {"tag": tag.pk}, **HTMX)
    assert response.status_code == 200
    assert response.context["preview"] == {"matching": 3, "new": 2, "existing": 1}
    assert 'data-testid="target-preview"' in response.content.decode()
    assert "<html" not in response.content.decode()  # the fragment only
    assert campaign.members.count() == 1  # a GET adds nothing


def test_a_manager_adds_customers_by_tag_and_filter(manager, client_for, campaign, tagged):
    tag, made = tagged
    Customer.objects.filter(pk=made[2].pk).update(status=Customer.Status.WON)
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    response = client_for(manager).post(url, {"tag": tag.pk, "status": Customer.Status.PROSPECT})
    assert response.status_code == 302
    assert set(campaign.members.values_list("customer_id", flat=True)) == {made[0].pk, made[1].pk}


def test_a_manager_adds_customers_found_by_name(manager, client_for, campaign, tagged):
    wanted = CustomerFactory(name="杭州云帆科技有限公司")
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    response = client_for(manager).post(url, {"q": "云帆"})
    assert response.status_code == 302
    assert list(campaign.members.values_list("customer_id", flat=True)) == [wanted.pk]


def test_adding_needs_a_filter_or_the_everyone_tick(manager, client_for, campaign, tagged):
    client = client_for(manager)
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    with translation.override("en"):
        response = client.post(url, {}, **EN)
    assert response.status_code == 422
    assert "Choose at least one filter" in response.content.decode()
    assert not campaign.members.exists()
    assert client.post(url, {"everyone": "on"}).status_code == 302
    assert campaign.members.count() == 4


def test_a_bad_filter_value_is_an_error_not_a_wider_target(manager, client_for, campaign, tagged):
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    response = client_for(manager).post(url, {"tag": "abc", "everyone": "on", "created_from": "2026-13-45"})
    assert response.status_code == 422
    assert {"tag", "created_from"} <= set(response.context["form"].errors)
    assert not campaign.members.exists()


def test_a_finished_campaign_takes_no_more_customers(manager, client_for, campaign, tagged):
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")
    url = reverse("followups:campaign_add_targets", args=[campaign.pk])
    with translation.override("en"):
        response = client_for(manager).post(url, {"everyone": "on"}, **EN)
    assert response.status_code == 422
    assert "can no longer be added" in response.content.decode()
    assert not campaign.members.exists()


# --- Views: marking and removing members ---------------------------------------------------------


def test_a_rep_marks_their_customer_with_htmx_and_gets_the_row_and_the_numbers(sales_rep, client_for, member):
    url = reverse("followups:campaign_member_update", args=[member.pk])
    response = client_for(sales_rep).post(url, {"status": CONVERTED, "note": "签约"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="member-row"' in html and 'hx-swap-oob="true"' in html
    assert 'data-testid="stat-converted">1<' in html
    member.refresh_from_db()
    assert (member.status, member.note) == (CONVERTED, "签约") and member.responded_at and member.converted_at


def test_marking_without_htmx_redirects_to_the_campaign(sales_rep, client_for, member):
    url = reverse("followups:campaign_member_update", args=[member.pk])
    response = client_for(sales_rep).post(url, {"status": RESPONDED})
    assert response.status_code == 302
    assert response["Location"] == reverse("followups:campaign_detail", args=[member.campaign_id])
    member.refresh_from_db()
    assert member.status == RESPONDED


def test_a_bad_status_is_a_message_not_a_500(sales_rep, client_for, member):
    url = reverse("followups:campaign_member_update", args=[member.pk])
    client = client_for(sales_rep)
    response = client.post(url, {"status": "won"}, **HTMX)
    assert response.status_code == 200 and 'data-testid="member-error"' in response.content.decode()
    response = client.post(url, {}, follow=True)
    assert response.status_code == 200
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    member.refresh_from_db()
    assert member.status == TARGETED


def test_a_manager_removes_a_member(manager, client_for, member):
    response = client_for(manager).post(reverse("followups:campaign_member_remove", args=[member.pk]), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="member-row"' not in html and 'data-testid="stat-reached">0<' in html
    assert not CampaignMember.objects.filter(pk=member.pk).exists()


def test_it_counts_the_numbers_in_one_aggregate_on_the_page(manager, client_for, campaign, member):
    """The page's numbers are one aggregate over the members, whatever their number."""
    _members(campaign, RESPONDED, CONVERTED)
    with CaptureQueriesContext(connection) as captured:
        client_for(manager).get(reverse("followups:campaign_detail", args=[campaign.pk]))
    aggregates = [
        q["sql"] for q in captured.captured_queries if "followups_campaignmember" in q["sql"] and "COUNT" in q["sql"]
    ]
    # one for the numbers, one for the paginator's count of the member list
    assert len(aggregates) == 2
