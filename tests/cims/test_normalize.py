"""Normalisation shared by forms, imports and searches (cims/normalize.py)."""

import random

import phonenumbers
import pytest
from django.core.exceptions import ValidationError

from cims import normalize


def slow_e164(text: str) -> str | None:
    """phonenumbers itself, no shortcut: the rule normalize_phone must give the same answer as."""
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    return (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(parsed)
        else None
    )


def fast_e164(text: str) -> str | None:
    try:
        return normalize.normalize_phone(text)
    except ValidationError:
        return None


def test_its_mobile_shortcut_agrees_with_phonenumbers_on_every_kind_of_number(monkeypatch):
    monkeypatch.setattr(normalize, "_CN_MOBILE_VERDICTS", {})
    rng = random.Random(7)  # noqa: S311 - test data
    # Every five-digit prefix twice, in ascending order, then random numbers in four spellings: a
    # shortcut keyed on fewer digits would carry 17400's "valid" over to 17406 and be caught.
    numbers = [f"{prefix}{rng.randrange(10**6):06d}" for prefix in range(10000, 20000) for _ in range(2)]
    numbers += [f"1{rng.randrange(10**10):010d}" for _ in range(3000)]
    spellings = [
        lambda n: n,
        lambda n: f"+86{n}",
        lambda n: f"86 {n[:3]} {n[3:7]} {n[7:]}",
        lambda n: f"{n[:3]}-{n[3:]}",
    ]
    valid = 0
    for index, number in enumerate(numbers):
        for spell in spellings if index >= 20000 else spellings[:1]:
            text = spell(number)
            assert fast_e164(text) == slow_e164(text), text
        valid += slow_e164(number) is not None
    assert 0 < valid < len(numbers)  # both verdicts were exercised


@pytest.mark.parametrize("text", ["12345", "1381234567", "138123456789", "+8513812345678", "C2026-000123"])
def test_it_refuses_what_is_not_a_mobile_number(text):
    with pytest.raises(ValidationError):
        normalize.normalize_phone(text)


def test_it_keeps_landlines_and_foreign_numbers_on_the_full_parser():
    assert normalize.normalize_phone("010-62345678") == "+861062345678"
    assert normalize.normalize_phone("+1 650 253 0000") == "+16502530000"
    assert normalize.normalize_phone("１３８ １２３４ ５６７８") == "+8613812345678"  # full-width digits
