"""Reading the customer archive: the list, the 360° page, history, and actions on existing customers.

Every customer id goes through ``customers.access.get_customer_for`` (404 out of reach, 403 when
read-only); personal fields reach a template only through ``personal_fields_for`` (masked by role);
writes go through ``customers.services``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Sum
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from accounts.models import User
from cims import audit
from cims.crypto import blind_index
from cims.normalize import fold_width, format_phone, normalize_email, normalize_id_number, normalize_phone
from cims.pagination import COUNT_CAP, KeysetPaginator, capped_count, page_links
from customers import services
from customers.access import (
    REVEALABLE_FIELDS,
    can_edit,
    get_customer_for,
    personal_fields_for,
)
from customers.forms_list import (
    SORTS,
    BulkActionForm,
    CursorForm,
    CustomerFilterForm,
    ListChoices,
    PhonebookFilterForm,
    RecycleBinFilterForm,
    ShareForm,
    TransferForm,
    UnshareForm,
    group_label,
)
from customers.models import (
    Contact,
    Contract,
    Customer,
    CustomerGroupObjectPermission,
    CustomerUserObjectPermission,
    CustomField,
    Tag,
    Transaction,
)

PER_PAGE = 30
CODE_RE = re.compile(r"^[Cc][0-9]{4}-[0-9]{6,}$")
EXPIRING_DAYS = 30
DETAIL_ROWS = 20
HISTORY_PER_PAGE = 25

# Only these columns are read for a list row: of the encrypted fields, only the mobile is decrypted.
LIST_ONLY = [
    "id",
    "code",
    "kind",
    "name",
    "company",
    "status",
    "mobile",
    "created_at",
    "owner__id",
    "owner__username",
    "owner__name",
    "owner__first_name",
    "owner__last_name",
    "level__id",
    "level__name",
    "source__id",
    "source__name",
    "province__id",
    "province__name",
]
OWNER_ONLY = ["owner__id", "owner__username", "owner__name", "owner__first_name", "owner__last_name"]

# Tag colours are free hex values; the badges use the nearest of Bootstrap's palette (no inline styles).
PALETTE = {
    "text-bg-primary": (13, 110, 253),
    "text-bg-secondary": (108, 117, 125),
    "text-bg-success": (25, 135, 84),
    "text-bg-danger": (220, 53, 69),
    "text-bg-warning": (255, 193, 7),
    "text-bg-info": (13, 202, 240),
    "text-bg-dark": (33, 37, 41),
    "text-bg-light": (248, 249, 250),
}


def tag_css(color: str) -> str:
    try:
        rgb = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    except (TypeError, ValueError):
        return "text-bg-secondary"
    return min(PALETTE, key=lambda css: sum((a - b) ** 2 for a, b in zip(PALETTE[css], rgb, strict=True)))


def shown_fields(user, obj, fields=None) -> dict[str, dict]:
    """``personal_fields_for`` (the masking rule), with whole phone numbers formatted for reading."""
    shown = personal_fields_for(user, obj, fields)
    for name in ("phone", "mobile"):
        entry = shown.get(name)
        if entry and entry["value"] and not entry["masked"]:
            entry["value"] = format_phone(entry["value"])
    return shown


def _tag_badges(customer: Customer) -> list[dict]:
    return [{"tag": tag, "css": tag_css(tag.color)} for tag in customer.tags.all()]


def _is_htmx_fragment(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")


def _render_list(request: HttpRequest, full: str, partial: str, context: dict) -> HttpResponse:
    response = render(request, partial if _is_htmx_fragment(request) else full, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


# --- The list -----------------------------------------------------------------------------------


def search_customers(queryset, text: str):
    """Exact phone/email/ID through the blind indexes when the text is one; else code or name."""
    text = fold_width(text)
    if not text:
        return queryset
    if CODE_RE.match(text):
        # Checked first: phonenumbers reads letters as keypad digits, so a code would pass as a phone.
        return queryset.filter(code=text.upper())
    exact = services.exact_search(queryset, text)
    if exact is not None:
        return exact
    return queryset.filter(code=text.upper()) | queryset.search_name(text)


def searched_identifier(text: str) -> str:
    """Which personal identifier ``search_customers`` matched exactly ("phone", "email", "id_number",
    comma-joined if several), or "" for a code or name search: what a SEARCH access row names."""
    text = fold_width(text or "").strip()
    if not text or CODE_RE.match(text):
        return ""
    kinds = []
    for kind, normalize in (("phone", normalize_phone), ("email", normalize_email), ("id_number", normalize_id_number)):
        try:
            if normalize(text):
                kinds.append(kind)
        except Exception:  # noqa: BLE001, S112 - not this kind of value
            continue
    return ",".join(kinds)


def filter_customers(queryset, form: CustomerFilterForm):
    data = form.valid_data()
    queryset = search_customers(queryset, data.get("q") or "")
    for name in ("status", "kind"):
        if data.get(name):
            queryset = queryset.filter(**{name: data[name]})
    for name in ("level", "source", "province", "industry", "owner"):
        if data.get(name):
            queryset = queryset.filter(**{f"{name}_id": data[name]})
    if data.get("tag"):
        queryset = queryset.filter(tags__id=data["tag"])
    # Whole days in local time, as ranges on the indexed column (no per-row date conversion).
    if data.get("created_from"):
        queryset = queryset.filter(created_at__gte=_day_start(data["created_from"]))
    if data.get("created_to"):
        queryset = queryset.filter(created_at__lt=_day_start(data["created_to"] + datetime.timedelta(days=1)))
    return queryset.filter(form.custom_filters(data)), data


@staff_permission_required("customers.view_customer")
@require_http_methods(["GET", "HEAD"])
def customer_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    custom_fields = list(CustomField.objects.filter(is_active=True))
    choices = ListChoices()
    form = CustomerFilterForm(request.GET or None, user=user, custom_fields=custom_fields, choices=choices)
    queryset, data = filter_customers(Customer.objects.visible_to(user), form)
    key, descending = SORTS.get(data.get("sort") or "-id", SORTS["-id"])
    per_page = data.get("per_page") or PER_PAGE
    rows = queryset.select_related("owner", "level", "source", "province").only(*LIST_ONLY)
    rows = rows.prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name", "color")))
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key=key, descending=descending, per_page=per_page).page(after=after, before=before)
    for customer in page.object_list:
        customer.shown_mobile = shown_fields(user, customer, ["mobile"])["mobile"]
        customer.tag_badges = _tag_badges(customer)
    context = {
        "form": form,
        "page": page,
        "count": capped_count(queryset, COUNT_CAP),
        "bulk_form": BulkActionForm(auto_id="bulk_%s", user=user, choices=choices),
        "return_query": request.GET.urlencode(),
        **page_links(request, page),
    }
    response = _render_list(request, "customers/list.html", "customers/_partials/list_table.html", context)
    if not (after or before):  # the first page of a search is logged; paging through it is not
        audit.log_search_later(
            request,
            response,
            kind=searched_identifier(data.get("q") or ""),
            found=queryset.only("id", "code"),
            object_type="customers.customer",
            label=lambda customer: customer.code,
        )
    return response


def _list_return_url(raw: str) -> str:
    """Back to the list with the filters the user had; rebuilt from known keys only (no open redirect)."""
    params = QueryDict(raw[:4000])
    allowed = set(CustomerFilterForm.base_fields) | {"after", "before"}
    kept = QueryDict(mutable=True)
    for key in params:
        if key in allowed or key.startswith("cf_"):
            kept.setlist(key, params.getlist(key)[:1])
    url = reverse("customers:list")
    return f"{url}?{kept.urlencode()}" if kept else url


@staff_permission_required("customers.view_customer")
@require_POST
def customer_bulk(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = BulkActionForm(request.POST)
    back = _list_return_url(request.POST.get("return_query", ""))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    action, ids = form.cleaned_data["action"], form.cleaned_data["ids"]
    if action == BulkActionForm.TRANSFER:
        if not user.has_perm("customers.transfer_customer"):
            raise PermissionDenied("customers.transfer_customer")
        scope = Customer.objects.visible_to(user)
    elif action == BulkActionForm.DELETE:
        if not user.has_perm("customers.delete_customer"):
            raise PermissionDenied("customers.delete_customer")
        scope = Customer.objects.editable_by(user)
    else:
        scope = Customer.objects.editable_by(user)
    reachable = set(scope.filter(pk__in=ids).values_list("pk", flat=True))
    if reachable != set(ids):
        # All or nothing: one customer outside the user's reach refuses the whole action.
        messages.error(
            request,
            ngettext(
                "%(count)d of the selected customers is not yours to change; nothing was changed.",
                "%(count)d of the selected customers are not yours to change; nothing was changed.",
                len(set(ids) - reachable),
            )
            % {"count": len(set(ids) - reachable)},
        )
        return redirect(back)
    if action == BulkActionForm.TAG:
        tag = form.cleaned_data["tag"]
        services.customer_bulk_tag(customer_ids=ids, tag=tag, by=user)
        messages.success(
            request,
            ngettext(
                "Tag “%(tag)s” added to %(count)d customer.",
                "Tag “%(tag)s” added to %(count)d customers.",
                len(ids),
            )
            % {"tag": tag.name, "count": len(ids)},
        )
    elif action == BulkActionForm.TRANSFER:
        owner = form.cleaned_data["owner"]
        try:
            moved = services.customer_transfer(
                customer_ids=ids, to=owner, by=user, reason=form.cleaned_data["reason"] or ""
            )
        except services.TransferError:
            messages.error(request, _("The new owner must be an active user who may edit customers."))
            return redirect(back)
        messages.success(
            request,
            ngettext(
                "%(count)d customer transferred to %(owner)s.",
                "%(count)d customers transferred to %(owner)s.",
                moved,
            )
            % {"count": moved, "owner": owner.display_name},
        )
    else:
        moved = services.customer_bulk_soft_delete(customer_ids=ids, by=user)
        messages.success(
            request,
            ngettext(
                "%(count)d customer moved to the recycle bin.",
                "%(count)d customers moved to the recycle bin.",
                moved,
            )
            % {"count": moved},
        )
    return redirect(back)


# --- The 360° page ------------------------------------------------------------------------------


def _custom_values(customer: Customer, custom_fields) -> list[dict]:
    data = customer.custom_data or {}
    return [{"field": custom, "value": data.get(custom.key)} for custom in custom_fields]


@staff_permission_required("customers.view_customer")
@require_http_methods(["GET", "HEAD"])
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    customer = get_customer_for(
        user,
        pk,
        queryset=Customer.objects.select_related(
            "owner",
            "level",
            "source",
            "customer_type",
            "industry",
            "province",
            "enterprise_type",
            "enterprise_nature",
            "created_by",
        ).prefetch_related("tags"),
    )
    today = timezone.localdate()
    contacts = list(customer.contacts.all())
    for contact in contacts:
        contact.shown = shown_fields(user, contact, ["phone", "email"])
    transactions = list(customer.transactions.order_by("-date", "-id").prefetch_related("lines__product")[:DETAIL_ROWS])
    transaction_totals = customer.transactions.aggregate(count=Count("pk"), amount=Sum("amount"))
    contracts = list(customer.contracts.order_by("-start_date", "-id")[:DETAIL_ROWS])
    for contract in contracts:
        contract.expiring_soon = (
            contract.status == Contract.Status.ACTIVE
            and today <= contract.end_date <= today + datetime.timedelta(days=EXPIRING_DAYS)
        )
    contract_totals = customer.contracts.aggregate(count=Count("pk"), amount=Sum("amount"))
    custom_fields = list(CustomField.objects.filter(is_active=True))
    context = {
        "customer": customer,
        "editable": can_edit(user, customer),
        "personal": shown_fields(user, customer),
        "tag_badges": _tag_badges(customer),
        "custom_values": _custom_values(customer, custom_fields),
        "contacts": contacts,
        "transactions": transactions,
        "transaction_totals": {
            "count": transaction_totals["count"],
            "amount": transaction_totals["amount"] or Decimal("0"),
        },
        "contracts": contracts,
        "contract_totals": {"count": contract_totals["count"], "amount": contract_totals["amount"] or Decimal("0")},
        "detail_rows": DETAIL_ROWS,
        "expiring_days": EXPIRING_DAYS,
        # Records merged into this one (customers.merging): they stay in the recycle bin, traceable.
        "merged_from": list(
            Customer.all_objects.filter(merged_into=customer).only("id", "code", "deleted_at").order_by("id")[:10]
        ),
    }
    # The follow-up panel: quick entry, status change and the timeline (followups.views).
    from followups.views import detail_context

    context.update(detail_context(request, customer, context["editable"]))
    from customers.pool import may_release

    context["may_release"] = context["editable"] and may_release(request.user, customer)
    # Files kept with the customer and its contracts (customers.attachments).
    from customers.attachments import detail_context as attachments_context

    context.update(attachments_context(request, customer, context["editable"]))
    # The year-end lottery: entries and wins (one query).
    from lottery.display import detail_context as lottery_context

    context.update(lottery_context(customer))
    response = render(request, "customers/detail.html", context)
    # Written after the page went out: not on the page's time or query budget.
    return audit.log_view_later(
        request,
        response,
        object_type="customers.customer",
        object_id=customer.pk,
        object_label=customer.code,
        detail=lambda: _opened_under(request.user, customer),
    )


def _opened_under(user, customer: Customer) -> str:
    """For the access log: the access request (数据访问权限审批) a 360 page was opened under, if any."""
    from customers.access_requests import active_customer_grant

    grant = active_customer_grant(user, customer.pk)
    return f"access request #{grant.pk}" if grant else ""


@staff_permission_required("customers.view_customer")
@require_POST
def customer_reveal(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    if not request.user.has_perm("customers.reveal_sensitive_data"):
        raise PermissionDenied("customers.reveal_sensitive_data")
    if field not in REVEALABLE_FIELDS:
        raise Http404("no such field")
    value = services.customer_reveal_field(user=request.user, customer_pk=pk, field=field, request=request)
    if field in ("phone", "mobile"):
        value = format_phone(value)
    response = render(request, "customers/_partials/reveal_value.html", {"value": value, "field": field})
    response["Cache-Control"] = "no-store"
    return response


# --- History ------------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    source: str  # customer, contact, transaction or contract
    when: datetime.datetime
    who: User | None
    kind: str
    label: str
    action: str
    reason: str
    changes: list[dict] = field(default_factory=list)


HISTORY_MODELS = {"customer": Customer, "contact": Contact, "transaction": Transaction, "contract": Contract}
HISTORY_KINDS = {
    "customer": Customer._meta.verbose_name,
    "contact": Contact._meta.verbose_name,
    "transaction": Transaction._meta.verbose_name,
    "contract": Contract._meta.verbose_name,
}


class _HistoryDisplay:
    """Turns raw history values into what the viewer may read: masked, labelled, formatted."""

    def __init__(self, user, records: list):
        self.user = user
        self.custom_labels = dict(CustomField.objects.values_list("key", "label"))
        # Names of the objects foreign keys point at: one query per related model on the page.
        wanted: dict[type, set] = {}
        for record in records:
            for model_field in record.instance_type._meta.concrete_fields:
                if model_field.is_relation and model_field.editable:
                    value = getattr(record, model_field.attname, None)
                    if value is not None:
                        wanted.setdefault(model_field.related_model, set()).add(value)
        self.related = {
            model: {obj.pk: obj for obj in model._default_manager.filter(pk__in=ids)} for model, ids in wanted.items()
        }

    def value(self, model, name: str, value) -> str:
        if name in REVEALABLE_FIELDS:
            return personal_fields_for(self.user, SimpleNamespace(**{name: value or ""}), [name])[name]["value"] or "—"
        if value is None or value == "":
            return "—"
        model_field = model._meta.get_field(name)
        if model_field.is_relation:
            obj = self.related.get(model_field.related_model, {}).get(value)
            return str(obj) if obj is not None else _("#%(id)s (removed)") % {"id": value}
        if model_field.choices:
            return str(dict(model_field.flatchoices).get(value, value))
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if isinstance(value, datetime.datetime):
            return formats.date_format(timezone.localtime(value), "Y-m-d H:i")
        if isinstance(value, datetime.date):
            return formats.date_format(value, "Y-m-d")
        return str(value)

    def changes(self, model, new, old, tag_names: dict, tag_rows: dict) -> list[dict]:
        m2m = [f.name for f in model._meta.many_to_many]
        delta = new.diff_against(old, excluded_fields=m2m)
        changes = []
        for change in delta.changes:
            if change.field == "custom_data":
                before, after = change.old or {}, change.new or {}
                for key in sorted(set(before) | set(after)):
                    if before.get(key) != after.get(key):
                        changes.append(
                            {
                                "field": self.custom_labels.get(key, key),
                                "old": "—" if before.get(key) in (None, "") else str(before.get(key)),
                                "new": "—" if after.get(key) in (None, "") else str(after.get(key)),
                            }
                        )
                continue
            model_field = model._meta.get_field(change.field)
            changes.append(
                {
                    "field": str(model_field.verbose_name),
                    "old": self.value(model, change.field, change.old),
                    "new": self.value(model, change.field, change.new),
                }
            )
        if "tags" in m2m:
            before, after = tag_rows.get(old.history_id, set()), tag_rows.get(new.history_id, set())
            if before != after:

                def names(ids):
                    return ", ".join(sorted(tag_names.get(pk, f"#{pk}") for pk in ids)) or "—"

                changes.append({"field": str(_("tags")), "old": names(before), "new": names(after)})
        return changes


def customer_history_entries(user, customer: Customer, page_number) -> tuple:
    """One page of the history of a customer and its contacts, transactions and contracts.

    First the light columns of every history row (when, which object) in four queries; then the
    full rows of one page and of their predecessors, so each change is diffed against the row
    before it without a query per row.
    """
    light = []
    for kind, model in HISTORY_MODELS.items():
        history = model.history.model.objects
        rows = history.filter(id=customer.pk) if kind == "customer" else history.filter(customer_id=customer.pk)
        light.extend((when, hid, kind, oid) for hid, when, oid in rows.values_list("history_id", "history_date", "id"))
    light.sort(key=lambda row: (row[0], row[1]), reverse=True)
    previous: dict[tuple, int] = {}
    latest_seen: dict[tuple, tuple] = {}
    for when, hid, kind, oid in reversed(light):  # oldest first
        if (kind, oid) in latest_seen:
            previous[(kind, hid)] = latest_seen[(kind, oid)][1]
        latest_seen[(kind, oid)] = (when, hid)
    page = Paginator(light, HISTORY_PER_PAGE).get_page(page_number)
    wanted: dict[str, set] = {}
    for _when, hid, kind, _oid in page.object_list:
        wanted.setdefault(kind, set()).add(hid)
        if (kind, hid) in previous:
            wanted[kind].add(previous[(kind, hid)])
    records: dict[tuple, object] = {}
    for kind, hids in wanted.items():
        history_model = HISTORY_MODELS[kind].history.model
        for record in history_model.objects.filter(history_id__in=hids).select_related("history_user"):
            records[(kind, record.history_id)] = record
    tag_rows: dict[int, set] = {}
    tag_names: dict[int, str] = {}
    if "customer" in wanted:
        through = Customer.history.model._meta.get_field("historicalcustomer_tags").related_model
        for history_id, tag_id in through.objects.filter(history_id__in=wanted["customer"]).values_list(
            "history_id", "tag_id"
        ):
            tag_rows.setdefault(history_id, set()).add(tag_id)
        tag_ids = set().union(*tag_rows.values()) if tag_rows else set()
        tag_names = dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name"))
    display = _HistoryDisplay(user, list(records.values()))
    entries = []
    for when, hid, kind, _oid in page.object_list:
        record = records[(kind, hid)]
        model = HISTORY_MODELS[kind]
        old = records.get((kind, previous.get((kind, hid))))
        changes = []
        if record.history_type == "~" and old is not None:
            changes = display.changes(model, record, old, tag_names, tag_rows)
        entries.append(
            HistoryEntry(
                source=kind,
                when=when,
                who=record.history_user,
                kind=str(HISTORY_KINDS[kind]),
                label=_history_label(kind, record),
                action=record.history_type,
                reason=record.history_change_reason or "",
                changes=changes,
            )
        )
    return page, entries


def _history_label(kind: str, record) -> str:
    if kind == "customer":
        return record.code
    if kind == "contact":
        return record.name
    if kind == "transaction":
        return f"{record.date:%Y-%m-%d} {record.product}"
    return record.number


@staff_permission_required("customers.view_customer")
@require_http_methods(["GET", "HEAD"])
def customer_history(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk)
    page, entries = customer_history_entries(request.user, customer, request.GET.get("page"))
    context = {"customer": customer, "page": page, "entries": entries}
    return _render_list(request, "customers/history.html", "customers/_partials/history_entries.html", context)


# --- Transfer, share, delete, restore ------------------------------------------------------------


@staff_permission_required("customers.transfer_customer")
@require_http_methods(["GET", "POST"])
def customer_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, queryset=Customer.objects.select_related("owner"))
    form = TransferForm(request.POST or None, exclude_owner_id=customer.owner_id)
    if request.method == "POST" and form.is_valid():
        owner = form.cleaned_data["owner"]
        try:
            services.customer_transfer(
                customer_ids=[customer.pk], to=owner, by=request.user, reason=form.cleaned_data["reason"]
            )
        except services.TransferError:
            form.add_error("owner", _("The new owner must be an active user who may edit customers."))
        else:
            messages.success(
                request,
                _("%(code)s now belongs to %(owner)s.") % {"code": customer.code, "owner": owner.display_name},
            )
            if Customer.objects.visible_to(request.user).filter(pk=customer.pk).exists():
                return redirect("customers:detail", pk=customer.pk)
            return redirect("customers:list")
    return render(request, "customers/transfer.html", {"customer": customer, "form": form})


def _current_shares(customer: Customer) -> tuple[list[dict], list[dict]]:
    def collect(rows, attr: str) -> list[dict]:
        found: dict[int, dict] = {}
        for row in rows:
            target = getattr(row, attr)
            entry = found.setdefault(target.pk, {"target": target, "codenames": set()})
            entry["codenames"].add(row.permission.codename)
        return [
            {
                "target": e["target"],
                "label": group_label(e["target"]) if attr == "group" else str(e["target"]),
                "editable": "change_customer" in e["codenames"],
            }
            for e in found.values()
            if e["codenames"] & {"view_customer", "change_customer"}
        ]

    users = CustomerUserObjectPermission.objects.filter(content_object=customer).select_related("user", "permission")
    groups = CustomerGroupObjectPermission.objects.filter(content_object=customer).select_related("group", "permission")
    return collect(users, "user"), collect(groups, "group")


@staff_permission_required("customers.change_customer")
@require_http_methods(["GET", "POST"])
def customer_share(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True, queryset=Customer.objects.select_related("owner"))
    form = ShareForm(None, customer=customer, by=request.user)
    if request.method == "POST" and "remove" in request.POST:
        unshare = UnshareForm(request.POST)
        if unshare.is_valid():
            services.customer_unshare(
                customer=customer,
                user=unshare.cleaned_data["user"],
                group=unshare.cleaned_data["group"],
                by=request.user,
            )
            messages.success(request, _("The share was removed."))
        else:
            messages.error(request, _("That share could not be found."))
        return redirect("customers:share", pk=customer.pk)
    if request.method == "POST":
        form = ShareForm(request.POST, customer=customer, by=request.user)
        if form.is_valid():
            data = form.cleaned_data
            services.customer_share(
                customer=customer,
                user=data["user"],
                group=data["group"],
                can_edit_too=data["access"] == ShareForm.EDIT,
                by=request.user,
            )
            target = data["user"].display_name if data["user"] else group_label(data["group"])
            messages.success(
                request, _("%(code)s is now shared with %(target)s.") % {"code": customer.code, "target": target}
            )
            return redirect("customers:share", pk=customer.pk)
    user_shares, group_shares = _current_shares(customer)
    context = {"customer": customer, "form": form, "user_shares": user_shares, "group_shares": group_shares}
    return render(request, "customers/share.html", context)


@staff_permission_required("customers.delete_customer")
@require_http_methods(["GET", "POST"])
def customer_delete(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    if request.method == "POST":
        services.customer_soft_delete(customer=customer, by=request.user)
        messages.success(
            request,
            _("%(code)s was moved to the recycle bin; a manager can restore it.") % {"code": customer.code},
        )
        return redirect("customers:list")
    return render(request, "customers/confirm_delete.html", {"customer": customer})


def _recycled():
    return Customer.all_objects.filter(deleted_at__isnull=False)


@staff_permission_required("customers.restore_customer")
@require_http_methods(["GET", "HEAD"])
def recycle_bin(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = RecycleBinFilterForm(request.GET or None)
    queryset = _recycled().visible_to(user)
    if form.is_valid():
        queryset = search_customers(queryset, form.cleaned_data["q"] or "")
    rows = queryset.select_related("owner", "deleted_by").only(
        "id",
        "code",
        "kind",
        "name",
        "company",
        "status",
        "deleted_at",
        *OWNER_ONLY,
        "deleted_by__id",
        "deleted_by__username",
        "deleted_by__name",
        "deleted_by__first_name",
        "deleted_by__last_name",
    )
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="deleted_at", descending=True, per_page=PER_PAGE).page(after=after, before=before)
    context = {"form": form, "page": page, "count": capped_count(queryset, COUNT_CAP), **page_links(request, page)}
    return render(request, "customers/recycle_bin.html", context)


@staff_permission_required("customers.restore_customer")
@require_POST
def customer_restore(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, queryset=_recycled().select_related("merged_into"))
    try:
        services.customer_restore(customer=customer, by=request.user)
    except services.RestoreError:
        messages.error(
            request,
            _("%(code)s was merged into %(survivor)s; its data lives on there, so it cannot be restored.")
            % {"code": customer.code, "survivor": customer.merged_into.code},
        )
    else:
        messages.success(request, _("%(code)s was restored.") % {"code": customer.code})
    return redirect("customers:recycle_bin")


# --- Phone book and access log ------------------------------------------------------------------


def search_contacts(queryset, text: str):
    """Exact phone through the blind index when the text is a phone number; else the contact's name."""
    text = text.strip()
    if not text:
        return queryset
    phone = searched_phone(text)
    if phone:
        return queryset.filter(phone_bidx=blind_index("phone", phone))
    return queryset.filter(name__icontains=text)


