"""Files kept with customers and contracts (stub: being built)."""

from __future__ import annotations


def detail_context(request, customer, editable: bool) -> dict:
    return {"attachments_shown": False}
