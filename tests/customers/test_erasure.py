"""Erasure (PIPL art. 47; GDPR art. 17): after an approved erasure no table of the database — live
rows, history rows, logs — holds the customer's name, phone numbers, ID card number or other
personal values; the encrypted columns decrypt to nothing and the blind indexes no longer match;
what accounting must keep stays under the pseudonymous record; other customers are untouched.

Runs on SQLite and on PostgreSQL (DATABASE_URL=postgres://… pytest tests/customers/test_erasure.py).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from accounts.models import PortalAccount, User
from cims.crypto import blind_index
from cims.models import PersonalDataAccess, log_personal_data_access
from complaints.models import Ticket, TicketAttachment, TicketAttachmentContent, TicketCategory, TicketEvent
from customers import attachments, privacy
from customers.merging import customer_merge
from customers.models import (
    Attachment,
    Consent,
    Contact,
    Contract,
    Customer,
    DataRequest,
    StatusChange,
    Transaction,
)
from customers.services import customer_change_status, customer_save
from followups import reminders
from followups.models import CampaignMember, FollowUp, Notification
from tests.customers.factories import ContactFactory, ContractFactory, CustomerFactory, TagFactory, TransactionFactory
from tests.customers.test_attachments import PDF_BYTES
from tests.factories import PASSWORD, UserFactory
from tests.followups.factories import CampaignFactory, FollowUpFactory, OpportunityFactory, TaskFactory

pytestmark = pytest.mark.django_db

NAME = "司马茜"  # three characters: shorter names are the hard case for text searches
COMPANY = "茜茜花艺工作室"
MOBILE = "+8613912345678"
MOBILE_DIGITS = "13912345678"
OLD_MOBILE = "+8613698765432"
OLD_MOBILE_DIGITS = "13698765432"
PHONE = "+862087654321"
PHONE_DIGITS = "2087654321"
ID_NUMBER = "440305198506123718"  # checksum valid
EMAIL = "sima.qian.erase@example.com"
ADDRESS = "广州市天河区体育西路 88 号"
BANK = "6222020200119988776"
CONTACT = "司马助理"
CONTACT_MOBILE = "+8613787654321"
CONTACT_DIGITS = "13787654321"
NEEDLES = [
    NAME,
    COMPANY,
    MOBILE_DIGITS,
    OLD_MOBILE_DIGITS,
    PHONE_DIGITS,
    ID_NUMBER,
    EMAIL,
    "体育西路",
    BANK,
    CONTACT,
    CONTACT_DIGITS,
]


# --- Scanning every table ------------------------------------------------------------------------


def _column_condition(column) -> str:
    quoted = connection.ops.quote_name(column.name)
    if connection.vendor == "postgresql":
        if column.type_code == 17:  # bytea: look for the UTF-8 bytes of the text
            return f"position(convert_to(%s, 'UTF8') in {quoted}) > 0"
        return f"strpos({quoted}::text, %s) > 0"
    return f"instr(CAST({quoted} AS TEXT), %s) > 0"


def scan(needles: list[str]) -> set[tuple[str, str, str]]:
    """(table, column, needle) for every column of every table in which a needle occurs, whatever
    the column's type: text, JSON, binary (by its bytes), numbers. Raw SQL: no model hides a row."""
    hits = set()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                condition = _column_condition(column)
                sql = f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} WHERE "  # noqa: S608
                cursor.execute(sql + " OR ".join([condition] * len(needles)), needles)
                if not cursor.fetchone()[0]:
                    continue
                for needle in needles:
                    cursor.execute(sql + condition, [needle])
                    if cursor.fetchone()[0]:
                        hits.add((table, column.name, needle))
    return hits


# --- The customer, with data in every table that can hold it ------------------------------------------------


