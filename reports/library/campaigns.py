"""The campaigns report (营销活动分析): for each marketing campaign running in the date range, how
many customers it reached, how many responded and converted, and what a conversion cost.

Counted from the members (``followups.models.CampaignMember``) in one grouped query; a user who
does not see every customer counts the members whose customers they may see. The cost per
conversion is a property of the whole campaign (its cost over all its conversions, as the
campaign page shows it, ``followups.campaigns.CampaignStats``), so it does not change with whose
members are counted.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import DecimalField, F, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from followups.campaigns import member_counts
from followups.models import Campaign, CampaignMember
from reports import charts, facts, periods
from reports.filters import ReportFilters
from reports.models import SalesFact
from reports.registry import MONEY, NUMBER, PERCENT, TEXT, Chart, Figure, Report, ReportResult, Table, register
from reports.sources import money

CONVERTED = CampaignMember.Status.CONVERTED
# The chart stays readable; the table lists every campaign of the range.
CHART_SHOWN = 20
_SUM = DecimalField(max_digits=20, decimal_places=2)


def members(filters: ReportFilters) -> QuerySet:
    """The members the filters count: of customers in scope and matching the customer
    dimensions, whose customer the rep (or the department's people) owns now."""
    queryset = CampaignMember.objects.filter(filters.customers_q("customer"), filters.people_q("customer__owner"))
    # Members of customers in the recycle bin count for no one (as reps and dimension filters see it).
    return filters.live_only(queryset)


def whole(filters: ReportFilters) -> bool:
    """Whether the filters count every member of a campaign (no scope, no filter on customers)."""
    return filters.all_customers and not filters.has_dimensions() and filters.rep is None and filters.department is None


def cost_of(campaign: Campaign) -> tuple[Decimal, bool]:
    """What the campaign cost, and whether that is its actual cost (else its budget)."""
    if campaign.actual_cost is not None:
        return campaign.actual_cost, True
    return campaign.budget, False


def per_conversion(cost: Decimal, converted: int) -> Decimal | None:
    """The campaign page's rule (followups.campaigns.CampaignStats): to the cent, half up."""
    if not converted:
        return None
    return (Decimal(cost) / converted).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@register
class CampaignsReport(Report):
    key = "campaigns"
    title = _("Campaign analysis")
    description = _(
        "Customers each marketing campaign reached, how many responded and converted, and what a conversion cost."
    )
    icon = "megaphone"
    permissions = ("reports.view_all_reports", "followups.view_campaign")
    summaries = (facts.SALES,)
    default_period = periods.MONTH

    def compute(self, filters: ReportFilters) -> ReportResult:
        result = ReportResult()
        campaigns = list(
            Campaign.objects.filter(start_date__lte=filters.end, end_date__gte=filters.start)
            .only("pk", "name", "kind", "status", "start_date", "end_date", "budget", "actual_cost")
            .order_by("start_date", "pk")
        )
        ids = [campaign.pk for campaign in campaigns]
        empty = {"reached": 0, "responded": 0, "converted": 0}
        counted = self._counts(members(filters), ids)
        everyone = counted if whole(filters) else self._counts(CampaignMember.objects.all(), ids)
        sales = self._converted_sales(filters, ids)

        rows, totals = [], {"reached": 0, "responded": 0, "converted": 0, "cost": Decimal(0), "all_converted": 0}
        chart_rows = []
        for campaign in campaigns:
            counts = counted.get(campaign.pk, empty)
            cost, actual = cost_of(campaign)
            all_converted = everyone.get(campaign.pk, empty)["converted"]
            rows.append(
                [
                    campaign.name,
                    str(campaign.get_kind_display()),
                    str(campaign.get_status_display()),
                    campaign.start_date,
                    campaign.end_date,
                    counts["reached"],
                    counts["responded"],
                    counts["converted"],
                    periods.ratio(counts["responded"], counts["reached"]),
                    periods.ratio(counts["converted"], counts["reached"]),
                    campaign.budget,
                    campaign.actual_cost,
                    str(_("Actual cost") if actual else _("Budget")),
                    per_conversion(cost, all_converted),
                    sales.get(campaign.pk, Decimal("0.00")),
                ]
            )
            chart_rows.append((campaign, counts))
            for name in ("reached", "responded", "converted"):
                totals[name] += counts[name]
            totals["cost"] += cost
            totals["all_converted"] += all_converted

        result.figures = [
            Figure(_("Campaigns"), len(campaigns), NUMBER),
            Figure(_("Reached"), totals["reached"], NUMBER),
            Figure(_("Responded"), totals["responded"], NUMBER),
            Figure(_("Converted"), totals["converted"], NUMBER),
            Figure(_("Response rate"), periods.ratio(totals["responded"], totals["reached"]), PERCENT),
            Figure(_("Conversion rate"), periods.ratio(totals["converted"], totals["reached"]), PERCENT),
            Figure(_("Cost"), money(totals["cost"]), MONEY, note=_("Actual cost where known, else the budget")),
            Figure(
                _("Cost per conversion"),
                per_conversion(totals["cost"], totals["all_converted"]),
                MONEY,
                lower_is_better=True,
            ),
            Figure(_("Sales from converted customers"), money(sum(sales.values(), Decimal(0))), MONEY),
        ]
        result.tables.append(
            Table(
                "campaigns",
                _("Campaigns"),
                [
                    _("Campaign"),
                    _("Type"),
                    _("Status"),
                    _("Start date"),
                    _("End date"),
                    _("Reached"),
                    _("Responded"),
                    _("Converted"),
                    _("Response rate"),
                    _("Conversion rate"),
                    _("Budget"),
                    _("Actual cost"),
                    _("Cost counted"),
                    _("Cost per conversion"),
                    _("Sales from converted customers"),
                ],
                rows,
                [
                    TEXT,
                    TEXT,
                    TEXT,
                    TEXT,
                    TEXT,
                    NUMBER,
                    NUMBER,
                    NUMBER,
                    PERCENT,
                    PERCENT,
                    MONEY,
                    MONEY,
                    TEXT,
                    MONEY,
                    MONEY,
                ],
            )
        )
        shown = sorted(chart_rows, key=lambda item: -item[1]["reached"])[:CHART_SHOWN]
        names = _chart_names([campaign for campaign, _counts in shown])
        result.charts.append(
            Chart(
                "funnel",
                _("Reached, responded and converted per campaign"),
                charts.bar(
                    names,
                    [
                        (_("Reached"), [counts["reached"] for _c, counts in shown]),
                        (_("Responded"), [counts["responded"] for _c, counts in shown]),
                        (_("Converted"), [counts["converted"] for _c, counts in shown]),
                    ],
                ),
                table="campaigns",
            )
        )
        result.notes = self._notes(filters)
        return result

    @staticmethod
    def _counts(queryset: QuerySet, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        rows = queryset.filter(campaign_id__in=ids).order_by().values("campaign_id").annotate(**member_counts())
        return {row.pop("campaign_id"): row for row in rows}

    @staticmethod
    def _converted_sales(filters: ReportFilters, ids: list[int]) -> dict[int, Decimal]:
        """Per campaign: the net amount (refunds subtracted) of the transactions its converted
        members' customers made from its first to its last day — one join of the few converted
        members to their sales facts by customer."""
        if not ids:
            return {}
        converted = members(filters).filter(campaign_id__in=ids, status=CONVERTED)
        # One filter() call: the membership, its campaign's dates and its campaign id are the same
        # joined row (a multi-valued relation spanned once).
        member = "customer__campaign_memberships"
        rows = (
            SalesFact.objects.filter(
                **{
                    f"{member}__in": converted.values("pk"),
                    "day__gte": F(f"{member}__campaign__start_date"),
                    "day__lte": F(f"{member}__campaign__end_date"),
                }
            )
            .order_by()
            .values(f"{member}__campaign_id")
            .annotate(total=Sum("amount", output_field=_SUM))
        )
        return {row[f"{member}__campaign_id"]: money(row["total"]) for row in rows}

    def _notes(self, filters: ReportFilters) -> list[str]:
        notes = [
            _(
                "A campaign is shown when it runs on at least one day of the range. Reached = every member; "
                "responded = members who responded or converted; rates are of the reached."
            ),
            _(
                "Cost per conversion = the campaign's actual cost, or its budget while no actual cost is "
                "recorded (the Cost counted column says which), divided by all its conversions, whatever the filters."
            ),
            _(
                "Sales from converted customers: the net amount (refunds subtracted) of the transactions the "
                "converted members' customers made while the campaign ran, from the summary tables; a customer "
                "converted by two campaigns counts in both."
            ),
        ]
        if not filters.all_customers:
            notes.append(_("The counts cover the members whose customers you may see."))
        elif not whole(filters):
            notes.append(_("The counts cover the members whose customers match the filters."))
        return notes


def _chart_names(campaigns: list[Campaign]) -> list[str]:
    """Chart categories: campaign names, made distinct (plotly would merge equal ones)."""
    seen: dict[str, int] = {}
    for campaign in campaigns:
        seen[campaign.name] = seen.get(campaign.name, 0) + 1
    return [f"{c.name} ({c.start_date:%Y-%m-%d})" if seen[c.name] > 1 else c.name for c in campaigns]
