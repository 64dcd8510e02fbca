"""Change history written through the API names the token: ``history_change_reason`` "API: <name>".

The user of the history row is the token's service user (DRF sets it on the request that
simple-history's middleware keeps); the reason says which integration it was. A reason the code
set itself (a merge, a transfer) is kept and the token appended to it when there is room.
"""

from __future__ import annotations

from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


def current_token():
    """The API token of the request being served, if any (simple-history's middleware keeps it)."""
    request = getattr(HistoricalRecords.context, "request", None)
    return getattr(request, "api_token", None) if request is not None else None


def with_token(reason: str | None) -> str | None:
    """``reason`` naming the current request's API token (≤ 100 characters), or as it was."""
    token = current_token()
    if token is None:
        return reason
    label = token.actor_label
    if not reason:
        return label
    if label not in reason and len(reason) + len(label) + 3 <= 100:
        return f"{reason} · {label}"
    return reason


@receiver(pre_create_historical_record)
def _name_the_token(sender, instance, history_instance, **kwargs) -> None:
    history_instance.history_change_reason = with_token(history_instance.history_change_reason)
