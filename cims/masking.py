"""Masking of personal data for display to users who may not see it whole. Done on the server."""

from __future__ import annotations

import re


def mask_phone(value: str) -> str:
    """+8613812345678 / 13812345678 → 138****5678; landlines keep their first 3 and last 4 digits."""
    if not value:
        return ""
    digits = re.sub(r"\D", "", value)
    if value.lstrip().startswith("+86") or (digits.startswith("86") and len(digits) == 13):
        digits = digits[2:]  # the country code is not part of what people read (landlines too)
    if len(digits) <= 4:
        return "****"  # too short to show any part without showing all of it
    if len(digits) <= 7:
        return digits[:1] + "*" * (len(digits) - 3) + digits[-2:]
    return digits[:3] + "****" + digits[-4:]


def mask_id_number(value: str) -> str:
    """110101199003071234 → 1101**********1234."""
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_bank_account(value: str) -> str:
    """6222020200112233445 → 6222 **** **** 3445."""
    if not value:
        return ""
    digits = re.sub(r"\s", "", value)
    if len(digits) <= 8:
        return "*" * len(digits)
    return f"{digits[:4]} **** **** {digits[-4:]}"


def mask_email(value: str) -> str:
    """zhang.wei@example.com → z***@example.com."""
    if not value:
        return ""
    local, at, domain = value.partition("@")
    if not at:
        return value[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_text(value: str, keep: int = 6) -> str:
    """Addresses: the first characters (province and city) and nothing more."""
    if not value:
        return ""
    return value[:keep] + "****" if len(value) > keep else value[:1] + "****"


def mask_name(value: str, *, enterprise: bool = False) -> str:
    """张三丰 → 张**, 王五 → 王**: the surname and a fixed two stars (so the length is not told either).
    An enterprise keeps its first two characters: 上海某某贸易有限公司 → 上海****."""
    value = (value or "").strip()
    if not value:
        return ""
    if enterprise:
        return value[:2] + "****"
    return value[:1] + "**"
