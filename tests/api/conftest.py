"""API test helpers: tokens for the cast's users and a client that sends them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import ApiToken
from cims.api.authentication import new_secret


def make_token(user, *, scope: str = ApiToken.Scope.READ_WRITE, name: str | None = None, created_by=None, **extra):
    """A token for ``user``; returns (token, the raw secret)."""
    raw, prefix, digest = new_secret()
    token = ApiToken.objects.create(
        name=name or f"integration-{prefix}",
        user=user,
        scope=scope,
        prefix=prefix,
        key_hash=digest,
        created_by=created_by or user,
        **extra,
    )
    return token, raw


class ApiClient:
    """The Django test client speaking JSON with ``Authorization: Bearer``."""

    def __init__(self, raw: str | None, *, language: str = "en"):
        self.client = Client()
        self.headers = {"HTTP_ACCEPT_LANGUAGE": language}
        if raw:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"

    def _send(self, method: str, path: str, data=None, **headers):
        kwargs = {**self.headers, **headers}
        if data is not None:
            kwargs["data"] = json.dumps(data, ensure_ascii=False)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(path, params or {}, **{**self.headers, **headers})

    def post(self, path: str, data=None, **headers):
        return self._send("post", path, data, **headers)

    def patch(self, path: str, data=None, **headers):
        return self._send("patch", path, data, **headers)

    def put(self, path: str, data=None, **headers):
        return self._send("put", path, data, **headers)

    def delete(self, path: str, **headers):
        return self._send("delete", path, None, **headers)


@pytest.fixture
def api_for(db):
    """``api_for(user, scope="read_write")`` → (ApiClient, token)."""

    def build(user, *, scope: str = ApiToken.Scope.READ_WRITE, language: str = "en", **extra):
        token, raw = make_token(user, scope=scope, **extra)
        return ApiClient(raw, language=language), token

    return build
