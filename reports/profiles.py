"""Customer profiles (客户画像): RFM scores, the automatic tags, why a customer carries each, and the
tasks a tag suggests.

``profiles_refresh`` (nightly, Celery) rebuilds every live customer's ``CustomerProfile`` and the
``ProfileTag`` rows of every rule with a handful of set-based statements — never a Python loop over
customers. Dates are Asia/Shanghai; the cut-offs are computed here and passed as parameters.

The figures (a window "the last N days" is the N local days ending today; "12 months" is after
the same date a year ago, up to today):

- recency: days since the last purchase (a transaction with a positive amount; a refund is not a
  purchase); frequency: purchases in 12 months; monetary: the net amount in 12 months (refunds
  subtract).
- R/F/M scores 1–5 over the customers who bought in 12 months, 5 the best (most recent, most
  frequent, most spent): the quintile of the customer's position in ascending order,
  ``1 + ⌊5 × position / buyers⌋`` with ``position`` 0-based — NTILE(5)'s quintiles, except that a
  group of equal figures takes the middle of its positions (statistics' average rank) and shares
  one score: NTILE would split a tie between scores by customer id, which no one could explain.
- follow-ups: the last one's time, and how many fell in the 高活跃低转化 rule's window.
- renewal risk 0–100, only when an active contract ends within the 流失风险 rule's days (else 0):
  **40** for a complaint that is open or was filed in the last 90 days, **30** for low satisfaction
  (the average ticket rating over 12 months, or the average return-visit satisfaction over 12
  months, at or below the rule's rating), **30** for falling spend (the net of the last 6 months
  below (100 − the rule's percent)% of the 6 months before, which must be positive).

The tags: 高价值客户 = the top ``percent``% of the customers with a positive 12-month net, by that
net (ties share a place); 沉睡客户 = bought before, and no purchase nor follow-up in ``days``;
高活跃低转化 = at least ``count`` follow-ups in ``days`` and no won opportunity; 新客户 = created
within ``days``; 流失风险 = a renewal risk of at least ``score``. A customer keeps a tag (and its
``since``) while still qualifying; ``reason`` holds the figures that earned it (built in SQL), so
that ``explain`` can say why on the 360 page.
"""

from __future__ import annotations

import calendar
import datetime
import logging
import time
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history

from complaints.models import Ticket
from customers.access import scope_filter, scope_split
from customers.models import Contract, Customer
from followups.models import Opportunity, Task
from followups.services import contact_due_at
from reports.filters import sees_all
from reports.models import CustomerProfile, ProfileRule, ProfileTag, SummaryState
from reports.periods import zone

logger = logging.getLogger(__name__)

STATE = "customer_profiles"
# The weights of the renewal-risk score (the page and the explanations quote them).
RISK_COMPLAINT, RISK_SATISFACTION, RISK_SPEND = 40, 30, 30
# An open complaint, or one filed within this many days, counts for the renewal risk.
COMPLAINT_DAYS = 90
# At most this many customers' tasks are created during the request; more go to Celery.
SYNC_TASK_LIMIT = 5_000
TASK_BATCH = 1_000

K = ProfileRule.Kind


# --- Dates -----------------------------------------------------------------------------------------


def _months_back(day: datetime.date, months: int) -> datetime.date:
    """The same day ``months`` months earlier (the month's last day when it is shorter)."""
    month = day.month - 1 - months
    year, month = day.year + month // 12, month % 12 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _midnight(day: datetime.date) -> datetime.datetime:
    """00:00 Asia/Shanghai on ``day`` (aware)."""
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone())


def _window_start(today: datetime.date, days: int) -> datetime.datetime:
    """The first instant of "the last ``days`` days": midnight of the oldest of those local days."""
    return _midnight(today - datetime.timedelta(days=max(days, 0) - 1))


def _rules() -> dict[str, ProfileRule]:
    """Every kind's rule; a kind whose row is gone gets the model's defaults (and no tags)."""
    found = {rule.kind: rule for rule in ProfileRule.objects.all()}
    return {kind: found.get(kind) or ProfileRule(kind=kind, is_active=False) for kind in K.values}


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