@pytest.fixture
def world(sales_rep, manager, client_for, client):
    """A customer with personal data everywhere, a merged-away duplicate, and a control customer."""
    customer = Customer(
        kind=Customer.INDIVIDUAL,
        name=NAME,
        company=COMPANY,
        gender="F",
        birth_date=datetime.date(1985, 6, 12),
        mobile=OLD_MOBILE,
        phone=PHONE,
        email=EMAIL,
        address=ADDRESS,
        id_number=ID_NUMBER,
        bank_account=BANK,
        fax="020-87654322",
        city="广州",
        notes=f"{NAME}喜欢百合，电话 {MOBILE_DIGITS}",
        custom_data={"wechat": f"{NAME}_wx"},
        owner=sales_rep,
    )
    contact = Contact(name=CONTACT, title="助理", phone=CONTACT_MOBILE, email=f"assistant.{EMAIL}")
    customer_save(customer=customer, contacts=[contact], by=sales_rep)
    customer.tags.add(TagFactory(name="花艺"))
    # An edit: the history now also holds the old mobile (encrypted) and the new one.
    customer.mobile = MOBILE
    customer_save(customer=customer, by=sales_rep)
    contact.title = f"{NAME}的助理"
    contact._history_user = sales_rep
    contact.save()

    # A duplicate merged into it: it stays in the recycle bin with the person's data of its own.
    duplicate = CustomerFactory(name=NAME, mobile=f"+86139{MOBILE_DIGITS[-8:]}", id_number="", owner=sales_rep)
    duplicate.notes = f"旧档案 {OLD_MOBILE_DIGITS}"
    duplicate.save()
    customer_merge(survivor=customer, merged=duplicate, choices={}, by=manager)
    customer = Customer.objects.get(pk=customer.pk)

    followup = FollowUpFactory(
        customer=customer, content=f"与{NAME}电话沟通 {MOBILE_DIGITS}", result=f"{NAME}同意", created_by=sales_rep
    )
    followup.content += "（补充）"
    followup.save()  # a second history row
    task = TaskFactory(
        customer=customer,
        title=f"回访{NAME}",
        assignee=sales_rep,
        due_at=timezone.now() + datetime.timedelta(minutes=5),
    )
    reminders.send_due_reminders()  # the bell: "Task due: 回访司马茜", body "C… 司马茜"
    opportunity = OpportunityFactory(
        customer=customer, title=f"{NAME}的婚礼花艺", description=f"联系 {MOBILE_DIGITS}", owner=sales_rep
    )
    opportunity.lost_reason = f"{NAME}预算不足"
    opportunity.save()
    transaction_row = TransactionFactory(customer=customer, product=f"{NAME}定制花束", amount=Decimal("888.00"))
    contract = ContractFactory(customer=customer, title=f"{NAME}年度合作", amount=Decimal("12000.00"))
    customer_change_status(customer=customer, to=Customer.Status.INTENT, by=sales_rep, reason=f"{NAME}确认意向")

    category = TicketCategory.objects.order_by("pk").first() or TicketCategory.objects.create(name="其他")
    ticket = Ticket.objects.create(
        customer=customer,
        category=category,
        subject=f"{NAME}投诉送货慢",
        description=f"请联系 {MOBILE_DIGITS}",
        contact=customer.contacts.first(),
        created_by=sales_rep,
    )
    ticket.rating, ticket.rating_comment = 4, f"{NAME}：还算满意"
    ticket.save()
    event = TicketEvent.objects.create(ticket=ticket, kind="reply", body=f"{NAME}您好，已处理", actor=sales_rep)
    TicketEvent.objects.create(ticket=ticket, kind="note", body=f"{NAME}的身份证 {ID_NUMBER}", internal=True)
    ticket_file = TicketAttachment.objects.create(
        ticket=ticket, event=event, filename=f"{NAME}-照片.png", content_type="image/png", size=4, sha256="0" * 64
    )
    # Bytes in clear on purpose: the scan then proves the bytes themselves are gone.
    TicketAttachmentContent.objects.create(attachment=ticket_file, data=f"{NAME}{ID_NUMBER}".encode())
    notify_ticket = f"新工单 {ticket.number}：{NAME}投诉送货慢"
    reminders.notify(user=sales_rep, key=f"ticket:{ticket.pk}:assigned", title=notify_ticket, url="/desk/")
    reminders.notify(
        user=sales_rep,
        key=f"pool-warning:{customer.pk}:2026-12-31",
        title=f"{customer.code} {NAME} returns to the pool",
        url=reverse("customers:detail", args=[customer.pk]),
    )

    attachments.attachment_upload(
        customer=customer, data=PDF_BYTES, filename=f"{NAME}身份证.pdf", kind="other", by=sales_rep
    )
    campaign = CampaignFactory(owner=manager)
    CampaignMember.objects.create(campaign=campaign, customer=customer, note=f"{NAME}到场，{MOBILE_DIGITS}")
    privacy.consent_record(customer=customer, purpose="marketing", granted=True, channel="paper", by=sales_rep)
    privacy.consent_record(customer=customer, purpose="sensitive", granted=True, channel="paper", by=sales_rep)

    # Access log: a reveal by staff, an export by the customer, and a module quoting a number.
    client_for(manager).post(reverse("customers:reveal", args=[customer.pk, "id_number"]))
    log_personal_data_access(
        user=manager, action="export", object_type="customers.customer", detail=f"lookup {MOBILE_DIGITS}"
    )

    # The portal account: the customer logs in with their mobile number.
    portal_user = UserFactory(username=MOBILE_DIGITS, name=NAME, email=EMAIL, role=roles.CUSTOMER)
    portal_user.first_name = NAME
    portal_user.save()
    PortalAccount.objects.create(user=portal_user, customer=customer, created_by=sales_rep)
    # A mistyped password: the access log names the username typed (the mobile number).
    from django.test import Client

    Client().post(reverse("accounts:login"), {"username": MOBILE_DIGITS, "password": "wrong"}, REMOTE_ADDR="10.9.9.9")
    assert PersonalDataAccess.objects.filter(action="login_failed", object_label=MOBILE_DIGITS).exists()
    client.post(reverse("accounts:login"), {"username": MOBILE_DIGITS, "password": "wrong"}, REMOTE_ADDR="10.1.2.3")
    portal = client_for(portal_user)
    portal.post(reverse("portal:privacy_export", args=["json"]), REMOTE_ADDR="10.1.2.3")
    portal.post(reverse("portal:privacy_request"), {"kind": "correction", "details": f"{NAME}的地址 {ADDRESS}"})
    portal.post(reverse("portal:privacy_request"), {"kind": "erasure", "confirm": "on"})

    # The admin's log of an edit made there.
    LogEntry.objects.create(
        user=manager,
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customer.pk),
        object_repr=str(customer),
        action_flag=CHANGE,
        change_message="[]",
    )

    control = CustomerFactory(name="对照客户", mobile="+8613500001111", owner=sales_rep)
    FollowUpFactory(customer=control, content="对照跟进", created_by=sales_rep)
    return {
        "customer": Customer.objects.get(pk=customer.pk),
        "duplicate": duplicate,
        "portal_user": portal_user,
        "ticket": ticket,
        "task": task,
        "transaction": transaction_row,
        "contract": contract,
        "control": control,
    }


