"""The staff navigation: one list, each entry shown only to users holding its permission.

An entry whose URL does not exist yet (a module still to be built) is left out, so modules appear
in the menu as they land.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url_name: str
    icon: str
    permission: str | None = None  # None: every staff member
    section: str | Promise = ""


NAV_ITEMS: list[NavItem] = [
    NavItem(_("Dashboard"), "reports:dashboard", "speedometer2"),
    NavItem(_("Customers"), "customers:list", "people", "customers.view_customer", _("Customers")),
    NavItem(_("Phone book"), "customers:phonebook", "journal-text", "customers.view_contact", _("Customers")),
    NavItem(_("Customer pool"), "customers:pool", "inboxes", "customers.claim_customer", _("Customers")),
    NavItem(_("Import"), "customers:import", "upload", "customers.import_customers", _("Customers")),
    NavItem(_("Duplicates"), "customers:duplicates", "intersect", "customers.merge_customers", _("Customers")),
    NavItem(_("Follow-ups"), "followups:list", "chat-left-text", "followups.view_followup", _("Sales")),
    NavItem(_("Calendar"), "followups:calendar", "calendar3", "followups.view_task", _("Sales")),
    NavItem(_("Tasks"), "followups:tasks", "check2-square", "followups.view_task", _("Sales")),
    NavItem(_("Opportunities"), "followups:pipeline", "kanban", "followups.view_opportunity", _("Sales")),
    NavItem(
        _("Return visits"),
        "followups:return_visits",
        "telephone-inbound",
        "followups.view_due_return_visits",
        _("Sales"),
    ),
    NavItem(_("Campaigns"), "followups:campaigns", "megaphone", "followups.view_campaign", _("Sales")),
    NavItem(_("Products"), "customers:products", "box-seam", "customers.view_product", _("Sales")),
    NavItem(_("Tickets"), "complaints:list", "life-preserver", "complaints.view_ticket", _("Service")),
    NavItem(_("Reports"), "reports:index", "bar-chart-line", "reports.view_report", _("Analysis")),
    NavItem(_("Year-end lottery"), "lottery:list", "gift", "lottery.view_lotteryevent", _("Analysis")),
    NavItem(_("Employees"), "accounts:employee_list", "person-badge", "accounts.view_employee", _("Organisation")),
    NavItem(_("Departments"), "accounts:department_list", "diagram-3", "accounts.view_department", _("Organisation")),
    NavItem(_("Data requests"), "customers:data_requests", "shield-lock", "customers.view_datarequest", _("System")),
    NavItem(_("Recycle bin"), "customers:recycle_bin", "trash", "customers.restore_customer", _("System")),
    NavItem(_("Access log"), "audit:access_log", "eye", "cims.view_personaldataaccess", _("System")),
    NavItem(_("Change history"), "audit:history", "clock-history", "cims.view_change_history", _("System")),
    NavItem(_("Access requests"), "customers:access_requests", "key", "customers.view_accessrequest", _("System")),
    NavItem(_("Backups"), "system:backups", "archive", "cims.view_backup", _("System")),
    NavItem(_("Runtime environment"), "system:status", "hdd-stack", "cims.view_system_status", _("System")),
    NavItem(_("API tokens"), "system:api_tokens", "plug", "accounts.view_apitoken", _("System")),
    NavItem(_("Webhooks"), "system:webhooks", "broadcast", "cims.view_webhookendpoint", _("System")),
    NavItem(_("System settings"), "customers:settings", "sliders", "customers.change_tag", _("System")),
    NavItem(_("Help"), "help:index", "question-circle", None, _("Help")),
]


def visible_items(user) -> list[dict]:
    items = []
    for item in NAV_ITEMS:
        if item.permission and not user.has_perm(item.permission):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        items.append({"label": item.label, "url": url, "icon": item.icon, "section": item.section})
    return items


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff_member:
        return {}
    items = visible_items(user)
    current = request.path
    # The entry whose address is the longest prefix of this page's is the active one (the import
    # page under /customers/import/ lights "Import", not "Customers" as well).
    matches = [
        entry["url"]
        for entry in items
        if current == entry["url"] or (entry["url"] != "/" and current.startswith(entry["url"]))
    ]
    active = max(matches, key=len, default=None)
    for entry in items:
        entry["active"] = entry["url"] == active
    return {"nav_items": items}
