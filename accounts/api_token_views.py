"""The API token pages (API 令牌): list, create (the secret shown once), detail with history, revoke."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.access import staff_permission_required
from accounts.forms_api_token import ApiTokenCreateForm, role_names
from accounts.models import ApiToken
from cims.pagination import KeysetPaginator, page_links

security_log = logging.getLogger("cims.security")


def _tokens():
    return ApiToken.objects.select_related("user", "created_by", "revoked_by").prefetch_related(
        Prefetch("user__groups", queryset=Group.objects.only("name"))
    )


def _with_roles(tokens) -> list[ApiToken]:
    for token in tokens:
        token.user_roles = role_names(token.user)
    return list(tokens)


@staff_permission_required("accounts.view_apitoken")
@require_http_methods(["GET", "HEAD"])
def token_list(request: HttpRequest) -> HttpResponse:
    paginator = KeysetPaginator(_tokens(), key="pk", per_page=50)
    page = paginator.page(after=request.GET.get("after"), before=request.GET.get("before"))
    context = {
        "page": page,
        "tokens": _with_roles(page.object_list),
        **page_links(request, page),
        "may_create": request.user.has_perm("accounts.add_apitoken"),
    }
    return render(request, "system/api_token_list.html", context)


# The answer to a successful POST holds the secret: no cache (browser or proxy) may keep it.
@never_cache
@staff_permission_required("accounts.add_apitoken")
@require_http_methods(["GET", "HEAD", "POST"])
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, secret = services.api_token_create(
                name=data["name"],
                user=data["user"],
                scope=data["scope"],
                rate_limit=data["rate_limit"],
                by=request.user,
            )
        except ValidationError as exc:
            # Between the form's check and the insert (another administrator, the same name).
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            security_log.info("API token %s (%s) created by user id %s", token.prefix, token.name, request.user.pk)
            token.user_roles = role_names(token.user)
            # Rendered, not redirected: the secret is never stored, so no later page could show it.
            return render(
                request,
                "system/api_token_created.html",
                {"token": token, "secret": secret},
            )
    status = 400 if request.method == "POST" else 200
    return render(request, "system/api_token_form.html", {"form": form}, status=status)


def _events(rows) -> list[dict]:
    """The token's history, newest first, each row named by what happened to it."""
    rows = list(rows)
    events = []
    for index, row in enumerate(rows):
        older = rows[index + 1] if index + 1 < len(rows) else None
        if row.history_type == "+":
            kind = _("Created")
        elif row.revoked_at is not None and (older is None or older.revoked_at is None):
            kind = _("Revoked")
        else:
            kind = _("Changed")
        events.append({"kind": kind, "row": row})
    return events


@staff_permission_required("accounts.view_apitoken")
@require_http_methods(["GET", "HEAD"])
def token_detail(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(_tokens(), pk=pk)
    token.user_roles = role_names(token.user)
    history = _events(token.history.select_related("history_user").order_by("-history_date", "-history_id")[:100])
    context = {
        "token": token,
        "history": history,
        "may_revoke": request.user.has_perm("accounts.change_apitoken") and token.revoked_at is None,
    }
    return render(request, "system/api_token_detail.html", context)


@staff_permission_required("accounts.change_apitoken")
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    if token.revoked_at is not None:
        messages.info(request, _("The token %(name)s was already revoked.") % {"name": token.name})
        return redirect("system:api_token_detail", pk=token.pk)
    services.api_token_revoke(token=token, by=request.user)
    security_log.warning("API token %s (%s) revoked by user id %s", token.prefix, token.name, request.user.pk)
    messages.success(
        request,
        _("The token %(name)s is revoked: every request that presents it is now refused.") % {"name": token.name},
    )
    return redirect("system:api_token_detail", pk=token.pk)
