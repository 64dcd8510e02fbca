"""The portal's one rule: a portal user reaches only their own customer's data.

Every portal view is wrapped in ``portal_view``: it refuses staff and anonymous users as
``portal_required`` does and sets ``request.portal_customer`` from the logged-in user's
PortalAccount. Views look everything up through that customer (``ticket = customer.tickets.get(
number=...)``) — never from a customer id in the URL or a form — so another customer's ticket
number, file or record is a 404.
"""

from __future__ import annotations

from functools import wraps

from django.http import Http404, HttpRequest, HttpResponse

from accounts.access import View, portal_required


def customer_for(user):
    """The live customer whose portal account ``user`` is, or None (no account, or the customer was
    deleted or erased)."""
    from customers.models import Customer

    if not getattr(user, "is_authenticated", False):
        return None
    return Customer.objects.filter(portal_account__user=user, erased_at__isnull=True).first()


def portal_view(view: View) -> View:
    @portal_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        customer = customer_for(request.user)
        if customer is None:
            raise Http404("no customer for this portal account")
        request.portal_customer = customer
        return view(request, *args, **kwargs)

    return wrapper