# --- SQL -------------------------------------------------------------------------------------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _days_between(later: str, earlier: str) -> str:
    if _pg():
        return f"(CAST({later} AS date) - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _json(pairs: dict[str, str]) -> str:
    """A JSON object built by the database from column expressions (no row goes through Python)."""
    function = "jsonb_build_object" if _pg() else "json_object"
    arguments = ", ".join(f"'{key}', {value}" for key, value in pairs.items())
    return f"{function}({arguments})"


def _params(values: dict) -> dict:
    """Query parameters as each database compares them (SQLite: the text Django stores)."""
    ops = connection.ops
    adapted = {}
    for name, value in values.items():
        if isinstance(value, datetime.datetime):
            value = ops.adapt_datetimefield_value(value)
        elif isinstance(value, datetime.date):
            value = ops.adapt_datefield_value(value)
        adapted[name] = value
    return adapted


_OPEN = "(" + ", ".join(f"'{status}'" for status in Ticket.OPEN_STATUSES) + ")"

# The customers with an active contract ending soon, and the three factors of their renewal risk.
# Few customers (those with a contract ending in the window): each factor is an indexed look-up.
_CHURN_SQL = f"""
    CREATE TEMP TABLE profile_churn AS
    SELECT soon.customer_id, soon.ends_on,
        CASE WHEN EXISTS (
            SELECT 1 FROM complaints_ticket t
            WHERE t.customer_id = soon.customer_id AND t.kind = 'complaint'
              AND (t.status IN {_OPEN} OR t.created_at >= %(complaint_since)s)
        ) THEN 1 ELSE 0 END AS complaint,
        (SELECT AVG(t.rating) FROM complaints_ticket t
         WHERE t.customer_id = soon.customer_id AND t.rating IS NOT NULL
           AND COALESCE(t.rated_at, t.created_at) >= %(year_since)s) AS ticket_rating,
        (SELECT AVG(f.satisfaction) FROM followups_followup f
         WHERE f.customer_id = soon.customer_id AND f.satisfaction IS NOT NULL
           AND f.happened_at >= %(year_since)s) AS visit_rating,
        (SELECT COALESCE(SUM(x.amount), 0) FROM customers_transaction x
         WHERE x.customer_id = soon.customer_id AND x.date > %(half_after)s AND x.date <= %(today)s) AS spend_recent,
        (SELECT COALESCE(SUM(x.amount), 0) FROM customers_transaction x
         WHERE x.customer_id = soon.customer_id AND x.date > %(year_after)s AND x.date <= %(half_after)s) AS spend_before,
        0 AS risk
    FROM (
        SELECT k.customer_id, MIN(k.end_date) AS ends_on
        FROM customers_contract k JOIN customers_customer c ON c.id = k.customer_id AND c.deleted_at IS NULL
        WHERE k.status = '{Contract.Status.ACTIVE}' AND k.end_date >= %(today)s AND k.end_date <= %(churn_until)s
        GROUP BY k.customer_id
    ) soon
"""  # noqa: S608 - constants only; every value is a parameter

_CHURN_RISK_SQL = f"""
    UPDATE profile_churn SET risk =
        {RISK_COMPLAINT} * complaint
        + CASE WHEN (ticket_rating IS NOT NULL AND ticket_rating <= %(rating)s)
                 OR (visit_rating IS NOT NULL AND visit_rating <= %(rating)s) THEN {RISK_SATISFACTION} ELSE 0 END
        + CASE WHEN spend_before > 0 AND spend_recent * 100 < (100 - %(fall)s) * spend_before
               THEN {RISK_SPEND} ELSE 0 END
"""  # noqa: S608 - constants only


_PROFILE_COLUMNS = [
    "last_purchase_on",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "last_contact_at",
    "followups_recent",
    "has_won_opportunity",
    "renewal_risk",
    "computed_at",
]


