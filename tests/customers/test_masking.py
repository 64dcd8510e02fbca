"""Masking of personal data by role, done on the server."""

import pytest

from cims import masking
from customers.access import personal_fields_for
from tests.customers.factories import CustomerFactory

ID_NUMBER = "110105194912190021"  # a valid one: birth date and check digit


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+8613812345678", "138****5678"),
        ("13812345678", "138****5678"),
        ("+861012345678", "101****5678"),  # a Beijing landline: no country code in the mask
        ("95588", "9**88"),
        ("110", "****"),
        ("", ""),
    ],
)
def test_it_masks_phones(value, masked):
    assert masking.mask_phone(value) == masked


def test_it_masks_id_numbers():
    assert masking.mask_id_number(ID_NUMBER) == "1101**********0021"
    assert masking.mask_id_number("11010519491231002X") == "1101**********002X"
    assert masking.mask_id_number("1234") == "****"
    assert masking.mask_id_number("") == ""


def test_it_masks_bank_accounts():
    assert masking.mask_bank_account("6222020200112233445") == "6222 **** **** 3445"
    assert masking.mask_bank_account("6222 0202 0011 2233 445") == "6222 **** **** 3445"
    assert masking.mask_bank_account("12345") == "*****"
    assert masking.mask_bank_account("") == ""


def test_it_masks_emails():
    assert masking.mask_email("zhang.wei@example.com") == "z***@example.com"
    assert masking.mask_email("not-an-email") == "n***"
    assert masking.mask_email("") == ""


def test_it_masks_addresses():
    assert masking.mask_text("北京市朝阳区建国路88号") == "北京市朝阳区****"
    assert masking.mask_text("") == ""


def _customer():
    return CustomerFactory.build(
        mobile="+8613812345678",
        phone="",
        email="zhang.wei@example.com",
        address="北京市朝阳区建国路88号",
        id_number=ID_NUMBER,
        bank_account="6222020200112233445",
    )


def test_it_masks_everything_for_service_staff_and_offers_no_reveal(service_agent):
    shown = personal_fields_for(service_agent, _customer())
    assert shown["mobile"] == {"value": "138****5678", "masked": True, "revealable": False}
    assert shown["email"]["value"] == "z***@example.com"
    assert shown["address"]["value"] == "北京市朝阳区****"
    assert shown["id_number"] == {"value": "1101**********0021", "masked": True, "revealable": False}
    assert shown["bank_account"]["value"] == "6222 **** **** 3445"
    assert shown["phone"] == {"value": "", "masked": False, "revealable": False}  # nothing to hide
    assert not any(ID_NUMBER in str(field["value"]) or "13812345678" in field["value"] for field in shown.values())


def test_it_shows_personal_fields_to_sales_and_masks_sensitive_ones_revealably(sales_rep):
    shown = personal_fields_for(sales_rep, _customer())
    assert shown["mobile"] == {"value": "+8613812345678", "masked": False, "revealable": False}
    assert shown["email"]["value"] == "zhang.wei@example.com"
    assert shown["address"]["value"] == "北京市朝阳区建国路88号"
    assert shown["id_number"] == {"value": "1101**********0021", "masked": True, "revealable": True}
    assert shown["bank_account"] == {"value": "6222 **** **** 3445", "masked": True, "revealable": True}


def test_it_masks_sensitive_fields_for_managers_too(manager):
    shown = personal_fields_for(manager, _customer())
    assert shown["mobile"]["value"] == "+8613812345678"
    assert shown["id_number"] == {"value": "1101**********0021", "masked": True, "revealable": True}


def test_it_masks_everything_for_analysts(analyst):
    shown = personal_fields_for(analyst, _customer())
    assert all(field["masked"] and not field["revealable"] for name, field in shown.items() if name != "phone")


def test_it_limits_the_fields_when_asked(sales_rep):
    assert set(personal_fields_for(sales_rep, _customer(), fields=["mobile", "id_number"])) == {"mobile", "id_number"}
