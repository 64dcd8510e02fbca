"""How winners are shown: in full to holders of lottery.view_winner_details (managers, administrators),
masked (张** / 138****5678) to every other staff member, on the big screen and in public."""

from __future__ import annotations

from cims.masking import mask_name, mask_phone
from cims.normalize import format_phone
from lottery.models import LotteryEvent, LotteryWinner


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


def tiers_with_winners(event: LotteryEvent, *, full: bool) -> list[dict]:
    """The tiers in draw order, each with its winners: what the big screen reveals tier by tier."""
    rows = winner_rows(event, full=full) if event.is_drawn else []
    tiers = []
    # The algorithm's order: draw order, then the name in code point order (not the database's collation).
    for tier in sorted(event.tiers.all(), key=lambda t: (t.draw_order, t.name)):
        tiers.append(
            {
                "name": tier.name,
                "prize": tier.prize,
                "quantity": tier.quantity,
                "winners": [r for r in rows if r["tier"] == tier.name],
            }
        )
    return tiers
