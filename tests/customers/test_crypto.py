"""Field encryption (AES-GCM with a key ring) and blind indexes."""

import base64
import os

import pytest
from django.test import override_settings

from cims import crypto

AAD = "customers.Customer.phone"


def _key() -> bytes:
    return os.urandom(32)


def test_it_round_trips_a_value():
    token = crypto.encrypt("+8613812345678", aad=AAD)
    assert token.startswith(f"v1:{crypto.primary_key_id()}:")
    assert "13812345678" not in token
    assert crypto.decrypt(token, aad=AAD) == "+8613812345678"


def test_it_round_trips_chinese_text():
    assert crypto.decrypt(crypto.encrypt("北京市朝阳区建国路88号", aad=AAD), aad=AAD) == "北京市朝阳区建国路88号"


def test_it_uses_a_fresh_nonce_for_every_value():
    first, second = crypto.encrypt("same", aad=AAD), crypto.encrypt("same", aad=AAD)
    assert first != second
    nonce = lambda token: base64.urlsafe_b64decode(token.split(":", 2)[2])[: crypto.NONCE_BYTES]  # noqa: E731
    assert nonce(first) != nonce(second)


def test_it_detects_tampering():
    token = crypto.encrypt("13812345678", aad=AAD)
    prefix, payload = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 0x01
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", aad=AAD)


def test_it_refuses_a_value_from_another_column():
    token = crypto.encrypt("13812345678", aad="customers.Customer.phone")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, aad="customers.Customer.mobile")


@pytest.mark.parametrize("token", ["13812345678", "v2:k1:abc", "v1:k1:", "v1:k1:AAAA", "v1:k1:%%%"])
def test_it_refuses_values_that_are_not_ciphertext(token):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, aad=AAD)


def test_it_decrypts_with_any_key_of_the_ring_and_encrypts_with_the_first():
    old, new = _key(), _key()
    with override_settings(FIELD_ENCRYPTION_KEYS={"k1": old}):
        token = crypto.encrypt("13812345678", aad=AAD)
    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": new, "k1": old}):
        assert crypto.decrypt(token, aad=AAD) == "13812345678"
        assert crypto.key_id_of(crypto.encrypt("x", aad=AAD)) == "k2"
    with override_settings(FIELD_ENCRYPTION_KEYS={"k2": new}), pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, aad=AAD)


def test_it_tells_the_key_id_of_a_value():
    assert crypto.key_id_of(crypto.encrypt("x", aad=AAD)) == crypto.primary_key_id()
    assert crypto.key_id_of("plain text") is None


def test_it_keeps_the_aesgcm_objects_between_calls():
    # Building AESGCM objects per value would cost more than the encryption itself.
    assert crypto._ring() is crypto._ring()
    primary, ciphers = crypto._ring()
    assert ciphers[primary] is crypto._ring()[1][primary]


def test_it_rebuilds_the_ring_when_the_setting_changes():
    before = crypto._ring()
    with override_settings(FIELD_ENCRYPTION_KEYS={"zz": _key()}):
        assert crypto.primary_key_id() == "zz"
    assert crypto._ring() is not before
    assert crypto.primary_key_id() == before[0]


def test_it_gives_the_same_blind_index_for_the_same_value():
    first = crypto.blind_index("phone", "+8613812345678")
    assert first == crypto.blind_index("phone", "+8613812345678")
    assert len(first) == 32
    assert "13812345678" not in first
    assert first != crypto.blind_index("phone", "+8613812345679")


def test_it_separates_blind_indexes_by_kind():
    assert crypto.blind_index("phone", "x@example.com") != crypto.blind_index("email", "x@example.com")


def test_it_gives_an_empty_blind_index_for_an_empty_value():
    assert crypto.blind_index("phone", "") == ""


def test_it_keys_the_blind_index():
    value = crypto.blind_index("email", "x@example.com")
    with override_settings(BLIND_INDEX_KEY=_key()):
        assert crypto.blind_index("email", "x@example.com") != value


@pytest.mark.django_db
def test_it_keeps_blind_indexes_of_normalised_values_equal():
    from cims.normalize import normalize_email, normalize_phone
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(mobile=normalize_phone("138 1234 5678"), email=normalize_email(" Zhang@Example.COM "))
    assert customer.mobile_bidx == crypto.blind_index("phone", normalize_phone("+86 138-1234-5678"))
    assert customer.email_bidx == crypto.blind_index("email", "zhang@example.com")
    assert customer.phone_bidx == ""


def test_it_round_trips_binary_blobs_bound_to_their_place():
    blob = crypto.encrypt_bytes("张伟,13812345678\n".encode() * 100, aad="import:1:source:0")
    assert b"13812345678" not in blob
    assert crypto.decrypt_bytes(blob, aad="import:1:source:0") == "张伟,13812345678\n".encode() * 100
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_bytes(blob, aad="import:2:source:0")  # a chunk copied into another job
    tampered = bytearray(blob)
    tampered[-1] ^= 0x01
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_bytes(bytes(tampered), aad="import:1:source:0")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_bytes(b"not encrypted at all", aad="import:1:source:0")


@pytest.mark.django_db
def test_it_stores_json_encrypted_and_reads_it_back(sales_rep):
    from django.db import connection

    from customers.models import ImportJob

    job = ImportJob.objects.create(created_by=sales_rep, file_name="a.csv", file_sha256="0" * 64)
    assert job.errors == [] and job.duplicates == []
    job.errors = [{"line": 3, "column": "手机", "reason": "“1381234” is not a valid phone number."}]
    job.save(update_fields=["errors"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT errors FROM customers_importjob WHERE id = %s", [job.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("v1:") and "1381234" not in stored
    job.refresh_from_db()
    assert job.errors[0]["reason"] == "“1381234” is not a valid phone number."


def test_the_blind_index_is_the_keyed_hmac_and_follows_a_key_change():
    import hashlib
    import hmac

    from django.conf import settings

    expected = hmac.new(settings.BLIND_INDEX_KEY, b"phone:+8613812345678", hashlib.sha256).digest()[:20]
    assert crypto.blind_index("phone", "+8613812345678") == base64.b32encode(expected).decode().lower()
    before = crypto.blind_index("email", "a@example.com")
    with override_settings(BLIND_INDEX_KEY=_key()):
        assert crypto.blind_index("email", "a@example.com") != before
    assert crypto.blind_index("email", "a@example.com") == before