def _quintile(column: str) -> str:
    """The 1–5 score of ``column`` among the rows (ascending: the largest value scores 5): the
    quintile of the row's position, 0-based, ``(rank − 1) + (ties − 1) / 2`` — the middle of its
    group of equal values, so that equal figures share a score. In integers: 2 × position × 5
    over 2 × rows. (The PARTITION BY sorts like the ORDER BY: one sort serves both.)"""
    return (
        f"1 + 5 * (2 * (RANK() OVER (ORDER BY {column}) - 1) + COUNT(*) OVER (PARTITION BY {column}) - 1)"
        " / (2 * COUNT(*) OVER ())"
    )


def _profile_sql() -> str:
    """Every live customer's profile row from the transactions, follow-ups, won opportunities
    and renewal risks: one upsert (INSERT … SELECT … ON CONFLICT); the scores by window functions
    over the buyers.

    An upsert, not a delete and a fresh insert: an updated row keeps its customer, so PostgreSQL
    skips the foreign-key check that each inserted row costs at commit (a share lock on every
    customer row: 28 s of a 74 s night at a million customers)."""
    live = "NOT EXISTS (SELECT 1 FROM customers_customer d WHERE d.id = {0} AND d.deleted_at IS NOT NULL)"
    return f"""
    INSERT INTO reports_customerprofile
        (customer_id, last_purchase_on, recency_days, frequency, monetary, r_score, f_score, m_score,
         last_contact_at, followups_recent, has_won_opportunity, renewal_risk, computed_at)
    WITH tx AS (
        SELECT t.customer_id,
               MAX(CASE WHEN t.amount > 0 THEN t.date END) AS last_purchase_on,
               SUM(CASE WHEN t.amount > 0 AND t.date > %(year_after)s THEN 1 ELSE 0 END) AS frequency,
               SUM(CASE WHEN t.date > %(year_after)s THEN t.amount ELSE 0 END) AS monetary
        FROM customers_transaction t
        WHERE t.date <= %(today)s AND {live.format("t.customer_id")}
        GROUP BY t.customer_id
    ), buyers AS (
        SELECT customer_id,
               {_quintile("last_purchase_on")} AS r_score,
               {_quintile("frequency")} AS f_score,
               {_quintile("monetary")} AS m_score
        FROM tx WHERE frequency > 0
    ), fu AS (
        SELECT f.customer_id, MAX(f.happened_at) AS last_contact_at,
               SUM(CASE WHEN f.happened_at >= %(busy_since)s THEN 1 ELSE 0 END) AS recent
        FROM followups_followup f
        GROUP BY f.customer_id
    ), won AS (
        SELECT DISTINCT o.customer_id FROM followups_opportunity o WHERE o.stage = '{Opportunity.Stage.WON}'
    )
    SELECT c.id, tx.last_purchase_on, {_days_between("%(today)s", "tx.last_purchase_on")},
           COALESCE(tx.frequency, 0), COALESCE(tx.monetary, 0), b.r_score, b.f_score, b.m_score,
           fu.last_contact_at, COALESCE(fu.recent, 0), won.customer_id IS NOT NULL, COALESCE(ch.risk, 0),
           %(now)s
    FROM customers_customer c
    LEFT JOIN tx ON tx.customer_id = c.id
    LEFT JOIN buyers b ON b.customer_id = c.id
    LEFT JOIN fu ON fu.customer_id = c.id
    LEFT JOIN won ON won.customer_id = c.id
    LEFT JOIN profile_churn ch ON ch.customer_id = c.id
    WHERE c.deleted_at IS NULL
    ON CONFLICT (customer_id) DO UPDATE SET {", ".join(f"{column} = excluded.{column}" for column in _PROFILE_COLUMNS)}
    """  # noqa: S608 - constants only; every value is a parameter


