"""``Idempotency-Key`` on creates: an integration retrying after a timeout creates nothing twice.

The first request with a key records (token, key, fingerprint of method + path + body) in the same
transaction as the create, with the new object's id; if the create fails, the record rolls back
with it, so a retry runs again. A retry of a completed request gets the object as it is now
(``Idempotent-Replayed: true``); the same key with a different request is 422; a retry while the
first is still running is 409. Keys are remembered API_IDEMPOTENCY_HOURS (purged nightly).
"""

from __future__ import annotations

import datetime
import hashlib
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response

from cims.api.errors import Conflict, Unprocessable
from cims.api.permissions import api_token
from cims.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY = 255


def fingerprint(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        body = repr(request.data)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{body}".encode()).hexdigest()


def expiry() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(hours=settings.API_IDEMPOTENCY_HOURS)


def purge() -> int:
    deleted, _counts = IdempotencyRecord.objects.filter(created_at__lt=expiry()).delete()
    return deleted


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY and key.isprintable() and key.isascii()


class IdempotentCreateMixin:
    """For a viewset's ``create``: honours the header when the caller is a token."""

    def create(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        token = api_token(request)
        if key is None or token is None:
            return super().create(request, *args, **kwargs)
        if not valid_key(key):
            raise exceptions.ValidationError(
                {HEADER: [_("The Idempotency-Key must be 1 to 255 printable ASCII characters.")]}
            )
        print_ = fingerprint(request)
        IdempotencyRecord.objects.filter(token=token, key=key, created_at__lt=expiry()).delete()
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        token=token, key=key, method=request.method, path=request.path[:255], fingerprint=print_
                    )
            except IntegrityError:
                record = None  # another request holds the key: completed (replay) or still running (409)
            if record is not None:
                response = super().create(request, *args, **kwargs)
                record.status_code = response.status_code
                record.resource_id = str(response.data.get("id", "")) if isinstance(response.data, dict) else ""
                record.save(update_fields=["status_code", "resource_id"])
                return response
        record = IdempotencyRecord.objects.filter(token=token, key=key).first()
        if record is None or record.status_code is None:
            raise Conflict(
                _("A request with this Idempotency-Key is still being processed. Retry later."),
                code="idempotency_in_progress",
            )
        if record.fingerprint != print_:
            raise Unprocessable(
                _("This Idempotency-Key was used for a different request."), code="idempotency_key_reused"
            )
        instance = self.get_queryset().filter(pk=record.resource_id).first() if record.resource_id else None
        if instance is None:
            raise exceptions.NotFound(_("What this request created is no longer visible to this account."))
        data = self.get_serializer(instance).data
        return Response(
            data, status=record.status_code or status.HTTP_201_CREATED, headers={"Idempotent-Replayed": "true"}
        )
