"""Sales opportunities (商机): the stage rules, winning (status change, contract, transaction) and the views."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from customers.models import Contract, Customer, StatusChange, Transaction
from followups import opportunities as services
from followups.models import Opportunity
from followups.services import customer_timeline
from tests.customers.factories import ContractFactory, CustomerFactory
from tests.followups.factories import OpportunityFactory

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep)


@pytest.fixture
def opportunity(customer):
    return OpportunityFactory(customer=customer)


# --- Services ------------------------------------------------------------------------------------


def test_it_creates_an_opportunity_with_the_stage_probability(sales_rep, customer):
    opportunity = services.opportunity_create(
        customer=customer, by=sales_rep, title="ERP 项目", amount=Decimal("88000"), stage="proposal"
    )
    assert opportunity.owner == sales_rep
    assert opportunity.probability == 50
    assert opportunity.history.count() == 1
    assert opportunity.history.first().history_user == sales_rep


def test_it_keeps_an_edited_probability(sales_rep, customer):
    opportunity = services.opportunity_create(customer=customer, by=sales_rep, title="ERP", probability=42)
    assert opportunity.probability == 42


def test_it_refuses_a_negative_amount_and_a_probability_over_100(sales_rep, customer):
    with pytest.raises(ValidationError) as error:
        services.opportunity_create(customer=customer, by=sales_rep, title="ERP", amount=Decimal("-1"), probability=101)
    assert set(error.value.message_dict) == {"amount", "probability"}
    assert not Opportunity.objects.exists()


def test_it_refuses_to_open_an_opportunity_as_won(sales_rep, customer):
    with pytest.raises(ValidationError):
        services.opportunity_create(customer=customer, by=sales_rep, title="ERP", stage="won")


def test_service_staff_cannot_create(service_agent, customer):
    with pytest.raises(PermissionDenied):
        services.opportunity_create(customer=customer, by=service_agent, title="ERP")


def test_a_rep_cannot_create_on_another_reps_customer(other_sales_rep, customer):
    with pytest.raises(PermissionDenied):
        services.opportunity_create(customer=customer, by=other_sales_rep, title="ERP")


def test_a_rep_cannot_give_an_opportunity_to_someone_else(sales_rep, other_sales_rep, customer):
    with pytest.raises(ValidationError) as error:
        services.opportunity_create(customer=customer, by=sales_rep, title="ERP", owner=other_sales_rep)
    assert "owner" in error.value.message_dict


def test_a_manager_may_give_an_opportunity_to_a_rep(manager, sales_rep, customer):
    opportunity = services.opportunity_create(customer=customer, by=manager, title="ERP", owner=sales_rep)
    assert opportunity.owner == sales_rep


def test_it_moves_among_open_stages_and_resets_the_probability(sales_rep, opportunity):
    services.opportunity_move(opportunity=opportunity, stage="negotiation", by=sales_rep)
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.probability) == ("negotiation", 75)
    services.opportunity_move(opportunity=opportunity, stage="needs", by=sales_rep)  # back is allowed while open
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.probability) == ("needs", 30)


@pytest.mark.parametrize("stage", ["won", "lost", "nonsense"])
def test_it_refuses_to_move_to_a_closed_or_unknown_stage(sales_rep, opportunity, stage):
    with pytest.raises(ValidationError):
        services.opportunity_move(opportunity=opportunity, stage=stage, by=sales_rep)
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial"


def test_a_lost_opportunity_needs_a_reason(sales_rep, opportunity):
    with pytest.raises(ValidationError) as error:
        services.opportunity_lose(opportunity=opportunity, by=sales_rep, reason="  ")
    assert "reason" in error.value.message_dict
    services.opportunity_lose(opportunity=opportunity, by=sales_rep, reason="价格太高")
    opportunity.refresh_from_db()
    assert (opportunity.stage, opportunity.lost_reason, opportunity.probability) == ("lost", "价格太高", 0)
    assert opportunity.closed_at is not None


def test_a_closed_opportunity_cannot_move_back_or_change(sales_rep, opportunity):
    services.opportunity_lose(opportunity=opportunity, by=sales_rep, reason="预算取消")
    with pytest.raises(ValidationError):
        services.opportunity_move(opportunity=opportunity, stage="initial", by=sales_rep)
    with pytest.raises(ValidationError):
        services.opportunity_win(opportunity=opportunity, by=sales_rep)
    with pytest.raises(ValidationError):
        services.opportunity_update(opportunity=opportunity, by=sales_rep, title="新标题")
    opportunity.refresh_from_db()
    assert opportunity.stage == "lost"


def test_winning_moves_a_prospect_to_won_and_records_a_status_change(sales_rep, customer, opportunity):
    with translation.override("en"):
        result = services.opportunity_win(opportunity=opportunity, by=sales_rep)
    customer.refresh_from_db()
    opportunity.refresh_from_db()
    assert opportunity.stage == "won" and opportunity.probability == 100 and opportunity.closed_at
    assert customer.status == Customer.Status.WON
    change = StatusChange.objects.get(customer=customer)
    assert (change.from_status, change.to_status, change.changed_by) == ("prospect", "won", sales_rep)
    assert change.reason == f"Opportunity won: {opportunity.title}"
    assert result.status_change == change


def test_winning_leaves_an_after_sales_customer_as_it_is(sales_rep):
    customer = CustomerFactory(owner=sales_rep, status=Customer.Status.AFTER_SALES)
    opportunity = OpportunityFactory(customer=customer)
    result = services.opportunity_win(opportunity=opportunity, by=sales_rep)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.AFTER_SALES
    assert result.status_change is None and not StatusChange.objects.exists()


def test_winning_records_the_contract_and_the_transaction(sales_rep, customer, opportunity):
    result = services.opportunity_win(
        opportunity=opportunity,
        by=sales_rep,
        create_contract=True,
        contract={"start_date": datetime.date(2026, 3, 1), "end_date": datetime.date(2027, 2, 28)},
        create_transaction=True,
        transaction_data={"amount": Decimal("30000.00")},
    )
    contract = Contract.objects.get(customer=customer)
    assert result.contract == contract
    assert (contract.title, contract.amount, contract.created_by) == (
        opportunity.title,
        Decimal("100000.00"),
        sales_rep,
    )
    assert contract.number.startswith("HT")
    transaction = Transaction.objects.get(customer=customer)
    assert transaction.amount == Decimal("30000.00") and transaction.created_by == sales_rep


def test_a_bad_contract_leaves_nothing(sales_rep, customer, opportunity):
    with pytest.raises(ValidationError) as error:
        services.opportunity_win(
            opportunity=opportunity,
            by=sales_rep,
            create_contract=True,
            contract={"start_date": datetime.date(2026, 3, 1), "end_date": datetime.date(2026, 1, 1)},
            create_transaction=True,
        )
    assert "contract" in error.value.message_dict
    opportunity.refresh_from_db()
    customer.refresh_from_db()
    assert opportunity.stage == "initial"
    assert customer.status == Customer.Status.PROSPECT
    assert not Contract.objects.exists() and not Transaction.objects.exists() and not StatusChange.objects.exists()


def test_a_duplicate_contract_number_leaves_nothing(sales_rep, customer, opportunity):
    ContractFactory(number="HT-DUP-1")
    with pytest.raises(ValidationError):
        services.opportunity_win(
            opportunity=opportunity, by=sales_rep, create_contract=True, contract={"number": "HT-DUP-1"}
        )
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial" and Contract.objects.count() == 1 and not StatusChange.objects.exists()


def test_a_failing_transaction_save_rolls_back_the_win(sales_rep, customer, opportunity, monkeypatch):
    def explode(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Transaction, "save", explode)
    with pytest.raises(RuntimeError):
        services.opportunity_win(opportunity=opportunity, by=sales_rep, create_contract=True, create_transaction=True)
    opportunity.refresh_from_db()
    customer.refresh_from_db()
    assert opportunity.stage == "initial" and customer.status == Customer.Status.PROSPECT
    assert not Contract.objects.exists() and not StatusChange.objects.exists()


def test_the_timeline_shows_the_opportunity(sales_rep, customer, opportunity, service_agent):
    page = customer_timeline(customer=customer, user=sales_rep)
    assert ("opportunity", opportunity.pk) in [(i.source, i.obj.pk) for i in page.items]
    # Service staff do not view opportunities: the source is left out for them.
    page = customer_timeline(customer=customer, user=service_agent)
    assert "opportunity" not in {i.source for i in page.items}


def test_the_timeline_pages_through_opportunities_by_cursor(sales_rep, customer):
    now = timezone.now()
    made = [OpportunityFactory(customer=customer, created_at=now - datetime.timedelta(minutes=i)) for i in range(5)]
    seen, cursor = [], None
    while True:
        page = customer_timeline(customer=customer, user=sales_rep, cursor=cursor, size=2)
        seen += [i.obj.pk for i in page.items if i.source == "opportunity"]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [o.pk for o in made]


# --- Views ---------------------------------------------------------------------------------------


def test_another_reps_opportunity_is_404(other_sales_rep, client_for, opportunity):
    client = client_for(other_sales_rep)
    for name in ("opportunity_edit", "opportunity_win", "opportunity_lose"):
        assert client.get(reverse(f"followups:{name}", args=[opportunity.pk])).status_code == 404, name
    response = client.post(reverse("followups:opportunity_move", args=[opportunity.pk]), {"stage": "needs"})
    assert response.status_code == 404
    assert client.get(reverse("followups:opportunity_create", args=[opportunity.customer_id])).status_code == 404


def test_service_staff_get_403(service_agent, client_for, opportunity):
    client = client_for(service_agent)
    assert client.get(reverse("followups:opportunity_create", args=[opportunity.customer_id])).status_code == 403
    assert client.get(reverse("followups:pipeline")).status_code == 403
    assert client.get(reverse("followups:opportunities")).status_code == 403


def test_anonymous_goes_to_login(client, opportunity):
    response = client.get(reverse("followups:opportunity_edit", args=[opportunity.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_move_refuses_get(sales_rep, client_for, opportunity):
    assert client_for(sales_rep).get(reverse("followups:opportunity_move", args=[opportunity.pk])).status_code == 405


def test_it_creates_through_the_form(sales_rep, client_for, customer):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_create", args=[customer.pk]),
        {"title": "门店改造", "stage": "needs", "amount": "25000.50", "probability": "", "description": "10 家门店"},
    )
    assert response.status_code == 302
    opportunity = Opportunity.objects.get()
    assert (opportunity.amount, opportunity.probability, opportunity.owner) == (Decimal("25000.50"), 30, sales_rep)


def test_bad_input_shows_messages_not_500(sales_rep, client_for, customer):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_create", args=[customer.pk]),
        {"title": "", "stage": "won", "amount": "abc", "probability": "300"},
        **EN,
    )
    assert response.status_code == 422
    assert not Opportunity.objects.exists()
    assert b"is-invalid" in response.content


def test_it_edits_an_opportunity(sales_rep, client_for, opportunity):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_edit", args=[opportunity.pk]),
        {"title": "改名", "amount": "5", "probability": "33", "description": ""},
    )
    assert response.status_code == 302
    opportunity.refresh_from_db()
    assert (opportunity.title, opportunity.amount, opportunity.probability) == ("改名", Decimal("5.00"), 33)


def test_a_rep_cannot_reassign_through_a_posted_owner(sales_rep, other_sales_rep, client_for, opportunity):
    client_for(sales_rep).post(
        reverse("followups:opportunity_edit", args=[opportunity.pk]),
        {"title": "x", "amount": "5", "probability": "33", "owner": other_sales_rep.pk},
    )
    opportunity.refresh_from_db()
    assert opportunity.owner == sales_rep  # the field is not on a rep's form


def test_move_with_htmx_returns_the_board_with_new_totals(sales_rep, client_for, opportunity):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_move", args=[opportunity.pk]), {"stage": "proposal"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="pipeline-board"' in html
    assert "¥50000.00" in html  # 100,000 × 50 %
    opportunity.refresh_from_db()
    assert opportunity.stage == "proposal"


def test_move_to_won_is_refused_with_a_message(sales_rep, client_for, opportunity):
    with translation.override("en"):
        response = client_for(sales_rep).post(
            reverse("followups:opportunity_move", args=[opportunity.pk]),
            {"stage": "won"},
            HTTP_HX_REQUEST="true",
            **EN,
        )
    assert response.status_code == 200
    assert b"board-error" in response.content
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial"


def test_win_through_the_page_creates_contract_and_transaction(sales_rep, client_for, customer, opportunity):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_win", args=[opportunity.pk]),
        {
            "create_contract": "on",
            "contract-number": "",
            "contract-title": "年度合作",
            "contract-amount": "100000",
            "contract-start_date": "2026-01-01",
            "contract-end_date": "2026-12-31",
            "contract-status": "active",
            "create_transaction": "on",
            "transaction-date": "2026-01-02",
            "transaction-amount": "20000",
            "transaction-product": "首期款",
            "transaction-channel": "offline",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.status == Customer.Status.WON
    assert Contract.objects.filter(customer=customer, title="年度合作").exists()
    assert Transaction.objects.filter(customer=customer, product="首期款").exists()


def test_win_with_a_bad_contract_on_the_page_leaves_nothing(sales_rep, client_for, customer, opportunity):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_win", args=[opportunity.pk]),
        {
            "create_contract": "on",
            "contract-title": "年度合作",
            "contract-amount": "-5",
            "contract-start_date": "2026-05-01",
            "contract-end_date": "2026-01-01",
            "contract-status": "active",
        },
        **EN,
    )
    assert response.status_code == 422
    opportunity.refresh_from_db()
    assert opportunity.stage == "initial" and not Contract.objects.exists() and not StatusChange.objects.exists()


def test_an_unticked_contract_form_is_ignored(sales_rep, client_for, opportunity):
    response = client_for(sales_rep).post(
        reverse("followups:opportunity_win", args=[opportunity.pk]), {"contract-amount": "garbage"}
    )
    assert response.status_code == 302
    assert not Contract.objects.exists()


def test_lose_through_the_page_requires_a_reason(sales_rep, client_for, opportunity):
    client = client_for(sales_rep)
    url = reverse("followups:opportunity_lose", args=[opportunity.pk])
    assert client.post(url, {"reason": ""}).status_code == 422
    assert client.post(url, {"reason": "选择了竞品"}).status_code == 302
    opportunity.refresh_from_db()
    assert opportunity.stage == "lost"
    # A second loss (or a win) of a closed opportunity is refused with a message.
    assert client.post(url, {"reason": "again"}).status_code == 422
    assert client.post(reverse("followups:opportunity_win", args=[opportunity.pk]), {}).status_code == 422


def test_list_filters_by_stage_and_close_date(sales_rep, client_for, customer, django_assert_max_num_queries):
    OpportunityFactory(customer=customer, title="早", expected_close_date=datetime.date(2026, 3, 1))
    OpportunityFactory(customer=customer, title="晚", expected_close_date=datetime.date(2026, 9, 1), stage="needs")
    client = client_for(sales_rep)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("followups:opportunities"), {"close_from": "2026-06-01"})
    html = response.content.decode()
    assert "晚" in html and "早" not in html
    html = client.get(reverse("followups:opportunities"), {"stage": "initial"}).content.decode()
    assert "早" in html and "晚" not in html
    response = client.get(reverse("followups:opportunities"), {"close_from": "bad", "stage": "zzz"})
    assert response.status_code == 200


def test_list_shows_a_rep_only_their_customers(sales_rep, other_sales_rep, client_for, opportunity):
    other = OpportunityFactory(customer=CustomerFactory(owner=other_sales_rep), title="别人的商机")
    html = client_for(sales_rep).get(reverse("followups:opportunities")).content.decode()
    assert opportunity.title in html and other.title not in html


def test_a_manager_filters_the_list_by_rep(manager, sales_rep, other_sales_rep, client_for, opportunity):
    other = OpportunityFactory(customer=CustomerFactory(owner=other_sales_rep), title="别人的商机")
    client = client_for(manager)
    html = client.get(reverse("followups:opportunities")).content.decode()
    assert opportunity.title in html and other.title in html
    html = client.get(reverse("followups:opportunities"), {"rep": other_sales_rep.pk}).content.decode()
    assert opportunity.title not in html and other.title in html


@pytest.mark.django_db(transaction=True)
def test_a_win_and_a_loss_at_once_cannot_both_close_it(sales_rep):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    opportunity = OpportunityFactory(customer=CustomerFactory(owner=sales_rep))
    results, barrier = [], threading.Barrier(2)

    def close(how):
        from django.db import connections

        barrier.wait()
        try:
            fresh = Opportunity.objects.get(pk=opportunity.pk)
            if how == "win":
                services.opportunity_win(opportunity=fresh, by=sales_rep, create_transaction=True)
            else:
                services.opportunity_lose(opportunity=fresh, by=sales_rep, reason="竞品")
            results.append(("ok", how))
        except ValidationError:
            results.append(("refused", how))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=close, args=(how,)) for how in ("win", "lose")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r[0] for r in results) == ["ok", "refused"]
    final = Opportunity.objects.get(pk=opportunity.pk)
    won = ("ok", "win") in results
    assert final.stage == ("won" if won else "lost")
    assert Transaction.objects.count() == (1 if won else 0)


def test_the_360_timeline_shows_the_opportunity(client_for, sales_rep, customer):
    OpportunityFactory(customer=customer, title="二期扩容项目", amount=Decimal("88000.00"))
    page = client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    timeline = page.split('data-testid="timeline"')[1]
    assert "二期扩容项目" in timeline and "88000.00" in timeline
    assert reverse("followups:opportunity_create", args=[customer.pk]) in page