def _erase(world, manager) -> DataRequest:
    erasure = DataRequest.objects.get(customer=world["customer"], kind="erasure", status="pending")
    return privacy.data_request_approve(data_request=erasure, by=manager)


# --- The proof ----------------------------------------------------------------------------------------------


def test_no_table_holds_the_customers_personal_data_after_erasure(world, manager):
    before = scan(NEEDLES)
    tables = {table for table, _column, _needle in before}
    # The scan sees the data where it was put (else proving its absence afterwards proves nothing).
    for table in (
        "customers_customer",
        "customers_historicalcustomer",
        "customers_contact",
        "customers_historicalcontact",
        "customers_statuschange",
        "customers_transaction",
        "customers_historicaltransaction",
        "customers_contract",
        "customers_historicalcontract",
        "customers_attachment",
        "customers_historicalattachment",
        "customers_datarequest",
        "followups_followup",
        "followups_historicalfollowup",
        "followups_task",
        "followups_historicaltask",
        "followups_opportunity",
        "followups_historicalopportunity",
        "followups_campaignmember",
        "followups_notification",
        "complaints_ticket",
        "complaints_historicalticket",
        "complaints_ticketevent",
        "complaints_ticketattachment",
        "complaints_ticketattachmentcontent",
        "accounts_user",
        "accounts_historicaluser",
        "axes_accessfailurelog",
        "axes_accesslog",
        "cims_personaldataaccess",
        "django_admin_log",
    ):
        assert table in tables, f"the test put no personal data in {table}"

    _erase(world, manager)

    assert scan(NEEDLES) == set()


