"""Normalisation of user-entered values, shared by forms, imports and searches."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def fold_width(value: str) -> str:
    """Full-width letters, digits and punctuation (ＡＢＣ１２３＠) to their ASCII forms; trims."""
    return unicodedata.normalize("NFKC", value).strip()


_CN_MOBILE = re.compile(r"(?:\+?86)?(1\d{10})")
_CN_MOBILE_VERDICTS: dict[str, bool] = {}  # five-digit prefix → valid (at most 90,000 entries)


def normalize_phone(value: str, region: str = "CN") -> str:
    """A phone number in E.164 (+8613812345678); ValidationError with a user-facing message."""
    value = fold_width(value)
    if not value:
        return ""
    if any(ch.isalpha() for ch in value):
        # phonenumbers reads letters as keypad digits (1-800-FLOWERS); a customer code such as
        # C2026-000123 must not turn into a phone number.
        raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": value}, code="invalid_phone")
    if region == "CN":
        mobile = _CN_MOBILE.fullmatch(value.replace(" ", "").replace("-", ""))
        if mobile and mobile.group(1)[1] != "0":
            # A mainland mobile number. For 11 digits starting with 1[1-9], phonenumbers' metadata
            # has only the mobile pattern, which depends on the first five digits at most
            # (1(?:610\d|740[0-5])\d{6}|1(?:[38]\d|4[57]|…)\d{8}); so its verdict on one number of a
            # five-digit prefix holds for them all (tests/cims/test_normalize.py compares every
            # prefix). 10… numbers can be landlines and always take the full parse.
            number = mobile.group(1)
            verdict = _CN_MOBILE_VERDICTS.get(number[:5])
            if verdict is None:
                try:
                    verdict = _parse_phone(number, region) == f"+86{number}"
                except ValidationError:
                    verdict = False
                _CN_MOBILE_VERDICTS[number[:5]] = verdict
            if verdict:
                return f"+86{number}"
    return _parse_phone(value, region)


def _parse_phone(value: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("“%(value)s” is not a phone number.") % {"value": value}, code="invalid_phone"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(_("“%(value)s” is not a valid phone number.") % {"value": value}, code="invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """E.164 to the way people read it: national format for China, international otherwise."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if parsed.country_code == 86:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize_id_number(value: str) -> str:
    """A mainland resident ID number (身份证号): 18 characters, birth date and checksum validated."""
    import datetime

    value = fold_width(value).replace(" ", "").upper()
    if not value:
        return ""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise ValidationError(
            _("An ID card number has 18 characters: 17 digits and a final digit or X."), code="invalid_id"
        )
    try:
        birth = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValidationError(
            _("The birth date inside this ID card number does not exist."), code="invalid_id"
        ) from None
    if birth.year < 1900 or birth > datetime.date.today():
        raise ValidationError(_("The birth date inside this ID card number does not exist."), code="invalid_id")
    checksum = _ID_CHECK[sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True)) % 11]
    if value[17] != checksum:
        raise ValidationError(_("This ID card number's check digit is wrong; please check it."), code="invalid_id")
    return value


def normalize_email(value: str) -> str:
    from django.core.validators import validate_email

    value = fold_width(value).lower()
    if value:
        validate_email(value)
    return value


def normalize_bank_account(value: str) -> str:
    value = fold_width(value).replace(" ", "").replace("-", "")
    if not value:
        return ""
    if not value.isdigit() or not 10 <= len(value) <= 30:
        raise ValidationError(_("A bank account number has 10 to 30 digits."), code="invalid_bank_account")
    return value
