"""The complaint desk: my tickets, the team queue, a ticket's page and its actions (staff)."""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):  # replaced while issue 6 is built
    return HttpResponse("todo")


ticket_list = ticket_create = customer_tickets = ticket_detail = _todo
ticket_transition = ticket_assign = ticket_comment = ticket_attachment = _todo