def searched_phone(text: str) -> str:
    try:
        return normalize_phone(text.strip()) if text.strip() else ""
    except Exception:  # noqa: BLE001 - not a phone number: search by name
        return ""


@staff_permission_required("customers.view_contact")
@require_http_methods(["GET", "HEAD"])
def phonebook(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = PhonebookFilterForm(request.GET or None)
    queryset = Contact.objects.filter(customer_id__in=Customer.objects.visible_to(user).values("pk"))
    searched = ""
    if form.is_valid():
        queryset = search_contacts(queryset, form.cleaned_data["q"] or "")
        searched = "phone" if searched_phone(form.cleaned_data["q"] or "") else ""
    rows = queryset.select_related("customer").only(
        "id", "name", "title", "phone", "email", "is_primary", "customer__id", "customer__code", "customer__name"
    )
    after, before = CursorForm(request.GET).cursors()
    page = KeysetPaginator(rows, key="name", descending=False, per_page=PER_PAGE).page(after=after, before=before)
    for contact in page.object_list:
        contact.shown = shown_fields(user, contact, ["phone", "email"])
    context = {"form": form, "page": page, "count": capped_count(queryset, COUNT_CAP), **page_links(request, page)}
    response = _render_list(request, "customers/phonebook.html", "customers/_partials/phonebook_table.html", context)
    if not (after or before):
        audit.log_search_later(
            request,
            response,
            kind=searched,
            found=queryset.select_related("customer").only("id", "customer__code"),
            object_type="customers.contact",
            label=lambda contact: contact.customer.code,
        )
    return response


@staff_permission_required("cims.view_personaldataaccess")
@require_http_methods(["GET", "HEAD"])
def access_log(request: HttpRequest) -> HttpResponse:
    """The access log moved to the audit views (cims.audit_views); old links keep their filters."""
    query = request.GET.urlencode()
    return redirect(reverse("audit:access_log") + (f"?{query}" if query else ""), permanent=True)