def test_the_encrypted_columns_decrypt_to_nothing_and_the_blind_indexes_no_longer_match(world, manager):
    customer = world["customer"]
    history = Customer.history.model
    contact_history = Contact.history.model
    assert history.objects.filter(id=customer.pk).exclude(mobile="").exists()  # the history held it

    _erase(world, manager)

    ids = [customer.pk, world["duplicate"].pk]
    for row in [*Customer.all_objects.filter(pk__in=ids), *history.objects.filter(id__in=ids)]:
        assert (row.phone, row.mobile, row.email, row.address, row.id_number, row.bank_account) == ("",) * 6
        assert (row.phone_bidx, row.mobile_bidx, row.email_bidx, row.id_number_bidx) == ("",) * 4
    assert history.objects.filter(id=customer.pk).count() >= 4
    for row in contact_history.objects.filter(customer_id__in=ids):
        assert (row.name, row.phone, row.email, row.phone_bidx, row.email_bidx) == ("",) * 5
    assert contact_history.objects.filter(customer_id__in=ids).exists()
    for value in (MOBILE, OLD_MOBILE, PHONE, CONTACT_MOBILE):
        digest = blind_index("phone", value)
        for model in (Customer.all_objects, history.objects):
            assert not model.filter(mobile_bidx=digest).exists() and not model.filter(phone_bidx=digest).exists()
        assert not Contact.objects.filter(phone_bidx=digest).exists()
        assert not contact_history.objects.filter(phone_bidx=digest).exists()
    digest = blind_index("id_number", ID_NUMBER)
    assert not Customer.all_objects.filter(id_number_bidx=digest).exists()
    assert not history.objects.filter(id_number_bidx=digest).exists()
    assert not Customer.all_objects.filter(email_bidx=blind_index("email", EMAIL)).exists()
    # Nor is the customer found by name any more.
    assert not Customer.all_objects.search_name(NAME).exists()


def test_it_keeps_what_accounting_needs_under_the_pseudonymous_record(world, manager):
    customer = world["customer"]
    erasure = _erase(world, manager)

    customer = Customer.all_objects.get(pk=customer.pk)
    assert customer.name == f"已删除客户 {customer.code}"
    assert customer.erased_at is not None and customer.deleted_at is None
    assert customer.owner == world["transaction"].customer.owner  # the rep keeps the sales they made
    assert list(customer.tags.all()) == []
    transaction_row = Transaction.objects.get(pk=world["transaction"].pk)
    assert (transaction_row.amount, transaction_row.date) == (Decimal("888.00"), world["transaction"].date)
    contract = Contract.objects.get(pk=world["contract"].pk)
    assert (contract.number, contract.amount) == (world["contract"].number, Decimal("12000.00"))
    ticket = Ticket.objects.get(pk=world["ticket"].pk)
    assert ticket.number == world["ticket"].number and ticket.rating == 4 and ticket.contact is None
    assert not TicketAttachment.objects.exists() and not TicketAttachmentContent.objects.exists()
    assert not Attachment.objects.filter(customer=customer).exists()
    assert not Contact.objects.filter(customer=customer).exists()
    assert TicketEvent.objects.filter(ticket=ticket).count() == 2  # the steps stay, without their text
    assert StatusChange.objects.get(customer=customer).to_status == Customer.Status.INTENT
    # The consents stay as proof, without personal text.
    assert sorted(Consent.objects.filter(customer=customer).values_list("purpose", "granted")) == [
        ("marketing", True),
        ("sensitive", True),
    ]
    # The erasure itself is recorded: who approved it, when.
    assert (erasure.kind, erasure.status, erasure.decided_by) == ("erasure", "done", manager)
    assert erasure.completed_at is not None
    last = Customer.history.model.objects.filter(id=customer.pk).order_by("-history_date", "-history_id").first()
    assert (last.history_change_reason, last.history_user) == ("erased", manager)
    # The bell keeps its messages (no reminder comes again), without the text about the person.
    reminder = Notification.objects.get(key=f"task:{world['task'].pk}:due")
    assert reminder.title == customer.name and reminder.body == ""


