"""API tokens: how they are made, checked and touched."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

TOKEN_START = "cims_"  # noqa: S105 - the public start of every token, not a secret
# last_used_at is written at most this often per token: not one UPDATE per request.
TOUCH_EVERY = datetime.timedelta(seconds=60)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_secret() -> tuple[str, str, str]:
    """A fresh token: (the secret to show once, its public prefix, the digest to store)."""
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_START}{prefix}_{secrets.token_urlsafe(32)}"
    return raw, prefix, digest(raw)


def prefix_of(raw: str) -> str | None:
    if not raw.startswith(TOKEN_START):
        return None
    prefix, _sep, rest = raw[len(TOKEN_START) :].partition("_")
    if len(prefix) != 8 or not rest:
        return None
    return prefix


def token_for(raw: str):
    """The ApiToken whose secret is ``raw`` (active or not), or None."""
    from accounts.models import ApiToken

    prefix = prefix_of(raw)
    if prefix is None:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest(raw)):
        return None
    return token


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer cims_…`` (``Token`` is accepted as the keyword too)."""

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("The Authorization header must be “Bearer <token>”."))
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("The API token is not valid.")) from None
        token = token_for(raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_("The API token is not valid."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("The API token has been revoked."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("The API token's service user is deactivated."))
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            type(token).objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        # The history of what this request writes names the token (cims.api.history).
        request._request.api_token = token
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """A signed-in staff member in the browser (the browsable docs); CSRF is enforced on writes."""


try:  # the schema's description of both ways in (drf-spectacular finds extensions by subclassing)
    from drf_spectacular.extensions import OpenApiAuthenticationExtension
except ImportError:  # pragma: no cover - drf-spectacular is a runtime dependency
    OpenApiAuthenticationExtension = None

if OpenApiAuthenticationExtension is not None:

    class TokenScheme(OpenApiAuthenticationExtension):
        target_class = "cims.api.authentication.TokenAuthentication"
        name = "token"

        def get_security_definition(self, auto_schema):
            return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer cims_…"}

    class SessionScheme(OpenApiAuthenticationExtension):
        target_class = "cims.api.authentication.SessionAuthentication"
        name = "session"

        def get_security_definition(self, auto_schema):
            return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
