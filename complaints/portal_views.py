"""The portal's ticket pages: a customer's own tickets only, resolved from the logged-in user."""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):  # replaced while issue 6 is built
    return HttpResponse("todo")


ticket_list = ticket_create = ticket_detail = ticket_reply = ticket_rate = ticket_reopen = _todo
ticket_attachment = rate_link = _todo