def test_it_closes_the_portal_account(world, manager, client, client_for):
    portal_user = world["portal_user"]
    signed_in = client_for(portal_user)
    assert signed_in.get(reverse("portal:privacy")).status_code == 200
    _erase(world, manager)
    portal_user = User.objects.get(pk=portal_user.pk)
    assert not portal_user.is_active and not portal_user.has_usable_password()
    assert portal_user.username.startswith("erased-") and (portal_user.name, portal_user.email) == ("", "")
    assert not PersonalDataAccess.objects.filter(user=portal_user).exclude(ip_address=None).exists()
    # The open session ends, and the old login no longer works.
    response = signed_in.get(reverse("portal:privacy"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.post(reverse("accounts:login"), {"username": MOBILE_DIGITS, "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_it_leaves_other_customers_alone(world, manager):
    control = world["control"]
    history_before = Customer.history.model.objects.filter(id=control.pk).count()
    _erase(world, manager)
    control = Customer.objects.get(pk=control.pk)
    assert (control.name, control.mobile, control.erased_at) == ("对照客户", "+8613500001111", None)
    assert FollowUp.objects.get(customer=control).content == "对照跟进"
    assert Customer.history.model.objects.filter(id=control.pk).count() == history_before
    assert Customer.history.model.objects.filter(id=control.pk).first().name == "对照客户"


def test_it_is_all_or_nothing(world, manager, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(privacy, "_erase_notifications", boom)
    with pytest.raises(RuntimeError):
        _erase(world, manager)
    customer = Customer.objects.get(pk=world["customer"].pk)
    assert customer.name == NAME and customer.erased_at is None and customer.mobile == MOBILE
    assert Contact.objects.filter(customer=customer).exists()
    assert User.objects.get(pk=world["portal_user"].pk).is_active


def test_it_can_run_again_on_an_erased_customer(world, manager):
    _erase(world, manager)
    first = Customer.all_objects.get(pk=world["customer"].pk).erased_at
    privacy.customer_erase(customer=world["customer"], by=manager)
    assert Customer.all_objects.get(pk=world["customer"].pk).erased_at == first
    assert scan(NEEDLES) == set()


def test_it_knows_every_model_that_points_at_a_customer():
    """A new model with a foreign key to customers must be added to the erasure (customers.privacy)
    or to this list with the reason it holds no personal text."""
    handled = {
        # Erased or deleted by customer_erase.
        "customers.contact",
        "customers.transaction",
        "customers.contract",
        "customers.statuschange",
        "customers.attachment",
        "customers.consent",
        "customers.datarequest",
        "followups.followup",
        "followups.task",
        "followups.opportunity",
        "followups.campaignmember",
        "complaints.ticket",
        "accounts.portalaccount",
        # Their history rows, overwritten in bulk (the portal account's holds no text).
        "customers.historicalcustomer",
        "customers.historicalcustomer_tags",
        "customers.historicalcontact",
        "customers.historicaltransaction",
        "customers.historicalcontract",
        "customers.historicalattachment",
        "followups.historicalfollowup",
        "followups.historicaltask",
        "followups.historicalopportunity",
        "complaints.historicalticket",
        "accounts.historicalportalaccount",
        # No personal text: grants and links.
        "customers.customer",  # merged_into: the merged-away records are erased with it
        "customers.customeruserobjectpermission",
        "customers.customergroupobjectpermission",
        "customers.customer_tags",
        # Access requests stay: the requester, the code-only log rows and the staff member's reason
        # for asking (about their work, not the customer's data); an active grant runs out as usual.
        "customers.accessrequest",
        # Report figures derived from the records above (ids, dates, amounts, scores; a tag's reason
        # holds numbers only), rebuilt from them by the next refresh or nightly job.
        "reports.customerfact",
        "reports.salesfact",
        "reports.ticketfact",
        "reports.customerprofile",
        "reports.profiletag",
        # The year-end lottery: a pseudonymous entry id, a weight and ids only (no personal text). They
        # stay, so that the published entry list and the draw still verify after an erasure.
        "lottery.lotteryentry",
        "lottery.lotterywinner",
    }
    pointing = set()
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is Customer:
                pointing.add(model._meta.label_lower)
    assert pointing <= handled, f"not handled by the erasure: {sorted(pointing - handled)}"


def test_it_erases_an_enterprise_with_a_hundred_contacts_and_many_requests(manager):
    """Every personal value is a LIKE in the searches of notifications, the access log and the
    admin log: they run in pieces, so a large customer does not exceed SQLite's expression depth."""

    customer = CustomerFactory(kind=Customer.ENTERPRISE, name="大型集团有限公司")
    for n in range(100):
        ContactFactory(customer=customer, name=f"联系人甲{n:03d}", phone=f"+8613912{n:06d}", email=f"c{n}@big.example")
    for _ in range(60):
        privacy.DataRequest.objects.create(customer=customer, kind="export", status="done")
    privacy.customer_erase(customer=customer, by=manager)
    customer.refresh_from_db()
    assert customer.erased_at is not None and not customer.contacts.exists()