def _qualifying_sql(kind: str) -> str:
    """SELECT customer_id, reason: the customers who qualify for ``kind``'s tag now, with the
    figures that earned it."""
    if kind == K.HIGH_VALUE:
        reason = _json(
            {
                "monetary": "monetary",
                "rank": "position",
                "buyers": "buyers",
                "threshold": "threshold",
                "percent": "%(percent)s",
            }
        )
        return f"""
        SELECT customer_id, {reason} FROM (
            SELECT customer_id, monetary, position, buyers, MIN(monetary) OVER () AS threshold
            FROM (
                SELECT p.customer_id, p.monetary, RANK() OVER (ORDER BY p.monetary DESC) AS position,
                       COUNT(*) OVER () AS buyers
                FROM reports_customerprofile p WHERE p.monetary > 0
            ) ranked
            WHERE position * 100 <= %(percent)s * buyers
        ) top
        """  # noqa: S608 - constants only
    if kind == K.DORMANT:
        reason = _json({"recency": "p.recency_days", "last_purchase_on": "p.last_purchase_on", "days": "%(days)s"})
        return f"""
        SELECT p.customer_id, {reason} FROM reports_customerprofile p
        WHERE p.last_purchase_on <= %(purchase_before)s
          AND (p.last_contact_at IS NULL OR p.last_contact_at < %(contact_before)s)
        """  # noqa: S608 - constants only
    if kind == K.BUSY_NO_WIN:
        reason = _json({"followups": "p.followups_recent", "days": "%(days)s", "count": "%(count)s"})
        return f"""
        SELECT p.customer_id, {reason} FROM reports_customerprofile p
        WHERE p.followups_recent >= %(count)s AND NOT p.has_won_opportunity
        """  # noqa: S608 - constants only
    if kind == K.NEW:
        created = (
            "CAST((c.created_at AT TIME ZONE %(tz)s) AS date)"
            if _pg()
            else f"date(c.created_at, '{_utc_offset_hours():+d} hours')"
        )
        reason = _json({"created_on": created, "days": "%(days)s"})
        return f"""
        SELECT c.id, {reason} FROM customers_customer c
        WHERE c.deleted_at IS NULL AND c.created_at >= %(created_since)s
        """  # noqa: S608 - constants only
    if kind == K.CHURN_RISK:
        reason = _json(
            {
                "risk": "p.renewal_risk",
                "ends_on": "ch.ends_on",
                "complaint": "ch.complaint",
                "ticket_rating": "ch.ticket_rating",
                "visit_rating": "ch.visit_rating",
                "spend_recent": "ch.spend_recent",
                "spend_before": "ch.spend_before",
                "score": "%(score)s",
                "rating": "%(rating)s",
                "percent": "%(fall)s",
            }
        )
        return f"""
        SELECT p.customer_id, {reason} FROM reports_customerprofile p
        JOIN profile_churn ch ON ch.customer_id = p.customer_id
        WHERE p.renewal_risk >= %(score)s
        """  # noqa: S608 - constants only
    raise ValueError(kind)


