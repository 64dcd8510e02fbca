"""The per-token rate limit: the same fixed-window counter as the UI's (cims.hardening.hit)."""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle

from cims import hardening
from cims.api.permissions import api_token


class TokenRateThrottle(BaseThrottle):
    """API_RATE_LIMIT_PER_MINUTE requests a minute per token (or the token's own limit); a signed-in
    user browsing the docs is counted per user with the default limit."""

    def allow_request(self, request, view) -> bool:
        token = api_token(request)
        if token is not None:
            who, allowed = f"t{token.pk}", token.rate_limit or None
        elif request.user is not None and request.user.is_authenticated:
            who, allowed = f"u{request.user.pk}", None
        else:
            return True  # refused by authentication anyway
        self.retry_after = hardening.hit(hardening.API, who, allowed=allowed)
        return self.retry_after is None

    def wait(self) -> float | None:
        return getattr(self, "retry_after", None)
