"""Creating and editing customers (with contacts), the duplicate warning, transactions and contracts."""

import datetime
import importlib
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from customers.models import Contact, Contract, Customer, CustomerLevel, EnterpriseType, Province, Transaction
from tests.customers.factories import (
    ContactFactory,
    ContractFactory,
    CustomerFactory,
    TagFactory,
    TransactionFactory,
)

CREATE = reverse("customers:create")
DUPLICATES = reverse("customers:duplicate_check")
VALID_ID = "11010519491231002X"


@pytest.fixture(autouse=True)
def reference_data(db):
    """The provinces and default lookups the migrations ship: a transactional test elsewhere in the
    suite flushes them, so put them back when they are gone."""
    if Province.objects.exists() and CustomerLevel.objects.exists() and EnterpriseType.objects.exists():
        return
    from django.apps import apps

    migration = importlib.import_module("customers.migrations.0002_reference_data_and_roles")
    migration.load_reference_data(apps, None)


def english(client: Client) -> Client:
    """Error texts are checked as their English msgids: translations land later."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def management(total: int, initial: int = 0, prefix: str = "contacts") -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def customer_data(contacts=(), initial_contacts=(), **overrides) -> dict:
    """A valid POST of the customer form; ``contacts`` are dicts of new rows, ``initial_contacts`` of
    existing ones (with their id)."""
    data = {
        "kind": "individual",
        "name": "张伟",
        "company": "",
        "gender": "M",
        "status": "prospect",
        "mobile": "13800138000",
        "notes": "",
    }
    rows = [*initial_contacts, *contacts]
    data.update(management(len(rows), len(initial_contacts)))
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"contacts-{index}-{key}"] = value
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def edit_url(customer) -> str:
    return reverse("customers:edit", args=[customer.pk])


def editable_data(customer, initial_contacts=(), **overrides) -> dict:
    """What the edit form of ``customer`` posts back unchanged, with its ``initial_contacts`` rows."""
    data = customer_data(
        initial_contacts=initial_contacts,
        name=customer.name,
        company=customer.company,
        mobile=customer.mobile,
        email=customer.email,
        status=customer.status,
    )
    data.update(overrides)
    return data


# --- Who may -------------------------------------------------------------------------------------


def _customer_urls(customer, transaction, contract):
    return [
        CREATE,
        DUPLICATES,
        edit_url(customer),
        reverse("customers:transaction_create", args=[customer.pk]),
        reverse("customers:transaction_edit", args=[transaction.pk]),
        reverse("customers:contract_create", args=[customer.pk]),
        reverse("customers:contract_edit", args=[contract.pk]),
    ]


def test_it_sends_anonymous_users_to_login(db, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    urls = _customer_urls(customer, TransactionFactory(customer=customer), ContractFactory(customer=customer))
    for url in urls:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    response = Client().post(CREATE, customer_data())
    assert response.status_code == 302 and not Customer.objects.filter(name="张伟").exists()


@pytest.mark.parametrize("role", ["analyst", "portal_customer"])
def test_it_refuses_roles_without_customer_pages(request, client_for, sales_rep, role):
    customer = CustomerFactory(owner=sales_rep, name="原名")
    transaction, contract = TransactionFactory(customer=customer), ContractFactory(customer=customer)
    client = client_for(request.getfixturevalue(role))
    for url in _customer_urls(customer, transaction, contract):
        assert client.get(url).status_code == 403, url
    assert client.post(CREATE, customer_data()).status_code == 403
    assert client.post(edit_url(customer), editable_data(customer, name="改名")).status_code == 403
    assert not Customer.objects.filter(name__in=["张伟", "改名"]).exists()


def test_it_lets_service_staff_read_but_not_write(service_agent, sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, name="原名")
    transaction = TransactionFactory(customer=customer, amount="10.00")
    contract = ContractFactory(customer=customer)
    client = client_for(service_agent)
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, customer_data()).status_code == 403
    assert client.get(edit_url(customer)).status_code == 403
    assert client.post(edit_url(customer), editable_data(customer, name="改名")).status_code == 403
    tx_data = {"date": "2026-03-01", "amount": "99.00", "product": "X", "channel": "online"}
    assert client.post(reverse("customers:transaction_create", args=[customer.pk]), tx_data).status_code == 403
    assert client.post(reverse("customers:transaction_edit", args=[transaction.pk]), tx_data).status_code == 403
    assert client.get(reverse("customers:contract_edit", args=[contract.pk])).status_code == 403
    assert client.get(DUPLICATES, {"mobile": customer.mobile}).status_code == 403
    customer.refresh_from_db()
    transaction.refresh_from_db()
    assert customer.name == "原名" and transaction.amount == Decimal("10.00")
    assert not Customer.objects.filter(name="张伟").exists()


def test_it_refuses_a_read_only_share_with_403(sales_rep, other_sales_rep, client_for):
    from customers.services import customer_share

    customer = CustomerFactory(owner=other_sales_rep)
    customer_share(customer=customer, user=sales_rep, by=other_sales_rep)
    assert client_for(sales_rep).get(edit_url(customer)).status_code == 403


def test_it_answers_404_for_another_reps_customer(sales_rep, other_sales_rep, client_for):
    customer = CustomerFactory(owner=other_sales_rep, name="别人的客户")
    transaction, contract = TransactionFactory(customer=customer), ContractFactory(customer=customer)
    client = client_for(sales_rep)
    for url in [
        edit_url(customer),
        reverse("customers:transaction_create", args=[customer.pk]),
        reverse("customers:transaction_edit", args=[transaction.pk]),
        reverse("customers:contract_create", args=[customer.pk]),
        reverse("customers:contract_edit", args=[contract.pk]),
    ]:
        assert client.get(url).status_code == 404, url
    assert client.post(edit_url(customer), editable_data(customer, name="改名")).status_code == 404
    customer.refresh_from_db()
    assert customer.name == "别人的客户"


def test_it_answers_404_for_unknown_and_deleted_records(sales_rep, client_for):
    from django.utils import timezone

    deleted = CustomerFactory(owner=sales_rep, deleted_at=timezone.now())
    client = client_for(sales_rep)
    assert client.get(reverse("customers:edit", args=[987654])).status_code == 404
    assert client.get(edit_url(deleted)).status_code == 404
    assert client.get(reverse("customers:transaction_edit", args=[987654])).status_code == 404
    assert client.get(reverse("customers:contract_create", args=[987654])).status_code == 404


def test_it_refuses_the_wrong_method(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    client = client_for(sales_rep)
    assert client.put(CREATE).status_code == 405
    assert client.delete(edit_url(customer)).status_code == 405
    assert client.post(DUPLICATES, {"mobile": "13800138000"}).status_code == 405
    assert client.put(reverse("customers:transaction_create", args=[customer.pk])).status_code == 405
    assert client.patch(reverse("customers:contract_create", args=[customer.pk])).status_code == 405


# --- Creating ------------------------------------------------------------------------------------


def test_it_shows_the_create_form_with_two_contact_rows(sales_rep, client_for):
    response = client_for(sales_rep).get(CREATE)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="contacts-TOTAL_FORMS" value="2"' in page
    assert 'name="contacts-1-phone"' in page
    assert 'name="owner"' not in page  # a sales rep owns what they create
    assert "<script>" not in page and "style=" not in page


def test_it_creates_an_individual_with_two_contacts_in_one_post(sales_rep, client_for):
    contacts = [
        {"name": "张太太", "title": "家属", "phone": "139 0013 9000", "email": "Wife@Example.com", "is_primary": "on"},
        {"name": "小张", "title": "", "phone": "", "email": ""},
    ]
    response = client_for(sales_rep).post(CREATE, customer_data(contacts=contacts))
    customer = Customer.objects.get(name="张伟")
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[customer.pk])
    assert customer.code.startswith(f"C{datetime.date.today().year}-")
    assert customer.owner == sales_rep and customer.created_by == sales_rep
    assert customer.kind == Customer.INDIVIDUAL
    primary, second = customer.contacts.all()
    assert (primary.name, primary.phone, primary.email, primary.is_primary) == (
        "张太太",
        "+8613900139000",
        "wife@example.com",
        True,
    )
    assert second.name == "小张" and not second.is_primary
    assert customer.history.first().history_user == sales_rep


def test_it_creates_an_enterprise_with_its_enterprise_fields(sales_rep, client_for):
    enterprise_type = EnterpriseType.objects.get(name="有限责任公司")
    province = Province.objects.get(code="31")
    tag = TagFactory(name="重点")
    data = customer_data(
        kind="enterprise",
        name="上海某某科技有限公司",
        gender="",
        mobile="",
        phone="021-6888 8888",
        enterprise_type=enterprise_type.pk,
        scale="medium",
        province=province.pk,
        city="上海",
        tags=[tag.pk],
        contacts=[{"name": "王经理", "title": "采购", "phone": "13700137000", "is_primary": "on"}],
    )
    response = client_for(sales_rep).post(CREATE, data)
    assert response.status_code == 302
    customer = Customer.objects.get(name="上海某某科技有限公司")
    assert customer.is_enterprise and customer.enterprise_type == enterprise_type and customer.scale == "medium"
    assert customer.phone == "+862168888888"
    assert customer.province == province and list(customer.tags.all()) == [tag]
    assert customer.contacts.get().is_primary


def test_it_drops_enterprise_fields_of_an_individual(sales_rep, client_for):
    enterprise_type = EnterpriseType.objects.first()
    response = client_for(sales_rep).post(CREATE, customer_data(enterprise_type=enterprise_type.pk, scale="large"))
    assert response.status_code == 302
    customer = Customer.objects.get(name="张伟")
    assert customer.enterprise_type is None and customer.scale == ""


def test_it_serves_the_enterprise_fieldset_for_the_chosen_kind(sales_rep, client_for):
    client = client_for(sales_rep)
    shown = client.get(CREATE, {"fragment": "enterprise", "kind": "enterprise", "scale": "small"}).content.decode()
    hidden = client.get(CREATE, {"fragment": "enterprise", "kind": "individual"}).content.decode()
    assert 'id="enterprise-fields"' in shown and " hidden" not in shown.split(">")[0]
    assert '<option value="small" selected>' in shown
    assert " hidden" in hidden.split(">")[0]
    assert "<html" not in shown


def test_it_normalises_phones_and_full_width_email(sales_rep, client_for):
    data = customer_data(
        name="ＺＨＡＮＧ Ｗｅｉ",
        mobile="138 0013 8000",
        email="ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        id_number="110105 19491231 002x",
        bank_account="6222 0202 0011 2233 445",
    )
    assert client_for(sales_rep).post(CREATE, data).status_code == 302
    customer = Customer.objects.get()
    assert customer.name == "ZHANG Wei"
    assert customer.mobile == "+8613800138000"
    assert customer.email == "zhang@example.com"
    assert customer.id_number == VALID_ID
    assert customer.bank_account == "6222020200112233445"
    assert customer.birth_date == datetime.date(1949, 12, 31)  # taken from the ID card number


def test_it_stores_personal_data_encrypted(sales_rep, client_for):
    data = customer_data(mobile="13800138000", email="zhang@example.com", id_number=VALID_ID, address="北京市朝阳区")
    assert client_for(sales_rep).post(CREATE, data).status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT mobile, email, id_number, address FROM customers_customer")
        row = cursor.fetchone()
        cursor.execute("SELECT mobile, id_number FROM customers_historicalcustomer")
        history = cursor.fetchall()
    raw = " ".join(str(value) for value in [*row, *[v for h in history for v in h]])
    for plain in ("13800138000", "zhang@example.com", "19491231", "朝阳"):
        assert plain not in raw
    assert row[0].startswith("v1:")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("mobile", "12345", "is not a valid phone number"),
        ("phone", "12345", "is not a valid phone number"),
        ("fax", "abc", "is not a phone number"),
        ("email", "not-an-email", "Enter a valid email address."),
        ("id_number", "110105194912310021", "check digit is wrong"),
        ("id_number", "110101199002301234", "birth date inside this ID card number does not exist"),
        ("id_number", "12345", "18 characters"),
        ("bank_account", "6222-abc", "10 to 30 digits"),
        ("birth_date", (datetime.date.today() + datetime.timedelta(days=1)).isoformat(), "cannot be in the future"),
        ("birth_date", "2026-02-30", "Enter a valid date."),
        ("name", "长" * 200, "at most 128 characters"),
        ("name", "", "This field is required."),
        ("address", "路" * 201, "at most 200 characters"),
        ("level", "999999", "Select a valid choice."),
        ("level", "abc", "Select a valid choice."),
        ("province", "'; DROP TABLE x", "Select a valid choice."),
        ("tags", "999999", "Select a valid choice."),
        ("kind", "robot", "Select a valid choice."),
        ("status", "dead", "Select a valid choice."),
    ],
)
def test_it_rejects_bad_input_without_saving(sales_rep, client_for, field, value, message):
    TagFactory()
    response = english(client_for(sales_rep)).post(CREATE, customer_data(**{field: value}))
    assert response.status_code == 200
    page = response.content.decode()
    assert "is-invalid" in page
    assert message in response.context["form"].errors[field][0]
    assert not Customer.objects.exists()


def test_it_rejects_a_birth_date_that_contradicts_the_id_number(sales_rep, client_for):
    response = english(client_for(sales_rep)).post(CREATE, customer_data(id_number=VALID_ID, birth_date="1950-01-01"))
    assert "does not match" in response.context["form"].errors["birth_date"][0]
    assert not Customer.objects.exists()


def test_it_saves_nothing_when_a_contact_row_is_invalid(sales_rep, client_for):
    contacts = [{"name": "好联系人", "phone": "13900139000"}, {"name": "坏联系人", "phone": "12345"}]
    response = english(client_for(sales_rep)).post(CREATE, customer_data(contacts=contacts))
    assert response.status_code == 200
    assert "is not a valid phone number" in response.content.decode()
    assert not Customer.objects.exists() and not Contact.objects.exists()


def test_it_refuses_two_primary_contacts(sales_rep, client_for):
    contacts = [{"name": "甲", "is_primary": "on"}, {"name": "乙", "is_primary": "on"}]
    response = english(client_for(sales_rep)).post(CREATE, customer_data(contacts=contacts))
    assert response.status_code == 200
    assert "Only one contact can be the primary contact." in response.content.decode()
    assert not Customer.objects.exists()


def test_it_refuses_a_contact_without_a_name(sales_rep, client_for):
    response = client_for(sales_rep).post(CREATE, customer_data(contacts=[{"name": "", "phone": "13900139000"}]))
    assert response.status_code == 200 and not Customer.objects.exists()


def test_it_survives_a_broken_management_form(sales_rep, client_for):
    data = customer_data(**{"contacts-TOTAL_FORMS": "abc"})
    response = client_for(sales_rep).post(CREATE, data)
    assert response.status_code == 200 and not Customer.objects.exists()
    data = customer_data()
    del data["contacts-TOTAL_FORMS"]
    assert client_for(sales_rep).post(CREATE, data).status_code == 200
    assert not Customer.objects.exists()


def test_it_adds_a_contact_row_without_saving(sales_rep, client_for):
    data = customer_data(contacts=[{"name": "甲"}, {"name": ""}], add_contact="1")
    response = client_for(sales_rep).post(CREATE, data)
    assert response.status_code == 200
    assert 'name="contacts-TOTAL_FORMS" value="3"' in response.content.decode()
    assert not Customer.objects.exists()


# --- Owner ---------------------------------------------------------------------------------------


def test_it_makes_the_sales_rep_the_owner_whatever_they_post(sales_rep, other_sales_rep, client_for):
    response = client_for(sales_rep).post(CREATE, customer_data(owner=other_sales_rep.pk))
    assert response.status_code == 302
    assert Customer.objects.get().owner == sales_rep


def test_it_lets_a_manager_choose_the_owner(manager, sales_rep, client_for):
    page = client_for(manager).get(CREATE).content.decode()
    assert 'name="owner"' in page
    response = client_for(manager).post(CREATE, customer_data(owner=sales_rep.pk))
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.owner == sales_rep and customer.created_by == manager


def test_it_refuses_an_owner_who_may_not_own_customers(manager, analyst, client_for):
    response = client_for(manager).post(CREATE, customer_data(owner=analyst.pk))
    assert response.status_code == 200 and "owner" in response.context["form"].errors
    assert not Customer.objects.exists()


def test_it_transfers_when_a_manager_changes_the_owner(manager, sales_rep, other_sales_rep, client_for):
    from customers.models import CustomerUserObjectPermission
    from customers.services import customer_share

    customer = CustomerFactory(owner=sales_rep)
    customer_share(customer=customer, user=sales_rep, can_edit_too=True, by=manager)
    response = client_for(manager).post(edit_url(customer), editable_data(customer, owner=other_sales_rep.pk))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.owner == other_sales_rep
    assert not CustomerUserObjectPermission.objects.filter(user=sales_rep, content_object=customer).exists()
    assert customer.history.first().owner_id == other_sales_rep.pk


# --- Editing -------------------------------------------------------------------------------------


def test_it_edits_a_customer_and_records_who(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, name="旧名字")
    level = CustomerLevel.objects.get(name="VIP")
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, name="新名字", level=level.pk))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "新名字" and customer.level == level
    latest = customer.history.first()
    assert latest.history_user == sales_rep and latest.name == "新名字"


def test_it_lets_a_shared_editor_edit(sales_rep, other_sales_rep, client_for):
    from customers.services import customer_share

    customer = CustomerFactory(owner=other_sales_rep)
    customer_share(customer=customer, user=sales_rep, can_edit_too=True, by=other_sales_rep)
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, name="共享改名"))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "共享改名" and customer.owner == other_sales_rep


def test_it_deletes_a_contact_marked_for_removal(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    keep = ContactFactory(customer=customer, name="留下", is_primary=True)
    drop = ContactFactory(customer=customer, name="删除")
    rows = [
        {"id": keep.pk, "customer": customer.pk, "name": "留下", "phone": keep.phone, "is_primary": "on"},
        {"id": drop.pk, "customer": customer.pk, "name": "删除", "phone": drop.phone, "DELETE": "on"},
    ]
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, initial_contacts=rows))
    assert response.status_code == 302
    assert list(customer.contacts.values_list("name", flat=True)) == ["留下"]


def test_it_moves_the_primary_flag_between_contacts(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    first = ContactFactory(customer=customer, name="甲", is_primary=True)
    second = ContactFactory(customer=customer, name="乙")
    rows = [
        {"id": first.pk, "customer": customer.pk, "name": "甲", "phone": first.phone},
        {"id": second.pk, "customer": customer.pk, "name": "乙", "phone": second.phone, "is_primary": "on"},
    ]
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, initial_contacts=rows))
    assert response.status_code == 302
    assert customer.contacts.get(is_primary=True) == second


def test_it_never_edits_another_customers_contact(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    foreign = ContactFactory(name="外人")
    rows = [{"id": foreign.pk, "customer": customer.pk, "name": "被改"}]
    client_for(sales_rep).post(edit_url(customer), editable_data(customer, initial_contacts=rows))
    foreign.refresh_from_db()
    assert foreign.name == "外人" and foreign.customer != customer


def test_it_never_puts_the_stored_id_number_in_the_form(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, id_number=VALID_ID, bank_account="6222020200112233445")
    page = client_for(sales_rep).get(edit_url(customer)).content.decode()
    assert VALID_ID not in page and "6222020200112233445" not in page
    assert "1101**********002X" in page  # the masked value as a placeholder
    assert customer.mobile in page  # a sales rep sees personal (not sensitive) fields whole


def test_it_keeps_a_masked_field_left_empty_and_clears_it_on_request(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, id_number=VALID_ID, birth_date=datetime.date(1949, 12, 31))
    client = client_for(sales_rep)
    assert client.post(edit_url(customer), editable_data(customer, name="改名")).status_code == 302
    customer.refresh_from_db()
    assert customer.id_number == VALID_ID and customer.name == "改名"
    assert client.post(edit_url(customer), editable_data(customer, clear_id_number="on")).status_code == 302
    customer.refresh_from_db()
    assert customer.id_number == ""


def test_it_keeps_custom_values_of_deactivated_fields(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, custom_data={"old_field": "保留"})
    assert client_for(sales_rep).post(edit_url(customer), editable_data(customer)).status_code == 302
    customer.refresh_from_db()
    assert customer.custom_data == {"old_field": "保留"}


# --- Duplicate warning ---------------------------------------------------------------------------


def test_it_warns_about_the_same_mobile_and_saves_only_when_confirmed(sales_rep, client_for):
    existing = CustomerFactory(owner=sales_rep, name="老客户", mobile="+8613800138000")
    client = english(client_for(sales_rep))
    response = client.post(CREATE, customer_data(name="新客户", mobile="138-0013-8000"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This customer may already exist." in page
    assert f"{existing.code} 老客户" in page
    assert reverse("customers:detail", args=[existing.pk]) in page
    assert 'name="save_anyway"' in page
    assert Customer.objects.count() == 1
    response = client.post(CREATE, customer_data(name="新客户", mobile="138-0013-8000", save_anyway="on"))
    assert response.status_code == 302
    assert Customer.objects.filter(name="新客户").exists()


def test_it_warns_about_the_same_name_at_the_same_company(sales_rep, client_for):
    existing = CustomerFactory(owner=sales_rep, name="李雷", company="华为", mobile="")
    response = english(client_for(sales_rep)).post(
        CREATE, customer_data(name="李雷", company="华为", mobile="13912345678")
    )
    page = response.content.decode()
    assert response.status_code == 200 and existing.code in page and "name and company" in page
    assert Customer.objects.count() == 1


def test_it_does_not_take_the_same_name_alone_for_a_duplicate(sales_rep, client_for):
    CustomerFactory(owner=sales_rep, name="王伟", mobile="")
    assert client_for(sales_rep).post(CREATE, customer_data(name="王伟")).status_code == 302


def test_it_warns_about_the_same_id_number_and_email(sales_rep, client_for):
    existing = CustomerFactory(owner=sales_rep, id_number=VALID_ID, email="a@example.com", mobile="")
    response = client_for(sales_rep).post(CREATE, customer_data(id_number=VALID_ID.lower(), mobile=""))
    assert existing.code in response.content.decode()
    response = client_for(sales_rep).post(CREATE, customer_data(email="A@EXAMPLE.COM", mobile=""))
    assert existing.code in response.content.decode()
    assert Customer.objects.count() == 1


def test_it_does_not_leak_another_reps_customer_in_the_warning(sales_rep, other_sales_rep, client_for):
    hidden = CustomerFactory(owner=other_sales_rep, name="秘密客户", company="机密公司", mobile="+8613800138000")
    response = english(client_for(sales_rep)).post(CREATE, customer_data(name="新客户", mobile="13800138000"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "outside your reach" in page
    assert "秘密客户" not in page and hidden.code not in page and "机密公司" not in page
    assert reverse("customers:detail", args=[hidden.pk]) not in page
    live = english(client_for(sales_rep)).get(DUPLICATES, {"mobile": "13800138000"}).content.decode()
    assert "outside your reach" in live and "秘密客户" not in live and hidden.code not in live


def test_it_does_not_warn_about_the_customer_being_edited(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep, mobile="+8613800138000")
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, notes="备注"))
    assert response.status_code == 302


def test_it_warns_when_an_edit_introduces_a_duplicate(sales_rep, client_for):
    other = CustomerFactory(owner=sales_rep, mobile="+8613900139000")
    customer = CustomerFactory(owner=sales_rep, mobile="+8613800138000")
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, mobile="13900139000"))
    assert response.status_code == 200 and other.code in response.content.decode()
    customer.refresh_from_db()
    assert customer.mobile == "+8613800138000"


def test_it_checks_duplicates_as_the_user_types(sales_rep, client_for):
    existing = CustomerFactory(owner=sales_rep, name="韩梅梅", mobile="+8613800138000")
    client = english(client_for(sales_rep))
    response = client.get(DUPLICATES, {"name": "", "mobile": "138 0013 8000", "phone": "bad", "email": "x"})
    page = response.content.decode()
    assert response.status_code == 200 and existing.code in page and "韩梅梅" in page
    assert 'name="save_anyway"' not in page and "<html" not in page
    assert client.get(DUPLICATES, {"mobile": "13800138000", "customer": existing.pk}).content.decode().strip() == ""
    assert client.get(DUPLICATES, {"mobile": "13700137000"}).content.decode().strip() == ""
    assert client.get(DUPLICATES, {"customer": "abc", "name": "x" * 500}).status_code == 200


def test_it_keeps_the_duplicate_check_query_count_bounded(sales_rep, client_for, django_assert_max_num_queries):
    for index in range(15):
        CustomerFactory(owner=sales_rep, name="同名", company="同公司", mobile=f"+8613800138{index:03d}")
    client = client_for(sales_rep)
    with django_assert_max_num_queries(12):
        response = client.get(DUPLICATES, {"name": "同名", "company": "同公司"})
    assert response.content.decode().count("<li>") == 10


# --- Transactions --------------------------------------------------------------------------------


def tx_data(**overrides):
    data = {"date": "2026-03-01", "amount": "1280.50", "product": "年度服务套餐", "channel": "online"}
    data.update(overrides)
    return data


def test_it_records_a_transaction(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:transaction_create", args=[customer.pk])
    assert client_for(sales_rep).get(url).status_code == 200
    response = client_for(sales_rep).post(url, tx_data())
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[customer.pk])
    transaction = customer.transactions.get()
    assert transaction.amount == Decimal("1280.50") and transaction.created_by == sales_rep
    assert transaction.history.first().history_user == sales_rep


def test_it_edits_a_transaction(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    transaction = TransactionFactory(customer=customer)
    url = reverse("customers:transaction_edit", args=[transaction.pk])
    assert client_for(sales_rep).get(url).status_code == 200
    response = client_for(sales_rep).post(url, tx_data(amount="99.90", channel="phone"))
    assert response.status_code == 302
    transaction.refresh_from_db()
    assert transaction.amount == Decimal("99.90") and transaction.channel == "phone"
    assert transaction.customer == customer


def test_it_records_a_refund_as_a_negative_amount_credited_to_the_owner(sales_rep, other_sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:transaction_create", args=[customer.pk])
    response = client_for(sales_rep).post(url, tx_data(amount="-300.00", product="退款：年度服务套餐"))
    assert response.status_code == 302
    refund = Transaction.objects.get()
    assert refund.amount == Decimal("-300.00") and refund.rep == sales_rep
    # Moving the customer later leaves the sale credited to the rep who made it.
    customer.owner = other_sales_rep
    customer.save()
    refund.refresh_from_db()
    assert refund.rep == sales_rep


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("amount", "0", "The amount cannot be zero (a refund is a negative amount)."),
        ("amount", "-0.00", "The amount cannot be zero (a refund is a negative amount)."),
        ("amount", "abc", "Enter a number."),
        ("amount", "1.234", "no more than 2 decimal places"),
        ("amount", "1" * 20, "no more than 14 digits"),
        ("date", "not-a-date", "Enter a valid date."),
        ("product", "", "This field is required."),
        ("product", "品" * 201, "at most 200 characters"),
        ("channel", "pigeon", "Select a valid choice."),
    ],
)
def test_it_rejects_a_bad_transaction(sales_rep, client_for, field, value, message):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:transaction_create", args=[customer.pk])
    response = english(client_for(sales_rep)).post(url, tx_data(**{field: value}))
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert not Transaction.objects.exists()


# --- Contracts -----------------------------------------------------------------------------------


def contract_data(**overrides):
    data = {
        "number": "",
        "title": "年度合作协议",
        "amount": "50000",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "status": "active",
    }
    data.update(overrides)
    return data


def test_it_records_a_contract_with_an_automatic_number(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:contract_create", args=[customer.pk])
    assert client_for(sales_rep).get(url).status_code == 200
    assert client_for(sales_rep).post(url, contract_data()).status_code == 302
    contract = customer.contracts.get()
    assert contract.number.startswith("HT") and contract.created_by == sales_rep
    assert contract.history.first().history_user == sales_rep


def test_it_edits_a_contract_and_keeps_its_number(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    contract = ContractFactory(customer=customer)
    number = contract.number
    url = reverse("customers:contract_edit", args=[contract.pk])
    response = client_for(sales_rep).post(url, contract_data(title="续签协议", status="terminated"))
    assert response.status_code == 302
    contract.refresh_from_db()
    assert (contract.title, contract.status, contract.number) == ("续签协议", "terminated", number)


def test_it_accepts_a_typed_contract_number_and_refuses_a_taken_one(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:contract_create", args=[customer.pk])
    assert client_for(sales_rep).post(url, contract_data(number="ｈｔ-001")).status_code == 302
    assert Contract.objects.get().number == "HT-001"
    response = client_for(sales_rep).post(url, contract_data(number="HT-001"))
    assert response.status_code == 200 and "number" in response.context["form"].errors
    assert Contract.objects.count() == 1


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"end_date": "2025-12-31"}, "end_date", "The end date cannot be before the start date."),
        ({"amount": "-1"}, "amount", "The amount cannot be negative."),
        ({"amount": "lots"}, "amount", "Enter a number."),
        ({"start_date": ""}, "start_date", "This field is required."),
        ({"title": "合" * 201}, "title", "at most 200 characters"),
        ({"number": "N" * 40}, "number", "at most 32 characters"),
        ({"status": "maybe"}, "status", "Select a valid choice."),
    ],
)
def test_it_rejects_a_bad_contract(sales_rep, client_for, overrides, field, message):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:contract_create", args=[customer.pk])
    response = english(client_for(sales_rep)).post(url, contract_data(**overrides))
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert not Contract.objects.exists()


def test_it_accepts_a_contract_of_one_day_and_zero_amount(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:contract_create", args=[customer.pk])
    data = contract_data(amount="0", start_date="2026-05-01", end_date="2026-05-01")
    assert client_for(sales_rep).post(url, data).status_code == 302


def test_it_keeps_the_edit_page_query_count_constant(sales_rep, client_for, django_assert_max_num_queries):
    customer = CustomerFactory(owner=sales_rep)
    ContactFactory.create_batch(10, customer=customer)
    TagFactory.create_batch(10)
    client = client_for(sales_rep)
    with django_assert_max_num_queries(25):
        response = client.get(edit_url(customer))
    assert response.status_code == 200
    assert response.content.decode().count('name="contacts-') > 10 * 5
