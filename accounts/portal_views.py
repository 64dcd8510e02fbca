"""The portal account: staff create it and send the invitation; the customer accepts it (first
password) and keeps their profile."""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):  # replaced while issue 6 is built
    return HttpResponse("todo")


portal_account = invitation_accept = profile = _todo
