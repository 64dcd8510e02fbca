"""Login audit: every success and failure goes to the ``cims.security`` log.

django-axes also stores them in the database (AccessLog, AccessFailureLog), readable in the admin.
"""

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from cims.request_ip import client_ip

log = logging.getLogger("cims.security")


@receiver(user_logged_in)
def _log_login(sender, request, user, **kwargs):
    log.info("login succeeded user=%s ip=%s", user.get_username(), client_ip(request) if request else None)


@receiver(user_login_failed)
def _log_login_failure(sender, credentials, request=None, **kwargs):
    # credentials are cleansed by Django (the password is masked); only the username is logged.
    log.warning("login failed user=%s ip=%s", credentials.get("username"), client_ip(request) if request else None)


@receiver(user_logged_out)
def _log_logout(sender, request, user, **kwargs):
    if user is not None:
        log.info("logout user=%s ip=%s", user.get_username(), client_ip(request) if request else None)