def _utc_offset_hours() -> int:
    """Asia/Shanghai is UTC+8 all year (no daylight saving), which SQLite's date() needs spelled out."""
    offset = datetime.datetime.now(tz=zone()).utcoffset()
    return int(offset.total_seconds() // 3600) if offset else 0


def _rule_params(rule: ProfileRule, today: datetime.date) -> dict:
    days = max(int(rule.days), 1)
    return {
        "percent": _clamp(rule.percent, 0, 100),
        "days": days,
        # At least one follow-up and a risk above zero: a threshold of 0 must not tag everyone.
        "count": max(int(rule.count), 1),
        "score": _clamp(rule.score, 1, 100),
        "rating": int(rule.rating),
        "fall": _clamp(rule.percent, 0, 100),
        "purchase_before": today - datetime.timedelta(days=days),
        "contact_before": _window_start(today, days),
        "created_since": _window_start(today, days),
        "tz": settings.TIME_ZONE,
    }


def _sync_tags(cursor, rule: ProfileRule, today: datetime.date, now: datetime.datetime) -> int:
    """Make ``rule``'s tags the qualifying set: drop those who no longer qualify, refresh the
    reason of those who still do (``since`` kept), add the newcomers. Returns the tag count."""
    cursor.execute("DELETE FROM profile_qualifying")
    select = _qualifying_sql(rule.kind)
    cursor.execute(
        f"INSERT INTO profile_qualifying (customer_id, reason) {select}",  # noqa: S608 - constants only
        _params(_rule_params(rule, today)),
    )
    if _pg():
        cursor.execute("ANALYZE profile_qualifying")
    cursor.execute(
        "DELETE FROM reports_profiletag WHERE rule_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM profile_qualifying q WHERE q.customer_id = reports_profiletag.customer_id)",
        [rule.pk],
    )
    changed = (
        "reports_profiletag.reason IS DISTINCT FROM excluded.reason"
        if _pg()
        else "reports_profiletag.reason IS NOT excluded.reason"
    )
    # SQLite reads "ON" after a bare "FROM q" as a join: the WHERE true settles it.
    upsert = (
        "INSERT INTO reports_profiletag (customer_id, rule_id, reason, since) "  # noqa: S608 - constants only
        "SELECT q.customer_id, %s, q.reason, %s FROM profile_qualifying q WHERE true "
        f"ON CONFLICT (rule_id, customer_id) DO UPDATE SET reason = excluded.reason WHERE {changed}"
    )
    cursor.execute(upsert, _params_list([rule.pk, now]))
    cursor.execute("SELECT COUNT(*) FROM profile_qualifying")
    return cursor.fetchone()[0]


def _params_list(values: list) -> list:
    return list(_params(dict(enumerate(values))).values())


def _temp_tables(cursor) -> None:
    for name in ("profile_churn", "profile_qualifying"):
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    reason = "jsonb" if _pg() else "text"
    cursor.execute(f"CREATE TEMP TABLE profile_qualifying (customer_id bigint PRIMARY KEY, reason {reason})")


def profiles_refresh(now: datetime.datetime | None = None) -> dict:
    """Rebuild every live customer's profile and every rule's tags, in one transaction (readers
    see the previous night's until it commits). Returns seconds per step and counts."""
    now = now or timezone.now()
    today = timezone.localdate(now, zone())
    rules = _rules()
    busy, churn = rules[K.BUSY_NO_WIN], rules[K.CHURN_RISK]
    year_after = _months_back(today, 12)
    params = {
        "today": today,
        "now": now,
        "year_after": year_after,
        "half_after": _months_back(today, 6),
        "year_since": _midnight(year_after + datetime.timedelta(days=1)),
        "busy_since": _window_start(today, max(int(busy.days), 1)),
        "complaint_since": _window_start(today, COMPLAINT_DAYS),
        "churn_until": today + datetime.timedelta(days=int(churn.days)),
        "rating": int(churn.rating),
        "fall": _clamp(churn.percent, 0, 100),
    }
    result: dict = {"seconds": {}, "tags": {}}
    started = time.monotonic()
    with transaction.atomic():
        SummaryState.objects.get_or_create(name=STATE)
        # Two refreshes at once queue here.
        state = SummaryState.objects.select_for_update().get(name=STATE)
        with connection.cursor() as cursor:
            if _pg():
                # A nightly batch over every customer: room to sort and hash the million rows in
                # memory (measured 30 → 26 s at 1M), and no JIT compile of a one-off plan.
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL jit = off")
            _temp_tables(cursor)
            step = time.monotonic()
            cursor.execute(_CHURN_SQL, _params(params))
            cursor.execute(_CHURN_RISK_SQL, _params(params))
            if _pg():
                cursor.execute("ANALYZE profile_churn")
            result["seconds"]["renewal_risk"] = round(time.monotonic() - step, 3)

            step = time.monotonic()
            cursor.execute(_profile_sql(), _params(params))
            result["profiles"] = cursor.rowcount
            # Customers moved to the recycle bin since (erased ones go by the cascade).
            cursor.execute(
                "DELETE FROM reports_customerprofile WHERE customer_id IN "
                "(SELECT c.id FROM customers_customer c WHERE c.deleted_at IS NOT NULL)"
            )
            result["seconds"]["profiles"] = round(time.monotonic() - step, 3)
            if _pg():
                # Rewritten wholesale: fresh statistics for the tag queries that follow.
                cursor.execute("ANALYZE reports_customerprofile")

            for kind, rule in rules.items():
                step = time.monotonic()
                if rule.pk is None:
                    continue
                if not rule.is_active:
                    cursor.execute("DELETE FROM reports_profiletag WHERE rule_id = %s", [rule.pk])
                    result["tags"][kind] = 0
                else:
                    result["tags"][kind] = _sync_tags(cursor, rule, today, now)
                result["seconds"][kind] = round(time.monotonic() - step, 3)
            for name in ("profile_churn", "profile_qualifying"):
                cursor.execute(f"DROP TABLE {name}")
        state.refreshed_at = now
        state.seconds = round(time.monotonic() - started, 3)
        state.rows = result.get("profiles", 0)
        state.save()
    result["seconds"]["total"] = state.seconds
    return result


def freshness() -> datetime.datetime | None:
    """When the profiles were last computed; None if never."""
    state = SummaryState.objects.filter(name=STATE).only("refreshed_at").first()
    return state.refreshed_at if state else None


# --- Explanations ----------------------------------------------------------------------------------


def _money(value) -> str:
    from reports.registry import MONEY, display

    if value is None:
        return "—"
    return display(Decimal(str(value)).quantize(Decimal("0.01")), MONEY)


def _rating(value) -> str:
    return f"{float(value):.2f}"


def _day(value) -> datetime.date | None:
    if value is None or isinstance(value, datetime.date):
        return value
    return parse_date(str(value)[:10])


def _local_day(value) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)
    return timezone.localdate(value, zone())


