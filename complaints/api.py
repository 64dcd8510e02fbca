"""The REST API of the complaints app (cims.api): serializers and viewsets, registered on /api/v1/."""

from __future__ import annotations


def register(router) -> None:
    """Add this app's viewsets to the API router."""
