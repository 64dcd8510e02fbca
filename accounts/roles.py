"""The role matrix: which permissions each role group holds. The one place it is defined.

Migrations apply it (``apply_role_matrix``); ``docs/roles.md`` documents it; the test
``tests/accounts/test_roles.py`` checks every group holds exactly these permissions. An app that
adds models adds its rows here and a data migration calling ``apply_role_matrix`` for its label.
After that the groups are data: an administrator may change them in the Django admin.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

ADMIN, MANAGER, SALES, SERVICE, ANALYST, CUSTOMER = "admin", "manager", "sales", "service", "analyst", "customer"
ROLES = (ADMIN, MANAGER, SALES, SERVICE, ANALYST, CUSTOMER)
STAFF_ROLES = (ADMIN, MANAGER, SALES, SERVICE, ANALYST)
ROLE_LABELS = {
    ADMIN: _("Administrator"),
    MANAGER: _("Manager"),
    SALES: _("Sales"),
    SERVICE: _("Customer service"),
    ANALYST: _("Analyst"),
    CUSTOMER: _("Customer"),
}

# The administrator holds every permission of every app except the portal's door.
ALL = "__all__"
NOT_FOR_ADMIN = {"accounts.access_portal"}

_LOOKUPS = [
    "enterprisetype",
    "enterprisenature",
    "customerlevel",
    "customersource",
    "customertype",
    "industry",
    "province",
]
_VIEW_LOOKUPS = [f"customers.view_{model}" for model in _LOOKUPS] + ["customers.view_tag", "customers.view_customfield"]

# Everyone who works with customers keeps an agenda: their tasks and personal notes (记事本).
_OWN_AGENDA = [
    "followups.view_task",
    "followups.add_task",
    "followups.change_task",
    "followups.view_note",
    "followups.add_note",
    "followups.change_note",
    "followups.delete_note",
]
# Recording follow-ups (跟进记录) of the customers one may see.
_FOLLOWUP_WORK = [
    "followups.view_followup",
    "followups.add_followup",
    "followups.change_followup",
    "followups.view_opportunity",
    "followups.add_opportunity",
    "followups.change_opportunity",
    *_OWN_AGENDA,
]

# The product catalogue: everyone who sells or serves reads it (prices, stock).
_VIEW_PRODUCTS = ["customers.view_product", "customers.view_productcategory"]
# Files kept with customers and contracts (营业执照, scanned contracts): those who work the account.
_ATTACHMENT_WORK = ["customers.view_attachment", "customers.add_attachment", "customers.delete_attachment"]
# Marketing campaigns: reps read them and record how their customers responded.
_CAMPAIGN_RESPONSES = ["followups.view_campaign", "followups.view_campaignmember", "followups.change_campaignmember"]

# Tickets (投诉/服务工单) of the customers one may see: read them, file one, reply and note.
_TICKET_VIEW = [
    "complaints.view_ticket",
    "complaints.view_ticketcategory",
    "complaints.view_ticketevent",
    "complaints.view_ticketattachment",
]
_TICKET_WORK = [
    *_TICKET_VIEW,
    "complaints.add_ticket",
    "complaints.change_ticket",
    "complaints.add_ticketevent",
    "complaints.add_ticketattachment",
]
# Consent entries (同意记录) kept with a customer.
_VIEW_CONSENTS = ["customers.view_consent"]
# Access requests (数据访问权限审批): ask for a time-limited grant (a customer outside one's scope, an
# unmasked export) and follow one's own requests; deciding is a manager's.
_ACCESS_REQUESTS = ["customers.view_accessrequest", "customers.add_accessrequest"]
# Reports (reports.registry): open them, and subscribe to them by e-mail. Whose customers they
# cover is reports.filters' rule: everyone's with reports.view_all_reports, else the user's scope.
_REPORTS = [
    "reports.view_report",
    "reports.view_reportsubscription",
    "reports.add_reportsubscription",
    "reports.change_reportsubscription",
    "reports.delete_reportsubscription",
]

# The year-end lottery: every staff member sees the events and the winners, masked unless they hold
# lottery.view_winner_details. Creating, publishing, drawing and announcing are the administrator's.
_LOTTERY_VIEW = ["lottery.view_lotteryevent", "lottery.view_lotterytier", "lottery.view_lotterywinner"]

ROLE_PERMISSIONS: dict[str, str | list[str]] = {
    ADMIN: ALL,
    MANAGER: [
        "accounts.access_staff_ui",
        "accounts.view_department",
        "accounts.view_employee",
        # The audit views: the access log (and its export) and the change history of every record.
        "cims.view_personaldataaccess",
        "cims.export_personaldataaccess",
        "cims.view_change_history",
        *_VIEW_LOOKUPS,
        "customers.add_tag",
        "customers.change_tag",
        "customers.view_customer",
        "customers.add_customer",
        "customers.change_customer",
        "customers.delete_customer",
        "customers.view_all_customers",
        "customers.change_all_customers",
        "customers.view_personal_data",
        "customers.reveal_sensitive_data",
        "customers.transfer_customer",
        "customers.restore_customer",
        "customers.import_customers",
        "customers.export_customers",
        "customers.merge_customers",
        "customers.view_contact",
        "customers.add_contact",
        "customers.change_contact",
        "customers.delete_contact",
        "customers.view_transaction",
        "customers.add_transaction",
        "customers.change_transaction",
        "customers.view_contract",
        "customers.add_contract",
        "customers.change_contract",
        "customers.view_statuschange",
        "customers.claim_customer",
        *_FOLLOWUP_WORK,
        "followups.delete_followup",
        "followups.delete_task",
        "followups.delete_opportunity",
        "followups.view_due_return_visits",
        *_VIEW_PRODUCTS,
        "customers.add_product",
        "customers.change_product",
        "customers.backorder_product",
        "customers.view_stockmovement",
        *_ATTACHMENT_WORK,
        *_CAMPAIGN_RESPONSES,
        "followups.add_campaign",
        "followups.change_campaign",
        "followups.delete_campaign",
        "followups.add_campaignmember",
        "followups.delete_campaignmember",
        *_TICKET_WORK,
        "complaints.assign_ticket",
        "complaints.view_all_tickets",
        *_VIEW_CONSENTS,
        "customers.add_consent",
        "customers.view_datarequest",
        "customers.decide_datarequest",
        *_ACCESS_REQUESTS,
        "customers.decide_accessrequest",
        "accounts.view_portalaccount",
        "accounts.add_portalaccount",
        "accounts.change_portalaccount",
        *_REPORTS,
        "reports.view_all_reports",
        "reports.view_customerprofile",
        "reports.view_profiletag",
        "reports.view_profilerule",
        "reports.act_on_profiles",
        *_LOTTERY_VIEW,
        "lottery.view_winner_details",
        "lottery.export_winners",
    ],
    SALES: [
        "accounts.access_staff_ui",
        *_VIEW_LOOKUPS,
        # Model-wide permissions; which customers they reach is customers.access.scope_filter's rule.
        "customers.view_customer",
        "customers.add_customer",
        "customers.change_customer",
        "customers.view_personal_data",
        "customers.reveal_sensitive_data",
        # Imports create customers the rep owns; exports cover what the rep sees, as on screen.
        "customers.import_customers",
        "customers.export_customers",
        "customers.view_contact",
        "customers.add_contact",
        "customers.change_contact",
        "customers.delete_contact",
        "customers.view_transaction",
        "customers.add_transaction",
        "customers.change_transaction",
        "customers.view_contract",
        "customers.add_contract",
        "customers.change_contract",
        "customers.view_statuschange",
        "customers.claim_customer",
        *_FOLLOWUP_WORK,
        *_VIEW_PRODUCTS,
        *_ATTACHMENT_WORK,
        *_CAMPAIGN_RESPONSES,
        # Complaints their customers phone in, and the tickets of their customers (the 360 page).
        *_TICKET_WORK,
        *_VIEW_CONSENTS,
        "customers.add_consent",
        *_ACCESS_REQUESTS,
        # The portal accounts of the customers they may edit (accounts.portal).
        "accounts.view_portalaccount",
        "accounts.add_portalaccount",
        "accounts.change_portalaccount",
        # Their own customers' figures and the automatic tags of the customers they see.
        *_REPORTS,
        "reports.view_customerprofile",
        "reports.view_profiletag",
        "reports.view_profilerule",
        *_LOTTERY_VIEW,
    ],
    SERVICE: [
        "accounts.access_staff_ui",
        *_VIEW_LOOKUPS,
        # Every customer's name and service history, personal fields masked, read-only.
        "customers.view_customer",
        "customers.view_all_customers",
        "customers.export_customers",
        "customers.view_contact",
        "customers.view_transaction",
        "customers.view_contract",
        "customers.view_statuschange",
        # Follow-up records read-only (PRODUCT.md); their own tasks and notes.
        "followups.view_followup",
        *_OWN_AGENDA,
        *_VIEW_PRODUCTS,
        # The complaint desk: every ticket, the team queue. Reassigning is a lead's permission
        # (complaints.assign_ticket), granted to a service lead's own account in the admin.
        *_TICKET_WORK,
        "complaints.view_all_tickets",
        *_VIEW_CONSENTS,
        *_ACCESS_REQUESTS,
        # The service reports of the tickets they see (every ticket).
        *_REPORTS,
        *_LOTTERY_VIEW,
    ],
    ANALYST: [
        "accounts.access_staff_ui",
        # Every report, over every customer, in aggregates only: no customer record, no personal field.
        *_REPORTS,
        "reports.view_all_reports",
        "reports.view_profilerule",
        *_LOTTERY_VIEW,
    ],
    CUSTOMER: [
        "accounts.access_portal",
    ],
}


def expected_permissions(role: str, available: Iterable[str]) -> set[str]:
    """The ``app_label.codename`` strings ``role`` holds, out of the permissions that exist."""
    available = set(available)
    spec = ROLE_PERMISSIONS[role]
    if spec == ALL:
        return available - NOT_FOR_ADMIN
    return set(spec) & available


def apply_role_matrix(apps, app_labels: Iterable[str] | None = None) -> None:
    """Create the role groups and grant them the matrix's permissions (additively).

    ``apps`` is the migration state's registry (or ``django.apps.apps``); ``app_labels`` limits the
    grant to those apps' permissions, so each app's migration grants only what it introduced.
    """
    from django.contrib.auth.management import create_permissions

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    # Permissions are normally created after all migrations ran; create them now so that the
    # groups can be given them inside the migration.
    for app_config in apps.get_app_configs():
        if app_labels is None or app_config.label in app_labels:
            previous = getattr(app_config, "models_module", None)
            app_config.models_module = previous or True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = previous

    permissions = Permission.objects.select_related("content_type")
    if app_labels is not None:
        permissions = permissions.filter(content_type__app_label__in=list(app_labels))
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in permissions}

    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = expected_permissions(role, by_name)
        group.permissions.add(*(by_name[name] for name in sorted(wanted)))
