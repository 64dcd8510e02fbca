"""The lifecycle status flow (潜在客户 → 意向客户 → 成交客户, 售后中, 流失): the one table of which
changes are allowed. customers.services.customer_change_status enforces it; the complaints module
moves customers into and out of 售后中 through the same service.
"""

from __future__ import annotations

from customers.models import Customer

S = Customer.Status

# from → the statuses a person may change it to
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PROSPECT: frozenset({S.INTENT, S.WON, S.LOST}),
    S.INTENT: frozenset({S.PROSPECT, S.WON, S.LOST}),
    S.WON: frozenset({S.LOST}),
    S.AFTER_SALES: frozenset({S.WON, S.LOST}),
    S.LOST: frozenset({S.PROSPECT, S.INTENT}),  # won back
}
# The complaints module's own steps: any customer with an open complaint is 售后中, whatever they
# were, and goes back to what they were when the last one is resolved (complaints.services).
SYSTEM_TRANSITIONS: dict[str, frozenset[str]] = {
    **{status: frozenset({S.AFTER_SALES}) for status in S.values if status != S.AFTER_SALES},
    S.AFTER_SALES: frozenset(status for status in S.values if status != S.AFTER_SALES),
}
# Changes that need a reason (流失 must say why).
REASON_REQUIRED: frozenset[str] = frozenset({S.LOST})
# Set and cleared by the complaints module only (an open complaint), not by hand.
SYSTEM_ONLY: frozenset[str] = frozenset({S.AFTER_SALES})
# Winning an opportunity moves these to 成交客户.
WON_BY_OPPORTUNITY: frozenset[str] = frozenset({S.PROSPECT, S.INTENT})


def allowed(current: str, target: str, *, system: bool = True) -> bool:
    """Whether the flow allows ``current`` → ``target``; with ``system`` (the default, what
    customers.services.customer_change_status asks) the complaints module's steps count too."""
    if target in TRANSITIONS.get(current, frozenset()):
        return True
    return system and target in SYSTEM_TRANSITIONS.get(current, frozenset())


def choices_for(current: str) -> list[tuple[str, str]]:
    """The statuses a person may choose from ``current`` (in the flow's order)."""
    return [
        (value, label)
        for value, label in S.choices
        if allowed(current, value, system=False) and value not in SYSTEM_ONLY
    ]