def explain(tag_or_rule, profile: CustomerProfile | None) -> str:
    """Why the customer carries the tag, in a sentence with the figures: from the tag's stored
    ``reason`` (the figures as of the night it was computed), or — given a rule — from the profile
    and the rule's thresholds now."""
    if isinstance(tag_or_rule, ProfileTag):
        rule, reason = tag_or_rule.rule, dict(tag_or_rule.reason or {})
    else:
        rule, reason = tag_or_rule, {}
    kind = rule.kind
    if kind == K.HIGH_VALUE:
        values = {
            "amount": _money(reason.get("monetary", profile.monetary if profile else None)),
            "percent": reason.get("percent", rule.percent),
        }
        if reason.get("threshold") is None:
            return _("Net spend in the last 12 months %(amount)s, in the top %(percent)s%% of buyers.") % values
        return _(
            "Net spend in the last 12 months %(amount)s, in the top %(percent)s%% of buyers (threshold %(threshold)s, ranked %(rank)s of %(buyers)s)."
        ) % {
            **values,
            "threshold": _money(reason["threshold"]),
            "rank": f"{int(reason['rank']):,}",
            "buyers": f"{int(reason['buyers']):,}",
        }
    if kind == K.DORMANT:
        days = reason.get("days", rule.days)
        last_purchase = _day(reason.get("last_purchase_on")) or (profile.last_purchase_on if profile else None)
        recency = reason.get("recency", profile.recency_days if profile else None)
        contact = _local_day(profile.last_contact_at) if profile else None
        return _(
            "Last purchase on %(date)s, %(recency)s days ago; no purchase or follow-up in the last %(days)s days (last follow-up: %(contact)s)."
        ) % {
            "date": last_purchase or "—",
            "recency": recency if recency is not None else "—",
            "days": days,
            "contact": contact or _("never"),
        }
    if kind == K.BUSY_NO_WIN:
        return _("%(followups)s follow-ups in the last %(days)s days (at least %(count)s) and no won opportunity.") % {
            "followups": reason.get("followups", profile.followups_recent if profile else 0),
            "days": reason.get("days", rule.days),
            "count": reason.get("count", rule.count),
        }
    if kind == K.NEW:
        created = _day(reason.get("created_on"))
        if created is None and profile is not None:
            created = timezone.localdate(profile.customer.created_at, zone())
        return _("Created on %(date)s, within the last %(days)s days.") % {
            "date": created or "—",
            "days": reason.get("days", rule.days),
        }
    if kind == K.CHURN_RISK:
        factors = []
        if reason.get("ends_on"):
            factors.append(_("an active contract ends on %(date)s") % {"date": _day(reason["ends_on"])})
        if reason.get("complaint"):
            factors.append(_("an open or recent complaint (+%(points)s)") % {"points": RISK_COMPLAINT})
        limit = reason.get("rating", rule.rating)
        ratings = [float(v) for v in (reason.get("ticket_rating"), reason.get("visit_rating")) if v is not None]
        if ratings and min(ratings) <= limit:
            factors.append(
                _("low satisfaction: average rating %(rating)s, at most %(limit)s (+%(points)s)")
                % {"rating": _rating(min(ratings)), "limit": limit, "points": RISK_SATISFACTION}
            )
        before, recent = float(reason.get("spend_before") or 0), float(reason.get("spend_recent") or 0)
        if before > 0 and recent * 100 < (100 - reason.get("percent", rule.percent)) * before:
            factors.append(
                _("spend fell to %(recent)s in the last 6 months from %(before)s in the 6 before (+%(points)s)")
                % {"recent": _money(recent), "before": _money(before), "points": RISK_SPEND}
            )
        return _("Renewal risk %(risk)s/100 (tagged from %(score)s): %(factors)s.") % {
            "risk": reason.get("risk", profile.renewal_risk if profile else 0),
            "score": reason.get("score", rule.score),
            "factors": _("; ").join(str(factor) for factor in factors) or "—",
        }
    return ""


