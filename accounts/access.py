"""Who may enter which UI. Every staff view is wrapped in ``staff_required``, every portal view in
``portal_required``; a user of the other kind is refused with 403, an anonymous one sent to log in."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff_member:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapper


def portal_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_portal_customer:
            raise PermissionDenied("portal customers only")
        return view(request, *args, **kwargs)

    return wrapper


def staff_permission_required(perm: str) -> Callable[[View], View]:
    """Staff UI view that also needs model permission ``perm`` (403 without it)."""

    def decorator(view: View) -> View:
        @staff_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(perm):
                raise PermissionDenied(perm)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
