"""Login audit: every success, failure and logout goes to the ``cims.security`` log and to the
access log (LOGIN, LOGIN_FAILED, LOGOUT rows, with the client address). A success or logout names the user by
the row's user; a failure by the username typed (never the password), as no user is known.

django-axes also stores them in the database (AccessLog, AccessFailureLog), readable in the admin.
Only sign-ins made through an HTTP request are written to the access log: a request with a method
(the login view, the portal, the admin). ``Client.force_login`` in tests and scripts builds a bare
``HttpRequest`` without one, which is not somebody signing in.
"""

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from cims.models import PersonalDataAccess, log_personal_data_access
from cims.request_ip import client_ip

log = logging.getLogger("cims.security")

USER_OBJECT = "accounts.user"


def _from_http(request) -> bool:
    return request is not None and bool(getattr(request, "method", None))


@receiver(user_logged_in)
def _log_login(sender, request, user, **kwargs):
    log.info("login succeeded user=%s ip=%s", user.get_username(), client_ip(request) if request else None)
    if _from_http(request):
        log_personal_data_access(
            user=user,
            action=PersonalDataAccess.Action.LOGIN,
            object_type=USER_OBJECT,
            object_id=user.pk,
            request=request,
        )


@receiver(user_login_failed)
def _log_login_failure(sender, credentials, request=None, **kwargs):
    # credentials are cleansed by Django (the password is masked); only the username is logged.
    username = str(credentials.get("username") or "")
    log.warning("login failed user=%s ip=%s", username, client_ip(request) if request else None)
    if _from_http(request):
        log_personal_data_access(
            user=None,
            action=PersonalDataAccess.Action.LOGIN_FAILED,
            object_type=USER_OBJECT,
            object_label=username[:64],
            request=request,
        )


@receiver(user_logged_out)
def _log_logout(sender, request, user, **kwargs):
    if user is not None:
        log.info("logout user=%s ip=%s", user.get_username(), client_ip(request) if request else None)
        if _from_http(request):
            log_personal_data_access(
                user=user,
                action=PersonalDataAccess.Action.LOGOUT,
                object_type=USER_OBJECT,
                object_id=user.pk,
                request=request,
            )
