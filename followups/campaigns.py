"""Marketing campaigns (市场营销活动): writes, targeting customers in bulk, responses and the numbers.

A campaign is company-wide: every role with ``followups.view_campaign`` reads it, managers
create and edit it. Its members are customers: a manager adds them by filter or tag in one bulk
statement (only customers the manager may see; those already in are skipped); a sales rep records
how the customers they may see responded. The numbers (reached / responded / converted, rates,
cost per conversion) count every member, since aggregates are no personal data; member *lists*
show only the customers the reader may see.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.access import scope_filter
from customers.models import Customer
from customers.privacy import marketing_excluded
from followups.models import Campaign, CampaignMember

Status = Campaign.Status
MemberStatus = CampaignMember.Status
EDITABLE_FIELDS = (
    "name",
    "kind",
    "status",
    "start_date",
    "end_date",
    "budget",
    "actual_cost",
    "owner",
    "description",
)
# Members are no longer added to a campaign that is over.
CLOSED_STATUSES = (Status.FINISHED, Status.CANCELLED)
# The customer ids written per statement on the portable (non-PostgreSQL) path.
TARGET_BATCH = 2000
CENT = Decimal("0.01")
TENTH = Decimal("0.1")
RESPONDED_STATUSES = (MemberStatus.RESPONDED, MemberStatus.CONVERTED)


# --- Campaigns -----------------------------------------------------------------------------------


def validate_campaign(values: Mapping[str, Any]) -> None:
    """The rules of a campaign's fields, as a ValidationError by field (the form shows them)."""
    errors: dict[str, str] = {}
    if not (values.get("name") or "").strip():
        errors["name"] = _("Give the campaign a name.")
    if values.get("kind") not in Campaign.Kind.values:
        errors["kind"] = _("Choose the type of the campaign.")
    if values.get("status") not in Status.values:
        errors["status"] = _("Choose the status of the campaign.")
    start, end = values.get("start_date"), values.get("end_date")
    if start is None:
        errors["start_date"] = _("Enter the start date.")
    if end is None:
        errors["end_date"] = _("Enter the end date.")
    elif start is not None and end < start:
        errors["end_date"] = _("The end date cannot be before the start date.")
    budget = values.get("budget")
    if budget is None or budget < 0:
        errors["budget"] = _("The budget cannot be negative.")
    actual_cost = values.get("actual_cost")
    if actual_cost is not None and actual_cost < 0:
        errors["actual_cost"] = _("The actual cost cannot be negative.")
    owner = values.get("owner")
    if owner is None or not owner.is_staff_member:
        errors["owner"] = _("The owner must be an active member of staff.")
    if errors:
        raise ValidationError(errors)


