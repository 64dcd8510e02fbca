"""The lottery's staff pages: the list, a draft's form, the detail page with its steps, the winners
and their export — each walked as anonymous, a role that must be refused, a wrong method, bad input
and the happy path."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from cims.models import PersonalDataAccess
from cims.normalize import format_phone
from customers.models import Customer, CustomerLevel
from lottery.models import LotteryEvent, LotteryLog, LotteryWinner
from lottery.services import event_draw, event_publish, event_set_public_value
from tests.customers.factories import CustomerFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db
WON = Customer.Status.WON
S = LotteryEvent.Status


@pytest.fixture
def customers(sales_rep, other_sales_rep):
    mine = [CustomerFactory(status=WON, owner=sales_rep, name=f"张伟{i}") for i in range(6)]
    theirs = [CustomerFactory(status=WON, owner=other_sales_rep, name=f"王芳{i}") for i in range(6)]
    return mine + theirs


@pytest.fixture
def draft(administrator):
    return make_event(by=administrator)


@pytest.fixture
def published(administrator, customers):
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    event.refresh_from_db()
    return event


@pytest.fixture
def drawn(administrator, published):
    event_draw(event=published, by=administrator)
    published.refresh_from_db()
    return published


def _login_url(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _form_data(**overrides) -> dict:
    """What the form posts for a new draft with two tiers and a VIP weight of 3."""
    vip = CustomerLevel.objects.get(name="VIP")
    data = {
        "name": "2026 年末客户答谢抽奖",
        "year": "2026",
        "description": "感谢一年来的支持",
        "statuses": [WON],
        "min_amount": "",
        "created_before": "",
        "exclude_employees": "on",
        "tiers-TOTAL_FORMS": "3",
        "tiers-INITIAL_FORMS": "0",
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "50",
        "tiers-0-name": "一等奖",
        "tiers-0-prize": "笔记本电脑",
        "tiers-0-quantity": "1",
        "tiers-0-draw_order": "1",
        "tiers-1-name": "参与奖",
        "tiers-1-prize": "保温杯",
        "tiers-1-quantity": "10",
        "tiers-1-draw_order": "",
        "tiers-2-name": "",
        "tiers-2-prize": "",
        "tiers-2-quantity": "",
        "tiers-2-draw_order": "",
    }
    for level in CustomerLevel.objects.filter(is_active=True):
        data[f"weight_{level.pk}"] = "3" if level.pk == vip.pk else "1"
    data.update(overrides)
    return data


# --- The list -------------------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(client, draft):
    for url in (
        reverse("lottery:list"),
        reverse("lottery:create"),
        reverse("lottery:detail", args=[draft.pk]),
        reverse("lottery:edit", args=[draft.pk]),
        reverse("lottery:winners", args=[draft.pk]),
        reverse("lottery:winners_export", args=[draft.pk]),
    ):
        assert _login_url(client.get(url)), url
    for url in (
        reverse("lottery:delete", args=[draft.pk]),
        reverse("lottery:publish", args=[draft.pk]),
        reverse("lottery:public_value", args=[draft.pk]),
        reverse("lottery:announce", args=[draft.pk]),
    ):
        assert _login_url(client.post(url)), url
    assert LotteryEvent.objects.filter(pk=draft.pk, status=S.DRAFT).exists()


def test_it_refuses_the_list_to_portal_customers_and_users_without_a_role(
    client_for, portal_customer, roleless_user, draft
):
    for user in (portal_customer, roleless_user):
        assert client_for(user).get(reverse("lottery:list")).status_code == 403
        assert client_for(user).get(reverse("lottery:detail", args=[draft.pk])).status_code == 403


def test_it_lists_every_event_for_staff_with_a_bounded_query_count(
    client_for, sales_rep, administrator, published, django_assert_max_num_queries
):
    make_event(by=administrator, name="2025 抽奖", year=2025)
    make_event(by=administrator, name="另一场", year=2024)
    client = client_for(sales_rep)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("lottery:list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="event-row"') == 3
    assert 'data-status="published"' in html and 'data-status="draft"' in html
    assert 'data-testid="event-new"' not in html  # sales may look, not create


def test_it_offers_the_new_button_to_administrators(client_for, administrator):
    response = client_for(administrator).get(reverse("lottery:list"))
    assert 'data-testid="event-new"' in response.content.decode()
    assert 'data-testid="event-empty"' in response.content.decode()


def test_it_answers_405_to_a_post_on_the_list(client_for, administrator):
    assert client_for(administrator).post(reverse("lottery:list")).status_code == 405


# --- Create ---------------------------------------------------------------------------------------


def test_it_refuses_the_create_page_to_managers(client_for, manager):
    client = client_for(manager)
    assert client.get(reverse("lottery:create")).status_code == 403
    assert client.post(reverse("lottery:create"), _form_data()).status_code == 403
    assert not LotteryEvent.objects.exists()


def test_it_answers_405_to_a_put_on_the_create_page(client_for, administrator):
    assert client_for(administrator).put(reverse("lottery:create")).status_code == 405


def test_it_offers_a_new_draft_with_the_defaults(client_for, administrator):
    response = client_for(administrator).get(reverse("lottery:create"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["year"].value() == timezone.localdate().year
    assert form["statuses"].value() == [WON]
    assert form["exclude_employees"].value() is True
    html = response.content.decode()
    assert html.count('data-testid="tier-row"') == 4  # three blank rows and the add-a-row template
    assert "lottery-form.js" in html


def test_it_creates_a_draft_with_its_rules_weights_and_tiers(client_for, administrator):
    vip = CustomerLevel.objects.get(name="VIP")
    data = _form_data(levels=[vip.pk], min_amount="1000", created_before="2026-06-01")
    response = client_for(administrator).post(reverse("lottery:create"), data)
    event = LotteryEvent.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("lottery:detail", args=[event.pk])
    assert event.status == S.DRAFT and event.year == 2026 and event.statuses == [WON]
    assert str(event.min_amount) == "1000.00" and event.created_before.isoformat() == "2026-06-01"
    assert list(event.levels.all()) == [vip]
    assert dict(event.weights.values_list("level__name", "weight")) == {"VIP": 3}  # weight 1 is not stored
    assert [(t.name, t.quantity, t.draw_order) for t in event.tiers.order_by("draw_order")] == [
        ("一等奖", 1, 1),
        ("参与奖", 10, 2),  # an empty draw order is the row's place
    ]
    assert LotteryLog.objects.filter(event=event, action="created", user=administrator).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {
                "tiers-0-name": "",
                "tiers-0-prize": "",
                "tiers-0-quantity": "",
                "tiers-1-name": "",
                "tiers-1-prize": "",
                "tiers-1-quantity": "",
            },
            None,
        ),
        ({"tiers-1-name": "一等奖"}, "tiers"),
        ({"tiers-0-quantity": "0"}, "tiers"),
        ({"tiers-0-quantity": "abc"}, "tiers"),
        ({"tiers-0-prize": ""}, "tiers"),
        ({"statuses": []}, "statuses"),
        ({"year": "1999"}, "year"),
        ({"name": ""}, "name"),
        ({"min_amount": "-5"}, "min_amount"),
        ({"created_before": "2026-13-40"}, "created_before"),
    ],
)
def test_it_shows_form_errors_and_saves_nothing(client_for, administrator, overrides, field):
    response = client_for(administrator).post(reverse("lottery:create"), _form_data(**overrides))
    assert response.status_code == 200
    assert 'data-testid="form-errors"' in response.content.decode()
    if field and field != "tiers":
        assert field in response.context["form"].errors
    elif field == "tiers":
        assert response.context["formset"].total_error_count()
    else:
        assert response.context["formset"].non_form_errors()
    assert not LotteryEvent.objects.exists()


def test_it_refuses_a_weight_out_of_range(client_for, administrator):
    vip = CustomerLevel.objects.get(name="VIP")
    for bad in ("0", "101", "x", ""):
        response = client_for(administrator).post(reverse("lottery:create"), _form_data(**{f"weight_{vip.pk}": bad}))
        assert response.status_code == 200 and f"weight_{vip.pk}" in response.context["form"].errors
    assert not LotteryEvent.objects.exists()


def test_it_refuses_a_second_event_of_the_same_name_and_year(client_for, administrator, draft):
    response = client_for(administrator).post(reverse("lottery:create"), _form_data(name=draft.name))
    assert response.status_code == 200 and "name" in response.context["form"].errors
    assert LotteryEvent.objects.count() == 1


def test_it_survives_a_forged_management_form(client_for, administrator):
    client = client_for(administrator)
    for forged in ({"tiers-TOTAL_FORMS": "abc"}, {"tiers-TOTAL_FORMS": "100000"}):
        response = client.post(reverse("lottery:create"), _form_data(**forged))
        assert response.status_code == 200
    data = _form_data()
    del data["tiers-TOTAL_FORMS"]
    response = client.post(reverse("lottery:create"), data)
    assert response.status_code == 200 and response.context["formset"].non_form_errors()
    assert not LotteryEvent.objects.exists()


# --- Edit -----------------------------------------------------------------------------------------


def test_it_refuses_the_edit_page_to_managers(client_for, manager, draft):
    assert client_for(manager).get(reverse("lottery:edit", args=[draft.pk])).status_code == 403


def test_it_answers_404_for_an_unknown_event(client_for, administrator):
    assert client_for(administrator).get(reverse("lottery:edit", args=[999999])).status_code == 404
    assert client_for(administrator).get(reverse("lottery:detail", args=[999999])).status_code == 404


def test_it_answers_405_to_a_delete_on_the_edit_page(client_for, administrator, draft):
    assert client_for(administrator).delete(reverse("lottery:edit", args=[draft.pk])).status_code == 405


def test_it_edits_a_draft_and_replaces_its_tiers(client_for, administrator, draft):
    client = client_for(administrator)
    response = client.get(reverse("lottery:edit", args=[draft.pk]))
    assert response.status_code == 200
    assert response.context["form"]["name"].value() == draft.name
    assert response.context["formset"].initial[0]["name"] == "一等奖"
    data = _form_data(name="改过的名字", **{"tiers-INITIAL_FORMS": "0"})
    response = client.post(reverse("lottery:edit", args=[draft.pk]), data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.name == "改过的名字"
    assert sorted(draft.tiers.values_list("name", flat=True)) == ["一等奖", "参与奖"]


def test_it_refuses_and_logs_a_get_of_the_edit_page_after_publishing(client_for, administrator, published):
    url = reverse("lottery:edit", args=[published.pk])
    response = client_for(administrator).get(url, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.redirect_chain[-1][0] == reverse("lottery:detail", args=[published.pk])
    assert any("published" in m for m in _messages(response))
    assert LotteryLog.objects.filter(event=published, action="refused", user=administrator).count() == 1


def test_it_refuses_and_logs_an_edit_posted_after_publishing(client_for, administrator, published):
    response = client_for(administrator).post(reverse("lottery:edit", args=[published.pk]), _form_data(name="改名"))
    assert response.status_code == 302 and response["Location"] == reverse("lottery:detail", args=[published.pk])
    published.refresh_from_db()
    assert published.name != "改名" and published.tiers.count() == 3
    assert LotteryLog.objects.filter(event=published, action="refused").count() == 1


# --- Detail ---------------------------------------------------------------------------------------


def test_it_shows_a_draft_with_the_live_count_to_the_administrator(client_for, administrator, draft, customers):
    CustomerFactory(status=Customer.Status.PROSPECT)
    vip = CustomerLevel.objects.get(name="VIP")
    Customer.objects.filter(pk=customers[0].pk).update(level=vip)
    draft.weights.create(level=vip, weight=3)
    response = client_for(administrator).get(reverse("lottery:detail", args=[draft.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["live"] == {"count": 12, "total_weight": 14}
    assert 'data-testid="live-entries">12<' in html and 'data-testid="live-weight">14<' in html
    for testid in ("event-edit", "event-publish", "event-delete", "event-log"):
        assert f'data-testid="{testid}"' in html, testid
    assert 'data-testid="public-link"' not in html  # nothing public before publishing
    assert 'data-state="current"' in html and 'data-step="draft" data-state="current"' in html


def test_it_shows_a_sales_rep_the_event_without_actions_or_log(client_for, sales_rep, draft):
    response = client_for(sales_rep).get(reverse("lottery:detail", args=[draft.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    for testid in ("event-edit", "event-publish", "event-delete", "event-log", "show-link"):
        assert f'data-testid="{testid}"' not in html, testid
    assert html.count('data-testid="tier-row"') == 3


def test_it_shows_what_was_published(client_for, administrator, published):
    html = client_for(administrator).get(reverse("lottery:detail", args=[published.pk])).content.decode()
    assert published.list_hash in html and published.commitment in html
    assert 'data-testid="fact-entries">12<' in html
    assert 'data-testid="public-value-form"' in html and 'data-testid="show-link"' in html
    assert 'data-testid="public-link"' in html
    assert 'data-testid="event-edit"' not in html and 'data-testid="event-publish"' not in html


def test_it_answers_405_to_a_post_on_the_detail_page(client_for, administrator, draft):
    assert client_for(administrator).post(reverse("lottery:detail", args=[draft.pk])).status_code == 405


# --- Delete ---------------------------------------------------------------------------------------


def test_it_refuses_deleting_to_managers(client_for, manager, draft):
    assert client_for(manager).post(reverse("lottery:delete", args=[draft.pk])).status_code == 403
    assert LotteryEvent.objects.filter(pk=draft.pk).exists()


def test_it_answers_405_to_a_get_of_delete(client_for, administrator, draft):
    assert client_for(administrator).get(reverse("lottery:delete", args=[draft.pk])).status_code == 405


def test_it_deletes_a_draft(client_for, administrator, draft):
    response = client_for(administrator).post(reverse("lottery:delete", args=[draft.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("lottery:list")
    assert not LotteryEvent.objects.filter(pk=draft.pk).exists()


def test_it_refuses_to_delete_a_published_event(client_for, administrator, published):
    response = client_for(administrator).post(reverse("lottery:delete", args=[published.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("lottery:detail", args=[published.pk])
    assert LotteryEvent.objects.filter(pk=published.pk).exists()
    assert LotteryLog.objects.filter(event=published, action="refused").exists()


# --- Publish --------------------------------------------------------------------------------------


def test_it_refuses_publishing_to_managers(client_for, manager, draft, customers):
    assert client_for(manager).post(reverse("lottery:publish", args=[draft.pk])).status_code == 403
    draft.refresh_from_db()
    assert draft.status == S.DRAFT


def test_it_answers_405_to_a_get_of_publish(client_for, administrator, draft):
    assert client_for(administrator).get(reverse("lottery:publish", args=[draft.pk])).status_code == 405


def test_it_publishes_once(client_for, administrator, draft, customers):
    client = client_for(administrator)
    response = client.post(reverse("lottery:publish", args=[draft.pk]))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == S.PUBLISHED and draft.entry_count == 12 and draft.published_by == administrator
    response = client.post(reverse("lottery:publish", args=[draft.pk]), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert any("already been published" in m for m in _messages(response))
    assert LotteryLog.objects.filter(event=draft, action="refused").count() == 1


def test_it_explains_why_a_lottery_with_no_eligible_customer_cannot_be_published(client_for, administrator, draft):
    url = reverse("lottery:publish", args=[draft.pk])
    response = client_for(administrator).post(url, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert any("No customer meets the rules" in m for m in _messages(response))
    draft.refresh_from_db()
    assert draft.status == S.DRAFT and not draft.entries.exists()


# --- The public value -----------------------------------------------------------------------------


def test_it_refuses_the_public_value_to_managers(client_for, manager, published):
    response = client_for(manager).post(reverse("lottery:public_value", args=[published.pk]), {"value": "1 2 3"})
    assert response.status_code == 403


def test_it_answers_405_to_a_get_of_the_public_value(client_for, administrator, published):
    assert client_for(administrator).get(reverse("lottery:public_value", args=[published.pk])).status_code == 405


def test_it_records_the_public_value_exactly_as_typed(client_for, administrator, published):
    value = "福彩3D 2026352期:  4 0 7"
    response = client_for(administrator).post(reverse("lottery:public_value", args=[published.pk]), {"value": value})
    assert response.status_code == 302
    published.refresh_from_db()
    assert published.public_value == value and published.public_value_by == administrator


@pytest.mark.parametrize("value", [" 407", "407 ", "", "4\n0", "x" * 2000])
def test_it_refuses_a_public_value_it_cannot_use_as_is(client_for, administrator, published, value):
    response = client_for(administrator).post(reverse("lottery:public_value", args=[published.pk]), {"value": value})
    assert response.status_code == 400
    assert response.context["public_value_form"].errors["value"]
    published.refresh_from_db()
    assert published.public_value == "" and published.public_value_at is None


def test_it_refuses_a_second_public_value(client_for, administrator, published):
    event_set_public_value(event=published, by=administrator, value="407")
    response = client_for(administrator).post(reverse("lottery:public_value", args=[published.pk]), {"value": "123"})
    assert response.status_code == 302
    published.refresh_from_db()
    assert published.public_value == "407"
    assert LotteryLog.objects.filter(event=published, action="refused").exists()


def test_it_refuses_a_public_value_on_a_draft(client_for, administrator, draft):
    response = client_for(administrator).post(reverse("lottery:public_value", args=[draft.pk]), {"value": "407"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.public_value == ""


# --- Announce -------------------------------------------------------------------------------------


def test_it_refuses_announcing_to_managers(client_for, manager, drawn):
    assert client_for(manager).post(reverse("lottery:announce", args=[drawn.pk])).status_code == 403


def test_it_answers_405_to_a_get_of_announce(client_for, administrator, drawn):
    assert client_for(administrator).get(reverse("lottery:announce", args=[drawn.pk])).status_code == 405


def test_it_announces_a_drawn_lottery(client_for, administrator, drawn, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(administrator).post(reverse("lottery:announce", args=[drawn.pk]))
    assert response.status_code == 302
    drawn.refresh_from_db()
    assert drawn.status == S.ANNOUNCED and drawn.announced_by == administrator
    assert not LotteryWinner.objects.filter(event=drawn, notified_at__isnull=True).exists()


def test_it_refuses_to_announce_before_the_draw(client_for, administrator, published):
    url = reverse("lottery:announce", args=[published.pk])
    response = client_for(administrator).post(url, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert any("Only a drawn lottery" in m for m in _messages(response))
    published.refresh_from_db()
    assert published.status == S.PUBLISHED


# --- Winners --------------------------------------------------------------------------------------


def test_it_has_no_winners_page_before_the_draw(client_for, administrator, published):
    draft = make_event(by=administrator, name="另一场抽奖")
    client = client_for(administrator)
    for event in (draft, published):
        assert client.get(reverse("lottery:winners", args=[event.pk])).status_code == 404
        assert client.get(reverse("lottery:winners_export", args=[event.pk])).status_code == 404


def test_it_refuses_the_winners_to_portal_customers(client_for, portal_customer, drawn):
    assert client_for(portal_customer).get(reverse("lottery:winners", args=[drawn.pk])).status_code == 403


def test_it_answers_405_to_a_post_on_the_winners(client_for, administrator, drawn):
    assert client_for(administrator).post(reverse("lottery:winners", args=[drawn.pk])).status_code == 405
    assert client_for(administrator).post(reverse("lottery:winners_export", args=[drawn.pk])).status_code == 405


def test_it_masks_the_winners_for_a_sales_rep_and_links_only_their_customers(
    client_for, sales_rep, drawn, customers, django_assert_max_num_queries
):
    client = client_for(sales_rep)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("lottery:winners", args=[drawn.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    winners = list(LotteryWinner.objects.filter(event=drawn).select_related("customer"))
    assert html.count('data-testid="winner-row"') == len(winners) == 6
    for winner in winners:
        assert winner.customer.name not in html
        assert winner.customer.mobile not in html and winner.customer.mobile[-4:] in html
    assert 'data-testid="winners-masked"' in html and 'data-testid="winners-export"' not in html
    mine = {c.pk for c in customers if c.owner_id == sales_rep.pk}
    linked = {row["customer_id"] for row in response.context["rows"] if row["linked"]}
    assert linked == {w.customer_id for w in winners if w.customer_id in mine}
    for customer_id in linked:
        assert reverse("customers:detail", args=[customer_id]) in html
    for winner in winners:
        if winner.customer_id not in mine:
            assert reverse("customers:detail", args=[winner.customer_id]) not in html


def test_it_shows_the_winners_in_full_to_a_manager(client_for, manager, drawn):
    html = client_for(manager).get(reverse("lottery:winners", args=[drawn.pk])).content.decode()
    for winner in LotteryWinner.objects.filter(event=drawn).select_related("customer"):
        assert winner.customer.name in html and format_phone(winner.customer.mobile) in html
        assert reverse("customers:detail", args=[winner.customer_id]) in html
    assert 'data-testid="winners-full"' in html and 'data-testid="winners-export"' in html


# --- Export ---------------------------------------------------------------------------------------


def test_it_refuses_the_export_to_sales(client_for, sales_rep, drawn):
    assert client_for(sales_rep).get(reverse("lottery:winners_export", args=[drawn.pk])).status_code == 403
    assert not PersonalDataAccess.objects.exists()
    assert not LotteryLog.objects.filter(event=drawn, action="exported").exists()


def test_it_exports_the_winners_in_full_and_logs_it(client_for, manager, drawn):
    response = client_for(manager).get(reverse("lottery:winners_export", args=[drawn.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment;" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]  # full names and phones: no cached copy
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=5)]
    winners = list(LotteryWinner.objects.filter(event=drawn).select_related("customer", "entry", "tier"))
    assert len(values) == 6
    assert {row[6] for row in values} == {w.customer.name for w in winners}
    assert {row[4] for row in values} == {w.entry.entry_id for w in winners}
    access = PersonalDataAccess.objects.get()
    assert access.user == manager and access.action == "export" and access.rows == 6 and access.masked is False
    assert access.object_type == "lottery.event" and access.object_id == str(drawn.pk)
    log = LotteryLog.objects.get(event=drawn, action="exported")
    assert log.user == manager and log.detail == "rows=6"
