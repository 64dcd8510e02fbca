"""Who may enter a lottery, proved rule by rule on a hand-made set of customers, and the weights by
level carried end to end into the published entry list."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from customers.models import Contract, Customer, CustomerLevel
from lottery.eligibility import eligible_customers
from lottery.models import LotteryEntry
from lottery.services import event_publish
from tests.customers.factories import ContractFactory, CustomerFactory, TransactionFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.django_db
WON = Customer.Status.WON
SHANGHAI = ZoneInfo("Asia/Shanghai")


def names(event) -> set[str]:
    return set(eligible_customers(event).values_list("name", flat=True))


def level(name: str) -> CustomerLevel:
    return CustomerLevel.objects.get(name=name)


def test_it_takes_only_the_chosen_lifecycle_statuses(administrator):
    CustomerFactory(name="成交", status=WON)
    CustomerFactory(name="售后", status=Customer.Status.AFTER_SALES)
    CustomerFactory(name="潜在", status=Customer.Status.PROSPECT)
    CustomerFactory(name="意向", status=Customer.Status.INTENT)
    CustomerFactory(name="流失", status=Customer.Status.LOST)
    assert names(make_event(by=administrator)) == {"成交"}  # the default: 成交客户 only
    both = make_event(by=administrator, name="两种", statuses=[WON, Customer.Status.AFTER_SALES])
    assert names(both) == {"成交", "售后"}


def test_it_takes_only_the_chosen_levels_and_any_level_when_none_is_chosen(administrator):
    CustomerFactory(name="VIP客户", status=WON, level=level("VIP"))
    CustomerFactory(name="A客户", status=WON, level=level("A"))
    CustomerFactory(name="C客户", status=WON, level=level("C"))
    CustomerFactory(name="无级别", status=WON, level=None)
    assert names(make_event(by=administrator)) == {"VIP客户", "A客户", "C客户", "无级别"}
    picked = make_event(by=administrator, name="高级别", levels=[level("VIP"), level("A")])
    assert names(picked) == {"VIP客户", "A客户"}


def test_it_counts_net_purchases_dated_in_the_events_year(administrator):
    enough = CustomerFactory(name="够", status=WON)
    TransactionFactory(customer=enough, date=datetime.date(2026, 1, 1), amount=Decimal("600.00"))
    TransactionFactory(customer=enough, date=datetime.date(2026, 12, 31), amount=Decimal("400.00"))
    refunded = CustomerFactory(name="退款后不够", status=WON)
    TransactionFactory(customer=refunded, date=datetime.date(2026, 3, 1), amount=Decimal("1500.00"))
    TransactionFactory(customer=refunded, date=datetime.date(2026, 4, 1), amount=Decimal("-600.00"))
    last_year = CustomerFactory(name="去年买的", status=WON)
    TransactionFactory(customer=last_year, date=datetime.date(2025, 12, 31), amount=Decimal("5000.00"))
    TransactionFactory(customer=last_year, date=datetime.date(2026, 6, 1), amount=Decimal("999.99"))
    next_year = CustomerFactory(name="明年买的", status=WON)
    TransactionFactory(customer=next_year, date=datetime.date(2027, 1, 1), amount=Decimal("5000.00"))
    refund_last_year = CustomerFactory(name="去年退款不算", status=WON)
    TransactionFactory(customer=refund_last_year, date=datetime.date(2025, 12, 1), amount=Decimal("-800.00"))
    TransactionFactory(customer=refund_last_year, date=datetime.date(2026, 2, 1), amount=Decimal("1000.00"))
    CustomerFactory(name="没买", status=WON)
    event = make_event(by=administrator, min_amount=Decimal("1000.00"))
    assert names(event) == {"够", "去年退款不算"}
    assert "没买" in names(make_event(by=administrator, name="无门槛"))


def test_it_wants_a_contract_in_force_at_some_time_in_the_year(administrator):
    def with_contract(name, status, start, end):
        customer = CustomerFactory(name=name, status=WON)
        ContractFactory(customer=customer, status=status, start_date=start, end_date=end)
        return customer

    active, expired = Contract.Status.ACTIVE, Contract.Status.EXPIRED
    with_contract("跨年生效", active, datetime.date(2025, 6, 1), datetime.date(2026, 1, 1))
    with_contract("年内已到期", expired, datetime.date(2026, 2, 1), datetime.date(2026, 8, 31))
    with_contract("年末签", active, datetime.date(2026, 12, 31), datetime.date(2027, 12, 30))
    with_contract("草稿合同", Contract.Status.DRAFT, datetime.date(2026, 1, 1), datetime.date(2026, 12, 31))
    with_contract("已终止", Contract.Status.TERMINATED, datetime.date(2026, 1, 1), datetime.date(2026, 12, 31))
    with_contract("去年的", expired, datetime.date(2024, 1, 1), datetime.date(2025, 12, 31))
    with_contract("明年的", active, datetime.date(2027, 1, 1), datetime.date(2027, 12, 31))
    CustomerFactory(name="无合同", status=WON)
    event = make_event(by=administrator, require_active_contract=True)
    assert names(event) == {"跨年生效", "年内已到期", "年末签"}
    assert len(names(make_event(by=administrator, name="不要求合同"))) == 8


def test_it_counts_created_before_from_midnight_in_shanghai(administrator):
    def created(name, moment):
        customer = CustomerFactory(name=name, status=WON)
        Customer.objects.filter(pk=customer.pk).update(created_at=moment)

    created("前一天深夜", datetime.datetime(2026, 5, 31, 23, 59, 59, tzinfo=SHANGHAI))
    created("当天零点", datetime.datetime(2026, 6, 1, 0, 0, 0, tzinfo=SHANGHAI))
    # 16:30 UTC on 31 May is already 00:30 on 1 June in Beijing: too late.
    created("UTC还是前一天", datetime.datetime(2026, 5, 31, 16, 30, tzinfo=datetime.UTC))
    created("UTC前一天中午", datetime.datetime(2026, 5, 31, 12, 0, tzinfo=datetime.UTC))
    event = make_event(by=administrator, created_before=datetime.date(2026, 6, 1))
    assert names(event) == {"前一天深夜", "UTC前一天中午"}


def test_it_leaves_out_our_own_staff_unless_the_event_lets_them_in(administrator):
    CustomerFactory(name="客户", status=WON)
    CustomerFactory(name="员工", status=WON, is_employee=True)
    assert names(make_event(by=administrator)) == {"客户"}
    assert names(make_event(by=administrator, name="员工也参加", exclude_employees=False)) == {"客户", "员工"}


def test_it_never_takes_erased_deleted_or_merged_customers(administrator, django_user_model):
    survivor = CustomerFactory(name="留下的", status=WON)
    erased = CustomerFactory(name="已注销", status=WON)
    Customer.all_objects.filter(pk=erased.pk).update(erased_at=datetime.datetime(2026, 3, 1, tzinfo=SHANGHAI))
    deleted = CustomerFactory(name="回收站", status=WON)
    Customer.all_objects.filter(pk=deleted.pk).update(deleted_at=datetime.datetime(2026, 3, 1, tzinfo=SHANGHAI))
    merged = CustomerFactory(name="被合并", status=WON)
    # Merged away but (wrongly) not in the recycle bin: still out.
    Customer.all_objects.filter(pk=merged.pk).update(merged_into=survivor)
    event = make_event(by=administrator, exclude_employees=False, statuses=list(Customer.Status.values))
    assert names(event) == {"留下的"}


def test_it_publishes_each_entry_with_its_levels_weight(administrator):
    vip = [CustomerFactory(status=WON, level=level("VIP")) for _ in range(2)]
    a = [CustomerFactory(status=WON, level=level("A")) for _ in range(3)]
    others = [CustomerFactory(status=WON, level=level("B")), CustomerFactory(status=WON, level=None)]
    CustomerFactory(status=Customer.Status.PROSPECT, level=level("VIP"))  # not eligible: no entry at all
    event = make_event(by=administrator, weights={level("VIP").pk: 3, level("A").pk: 2, level("B").pk: 1})
    event_publish(event=event, by=administrator)
    event.refresh_from_db()
    weights = dict(LotteryEntry.objects.filter(event=event).values_list("customer_id", "weight"))
    assert weights == {**{c.pk: 3 for c in vip}, **{c.pk: 2 for c in a}, **{c.pk: 1 for c in others}}
    assert event.entry_count == 7 and event.total_weight == 2 * 3 + 3 * 2 + 2
    published = {w["level"]: w["entries"] for w in event.published_rules["weights"]}
    assert published == {"VIP": 3, "A": 2}  # shown publicly; 1 (no extra entries) is not stored
