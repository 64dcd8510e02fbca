"""The lifecycle status flow (潜在客户 → 意向客户 → 成交客户, 售后中, 流失): the one table of which
changes are allowed. customers.services.customer_change_status enforces it; the complaints module
moves customers into and out of 售后中 through the same service.
"""

from __future__ import annotations

from customers.models import Customer

S = Customer.Status

# from → the statuses it may change to
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PROSPECT: frozenset({S.INTENT, S.WON, S.LOST}),
    S.INTENT: frozenset({S.PROSPECT, S.WON, S.LOST}),
    S.WON: frozenset({S.AFTER_SALES, S.LOST}),
    S.AFTER_SALES: frozenset({S.WON, S.LOST}),
    S.LOST: frozenset({S.PROSPECT, S.INTENT}),  # won back
}
# Changes that need a reason (流失 must say why).
REASON_REQUIRED: frozenset[str] = frozenset({S.LOST})
# Set and cleared by the complaints module only (an open complaint), not by hand.
SYSTEM_ONLY: frozenset[str] = frozenset({S.AFTER_SALES})
# Winning an opportunity moves these to 成交客户.
WON_BY_OPPORTUNITY: frozenset[str] = frozenset({S.PROSPECT, S.INTENT})


def allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def choices_for(current: str) -> list[tuple[str, str]]:
    """The statuses a person may choose from ``current`` (in the flow's order)."""
    return [(value, label) for value, label in S.choices if allowed(current, value) and value not in SYSTEM_ONLY]
