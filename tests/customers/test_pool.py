"""The customer pool (公海): browsing masked, claiming (limit, races), releasing, and the nightly return."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from guardian.shortcuts import assign_perm

from customers import pool
from customers.models import Customer, CustomerLevel, CustomerUserObjectPermission, Province
from followups.models import Notification
from tests.concurrency import run_at_once
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory
from tests.followups.factories import FollowUpFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = datetime.date(2026, 5, 31)
LONG_AGO = datetime.datetime(2025, 1, 1, 9, 0, tzinfo=SHANGHAI)


def login(client, user):
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def history_reasons(customer) -> list[str]:
    return list(
        customer.history.order_by("-history_date", "-history_id").values_list("history_change_reason", flat=True)
    )


# --- The pool page ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_only_unowned_customers_masked_even_for_managers(
    client, manager, sales_rep, django_assert_max_num_queries
):
    assert manager.has_perm("customers.view_personal_data")
    in_pool = CustomerFactory(owner=None, name="无主客户", mobile="+8613812345678")
    CustomerFactory(owner=sales_rep, name="有主客户")
    CustomerFactory(owner=None, name="已删除", deleted_at=LONG_AGO)
    for _ in range(5):
        CustomerFactory(owner=None)
    login(client, manager)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("customers:pool"), HTTP_ACCEPT_LANGUAGE="en")
    body = response.content.decode()
    assert response.status_code == 200
    assert in_pool.name in body and "有主客户" not in body and "已删除" not in body
    assert "138****5678" in body and "13812345678" not in body
    assert len(response.context["page"].object_list) == 6


@pytest.mark.django_db
def test_it_filters_the_pool_by_name_province_and_level(client, sales_rep):
    beijing = Province.objects.get(code="11")
    level = CustomerLevel.objects.create(name="VIP-test")
    wanted = CustomerFactory(owner=None, name="华为技术", province=beijing, level=level)
    CustomerFactory(owner=None, name="华为终端")
    CustomerFactory(owner=None, name="腾讯科技", province=beijing, level=level)
    login(client, sales_rep)
    response = client.get(reverse("customers:pool"), {"q": "华为", "province": beijing.pk, "level": level.pk})
    assert [c.pk for c in response.context["page"].object_list] == [wanted.pk]


@pytest.mark.django_db
def test_it_answers_bad_filters_with_an_empty_list_not_an_error(client, sales_rep):
    CustomerFactory(owner=None)
    login(client, sales_rep)
    response = client.get(reverse("customers:pool"), {"province": "abc", "after": "x'--"})
    assert response.status_code == 200
    assert list(response.context["page"].object_list) == []


@pytest.mark.django_db
def test_it_pages_the_pool(client, sales_rep):
    CustomerFactory.create_batch(32, owner=None)
    login(client, sales_rep)
    first = client.get(reverse("customers:pool"))
    assert len(first.context["page"].object_list) == 30 and first.context["next_query"]
    second = client.get(reverse("customers:pool") + "?" + first.context["next_query"])
    assert len(second.context["page"].object_list) == 2


@pytest.mark.django_db
def test_the_pool_refuses_those_who_may_not_claim(client, service_agent, analyst, portal_customer):
    url = reverse("customers:pool")
    assert client.get(url).status_code == 302
    for user in (service_agent, analyst, portal_customer):
        login(client, user)
        assert client.get(url).status_code == 403
        customer = CustomerFactory(owner=None)
        assert client.post(reverse("customers:pool_claim", args=[customer.pk])).status_code == 403
        assert Customer.objects.get(pk=customer.pk).owner_id is None


# --- Claiming ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_claims_a_customer_from_the_pool_with_a_history_row(client, sales_rep):
    customer = CustomerFactory(owner=None)
    login(client, sales_rep)
    response = client.post(reverse("customers:pool_claim", args=[customer.pk]))
    assert response.status_code == 302 and response.url == reverse("customers:detail", args=[customer.pk])
    customer.refresh_from_db()
    assert customer.owner == sales_rep
    latest = customer.history.order_by("-history_id").first()
    assert latest.history_change_reason == "claimed from pool" and latest.owner_id == sales_rep.pk
    assert latest.history_user_id == sales_rep.pk


@pytest.mark.django_db
def test_claiming_is_refused_beyond_the_limit(client, sales_rep):
    CustomerFactory.create_batch(2, owner=sales_rep)
    customer = CustomerFactory(owner=None)
    login(client, sales_rep)
    with override_settings(POOL_MAX_OWNED=2):
        response = client.post(reverse("customers:pool_claim", args=[customer.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302 and response.url == reverse("customers:pool")
    assert any("the most one person may own" in text for text in texts(response))
    assert Customer.objects.get(pk=customer.pk).owner_id is None


@pytest.mark.django_db
def test_a_customer_someone_owns_cannot_be_claimed(client, sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=other_sales_rep)
    login(client, sales_rep)
    response = client.post(reverse("customers:pool_claim", args=[customer.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert "Someone else claimed this customer first." in texts(response)
    assert Customer.objects.get(pk=customer.pk).owner == other_sales_rep


@pytest.mark.django_db
def test_claiming_needs_post_and_an_existing_customer(client, sales_rep):
    customer = CustomerFactory(owner=None)
    login(client, sales_rep)
    assert client.get(reverse("customers:pool_claim", args=[customer.pk])).status_code == 405
    assert client.post(reverse("customers:pool_claim", args=[999999])).status_code == 404
    deleted = CustomerFactory(owner=None, deleted_at=LONG_AGO)
    assert client.post(reverse("customers:pool_claim", args=[deleted.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_reps_claiming_at_once_cannot_both_win():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    reps = [UserFactory(role="sales") for _ in range(4)]
    customer = CustomerFactory(owner=None)
    queue = list(reps)

    def claim():
        rep = queue.pop()
        with translation.override("en"):  # each thread has its own active language
            try:
                pool.customer_claim(customer_id=customer.pk, by=rep)
            except pool.PoolError as error:
                return ("lost", str(error))
        return ("won", rep.pk)

    results, errors = run_at_once(claim, threads=4)
    assert errors == []
    winners = [r for r in results if r[0] == "won"]
    assert len(winners) == 1
    assert all(r == ("lost", "Someone else claimed this customer first.") for r in results if r[0] == "lost")
    customer.refresh_from_db()
    assert customer.owner_id == winners[0][1]
    assert list(history_reasons(customer)).count("claimed from pool") == 1


@pytest.mark.django_db(transaction=True)
def test_one_rep_claiming_many_at_once_stays_within_the_limit():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    rep = UserFactory(role="sales")
    CustomerFactory(owner=rep)
    customers = list(CustomerFactory.create_batch(4, owner=None))

    def claim():
        try:
            pool.customer_claim(customer_id=customers.pop().pk, by=rep)
        except pool.PoolError:
            return False
        return True

    with override_settings(POOL_MAX_OWNED=2):
        results, errors = run_at_once(claim, threads=4)
    assert errors == [] and results.count(True) == 1
    assert Customer.objects.filter(owner=rep).count() == 2


# --- Releasing ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_owner_releases_a_customer_and_loses_their_shares(client, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assign_perm("customers.view_customer", sales_rep, customer)
    login(client, sales_rep)
    response = client.post(reverse("customers:pool_release", args=[customer.pk]))
    assert response.status_code == 302 and response.url == reverse("customers:pool")
    customer.refresh_from_db()
    assert customer.owner_id is None
    assert not CustomerUserObjectPermission.objects.filter(content_object=customer).exists()
    assert history_reasons(customer)[0] == "released to pool"
    assert pool.pool_customers().filter(pk=customer.pk).exists()


@pytest.mark.django_db
def test_a_manager_releases_anyones_customer(client, manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    login(client, manager)
    response = client.post(reverse("customers:pool_release", args=[customer.pk]))
    assert response.status_code == 302 and response.url == reverse("customers:detail", args=[customer.pk])
    assert Customer.objects.get(pk=customer.pk).owner_id is None


@pytest.mark.django_db
def test_others_may_not_release(client, sales_rep, other_sales_rep, service_agent):
    customer = CustomerFactory(owner=other_sales_rep)
    login(client, sales_rep)
    url = reverse("customers:pool_release", args=[customer.pk])
    assert client.post(url).status_code == 404  # out of reach
    assign_perm("customers.view_customer", sales_rep, customer)
    assign_perm("customers.change_customer", sales_rep, customer)
    assert client.post(url).status_code == 403  # may edit it, but it is not theirs
    assert client.get(url).status_code == 405
    login(client, service_agent)
    assert client.post(url).status_code == 403
    assert Customer.objects.get(pk=customer.pk).owner == other_sales_rep


# --- The nightly return and its warning ---------------------------------------------------------------


def idle_rep_customer(owner, *, last_followup=None, created_at=LONG_AGO):
    customer = CustomerFactory(owner=owner, created_at=created_at)
    if last_followup is not None:
        FollowUpFactory(customer=customer, happened_at=last_followup)
    return customer


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30, POOL_WARNING_DAYS=3)
def test_the_nightly_job_returns_customers_idle_for_the_configured_days(sales_rep):
    day_30 = datetime.datetime(2026, 5, 1, 23, 59, tzinfo=SHANGHAI)  # 30 calendar days before TODAY
    day_29 = datetime.datetime(2026, 5, 2, 0, 0, tzinfo=SHANGHAI)
    idle = idle_rep_customer(sales_rep, last_followup=day_30)
    recent = idle_rep_customer(sales_rep, last_followup=day_29)
    never = idle_rep_customer(sales_rep)
    new = idle_rep_customer(sales_rep, created_at=day_29)
    mixed = idle_rep_customer(sales_rep, last_followup=LONG_AGO)
    FollowUpFactory(customer=mixed, happened_at=day_29)
    assign_perm("customers.change_customer", sales_rep, idle)
    unowned = CustomerFactory(owner=None, created_at=LONG_AGO)

    assert pool.return_idle_customers(today=TODAY) == 2
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    assert owners[idle.pk] is None and owners[never.pk] is None
    assert owners[recent.pk] == owners[new.pk] == owners[mixed.pk] == sales_rep.pk
    assert owners[unowned.pk] is None
    assert history_reasons(idle)[0] == "returned to pool: no follow-up for 30 days"
    assert not CustomerUserObjectPermission.objects.filter(content_object=idle).exists()
    keys = set(Notification.objects.filter(user=sales_rep).values_list("key", flat=True))
    assert keys == {f"pool-return:{idle.pk}:2026-05-31", f"pool-return:{never.pk}:2026-05-31"}
    assert pool.return_idle_customers(today=TODAY) == 0


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30)
def test_a_recent_claim_keeps_a_customer_from_returning(sales_rep):
    customer = CustomerFactory(owner=None, created_at=LONG_AGO)
    pool.customer_claim(customer_id=customer.pk, by=sales_rep)
    assert pool.return_idle_customers() == 0
    assert Customer.objects.get(pk=customer.pk).owner == sales_rep


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30)
def test_a_recent_transfer_restarts_the_idle_clock_for_the_new_owner(manager, sales_rep, other_sales_rep):
    from customers.services import customer_transfer

    handed_over = idle_rep_customer(other_sales_rep, last_followup=LONG_AGO)
    left_alone = idle_rep_customer(other_sales_rep, last_followup=LONG_AGO)
    customer_transfer(customer_ids=[handed_over.pk], to=sales_rep, by=manager)
    assert pool.return_idle_customers() == 1
    owners = dict(Customer.objects.values_list("pk", "owner_id"))
    assert owners[handed_over.pk] == sales_rep.pk and owners[left_alone.pk] is None


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30)
def test_an_open_opportunity_keeps_a_customer_from_returning(sales_rep):
    try:
        opportunity = apps.get_model("followups", "Opportunity")
    except LookupError:
        pytest.skip("followups.Opportunity does not exist yet")
    kept = idle_rep_customer(sales_rep)
    opportunity.objects.create(customer=kept, title="年度采购", owner=sales_rep, stage="negotiation")
    lost = idle_rep_customer(sales_rep)
    opportunity.objects.create(customer=lost, title="已输单", owner=sales_rep, stage="lost")
    assert pool.return_idle_customers(today=TODAY) == 1
    assert Customer.objects.get(pk=kept.pk).owner == sales_rep
    assert Customer.objects.get(pk=lost.pk).owner_id is None


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30, POOL_WARNING_DAYS=3)
def test_owners_are_warned_once_a_few_days_before(sales_rep):
    warn = idle_rep_customer(sales_rep, last_followup=datetime.datetime(2026, 5, 4, 10, 0, tzinfo=SHANGHAI))
    too_early = idle_rep_customer(sales_rep, last_followup=datetime.datetime(2026, 5, 5, 10, 0, tzinfo=SHANGHAI))
    returning = idle_rep_customer(sales_rep, last_followup=datetime.datetime(2026, 5, 1, 10, 0, tzinfo=SHANGHAI))
    assert pool.warn_idle_customers(today=TODAY) == 1
    assert pool.warn_idle_customers(today=TODAY) == 0
    assert pool.warn_idle_customers(today=TODAY + datetime.timedelta(days=1)) == 1  # the next one, a day later
    keys = sorted(Notification.objects.filter(user=sales_rep).values_list("key", flat=True))
    assert keys == [f"pool-warning:{warn.pk}:2026-06-03", f"pool-warning:{too_early.pk}:2026-06-04"]
    assert returning.pk not in {int(k.split(":")[1]) for k in keys}


@pytest.mark.django_db
def test_the_beat_tasks_run_the_pool_jobs(sales_rep):
    from followups import tasks

    idle_rep_customer(sales_rep)
    assert tasks.warn_idle_customers() == 0
    assert tasks.return_idle_customers() == 1


def test_the_owner_finds_the_release_button_on_the_360_page_and_a_colleague_does_not(
    client_for, sales_rep, other_sales_rep
):
    from django.urls import reverse

    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(owner=sales_rep)
    page = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="release"' in page and reverse("customers:pool_release", args=[customer.pk]) in page
    customer.owner = other_sales_rep
    customer.save()
    from customers.services import customer_share

    customer_share(customer=customer, user=sales_rep, can_edit_too=True, by=other_sales_rep)
    page = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="release"' not in page


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30, POOL_WARNING_DAYS=3)
def test_an_erased_customer_never_returns_to_the_pool_nor_is_offered_in_it(sales_rep):
    from django.utils import timezone

    from customers.access import can_edit

    erased = idle_rep_customer(sales_rep)  # idle for ever, but erased on request: it keeps its owner
    erased.erased_at = timezone.now()
    erased.save(update_fields=["erased_at"])
    unowned_erased = CustomerFactory(owner=None, created_at=LONG_AGO, erased_at=timezone.now())
    assert pool.return_idle_customers(today=TODAY) == 0
    assert Customer.objects.get(pk=erased.pk).owner_id == sales_rep.pk
    assert not pool.pool_customers().filter(pk=unowned_erased.pk).exists()
    assert not can_edit(sales_rep, erased)


@pytest.mark.django_db
def test_an_erased_unowned_customer_cannot_be_claimed(sales_rep, client_for):
    from django.utils import timezone

    erased = CustomerFactory(owner=None, erased_at=timezone.now())
    response = client_for(sales_rep).post(reverse("customers:pool_claim", args=[erased.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert Customer.objects.get(pk=erased.pk).owner_id is None
    with pytest.raises(pool.PoolError, match="no longer in the pool"):
        with translation.override("en"):
            pool.customer_claim(customer_id=erased.pk, by=sales_rep)


@pytest.mark.django_db
@override_settings(POOL_IDLE_DAYS=30, POOL_WARNING_DAYS=3)
def test_the_owner_of_an_erased_customer_is_not_warned(sales_rep):
    from django.utils import timezone

    erased = idle_rep_customer(sales_rep, last_followup=datetime.datetime(2026, 5, 3, 12, 0, tzinfo=SHANGHAI))
    erased.erased_at = timezone.now()
    erased.save(update_fields=["erased_at"])
    assert pool.warn_idle_customers(today=TODAY) == 0
