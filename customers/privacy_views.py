"""Personal-data pages: consents on the 360 page and in the portal, a customer's copy of their data,
correction and erasure requests, and the managers' approval queue."""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):  # replaced while issue 6 is built
    return HttpResponse("todo")


consents = data_requests = data_request_detail = _todo
portal_privacy = portal_export = portal_request = portal_consent_withdraw = _todo
