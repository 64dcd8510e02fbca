"""The filters every report takes, and whose customers it covers.

``ReportFilterForm`` turns a query string into ``ReportFilters`` (bad values are form errors, never
a 500). Scope is one rule: a user holding ``reports.view_all_reports`` (managers, analysts,
administrators) sees every customer and may filter by department and rep; anyone else sees the
customers ``customers.access.scope_filter`` gives them (a rep: their own and those shared with
them), read live from the customer table, never from the summary's copy of the owner.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Department, User
from cims.forms import FilterDateField
from customers.access import scope_filter, scope_split
from customers.forms_list import ListChoices, UserChoiceField, eligible_owners
from customers.models import Customer
from reports import periods
from reports.models import CustomerFact

DEFAULT_DAYS = {periods.DAY: 30, periods.WEEK: 182, periods.MONTH: 365, periods.QUARTER: 730, periods.YEAR: 1826}
DIMENSIONS = ("source", "level", "province", "industry")
# A book (customers owned) above which a rep's scope is read as an OR of its parts (scope_q).
LARGE_BOOK = 20_000


def sees_all(user) -> bool:
    return user.has_perm("reports.view_all_reports")


@dataclass
class ReportFilters:
    user: User
    start: datetime.date
    end: datetime.date
    period: str = periods.MONTH
    department: Department | None = None
    rep: User | None = None
    source: int | None = None
    level: int | None = None
    province: int | None = None
    industry: int | None = None
    # The query string the filters came from (for export links and subscriptions).
    query: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    # The user's customer ids as subqueries, built once per request (scope_q).
    _scope_parts: list | None = field(default=None, repr=False, compare=False)

    @property
    def all_customers(self) -> bool:
        return sees_all(self.user)

    @property
    def sees_every_customer(self) -> bool:
        """All customers are in scope: the reports' own permission, or customers.view_all_customers
        (a service agent). Then ``scope_q`` is empty, and live tables must leave out deleted
        customers themselves."""
        return self.all_customers or not scope_filter(self.user)

    @property
    def previous(self) -> tuple[datetime.date, datetime.date]:
        return periods.previous_range(self.start, self.end)

    def buckets(self) -> list[datetime.date]:
        return periods.buckets(self.start, self.end, self.period)

    def department_ids(self) -> set[int] | None:
        if self.department is None:
            return None
        return Department.objects.subtree_ids([self.department.pk])

    def dimension_q(self, prefix: str = "") -> Q:
        """The customer-dimension filters (source, level, province, industry) on a model that has
        those columns (CustomerFact, SalesFact), ``prefix`` for one reached through a relation."""
        q = Q()
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value is not None:
                q &= Q(**{f"{prefix}{name}_id": value})
        return q

    def people_q(self, rep_field: str, department_field: str | None = None) -> Q:
        """The department and rep filters on ``rep_field`` (the person the row is credited to);
        ``department_field`` when the row carries the department itself (the summary tables)."""
        q = Q()
        if self.rep is not None:
            q &= Q(**{rep_field: self.rep.pk})
        ids = self.department_ids()
        if ids is not None:
            if department_field:
                q &= Q(**{f"{department_field}__in": ids})
            else:
                q &= Q(**{f"{rep_field}__in": User.objects.filter(employee__department_id__in=ids).values("pk")})
        return q

    def has_dimensions(self) -> bool:
        return any(getattr(self, name) is not None for name in DIMENSIONS)

    def scope_q(self, customer_field: str = "customer") -> Q:
        """The user's customers, on a model whose ``customer_field`` is a customer (or its id)."""
        if self.sees_every_customer:
            # No semi-join against a million rows (a service agent sees every customer too).
            return Q()
        # The owned part and the rest apart (customers.access.scope_split): "owner = me" alone is an
        # index-only scan of customer_live_owner, where the OR of every source visits the heap page
        # of each owned customer. How the parts are combined depends on the size of the book
        # (measured, docs/performance.md): for a usual book, one IN over their UNION ALL (they are
        # disjoint) — PostgreSQL then looks each customer's facts up through the facts' customer
        # index (11 ms for 2,000 customers, where the OR scanned every fact of the range: 210 ms);
        # for a book of tens of thousands, the OR — hashed sub-plans filtering one scan beat that
        # many index lookups (1.0 s against 2.0 s for 100,000 customers).
        if self._scope_parts is None:
            owned, others = scope_split(self.user)
            owned_ids = Customer.objects.filter(owned).order_by().values("pk")
            other_ids = Customer.objects.filter(others).order_by().values("pk") if others is not None else None
            large = Customer.objects.filter(owned).order_by()[: LARGE_BOOK + 1].count() > LARGE_BOOK
            if large or other_ids is None:
                self._scope_parts = [owned_ids] + ([other_ids] if other_ids is not None else [])
            else:
                self._scope_parts = [owned_ids.union(other_ids, all=True)]
        q = Q()
        for part in self._scope_parts:
            q |= Q(**{f"{customer_field}__in": part})
        return q

    def customers_q(self, customer_field: str = "customer") -> Q:
        """Scope plus the customer-dimension filters, for a model that does not carry the
        dimensions itself (opportunities, tickets, campaign members): through CustomerFact."""
        q = self.scope_q(customer_field)
        if self.has_dimensions():
            q &= Q(**{f"{customer_field}__in": CustomerFact.objects.filter(self.dimension_q()).values("customer_id")})
        return q

    def scoped(self, queryset: QuerySet, customer_field: str = "customer") -> QuerySet:
        return queryset.filter(self.customers_q(customer_field))

    def live_only(self, queryset: QuerySet, customer_field: str = "customer_id") -> QuerySet:
        """``queryset`` (a live table: opportunities, tickets, contracts, campaign members) without
        the rows of customers in the recycle bin. Only needed when ``scope_q`` is empty and no
        dimension filter applies — a rep's scope and the customer facts hold live customers
        already — and then an anti-join against the few deleted customers (index
        customer_deleted), not a semi-join against the million live ones."""
        if self.sees_every_customer and not self.has_dimensions():
            deleted = Customer.all_objects.filter(pk=OuterRef(customer_field), deleted_at__isnull=False)
            queryset = queryset.exclude(Exists(deleted))
        return queryset


