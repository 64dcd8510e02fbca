"""Lottery events for tests: a draft made through the service, so it holds what the UI would save."""

from __future__ import annotations

from lottery.services import TierData, event_save

DEFAULT_TIERS = (
    TierData("一等奖", "笔记本电脑", 1, 1),
    TierData("二等奖", "智能手表", 2, 2),
    TierData("参与奖", "保温杯", 3, 3),
)


def make_event(
    *, by=None, name="2026 年末客户答谢抽奖", year=2026, levels=(), weights=None, tiers=DEFAULT_TIERS, **rules
):
    from lottery.models import LotteryEvent

    fields = {"name": name, "year": year, **rules}
    return event_save(
        event=LotteryEvent(), by=by, fields=fields, levels=list(levels), weights=weights or {}, tiers=list(tiers)
    )