def _clean_values(values: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = dict(values)
    cleaned["name"] = (cleaned.get("name") or "").strip()
    cleaned["description"] = (cleaned.get("description") or "").strip()
    return cleaned


@transaction.atomic
def campaign_create(
    *,
    by,
    name: str,
    start_date: datetime.date,
    end_date: datetime.date,
    kind: str = Campaign.Kind.PROMOTION,
    status: str = Status.PLANNED,
    budget: Decimal = Decimal(0),
    actual_cost: Decimal | None = None,
    owner=None,
    description: str = "",
) -> Campaign:
    """Create a campaign (PermissionDenied without ``followups.add_campaign``); the owner defaults to ``by``."""
    if not by.has_perm("followups.add_campaign"):
        raise PermissionDenied("followups.add_campaign")
    values = _clean_values(
        {
            "name": name,
            "kind": kind,
            "status": status,
            "start_date": start_date,
            "end_date": end_date,
            "budget": budget,
            "actual_cost": actual_cost,
            "owner": owner or by,
            "description": description,
        }
    )
    validate_campaign(values)
    campaign = Campaign(created_by=by, **values)
    campaign._history_user = by
    campaign.save()
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, by, **changes) -> Campaign:
    """Change a campaign's fields (PermissionDenied without ``followups.change_campaign``)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    if not by.has_perm("followups.change_campaign"):
        raise PermissionDenied("followups.change_campaign")
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    values = _clean_values({name: getattr(locked, name) for name in EDITABLE_FIELDS} | changes)
    validate_campaign(values)
    for name, value in values.items():
        setattr(locked, name, value)
    locked._history_user = by
    locked.save()
    for f in locked._meta.concrete_fields:  # keep the caller's object up to date
        setattr(campaign, f.attname, getattr(locked, f.attname))
    return campaign


# --- Targets -------------------------------------------------------------------------------------


def _in_campaign(campaign: Campaign) -> Exists:
    """Whether the customer of the outer query is in ``campaign`` already: an anti-join on the
    unique (campaign, customer) index, not a NOT IN list that PostgreSQL cannot hash once a
    campaign holds hundreds of thousands of members."""
    return Exists(CampaignMember.objects.filter(campaign=campaign, customer_id=OuterRef("pk")))


def _targetable(customers: QuerySet, by) -> QuerySet:
    """The customers of ``customers`` that ``by`` may see and a campaign may target: live, not
    erased, and not withdrawing marketing consent (customers.privacy; a withdrawal counts at once)."""
    return customers.filter(scope_filter(by, "view"), deleted_at__isnull=True).exclude(marketing_excluded())


def target_queryset(*, campaign: Campaign, customers: QuerySet, by) -> QuerySet:
    """The ids of the targetable customers of ``customers`` (``_targetable``) not in ``campaign`` yet."""
    return _targetable(customers, by).filter(~_in_campaign(campaign)).order_by().values_list("pk", flat=True).distinct()


def target_preview(*, campaign: Campaign, customers: QuerySet, by) -> dict[str, int]:
    """How many customers a filter matches (of those ``by`` may see), and how many of them are new: one query."""
    visible = _targetable(customers, by).order_by()
    counts = visible.aggregate(
        matching=Count("pk", distinct=True), new=Count("pk", distinct=True, filter=~Q(_in_campaign(campaign)))
    )
    return {"matching": counts["matching"], "new": counts["new"], "existing": counts["matching"] - counts["new"]}


def _insert_select(*, campaign: Campaign, ids: QuerySet, by, now: datetime.datetime) -> int:
    """PostgreSQL: one INSERT … SELECT from the filter's own SQL; the rows never come to Python."""
    compiler = ids.query.get_compiler(using=ids.db)
    select_sql, select_params = compiler.as_sql()
    table = connection.ops.quote_name(CampaignMember._meta.db_table)
    # Only the table name and the compiled queryset are interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {table} (campaign_id, customer_id, status, added_at, note, added_by_id) "  # noqa: S608
        f"SELECT %s, targets.customer_id, %s, %s, '', %s FROM ({select_sql}) AS targets(customer_id) "
        "ON CONFLICT (campaign_id, customer_id) DO NOTHING"
    )
    params = (campaign.pk, MemberStatus.TARGETED.value, now, getattr(by, "pk", None), *select_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _insert_in_batches(*, campaign: Campaign, ids: QuerySet, by, now: datetime.datetime) -> int:
    """The portable path: batches of ``bulk_create(ignore_conflicts=True)``, read by keyset on the id.

    Each batch of ids is read whole before it is written (no open cursor over a table being
    written), so memory stays bounded however many customers match. ``ids`` leaves out the
    customers in the campaign already, and the caller holds the campaign's row lock (SQLite
    serialises writers anyway), so every id read is a row written.
    """
    added = 0
    last = 0
    while True:
        batch = list(ids.filter(pk__gt=last).order_by("pk")[:TARGET_BATCH])
        if not batch:
            return added
        CampaignMember.objects.bulk_create(
            [
                CampaignMember(
                    campaign=campaign, customer_id=pk, status=MemberStatus.TARGETED, added_at=now, added_by=by
                )
                for pk in batch
            ],
            ignore_conflicts=True,
        )
        added += len(batch)
        last = batch[-1]


@transaction.atomic
def campaign_add_targets(*, campaign: Campaign, customers: QuerySet, by) -> int:
    """Add the customers of ``customers`` that ``by`` may see to ``campaign``; return how many were added.

    Customers already in the campaign are skipped (also when two managers add at once: the
    unique (campaign, customer) pair decides). Refused for a finished or cancelled campaign.
    """
    if not by.has_perm("followups.add_campaignmember"):
        raise PermissionDenied("followups.add_campaignmember")
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status in CLOSED_STATUSES:
        raise ValidationError(
            _("The campaign is “%(status)s”: customers can no longer be added to it.")
            % {"status": locked.get_status_display()}
        )
    ids = target_queryset(campaign=locked, customers=customers, by=by)
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _insert_select(campaign=locked, ids=ids, by=by, now=now)
    return _insert_in_batches(campaign=locked, ids=ids, by=by, now=now)


# --- Members -------------------------------------------------------------------------------------


def may_see_customer(user, customer_id: int) -> bool:
    return Customer.objects.filter(scope_filter(user, "view"), pk=customer_id).exists()


@transaction.atomic
def member_mark(*, member: CampaignMember, status: str, by, note: str = "") -> CampaignMember:
    """Record how a member answered: responded, converted, or back to only reached.

    Converting implies having responded (both times are set); going back to "reached" clears
    them. A non-empty ``note`` replaces the member's note. ``by`` needs
    ``followups.change_campaignmember`` and must see the customer.
    """
    if not by.has_perm("followups.change_campaignmember") or not may_see_customer(by, member.customer_id):
        raise PermissionDenied("followups.change_campaignmember")
    if status not in MemberStatus.values:
        raise ValidationError({"status": _("“%(status)s” is not a member status.") % {"status": status}})
    note = (note or "").strip()
    limit = CampaignMember._meta.get_field("note").max_length
    if len(note) > limit:
        raise ValidationError({"note": _("The note may be at most %(limit)d characters.") % {"limit": limit}})
    locked = CampaignMember.objects.select_for_update().select_related("campaign").get(pk=member.pk)
    if locked.campaign.status == Status.CANCELLED:
        raise ValidationError(_("The campaign was cancelled: its members no longer change."))
    now = timezone.now()
    if status == MemberStatus.TARGETED:
        locked.responded_at = locked.converted_at = None
    elif status == MemberStatus.RESPONDED:
        locked.responded_at = locked.responded_at or now
        locked.converted_at = None
    else:
        locked.responded_at = locked.responded_at or now
        locked.converted_at = locked.converted_at or now
    locked.status = status
    if note:
        locked.note = note
    locked.save(update_fields=["status", "responded_at", "converted_at", "note"])
    for name in ("status", "responded_at", "converted_at", "note"):
        setattr(member, name, getattr(locked, name))
    return member


@transaction.atomic
def member_remove(*, member: CampaignMember, by) -> None:
    """Take a customer out of a campaign (``followups.delete_campaignmember``, and the customer in sight)."""
    if not by.has_perm("followups.delete_campaignmember") or not may_see_customer(by, member.customer_id):
        raise PermissionDenied("followups.delete_campaignmember")
    CampaignMember.objects.filter(pk=member.pk).delete()


def visible_members(campaign: Campaign, user) -> QuerySet:
    """The members of ``campaign`` whose customers ``user`` may see (what a member list shows)."""
    return campaign.members.filter(customer__in=Customer.objects.visible_to(user))


# --- The numbers ---------------------------------------------------------------------------------


def member_counts() -> dict[str, Count]:
    """Reached / responded (converted ones included) / converted, as Count(filter=) over members."""
    return {
        "reached": Count("pk"),
        "responded": Count("pk", filter=Q(status__in=RESPONDED_STATUSES)),
        "converted": Count("pk", filter=Q(status=MemberStatus.CONVERTED)),
    }


def attach_stats(campaigns: list[Campaign]) -> list[Campaign]:
    """Give each campaign of a page its ``stats``: one grouped query for all of them.

    Grouped over the page's campaign ids rather than annotated on the paginated queryset, so that
    neither the page's count nor its rows join (and group) every member of every campaign.
    """
    counts = {
        row.pop("campaign_id"): row
        for row in CampaignMember.objects.filter(campaign_id__in=[c.pk for c in campaigns])
        .order_by()
        .values("campaign_id")
        .annotate(**member_counts())
    }
    empty = {"reached": 0, "responded": 0, "converted": 0}
    for campaign in campaigns:
        campaign.stats = stats_from(campaign, **counts.get(campaign.pk, empty))
    return campaigns


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CampaignStats:
    reached: int
    responded: int
    converted: int
    budget: Decimal
    actual_cost: Decimal | None

    @property
    def response_rate(self) -> Decimal | None:
        """Percent of the reached who responded (or converted); None with nobody reached."""
        return _percent(self.responded, self.reached)

    @property
    def conversion_rate(self) -> Decimal | None:
        """Percent of the reached who converted; None with nobody reached."""
        return _percent(self.converted, self.reached)

    @property
    def cost(self) -> Decimal:
        """What the campaign cost: the actual cost once it is known, else the budget."""
        return self.actual_cost if self.actual_cost is not None else self.budget

    @property
    def cost_per_conversion(self) -> Decimal | None:
        if not self.converted:
            return None
        return (self.cost / self.converted).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def over_budget(self) -> bool:
        return self.actual_cost is not None and self.actual_cost > self.budget


def stats_from(campaign: Campaign, *, reached: int, responded: int, converted: int) -> CampaignStats:
    return CampaignStats(
        reached=reached or 0,
        responded=responded or 0,
        converted=converted or 0,
        budget=campaign.budget,
        actual_cost=campaign.actual_cost,
    )


def campaign_stats(campaign: Campaign) -> CampaignStats:
    """The campaign's numbers over all its members: one aggregate query."""
    counts = CampaignMember.objects.filter(campaign=campaign).aggregate(**member_counts())
    return stats_from(campaign, **counts)


# --- Demo data -----------------------------------------------------------------------------------


@transaction.atomic
def seed_demo_campaigns() -> list[Campaign]:
    """Two demo campaigns with members in every state (for the quick start; run again, it adds nothing).

    Needs a manager and some customers (load the demo users and customers first); returns the
    campaigns, or an empty list when there is no one to own them.
    """
    from accounts import roles
    from accounts.models import User

    owner = User.objects.filter(is_active=True, groups__name=roles.MANAGER).order_by("pk").first()
    if owner is None:
        return []
    today = timezone.localdate()
    plans = [
        {
            "name": "2026 春季工业展会",
            "kind": Campaign.Kind.TRADE_SHOW,
            "status": Status.FINISHED,
            "start_date": today - datetime.timedelta(days=60),
            "end_date": today - datetime.timedelta(days=57),
            "budget": Decimal("80000.00"),
            "actual_cost": Decimal("72500.00"),
            "description": "展位 A-12，现场演示新品并收集意向客户。",
        },
        {
            "name": "夏季线上促销",
            "kind": Campaign.Kind.ONLINE,
            "status": Status.RUNNING,
            "start_date": today - datetime.timedelta(days=7),
            "end_date": today + datetime.timedelta(days=23),
            "budget": Decimal("30000.00"),
            "actual_cost": None,
            "description": "微信公众号与短信推送，限时九折。",
        },
    ]
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:40])
    campaigns = []
    now = timezone.now()
    for index, plan in enumerate(plans):
        campaign, created = Campaign.objects.get_or_create(
            name=plan["name"], defaults={**plan, "owner": owner, "created_by": owner}
        )
        campaigns.append(campaign)
        if not created or not customer_ids:
            continue
        chosen = customer_ids[index * 10 : index * 10 + 30]
        members = []
        for position, pk in enumerate(chosen):
            # Every third responded, every fifth of those converted too; the rest were only reached.
            status = MemberStatus.TARGETED
            if position % 3 == 0:
                status = MemberStatus.CONVERTED if position % 5 == 0 else MemberStatus.RESPONDED
            members.append(
                CampaignMember(
                    campaign=campaign,
                    customer_id=pk,
                    status=status,
                    added_at=now,
                    added_by=owner,
                    responded_at=now if status != MemberStatus.TARGETED else None,
                    converted_at=now if status == MemberStatus.CONVERTED else None,
                )
            )
        CampaignMember.objects.bulk_create(members, ignore_conflicts=True)
    return campaigns