class ReportFilterForm(forms.Form):
    start = FilterDateField(label=pgettext_lazy("date range", "From"))
    end = FilterDateField(label=pgettext_lazy("date range", "To"))
    period = forms.ChoiceField(label=_("Period"), choices=periods.PERIOD_CHOICES, required=False)
    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.order_by("name"), required=False, empty_label=_("All")
    )
    rep = UserChoiceField(label=_("Sales rep"), queryset=User.objects.none(), required=False, empty_label=_("All"))
    source = forms.TypedChoiceField(label=_("Source"), coerce=int, required=False, empty_value=None)
    level = forms.TypedChoiceField(label=_("Level"), coerce=int, required=False, empty_value=None)
    province = forms.TypedChoiceField(label=_("Province"), coerce=int, required=False, empty_value=None)
    industry = forms.TypedChoiceField(label=_("Industry"), coerce=int, required=False, empty_value=None)

    def __init__(self, data=None, *, user: User, choices: ListChoices | None = None, default_period=periods.MONTH):
        super().__init__(data)
        self.user = user
        self.default_period = default_period
        choices = choices or ListChoices()
        for name in DIMENSIONS:
            self.fields[name].choices = choices.lookup(name, _("All"))
        if sees_all(user):
            self.fields["rep"].queryset = eligible_owners()
        else:
            # Figures cover the user's own customers: there is no one else to filter by.
            del self.fields["department"]
            del self.fields["rep"]
        for bound in self.fields.values():
            select = isinstance(bound.widget, forms.Select)
            bound.widget.attrs["class"] = "form-select form-select-sm" if select else "form-control form-control-sm"

    def clean(self) -> dict:
        cleaned = super().clean()
        period = cleaned.get("period") or self.default_period
        cleaned["period"] = period
        end = cleaned.get("end") or periods.today()
        start = cleaned.get("start") or end - datetime.timedelta(days=DEFAULT_DAYS[period] - 1)
        if "start" in self.errors or "end" in self.errors:
            return cleaned
        if start > end:
            raise forms.ValidationError(_("The start date is after the end date."), code="order")
        if periods.bucket_count(start, end, period) > periods.MAX_BUCKETS[period]:
            raise forms.ValidationError(
                _(
                    "That range has too many periods to chart (at most %(count)s): choose a longer period or a shorter range."
                ),
                code="too_many",
                params={"count": periods.MAX_BUCKETS[period]},
            )
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def filters(self, query: str = "") -> ReportFilters:
        """The valid filters (call after is_valid())."""
        data = self.cleaned_data
        labels = {}
        for name, bound in self.fields.items():
            value = data.get(name)
            if value in (None, "") or name in ("start", "end"):  # the range is shown on its own
                continue
            if isinstance(bound, forms.TypedChoiceField | forms.ChoiceField) and not isinstance(
                bound, forms.ModelChoiceField
            ):
                labels[str(bound.label)] = str(dict(bound.choices).get(value, value))
            elif isinstance(bound, forms.ModelChoiceField):
                labels[str(bound.label)] = bound.label_from_instance(value)
            else:
                labels[str(bound.label)] = str(value)
        return ReportFilters(
            user=self.user,
            start=data["start"],
            end=data["end"],
            period=data["period"],
            department=data.get("department"),
            rep=data.get("rep"),
            source=data.get("source"),
            level=data.get("level"),
            province=data.get("province"),
            industry=data.get("industry"),
            query=query,
            labels=labels,
        )


def default_filters(user: User, *, period: str = periods.MONTH) -> ReportFilters:
    form = ReportFilterForm({}, user=user, default_period=period)
    form.is_valid()
    return form.filters()
