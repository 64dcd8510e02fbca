"""The big screen (大屏) at the party: the administrator presses Space, the names roll, the winners of each
tier appear masked, and the database holds the one draw."""

from __future__ import annotations

import re

import pytest

from customers.models import Customer
from lottery.models import LotteryEvent, LotteryLog, LotteryWinner
from lottery.services import event_publish
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import CustomerFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.browser

SURNAMES = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗"
MASKED_NAME = re.compile(r"^[" + SURNAMES + r"]\*\*$")
MASKED_PHONE = re.compile(r"^138\*{4}\d{4}$")


def test_an_admin_runs_the_draw_on_the_big_screen_tier_by_tier(page, administrator, sales_rep):
    from playwright.sync_api import expect  # as conftest: collecting works without Playwright installed

    customers = [
        CustomerFactory(status=Customer.Status.WON, owner=sales_rep, name=f"{surname}建国", mobile=f"+86138{i:08d}")
        for i, surname in enumerate(SURNAMES)
    ]
    event = make_event(by=administrator)  # 一等奖 ×1, 二等奖 ×2, 参与奖 ×3
    event_publish(event=event, by=administrator)
    log_in(page, administrator)
    page.goto(f"/lottery/{event.pk}/show/")

    stage = page.get_by_test_id("show-stage")
    expect(page.get_by_test_id("show-title")).to_have_text(event.name)
    expect(stage).to_have_attribute("data-state", "intro")
    expect(page.get_by_test_id("show-tier-name")).to_have_text("一等奖")

    # Space: the draw is made on the server, then the names roll …
    page.keyboard.press("Space")
    rolling = page.get_by_test_id("show-rolling").locator(".show-roll-name").first
    expect(rolling).to_have_text(MASKED_NAME)
    first_name = rolling.inner_text()
    expect(rolling).not_to_have_text(first_name)  # it keeps changing
    assert LotteryEvent.objects.get(pk=event.pk).status == LotteryEvent.Status.DRAWN

    # … and the first tier's winner is revealed, masked.
    expect(stage).to_have_attribute("data-state", "revealed", timeout=10_000)
    cards = page.get_by_test_id("show-winner")
    expect(cards).to_have_count(1)
    expect(cards.locator(".show-card-name")).to_have_text(MASKED_NAME)
    expect(cards.locator(".show-card-phone")).to_have_text(MASKED_PHONE)

    # Space through the other tiers: each is introduced, rolls, and shows its winners.
    for number, (tier, count) in enumerate((("二等奖", 2), ("参与奖", 3)), start=1):
        page.keyboard.press("Space")
        expect(stage).to_have_attribute("data-state", "intro")
        expect(stage).to_have_attribute("data-tier", str(number))
        expect(page.get_by_test_id("show-tier-name")).to_have_text(tier)
        page.keyboard.press("Space")
        expect(page.get_by_test_id("show-rolling")).to_be_visible()
        expect(stage).to_have_attribute("data-state", "revealed", timeout=10_000)
        expect(cards).to_have_count(count)
        for name in cards.locator(".show-card-name").all_inner_texts():
            assert MASKED_NAME.match(name)

    # The closing screen lists every winner by tier.
    page.keyboard.press("Space")
    expect(page.get_by_test_id("show-thanks")).to_be_visible()
    closing = page.get_by_test_id("show-closing-list")
    expect(closing.locator("li")).to_have_count(6)

    # ← goes back to the last tier's winners, without rolling or drawing again.
    page.keyboard.press("ArrowLeft")
    expect(stage).to_have_attribute("data-state", "revealed")
    expect(stage).to_have_attribute("data-tier", "2")
    expect(cards).to_have_count(3)

    winners = list(LotteryWinner.objects.filter(event=event).select_related("customer", "tier").order_by("rank"))
    assert [w.tier.name for w in winners] == ["一等奖", "二等奖", "二等奖", "参与奖", "参与奖", "参与奖"]
    event.refresh_from_db()
    assert event.status == LotteryEvent.Status.DRAWN and event.drawn_by == administrator
    text = page.locator("body").inner_text()
    for customer in customers:
        assert customer.name not in text and customer.mobile[3:] not in text
    assert page.console_errors == []


def _published_event(administrator, sales_rep, count=8):
    for i, surname in enumerate(SURNAMES[:count]):
        CustomerFactory(status=Customer.Status.WON, owner=sales_rep, name=f"{surname}立", mobile=f"+86138{i:08d}")
    event = make_event(by=administrator)
    event_publish(event=event, by=administrator)
    return event


def test_a_second_screen_reveals_the_result_already_drawn(page, administrator, sales_rep):
    """The page was opened before someone else drew: Space gets 409 and shows the same winners —
    at once, since this screen asks for reduced motion (no rolling, no confetti)."""
    from playwright.sync_api import expect

    event = _published_event(administrator, sales_rep)
    log_in(page, administrator)
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"/lottery/{event.pk}/show/")
    expect(page.get_by_test_id("show-stage")).to_have_attribute("data-state", "intro")

    from lottery.services import event_draw

    event_draw(event=event, by=administrator)  # the other laptop
    first_prize = LotteryWinner.objects.select_related("customer").get(event=event, rank=1).customer
    page.keyboard.press("Space")
    expect(page.get_by_test_id("show-stage")).to_have_attribute("data-state", "revealed", timeout=1_000)
    expect(page.get_by_test_id("show-winner").locator(".show-card-name")).to_have_text(first_prize.name[0] + "**")
    expect(page.get_by_test_id("show-status")).not_to_be_empty()
    assert LotteryWinner.objects.filter(event=event).count() == 6
    # The 409 shows up as a failed resource load in the console; nothing else may.
    assert [e for e in page.console_errors if "409" not in e] == []


def test_a_failed_request_says_so_and_space_tries_again_without_a_second_draw(page, administrator, sales_rep):
    from playwright.sync_api import expect

    event = _published_event(administrator, sales_rep)
    log_in(page, administrator)
    page.goto(f"/lottery/{event.pk}/show/")
    stage = page.get_by_test_id("show-stage")
    expect(stage).to_have_attribute("data-state", "intro")
    draw_url = f"**/lottery/{event.pk}/show/draw/"

    # The hall's network is down: a clear message, still the first tier, nothing drawn.
    page.route(draw_url, lambda route: route.abort())
    page.keyboard.press("Space")
    expect(page.get_by_test_id("show-status")).to_have_class(re.compile("show-status-error"))
    expect(page.get_by_test_id("show-status")).not_to_be_empty()
    expect(stage).to_have_attribute("data-state", "intro")
    assert LotteryEvent.objects.get(pk=event.pk).status == LotteryEvent.Status.PUBLISHED
    page.unroute(draw_url)

    # Back online; an impatient double press sends one request, and the draw goes through once.
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.keyboard.press("Space")
    page.keyboard.press("Space")
    expect(stage).to_have_attribute("data-state", "revealed", timeout=10_000)
    assert len(posts) == 1
    assert LotteryWinner.objects.filter(event=event).count() == 6
    assert LotteryLog.objects.filter(event=event, action=LotteryLog.Action.REFUSED).count() == 0
