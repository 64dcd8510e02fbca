"""``{% customer_profile customer %}``: the customer's RFM scores and automatic tags, each with why,
on the 360 page — for users holding ``reports.view_profiletag``, in at most two queries."""

from __future__ import annotations

from django import template

from reports.models import CustomerProfile, ProfileTag
from reports.profile_views import color
from reports.profiles import explain

register = template.Library()


@register.inclusion_tag("reports/_partials/customer_profile.html", takes_context=True)
def customer_profile(context, customer) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.has_perm("reports.view_profiletag"):
        return {"show": False}
    profile = CustomerProfile.objects.filter(customer_id=customer.pk).first()
    if profile is not None:
        profile.customer = customer  # explain() reads the creation date from it: no query
    tags = []
    for tag in (
        ProfileTag.objects.filter(customer_id=customer.pk, rule__is_active=True)
        .select_related("rule")
        .order_by("rule__sort_order", "rule_id")
    ):
        tags.append({"rule": tag.rule, "color": color(tag.rule), "since": tag.since, "why": explain(tag, profile)})
    return {"show": True, "profile": profile, "tags": tags}
