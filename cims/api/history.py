"""Change history written through the API names the token: ``history_change_reason`` "API: <name>".

The user of the history row is the token's service user (DRF sets it on the request that
simple-history's middleware keeps); the reason says which integration it was. A reason the code
set itself (a merge, a transfer) is kept and the token appended to it when there is room.
"""

from __future__ import annotations

from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


@receiver(pre_create_historical_record)
def _name_the_token(sender, instance, history_instance, **kwargs) -> None:
    request = getattr(HistoricalRecords.context, "request", None)
    token = getattr(request, "api_token", None) if request is not None else None
    if token is None:
        return
    reason = history_instance.history_change_reason or ""
    label = token.actor_label
    if not reason:
        history_instance.history_change_reason = label
    elif label not in reason and len(reason) + len(label) + 3 <= 100:
        history_instance.history_change_reason = f"{reason} · {label}"
