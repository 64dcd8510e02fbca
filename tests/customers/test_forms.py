"""The customer form's rules: custom fields by type, normalisation, masked fields, contact rows."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.forms import ContactForm, CustomerForm, DuplicateCheckForm, contact_formset_class
from customers.models import Customer, CustomField
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.customers.test_edit import (
    CREATE,
    customer_data,
    edit_url,
    editable_data,
    english,
    reference_data,  # noqa: F401 - autouse: the lookups every test needs
)
from tests.factories import UserFactory


def custom_field(**kwargs) -> CustomField:
    kwargs.setdefault("label", kwargs["key"].replace("_", " ").title())
    return CustomField.objects.create(**kwargs)


@pytest.fixture
def custom_fields(db):
    return {
        "wechat": custom_field(key="wechat", label="微信号"),
        "budget": custom_field(key="budget", label="年度预算", field_type=CustomField.NUMBER, required=True),
        "met_on": custom_field(key="met_on", label="首次见面", field_type=CustomField.DATE),
        "channel": custom_field(
            key="channel", label="渠道偏好", field_type=CustomField.CHOICE, choices="电话\n微信\n邮件"
        ),
        "retired": custom_field(key="retired", label="已停用字段", is_active=False, required=True),
    }


# --- Custom fields -------------------------------------------------------------------------------


def test_it_shows_active_custom_fields_in_the_form(custom_fields, sales_rep, client_for):
    page = client_for(sales_rep).get(CREATE).content.decode()
    for label in ("微信号", "年度预算", "首次见面", "渠道偏好"):
        assert label in page
    assert 'name="cf_budget"' in page and 'type="date" name="cf_met_on"' in page
    assert "已停用字段" not in page and 'name="cf_retired"' not in page
    assert '<option value="微信">微信</option>' in page


def test_it_stores_custom_values_as_json_by_type(custom_fields, sales_rep, client_for):
    data = customer_data(cf_wechat=" zhangwei88 ", cf_budget="12500.50", cf_met_on="2026-03-08", cf_channel="微信")
    response = client_for(sales_rep).post(CREATE, data)
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.custom_data == {
        "wechat": "zhangwei88",
        "budget": "12500.50",
        "met_on": "2026-03-08",
        "channel": "微信",
    }


def test_it_leaves_empty_optional_custom_values_out(custom_fields, sales_rep, client_for):
    assert client_for(sales_rep).post(CREATE, customer_data(cf_budget="0")).status_code == 302
    assert Customer.objects.get().custom_data == {"budget": "0"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cf_budget", "", "This field is required."),
        ("cf_budget", "abc", "Enter a number."),
        ("cf_met_on", "2026-02-30", "Enter a valid date."),
        ("cf_channel", "飞鸽传书", "Select a valid choice."),
        ("cf_wechat", "w" * 201, "at most 200 characters"),
    ],
)
def test_it_validates_custom_values_by_type(custom_fields, sales_rep, client_for, field, value, message):
    data = customer_data(cf_budget="100")
    data[field] = value
    response = english(client_for(sales_rep)).post(CREATE, data)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert not Customer.objects.exists()


def test_it_fills_the_edit_form_with_stored_custom_values(custom_fields, sales_rep, client_for):
    customer = CustomerFactory(
        owner=sales_rep, custom_data={"budget": "300", "met_on": "2025-11-11", "channel": "邮件", "retired": "旧"}
    )
    page = client_for(sales_rep).get(edit_url(customer)).content.decode()
    assert 'name="cf_budget" value="300"' in page
    assert 'value="2025-11-11"' in page
    assert '<option value="邮件" selected>' in page
    response = client_for(sales_rep).post(edit_url(customer), editable_data(customer, cf_budget="301"))
    assert response.status_code == 302
    customer.refresh_from_db()
    # The deactivated field's value stays; the channel, not posted this time, is emptied.
    assert customer.custom_data == {"budget": "301", "retired": "旧"}


# --- Normalisation (form level) -----------------------------------------------------------------


def test_it_folds_and_normalises_on_the_form(sales_rep):
    form = CustomerForm(
        customer_data(
            name="  王　伟  ",
            company="ＡＢＣ公司",
            mobile="+86 138-0013-8000",
            phone="(010) 8888 6666",
            email="  Wang.Wei@Example.COM ",
            id_number="11010519491231002x",
        ),
        instance=Customer(),
        user=sales_rep,
    )
    assert form.is_valid(), form.errors
    cleaned = form.cleaned_data
    assert cleaned["name"] == "王 伟" and cleaned["company"] == "ABC公司"
    assert cleaned["mobile"] == "+8613800138000" and cleaned["phone"] == "+861088886666"
    assert cleaned["email"] == "wang.wei@example.com"
    assert cleaned["id_number"] == "11010519491231002X"
    assert cleaned["birth_date"] == datetime.date(1949, 12, 31)


def test_it_refuses_a_birth_date_before_1900(sales_rep):
    form = CustomerForm(customer_data(birth_date="1850-01-01"), instance=Customer(), user=sales_rep)
    assert not form.is_valid() and "birth_date" in form.errors


def test_it_wires_the_live_duplicate_check_with_htmx(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    form = CustomerForm(instance=customer, user=sales_rep)
    attrs = form.fields["mobile"].widget.attrs
    assert attrs["hx-get"] == reverse("customers:duplicate_check") + f"?customer={customer.pk}"
    assert attrs["hx-trigger"] == "change" and "[name='id_number']" in attrs["hx-include"]


def test_it_ignores_values_that_do_not_normalise_in_the_live_check():
    form = DuplicateCheckForm({"name": "ＡＢＣ", "mobile": "12345", "email": "x@", "id_number": "1"})
    assert form.is_valid()
    assert form.values() == {"name": "ABC", "company": "", "phone": "", "mobile": "", "email": "", "id_number": ""}


# --- Masked fields -------------------------------------------------------------------------------


@pytest.fixture
def masked_editor(db):
    """A user who may edit customers but sees personal data masked (a role an administrator could make)."""
    user = UserFactory(username="t_masked_editor")
    codenames = ["access_staff_ui", "view_customer", "change_customer", "view_all_customers", "change_all_customers"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


def test_it_never_sends_personal_data_to_a_user_who_sees_it_masked(masked_editor, client_for):
    customer = CustomerFactory(mobile="+8613800138000", email="zhang@example.com")
    contact = ContactFactory(customer=customer, phone="+8613900139000")
    response = client_for(masked_editor).get(edit_url(customer))
    assert response.status_code == 200
    page = response.content.decode()
    for plain in ("13800138000", "zhang@example.com", "13900139000"):
        assert plain not in page
    assert "138****8000" in page and "139****9000" in page
    rows = [{"id": contact.pk, "customer": customer.pk, "name": contact.name}]
    data = editable_data(customer, initial_contacts=rows, mobile="", email="", name="改名")
    response = client_for(masked_editor).post(edit_url(customer), data)
    assert response.status_code == 302
    customer.refresh_from_db()
    contact.refresh_from_db()
    assert (customer.name, customer.mobile, customer.email) == ("改名", "+8613800138000", "zhang@example.com")
    assert contact.phone == "+8613900139000"


def test_it_shows_personal_data_to_a_user_allowed_to_see_it(sales_rep):
    customer = CustomerFactory(owner=sales_rep, mobile="+8613800138000")
    form = CustomerForm(instance=customer, user=sales_rep)
    assert form["mobile"].value() == "+8613800138000"
    assert "clear_mobile" not in form.fields and "mobile" not in form.protected


# --- Contact rows --------------------------------------------------------------------------------


def _formset(customer, rows, *, user, initial=0):
    data = {
        "contacts-TOTAL_FORMS": str(len(rows)),
        "contacts-INITIAL_FORMS": str(initial),
        "contacts-MIN_NUM_FORMS": "0",
        "contacts-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"contacts-{index}-{key}"] = value
    return contact_formset_class(extra=2)(data, instance=customer, prefix="contacts", form_kwargs={"user": user})


def test_it_refuses_two_primaries_in_the_rows(sales_rep):
    formset = _formset(
        Customer(), [{"name": "甲", "is_primary": "on"}, {"name": "乙", "is_primary": "on"}], user=sales_rep
    )
    assert not formset.is_valid()
    with english_messages():
        assert "Only one contact can be the primary contact." in formset.non_form_errors()


def test_it_ignores_a_deleted_row_when_counting_primaries(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    old = ContactFactory(customer=customer, is_primary=True)
    rows = [
        {"id": old.pk, "customer": customer.pk, "name": old.name, "is_primary": "on", "DELETE": "on"},
        {"name": "新主联系人", "is_primary": "on"},
    ]
    assert _formset(customer, rows, user=sales_rep, initial=1).is_valid()


def test_it_ignores_empty_extra_rows(sales_rep):
    formset = _formset(
        Customer(), [{"name": "甲"}, {"name": "", "title": "", "phone": "", "email": ""}], user=sales_rep
    )
    assert formset.is_valid()
    assert len(formset.save(commit=False)) == 1


def test_it_limits_the_number_of_rows(sales_rep):
    formset = _formset(Customer(), [{"name": f"联系人{i}"} for i in range(60)], user=sales_rep)
    assert not formset.is_valid()


def test_it_normalises_contact_phone_and_email(sales_rep):
    form = ContactForm({"name": "ＬＩ", "phone": "139 0013 9000", "email": "Li@Example.com"}, user=sales_rep)
    assert form.is_valid()
    assert (form.cleaned_data["name"], form.cleaned_data["phone"], form.cleaned_data["email"]) == (
        "LI",
        "+8613900139000",
        "li@example.com",
    )
    bad = ContactForm({"name": "李", "phone": "12345", "email": "nope"}, user=sales_rep)
    assert not bad.is_valid() and set(bad.errors) == {"phone", "email"}


def english_messages():
    from django.utils import translation

    return translation.override("en")
