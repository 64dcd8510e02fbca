"""Customer profiles (客户画像): the automatic tags, who carries them and why, and the tasks they suggest."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from cims.pagination import CappedCount, KeysetPaginator, page_links
from customers.access import scope_filter
from customers.forms_list import CursorForm, UserChoiceField, eligible_owners
from customers.models import Customer
from reports import charts
from reports import profiles as engine
from reports.filters import sees_all
from reports.models import CustomerProfile, ProfileRule, ProfileTag
from reports.registry import NUMBER, TEXT, Chart, Table
from reports.views import safe_next

PER_PAGE = 50
# Bootstrap's palette: a rule's colour (edited in the admin) outside it shows as grey.
COLORS = {"primary", "secondary", "success", "danger", "warning", "info", "light", "dark"}


class ProfileFilterForm(forms.Form):
    """Whose customers: everyone's, or one owner's (only for those who see every customer)."""

    owner = UserChoiceField(label=gettext_lazy("Owner"), queryset=None, required=False, empty_label=gettext_lazy("All"))

    def __init__(self, data=None, *, user):
        super().__init__(data)
        if sees_all(user):
            self.fields["owner"].queryset = eligible_owners()
            self.fields["owner"].widget.attrs["class"] = "form-select form-select-sm"
        else:
            del self.fields["owner"]

    def chosen_owner(self):
        if not self.is_bound or not self.is_valid():
            return None
        return self.cleaned_data.get("owner")


def color(rule: ProfileRule) -> str:
    return rule.color if rule.color in COLORS else "secondary"


def _may_open(user) -> bool:
    return user.has_perm("reports.view_profiletag") or user.has_perm("reports.view_all_reports")


def _may_list(user) -> bool:
    """Who may see which customers carry a tag: not analysts (aggregates only)."""
    return user.has_perm("reports.view_profiletag") and user.has_perm("customers.view_customer")


@staff_required
@require_GET
def profiles(request: HttpRequest) -> HttpResponse:
    """Each rule with its thresholds, suggested action and how many customers in the user's scope
    carry its tag; the RFM scores' distribution; when the profiles were computed."""
    user = request.user
    if not _may_open(user):
        raise PermissionDenied
    form = ProfileFilterForm(request.GET or None, user=user)
    owner = form.chosen_owner()
    counts = engine.tag_counts(user, owner)
    rules = list(ProfileRule.objects.all())
    for rule in rules:
        rule.tagged = counts.get(rule.pk, 0)
        rule.description = engine.describe(rule)
        rule.badge = color(rule)
    rfm = engine.rfm_distribution(user, owner)
    labels = [str(score) for score in range(1, 6)]
    series = [(_("R (recency)"), rfm["r"]), (_("F (frequency)"), rfm["f"]), (_("M (monetary)"), rfm["m"])]
    rfm_chart = Chart(
        key="rfm",
        title=_("Customers by RFM score (5 = best)"),
        figure=charts.bar(labels, series, y_title=_("Customers")),
        table="rfm",
    )
    rfm_table = Table(
        key="rfm",
        title=_("Customers by RFM score (5 = best)"),
        headers=[_("Score"), *(name for name, _values in series)],
        rows=[[labels[i], rfm["r"][i], rfm["f"][i], rfm["m"][i]] for i in range(5)],
        kinds=[NUMBER] * 4,
    )
    tags_table = Table(
        key="tags",
        title=_("Customers per automatic tag"),
        headers=[_("Tag"), _("Customers")],
        rows=[[rule.name, rule.tagged] for rule in rules if rule.is_active],
        kinds=[TEXT, NUMBER],
    )
    context = {
        "form": form,
        "owner": owner,
        "rules": rules,
        "rfm": rfm,
        "charts": [rfm_chart],
        "tables": [rfm_table, tags_table],
        "computed_at": engine.freshness(),
        "may_list": _may_list(user),
        "may_act": user.has_perm("reports.act_on_profiles"),
    }
    return render(request, "reports/profiles.html", context)


def _profile_of(customer: Customer) -> CustomerProfile | None:
    try:
        return customer.profile
    except CustomerProfile.DoesNotExist:
        return None


@staff_required
@require_GET
def profile_tag(request: HttpRequest, pk: int) -> HttpResponse:
    """The customers in the user's scope carrying a tag: code, name, owner, level and why — no
    contact details. Keyset pages (no OFFSET), newest customer first."""
    user = request.user
    if not _may_list(user):
        raise PermissionDenied
    rule = get_object_or_404(ProfileRule, pk=pk)
    form = ProfileFilterForm(request.GET or None, user=user)
    owner = form.chosen_owner()
    customers = Customer.objects.filter(scope_filter(user)).filter(profile_tags__rule=rule)
    if not rule.is_active:
        # Switched off today: its tags go with the night's refresh, and count for nothing meanwhile.
        customers = customers.none()
    if owner is not None:
        customers = customers.filter(owner=owner)
    rows = customers.select_related("owner", "level", "profile").only(
        "id",
        "code",
        "name",
        "created_at",
        "owner__id",
        "owner__username",
        "owner__name",
        "owner__first_name",
        "owner__last_name",
        "level__id",
        "level__name",
        *(f"profile__{field.name}" for field in CustomerProfile._meta.concrete_fields),
    )
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="pk", descending=True, per_page=PER_PAGE).page(after=after, before=before)
    tags = {
        tag.customer_id: tag
        for tag in ProfileTag.objects.filter(rule=rule, customer_id__in=[customer.pk for customer in page.object_list])
    }
    for customer in page.object_list:
        tag = tags.get(customer.pk)
        profile = _profile_of(customer)
        if profile is not None:
            profile.customer = customer
        if tag is not None:
            tag.rule = rule
        customer.explanation = engine.explain(tag or rule, profile)
    tagged = engine.tag_counts(user, owner, rule, listing=True).get(rule.pk, 0) if rule.is_active else 0
    context = {
        "rule": rule,
        "badge": color(rule),
        "description": engine.describe(rule),
        "form": form,
        "page": page,
        # Exact, from the scope's disjoint parts (cheaper than a capped count over the OR of them).
        "count": CappedCount(value=tagged, capped=False, cap=0),
        "may_act": user.has_perm("reports.act_on_profiles"),
        **page_links(request, page),
    }
    return render(request, "reports/profile_tag.html", context)


@staff_required
@require_POST
def profile_tasks(request: HttpRequest, pk: int) -> HttpResponse:
    """One click: the rule's suggested task for the owner of each tagged customer in the user's
    scope — during the request up to SYNC_TASK_LIMIT customers, in the background beyond."""
    user = request.user
    if not user.has_perm("reports.act_on_profiles"):
        raise PermissionDenied
    rule = get_object_or_404(ProfileRule, pk=pk)
    if not rule.action:
        messages.error(request, _("This tag suggests no action: an administrator can set one in the rule."))
        return redirect(safe_next(request, "reports:profiles"))
    pending = engine.profile_tasks_pending(rule=rule, by=user)
    if pending > engine.SYNC_TASK_LIMIT:
        from reports.tasks import create_profile_tasks

        create_profile_tasks.delay(rule.pk, user.pk)
        messages.info(
            request,
            _("More than %(count)s customers: the tasks are being created in the background.")
            % {"count": f"{engine.SYNC_TASK_LIMIT:,}"},
        )
        return redirect(safe_next(request, "reports:profiles"))
    created = engine.profile_tasks_create(rule=rule, by=user)
    messages.success(request, _("Tasks created for the owners of %(count)s customers.") % {"count": created})
    return redirect(safe_next(request, "reports:profiles"))