def describe(rule: ProfileRule) -> str:
    """The rule in words, with its thresholds now (the profile page)."""
    kind = rule.kind
    if kind == K.HIGH_VALUE:
        return _("The top %(percent)s%% of buyers by net spend in the last 12 months (refunds subtracted).") % {
            "percent": rule.percent
        }
    if kind == K.DORMANT:
        return _("Bought before, but no purchase and no follow-up in the last %(days)s days.") % {"days": rule.days}
    if kind == K.BUSY_NO_WIN:
        return _("At least %(count)s follow-ups in the last %(days)s days and no won opportunity.") % {
            "count": rule.count,
            "days": rule.days,
        }
    if kind == K.NEW:
        return _("Created in the last %(days)s days.") % {"days": rule.days}
    if kind == K.CHURN_RISK:
        return _(
            "An active contract ends within %(days)s days and the renewal risk (0–100) reaches %(score)s: an open complaint or one filed in the last %(complaint_days)s days +%(complaint)s, an average ticket rating or return-visit satisfaction over 12 months of at most %(rating)s +%(satisfaction)s, net spend of the last 6 months more than %(percent)s%% below the 6 months before +%(spend)s."
        ) % {
            "days": rule.days,
            "score": rule.score,
            "complaint_days": COMPLAINT_DAYS,
            "complaint": RISK_COMPLAINT,
            "rating": rule.rating,
            "satisfaction": RISK_SATISFACTION,
            "percent": rule.percent,
            "spend": RISK_SPEND,
        }
    return ""


# --- What a user sees ------------------------------------------------------------------------------


def _scope_parts(user, owner=None, *, listing: bool = False) -> list[Q]:
    """The customers whose profiles and tags ``user`` counts, as disjoint filters on a model with
    a ``customer`` (their counts add up): every customer with ``reports.view_all_reports``
    (managers, analysts), else the customer scope split as ``customers.access.scope_split`` does —
    the customers they own (an index-only scan of ``customer_live_owner``: a rep with 100,000
    customers, 1.1 s → 0.1 s against the OR of every source) and the others shared with them.
    ``owner`` narrows to one owner's customers. ``listing``: the customers the user may open
    (the customer scope alone, as the list of who carries a tag shows them)."""
    if sees_all(user) and not listing:
        parts = [Q()]
    else:
        split = scope_split(user)
        if split is None:
            parts = [Q()]
        else:
            parts = [Q(customer__in=Customer.objects.filter(part).values("pk")) for part in split if part is not None]
    if owner is not None:
        parts = [part & Q(customer__in=Customer.objects.filter(owner=owner).values("pk")) for part in parts]
    return parts


def _grouped(queryset: QuerySet, parts: list[Q], fields: list[str]) -> list[tuple]:
    """``queryset`` counted by ``fields`` over each part, in one query (UNION ALL): rows of
    (*fields, count) — a group may come once per part."""
    grouped = [queryset.filter(part).order_by().values_list(*fields).annotate(n=Count("pk")) for part in parts]
    return list(grouped[0].union(*grouped[1:], all=True) if len(grouped) > 1 else grouped[0])


