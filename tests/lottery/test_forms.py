"""The lottery's forms: a draft's rules and weights, the prize table and the public value."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, CustomerLevel
from lottery.forms import MAX_TIER_ROWS, EventForm, PublicValueForm, tier_formset
from lottery.services import TierData
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db
WON = Customer.Status.WON


def event_data(**overrides) -> dict:
    data = {"name": "年末抽奖", "year": "2026", "statuses": [WON], "exclude_employees": "on"}
    for level in CustomerLevel.objects.filter(is_active=True):
        data[f"weight_{level.pk}"] = "1"
    data.update(overrides)
    return data


def tier_data(rows: list[tuple[str, str, str, str]]) -> dict:
    data = {"tiers-TOTAL_FORMS": str(len(rows)), "tiers-INITIAL_FORMS": "0"}
    for i, (name, prize, quantity, order) in enumerate(rows):
        data.update(
            {f"tiers-{i}-name": name, f"tiers-{i}-prize": prize, f"tiers-{i}-quantity": quantity}
            | {f"tiers-{i}-draw_order": order}
        )
    return data


# --- The event ------------------------------------------------------------------------------------


def test_it_starts_a_new_draft_with_this_years_won_customers_and_no_staff():
    form = EventForm()
    assert form["year"].value() == timezone.localdate().year
    assert form["statuses"].value() == [WON]
    assert form["exclude_employees"].value() is True
    assert all(field.value() == 1 for field in form.weight_fields())


def test_it_offers_a_weight_for_each_active_level_only():
    CustomerLevel.objects.filter(name="C").update(is_active=False)
    form = EventForm()
    assert [field.label for field in form.weight_fields()] == ["VIP", "A", "B"]
    assert [label for _pk, label in form.fields["levels"].choices] == ["VIP", "A", "B"]


def test_it_keeps_a_retired_level_the_event_already_uses(administrator):
    c = CustomerLevel.objects.get(name="C")
    event = make_event(by=administrator, levels=[c], weights={c.pk: 4})
    CustomerLevel.objects.filter(pk=c.pk).update(is_active=False)
    form = EventForm(event=event)
    assert form["levels"].value() == [c.pk]
    assert form[f"weight_{c.pk}"].value() == 4


def test_it_gives_the_cleaned_rules_weights_and_levels():
    vip = CustomerLevel.objects.get(name="VIP")
    data = event_data(levels=[vip.pk], min_amount="1000.50", created_before="2026-06-01")
    data[f"weight_{vip.pk}"] = "3"
    form = EventForm(data)
    assert form.is_valid(), form.errors
    fields = form.fields_dict()
    assert fields["statuses"] == [WON] and fields["min_amount"] == Decimal("1000.50")
    assert fields["created_before"] == datetime.date(2026, 6, 1) and fields["exclude_employees"] is True
    assert fields["require_active_contract"] is False
    assert form.levels_chosen() == [vip]
    assert form.weights()[vip.pk] == 3 and set(form.weights().values()) == {1, 3}


@pytest.mark.parametrize("weight", ["0", "101", "-1", "2.5", "三"])
def test_it_refuses_a_weight_outside_one_to_a_hundred(weight):
    vip = CustomerLevel.objects.get(name="VIP")
    form = EventForm(event_data(**{f"weight_{vip.pk}": weight}))
    assert not form.is_valid() and f"weight_{vip.pk}" in form.errors


def test_it_wants_at_least_one_status_and_a_known_one():
    assert "statuses" in EventForm(event_data(statuses=[])).errors
    assert "statuses" in EventForm(event_data(statuses=["vip"])).errors


def test_it_refuses_an_unknown_or_bogus_level():
    assert "levels" in EventForm(event_data(levels=["999999"])).errors
    assert "levels" in EventForm(event_data(levels=["abc"])).errors


def test_it_refuses_the_name_of_another_event_in_the_same_year_but_not_its_own(administrator):
    event = make_event(by=administrator, name="年末抽奖", year=2026)
    assert "name" in EventForm(event_data()).errors
    assert EventForm(event_data(year="2027")).is_valid()
    assert EventForm(event_data(), event=event).is_valid()


# --- The prize table ------------------------------------------------------------------------------


def test_it_skips_blank_rows_and_numbers_an_empty_draw_order_by_the_row():
    formset = tier_formset(
        tier_data([("", "", "", ""), ("特等奖", "汽车", "1", "0"), ("", "", "", "7"), ("参与奖", "保温杯", "100", "")])
    )
    assert formset.is_valid(), formset.errors
    assert formset.tiers() == [TierData("特等奖", "汽车", 1, 0), TierData("参与奖", "保温杯", 100, 2)]


def test_it_wants_name_prize_and_quantity_on_a_row_that_has_any():
    formset = tier_formset(tier_data([("一等奖", "", "", "")]))
    assert not formset.is_valid()
    assert set(formset.forms[0].errors) == {"prize", "quantity"}


@pytest.mark.parametrize("quantity", ["0", "100001", "-3", "x"])
def test_it_refuses_a_quantity_outside_one_to_a_hundred_thousand(quantity):
    formset = tier_formset(tier_data([("一等奖", "电脑", quantity, "1")]))
    assert not formset.is_valid() and "quantity" in formset.forms[0].errors


def test_it_refuses_two_tiers_of_the_same_name():
    formset = tier_formset(tier_data([("一等奖", "电脑", "1", "1"), ("一等奖", "手表", "2", "2")]))
    assert not formset.is_valid()
    assert "name" in formset.forms[1].errors and not formset.forms[0].errors


def test_it_wants_at_least_one_tier():
    formset = tier_formset(tier_data([("", "", "", ""), ("", "", "", "")]))
    assert not formset.is_valid() and formset.non_form_errors()
    formset = tier_formset({"name": "no table at all"})
    assert not formset.is_valid() and formset.non_form_errors()


def test_it_caps_the_rows_a_forged_form_can_make():
    rows = [(f"奖{i}", "奖品", "1", str(i)) for i in range(MAX_TIER_ROWS + 5)]
    formset = tier_formset(tier_data(rows))
    assert not formset.is_valid() and len(formset.forms) <= MAX_TIER_ROWS


def test_it_offers_an_events_tiers_in_draw_order_and_blank_rows(administrator):
    event = make_event(by=administrator, tiers=[TierData("参与奖", "杯子", 5, 3), TierData("特等奖", "汽车", 1, 0)])
    formset = tier_formset(event=event)
    assert [form["name"].value() for form in formset.forms[:2]] == ["特等奖", "参与奖"]
    assert len(formset.forms) == 5 and formset.forms[2]["name"].value() is None


# --- The public value -----------------------------------------------------------------------------


def test_it_keeps_the_public_value_exactly_as_typed():
    value = "福彩3D 第2026352期  4 0 7"
    form = PublicValueForm({"value": value})
    assert form.is_valid() and form.cleaned_data["value"] == value


@pytest.mark.parametrize("value", ["", " 407", "407 ", "4\t0 7", "4\n07", "9" * 1025])
def test_it_refuses_a_public_value_that_cannot_be_used_byte_for_byte(value):
    form = PublicValueForm({"value": value})
    assert not form.is_valid() and form.errors["value"]
