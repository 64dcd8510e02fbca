"""Demo lotteries for the quick start (load_demo): last year's, drawn and announced, so the winners,
the public verification page and the portal have something to show; and this year's as a draft."""

from __future__ import annotations

from django.utils import timezone

from customers.models import Customer, CustomerLevel
from lottery.models import LotteryEvent
from lottery.services import TierData, event_announce, event_draw, event_publish, event_save, event_set_public_value

TIERS = [
    TierData("特等奖", "新能源汽车一辆", 1, 1),
    TierData("一等奖", "笔记本电脑", 2, 2),
    TierData("二等奖", "智能手表", 5, 3),
    TierData("参与奖", "定制保温杯", 10, 4),
]


def seed_demo_lottery(admin) -> None:
    """Once: when no event exists and the demo archive holds customers."""
    if LotteryEvent.objects.exists() or not Customer.objects.exists():
        return
    year = timezone.localdate().year
    weights = dict(CustomerLevel.objects.filter(name__in=["VIP", "A"]).values_list("pk", "name"))
    by_level = {pk: 3 if name == "VIP" else 2 for pk, name in weights.items()}
    statuses = [Customer.Status.WON, Customer.Status.AFTER_SALES]
    last = event_save(
        event=LotteryEvent(),
        by=admin,
        fields={
            "name": "年末客户答谢抽奖",
            "year": year - 1,
            "description": "感谢一年来的信任与支持，年会现场抽奖。",
            "statuses": statuses,
        },
        levels=[],
        weights=by_level,
        tiers=TIERS,
    )
    event_publish(event=last, by=admin)
    event_set_public_value(event=last, by=admin, value=f"福彩3D {year - 1}-12-31 开奖号码 4 0 7")
    event_draw(event=last, by=admin)
    event_announce(event=last, by=admin)
    event_save(
        event=LotteryEvent(),
        by=admin,
        fields={
            "name": "年末客户答谢抽奖",
            "year": year,
            "description": "年会现场大屏抽奖，结果可公开验证。",
            "statuses": statuses,
        },
        levels=[],
        weights=by_level,
        tiers=TIERS,
    )