def tag_counts(user, owner=None, rule: ProfileRule | None = None, *, listing: bool = False) -> dict[int, int]:
    """How many customers in ``user``'s scope carry each rule's tag (or ``rule``'s): {rule id: count}."""
    tags = ProfileTag.objects.all() if rule is None else ProfileTag.objects.filter(rule=rule)
    counts: dict[int, int] = {}
    for rule_id, n in _grouped(tags, _scope_parts(user, owner, listing=listing), ["rule_id"]):
        counts[rule_id] = counts.get(rule_id, 0) + n
    return counts


def rfm_distribution(user, owner=None) -> dict:
    """How many customers in scope have each R, F and M score (1–5), of how many profiled and how
    many bought in 12 months (scored): one GROUP BY over the three scores."""
    rows = _grouped(CustomerProfile.objects.all(), _scope_parts(user, owner), ["r_score", "f_score", "m_score"])
    found = {"profiled": 0, "scored": 0, "r": [0] * 5, "f": [0] * 5, "m": [0] * 5}
    for r, f, m, n in rows:
        found["profiled"] += n
        if r is None:
            continue
        found["scored"] += n
        for key, score in (("r", r), ("f", f), ("m", m)):
            found[key][score - 1] += n
    return found


# --- Tasks for the owners --------------------------------------------------------------------------


def _task_candidates(rule: ProfileRule, by) -> QuerySet:
    """The customers carrying ``rule``'s tag that ``by`` may see, with an active owner and no open
    task of the rule's action yet: (customer id, owner id) by customer id."""
    open_task = Task.objects.filter(customer_id=OuterRef("pk"), title=rule.action, done=False)
    return (
        Customer.objects.filter(scope_filter(by, "view"))
        .filter(profile_tags__rule=rule, owner__isnull=False, owner__is_active=True)
        .filter(~Exists(open_task))
        .order_by("pk")
        .values_list("pk", "owner_id")
    )


def profile_tasks_pending(*, rule: ProfileRule, by, cap: int | None = None) -> int:
    """How many tasks a click would create, counted up to ``cap + 1`` (default SYNC_TASK_LIMIT:
    enough to decide between now and the background)."""
    if not rule.action or not rule.is_active:
        return 0
    cap = SYNC_TASK_LIMIT if cap is None else cap
    return _task_candidates(rule, by)[: cap + 1].count()


def profile_tasks_create(*, rule: ProfileRule, by) -> int:
    """Create the rule's suggested task (title = its action) for the owner of each customer
    carrying the tag in ``by``'s scope, due in ``action_days`` at 09:00 Asia/Shanghai; customers
    with such a task open already are skipped (a second click creates none). Returns the count.

    In batches by customer id, each read before it is written, the rule's row locked meanwhile
    (two managers clicking at once create each task once)."""
    if not by.has_perm("reports.act_on_profiles"):
        raise PermissionDenied("reports.act_on_profiles")
    if not rule.action or not rule.is_active:
        return 0  # a rule switched off keeps its tags until the night: they no longer count
    created = 0
    with transaction.atomic():
        rule = ProfileRule.objects.select_for_update().get(pk=rule.pk)
        due_at = contact_due_at(timezone.localdate(timezone.now(), zone()) + datetime.timedelta(days=rule.action_days))
        candidates = _task_candidates(rule, by)
        last = 0
        while True:
            batch = list(candidates.filter(pk__gt=last)[:TASK_BATCH])
            if not batch:
                break
            tasks = [
                Task(title=rule.action, customer_id=pk, assignee_id=owner, due_at=due_at, created_by=by)
                for pk, owner in batch
            ]
            bulk_create_with_history(tasks, Task, batch_size=TASK_BATCH, default_user=by)
            created += len(tasks)
            last = batch[-1][0]
    logger.info("profile tasks: rule %s by user %s: %s created", rule.pk, by.pk, created)
    return created


def profile_tasks_job(*, rule: ProfileRule, by) -> int:
    """The Celery side of a large click (reports.tasks.create_profile_tasks)."""
    if not by.has_perm("reports.act_on_profiles"):
        return 0
    return profile_tasks_create(rule=rule, by=by)
