"""How winners are shown: in full to holders of lottery.view_winner_details (managers, administrators),
masked (张** / 138****5678) to every other staff member, on the big screen and in public."""

from __future__ import annotations

from cims.masking import mask_name, mask_phone
from cims.normalize import format_phone
from lottery.models import LotteryEntry, LotteryEvent, LotteryWinner


def sees_winner_details(user) -> bool:
    return user.has_perm("lottery.view_winner_details")


def winner_row(winner: LotteryWinner, *, full: bool) -> dict:
    customer = winner.customer
    phone = customer.mobile or customer.phone
    erased = customer.erased_at is not None
    return {
        "rank": winner.rank,
        "tier": winner.tier.name,
        "prize": winner.tier.prize,
        "position": winner.position,
        "entry_id": winner.entry.entry_id,
        "customer_id": customer.pk,
        "code": customer.code,
        "name": customer.name if full or erased else mask_name(customer.name, enterprise=customer.is_enterprise),
        "phone": format_phone(phone) if full else mask_phone(phone),
        "owner": str(customer.owner) if customer.owner_id else "",
        "notified_at": winner.notified_at,
    }


def winner_rows(event: LotteryEvent, *, full: bool) -> list[dict]:
    """Every winner in draw order (a thousand at most in practice: one query)."""
    winners = (
        LotteryWinner.objects.filter(event=event)
        .select_related("tier", "entry", "customer", "customer__owner")
        .order_by("rank")
    )
    return [winner_row(w, full=full) for w in winners]


def tiers_with_winners(event: LotteryEvent, *, full: bool, fields: tuple[str, ...] | None = None) -> list[dict]:
    """The tiers in draw order, each with its winners: what the big screen reveals tier by tier.
    ``fields`` keeps only those keys of each winner (the big screen and the public page show less)."""
    rows = winner_rows(event, full=full) if event.is_drawn else []
    if fields is not None:
        rows = [{key: row[key] for key in (*fields, "tier")} for row in rows]
    tiers = []
    # The algorithm's order: draw order, then the name in code point order (not the database's collation).
    for tier in sorted(event.tiers.all(), key=lambda t: (t.draw_order, t.name)):
        tiers.append(
            {
                "name": tier.name,
                "prize": tier.prize,
                "quantity": tier.quantity,
                "winners": [
                    {key: value for key, value in r.items() if fields is None or key in fields}
                    for r in rows
                    if r["tier"] == tier.name
                ],
            }
        )
    return tiers


# --- One customer's lottery record: the portal, the 360° page, the personal-data export ---------


def customer_entries(customer) -> list[LotteryEntry]:
    """The customer's entries in published events, newest event first, each with its event and its
    win (``win_of``) in the same query. A win exists only once the event is drawn."""
    return list(
        LotteryEntry.objects.filter(customer=customer)
        .exclude(event__status=LotteryEvent.Status.DRAFT)
        .select_related("event", "win__tier")
        .order_by("-event__year", "-event_id")
    )


def win_of(entry: LotteryEntry) -> LotteryWinner | None:
    try:
        return entry.win
    except LotteryWinner.DoesNotExist:
        return None


def customer_wins(entries: list[LotteryEntry]) -> list[LotteryWinner]:
    """The wins among ``customer_entries``, in the same order (no query)."""
    return [win for win in map(win_of, entries) if win is not None]


def detail_context(customer) -> dict:
    """For the 360° page (customers.views.customer_detail): entries and wins, one query."""
    entries = customer_entries(customer)
    return {"lottery_entries": entries, "lottery_wins": customer_wins(entries)}
