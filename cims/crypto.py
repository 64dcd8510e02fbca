"""Field encryption at rest (AES-256-GCM with a key ring) and keyed blind indexes.

Stored form of an encrypted value: ``v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>``. The key id
travels with each value, so keys can be rotated: the first key of ``FIELD_ENCRYPTION_KEYS``
encrypts, every key of the ring decrypts, and ``manage.py rotate_field_keys`` re-encrypts rows
still under an older key. The column name is bound in as associated data, so a ciphertext copied
into another column does not decrypt.

Blind indexes are HMAC-SHA256 of the normalised value under ``BLIND_INDEX_KEY`` (a separate key),
with a domain per kind of value ("phone", "email", "id_number"), so exact search and duplicate
detection never decrypt the table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

PREFIX = "v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value could not be decrypted: unknown key id, tampering, or a value from another column."""


@lru_cache(maxsize=1)
def _ring() -> tuple[str, dict[str, AESGCM]]:
    ring = settings.FIELD_ENCRYPTION_KEYS
    if not ring:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    primary = next(iter(ring))
    return primary, {kid: AESGCM(key) for kid, key in ring.items()}


@lru_cache(maxsize=1)
def _index_mac():
    """The keyed HMAC prepared once; each blind index copies it (imports compute millions)."""
    return hmac.new(settings.BLIND_INDEX_KEY, digestmod=hashlib.sha256)


@receiver(setting_changed)
def _reset_ring(setting, **kwargs):
    if setting in ("FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"):
        _ring.cache_clear()
        _index_mac.cache_clear()


def primary_key_id() -> str:
    return _ring()[0]


def encrypt(plaintext: str, *, aad: str) -> str:
    primary, ciphers = _ring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = ciphers[primary].encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
    return f"{PREFIX}:{primary}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"


def decrypt(token: str, *, aad: str) -> str:
    try:
        version, kid, payload = token.split(":", 2)
    except ValueError:
        raise DecryptionError("not an encrypted value") from None
    if version != PREFIX:
        raise DecryptionError(f"unknown format {version!r}")
    cipher = _ring()[1].get(kid)
    if cipher is None:
        raise DecryptionError(f"key {kid!r} is not in FIELD_ENCRYPTION_KEYS")
    try:
        raw = base64.urlsafe_b64decode(payload)
    except (binascii.Error, ValueError):
        raise DecryptionError("damaged value: not base64") from None
    if len(raw) < NONCE_BYTES + 16:  # a nonce and the GCM tag at least
        raise DecryptionError("damaged value: too short")
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8")).decode("utf-8")
    except InvalidTag:
        raise DecryptionError("authentication failed") from None


def encrypt_bytes(data: bytes, *, aad: str) -> bytes:
    """Binary form for large blobs (import files and plans): ``<kid>:`` ‖ nonce ‖ ciphertext ‖ tag."""
    primary, ciphers = _ring()
    nonce = os.urandom(NONCE_BYTES)
    return primary.encode("ascii") + b":" + nonce + ciphers[primary].encrypt(nonce, data, aad.encode("utf-8"))


def decrypt_bytes(blob: bytes, *, aad: str) -> bytes:
    kid, sep, raw = bytes(blob).partition(b":")
    cipher = _ring()[1].get(kid.decode("ascii", "replace")) if sep else None
    if cipher is None:
        raise DecryptionError("unknown key or not an encrypted blob")
    if len(raw) < NONCE_BYTES + 16:
        raise DecryptionError("damaged value: too short")
    try:
        return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8"))
    except InvalidTag:
        raise DecryptionError("authentication failed") from None


def key_id_of(token: str) -> str | None:
    parts = token.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


def blind_index(kind: str, normalized: str) -> str:
    """HMAC of a normalised value; empty for an empty value (so blanks never match each other)."""
    if not normalized:
        return ""
    mac = _index_mac().copy()
    mac.update(f"{kind}:{normalized}".encode())
    return base64.b32encode(mac.digest()[:20]).decode("ascii").rstrip("=").lower()  # 160 bits, 32 characters


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; Python code sees the plaintext.

    The associated data is ``<db_table>.<column>`` of the concrete model, shared with its
    django-simple-history table (which copies the field) so history rows hold ciphertext too.
    Not searchable or orderable in SQL: search through a BlindIndexField instead.
    """

    def __init__(self, *args, aad: str | None = None, **kwargs):
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        self.aad = aad
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        # Always explicit in migrations, so a historical model in a data migration decrypts too.
        if self.aad is not None:
            kwargs["aad"] = self.aad
        if kwargs.get("blank") is True:
            del kwargs["blank"]
        if kwargs.get("default") == "":
            del kwargs["default"]
        return name, path, args, kwargs

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        if self.aad is None:
            # A stable identity for the column: app label, model and field name of where it was
            # first declared. History models copy the field object, keeping this value.
            self.aad = f"{cls._meta.app_label}.{cls.__name__}.{name}"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value, aad=self.aad)

    def get_prep_value(self, value):
        if hasattr(value, "resolve_expression"):
            return value  # an SQL expression (bulk_update's CASE): its Values are prepared one by one
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value, aad=self.aad)


class BlindIndexField(models.CharField):
    """HMAC of another field's normalised value, kept in step on every save (and bulk_create)."""

    def __init__(self, *args, source: str = "", kind: str = "", **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        self.source, self.kind = source, kind
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"], kwargs["kind"] = self.source, self.kind
        for key, default in (
            ("max_length", 32),
            ("blank", True),
            ("default", ""),
            ("editable", False),
            ("db_index", True),
        ):
            if kwargs.get(key) == default:
                kwargs.pop(key, None)
        if not self.db_index:
            kwargs["db_index"] = False  # Field.deconstruct leaves out its own default, not ours
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = blind_index(self.kind, getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, value)
        return value


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (list or dict) stored encrypted, for small structured data that may hold personal
    values, such as the rejected rows of an import with their reasons."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is list:
            del kwargs["default"]
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        text = super().from_db_value(value, expression, connection)
        return json.loads(text) if text else self.get_default()

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value) if value else self.get_default()
        return value

    def get_prep_value(self, value):
        if hasattr(value, "resolve_expression"):
            return value
        if value is None:
            return ""
        return encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")), aad=self.aad)
