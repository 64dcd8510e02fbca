"""Who may call the API at all, and which model permission each method needs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions

# Method → the model permission's action. No DELETE: the API never deletes.
ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change"}


def api_token(request):
    from accounts.models import ApiToken

    return request.auth if isinstance(request.auth, ApiToken) else None


class ApiAccess(permissions.BasePermission):
    """A staff member (or a token's service user who is one), a write only with a read-write token,
    and the model permission of the method: ``view.permission_map`` or ``<app>.<action>_<model>``."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        if not user.is_staff_member:
            raise exceptions.PermissionDenied(_("This account may not use the API."), code="not_staff")
        token = api_token(request)
        if token is not None and request.method not in permissions.SAFE_METHODS and not token.writable:
            raise exceptions.PermissionDenied(_("This API token is read-only."), code="read_only_token")
        needed = required_permission(view, request.method)
        if needed and not user.has_perm(needed):
            raise exceptions.PermissionDenied(
                _("The role of this account does not allow this action."), code="permission_denied"
            )
        return True


def required_permission(view, method: str) -> str | None:
    mapping = getattr(view, "permission_map", None)
    if mapping is not None:
        return mapping.get(method, mapping.get("GET") if method in ("HEAD", "OPTIONS") else None)
    queryset = getattr(view, "queryset", None)
    model = getattr(view, "model", None) or (queryset.model if queryset is not None else None)
    if method not in ACTIONS:
        return None
    if model is None:
        return "cims.api_view_without_model"  # fail closed: a view that names no model serves nobody
    return f"{model._meta.app_label}.{ACTIONS[method]}_{model._meta.model_name}"


class StaffDocs(permissions.BasePermission):
    """The schema and the browsable docs: any staff member (signed in, or by token)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff_member)
