"""Typed readers for environment variables.

Each reader fails loudly (ImproperlyConfigured) on a value it cannot parse, so a typo in a
deployment's environment stops the process at start-up instead of silently falling back.
"""

from __future__ import annotations

import base64
import binascii
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_key_ring(name: str, value: str) -> dict[str, bytes]:
    """Parse ``kid:base64key,kid:base64key`` into an ordered {kid: 32-byte key} ring.

    The first entry is the primary key (used to encrypt); the others are kept so that values
    written under them can still be read until they are rotated away.
    """
    ring: dict[str, bytes] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not kid.isalnum() or len(kid) > 16:
            raise ImproperlyConfigured(
                f"{name}: each entry must be 'keyid:base64key' with an alphanumeric key id of at most 16 characters."
            )
        ring[kid] = decode_key(name, encoded)
    if not ring:
        raise ImproperlyConfigured(f"{name} holds no key.")
    return ring


def decode_key(name: str, encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name}: the key is not valid base64.") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name}: a key must be 32 bytes (256 bits); got {len(key)}.")
    return key


def env_cron(name: str, default: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week), checked by Celery."""
    value = _raw(name) or default
    from celery.schedules import crontab

    fields = value.split()
    if len(fields) != 5:
        raise ImproperlyConfigured(f"{name}={value!r} is not a cron expression of five fields, e.g. '30 2 * * *'.")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a valid cron expression: {exc}") from None
    return value
