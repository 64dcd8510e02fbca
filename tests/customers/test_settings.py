"""System settings (系统设置): the lookups administrators maintain, tags, custom fields."""

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import CustomerLevel, CustomerSource, CustomField, Industry, Province, Tag
from tests.customers.factories import CustomerFactory, TagFactory
from tests.customers.test_edit import (
    english,
    reference_data,  # noqa: F401 - autouse: the lookups every test needs
)

INDEX = reverse("customers:settings")
KINDS = [
    "enterprise-types",
    "enterprise-natures",
    "levels",
    "sources",
    "customer-types",
    "industries",
    "tags",
    "custom-fields",
]

# The shipped lookups come from migrations: every test here needs the (non-transactional) database.
pytestmark = pytest.mark.django_db


def list_url(kind: str) -> str:
    return reverse("customers:lookup_list", args=[kind])


def create_url(kind: str) -> str:
    return reverse("customers:lookup_create", args=[kind])


def edit_url(kind: str, pk: int) -> str:
    return reverse("customers:lookup_edit", args=[kind, pk])


def field_data(**overrides) -> dict:
    data = {
        "label": "微信号",
        "key": "wechat",
        "field_type": "text",
        "choices": "",
        "sort_order": "1",
        "is_active": "on",
    }
    data.update(overrides)
    return data


# --- Who may -------------------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_login(db):
    level = CustomerLevel.objects.first()
    for url in (INDEX, list_url("levels"), create_url("levels"), edit_url("levels", level.pk)):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("role", ["analyst", "portal_customer"])
def test_it_refuses_roles_without_the_settings(request, client_for, role):
    client = client_for(request.getfixturevalue(role))
    level = CustomerLevel.objects.first()
    for url in (INDEX, list_url("levels"), create_url("levels"), edit_url("levels", level.pk), list_url("tags")):
        assert client.get(url).status_code == 403, url
    assert client.post(create_url("levels"), {"name": "S", "sort_order": 0}).status_code == 403
    assert not CustomerLevel.objects.filter(name="S").exists()


@pytest.mark.parametrize("role", ["sales_rep", "service_agent"])
def test_it_refuses_settings_to_sales_and_service(request, client_for, role):
    client = client_for(request.getfixturevalue(role))
    level = CustomerLevel.objects.get(name="VIP")
    tag = TagFactory(name="老客户")
    assert client.get(INDEX).status_code == 403
    for kind in KINDS:
        assert client.get(create_url(kind)).status_code == 403, kind
    assert client.post(create_url("levels"), {"name": "S", "sort_order": 0}).status_code == 403
    assert client.post(edit_url("levels", level.pk), {"name": "VVIP", "sort_order": 0}).status_code == 403
    assert client.post(edit_url("tags", tag.pk), {"name": "改名", "color": "#000000"}).status_code == 403
    assert client.post(create_url("custom-fields"), field_data()).status_code == 403
    level.refresh_from_db()
    tag.refresh_from_db()
    assert level.name == "VIP" and tag.name == "老客户"
    assert not CustomerLevel.objects.filter(name="S").exists() and not CustomField.objects.exists()


def test_it_shows_the_lists_read_only_to_those_who_may_only_view_them(sales_rep, client_for):
    response = client_for(sales_rep).get(list_url("levels"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "VIP" in page
    level = CustomerLevel.objects.get(name="VIP")
    assert create_url("levels") not in page and edit_url("levels", level.pk) not in page


def test_it_answers_404_for_an_unknown_kind(administrator, client_for):
    client = client_for(administrator)
    for url in ("/customers/settings/provinces/", "/customers/settings/users/new/", "/customers/settings/nope/1/"):
        assert client.get(url).status_code == 404, url
    assert client.post("/customers/settings/provinces/new/", {"name": "火星"}).status_code == 404
    assert not Province.objects.filter(name="火星").exists()


def test_it_answers_404_for_an_unknown_entry(administrator, client_for):
    assert client_for(administrator).get(edit_url("levels", 987654)).status_code == 404


def test_it_refuses_the_wrong_method(administrator, client_for):
    client = client_for(administrator)
    assert client.post(INDEX).status_code == 405
    assert client.post(list_url("levels")).status_code == 405
    assert client.put(create_url("levels")).status_code == 405
    assert client.delete(edit_url("levels", CustomerLevel.objects.first().pk)).status_code == 405
    assert CustomerLevel.objects.count() == 4


# --- The index -----------------------------------------------------------------------------------


def test_it_lists_every_kind_with_counts_and_the_provinces(administrator, client_for, django_assert_max_num_queries):
    client = english(client_for(administrator))
    with django_assert_max_num_queries(20):
        response = client.get(INDEX)
    assert response.status_code == 200
    page = response.content.decode()
    for kind in KINDS:
        assert list_url(kind) in page
    assert f"{CustomerLevel.objects.count()} entries" in page
    assert "北京市" in page and "新疆维吾尔自治区" in page and page.count("badge rounded-pill") == 34
    assert "/settings/provinces/" not in page


def test_it_shows_a_manager_the_settings_for_tags(manager, client_for):
    client = client_for(manager)
    assert client.get(INDEX).status_code == 200
    assert client.get(list_url("tags")).status_code == 200


# --- Lookups -------------------------------------------------------------------------------------


def test_it_adds_a_lookup_entry(administrator, client_for):
    response = client_for(administrator).post(
        create_url("sources"), {"name": "抖音直播", "sort_order": "9", "is_active": "on"}
    )
    assert response.status_code == 302 and response["Location"] == list_url("sources")
    source = CustomerSource.objects.get(name="抖音直播")
    assert source.sort_order == 9 and source.is_active


def test_it_deactivates_a_lookup_instead_of_deleting(administrator, sales_rep, client_for):
    level = CustomerLevel.objects.get(name="C")
    customer = CustomerFactory(owner=sales_rep, level=level)
    response = client_for(administrator).post(edit_url("levels", level.pk), {"name": "C", "sort_order": "3"})
    assert response.status_code == 302
    level.refresh_from_db()
    assert not level.is_active
    # No longer offered for new customers, kept by the customer who has it.
    new_form = client_for(sales_rep).get(reverse("customers:create")).content.decode()
    assert f'<option value="{level.pk}">C</option>' not in new_form
    edit_form = client_for(sales_rep).get(reverse("customers:edit", args=[customer.pk])).content.decode()
    assert f'<option value="{level.pk}" selected>C</option>' in edit_form


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": "", "sort_order": "0"}, "name", "This field is required."),
        ({"name": "长" * 65, "sort_order": "0"}, "name", "at most 64 characters"),
        ({"name": "制造业", "sort_order": "0"}, "name", "already exists"),
        ({"name": "ＩＴ", "sort_order": "-1"}, "sort_order", "greater than or equal to 0"),
        ({"name": "IT", "sort_order": "abc"}, "sort_order", "Enter a whole number."),
    ],
)
def test_it_rejects_bad_lookup_input(administrator, client_for, data, field, message):
    before = Industry.objects.count()
    response = english(client_for(administrator)).post(create_url("industries"), data)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert Industry.objects.count() == before


def test_it_folds_full_width_names(administrator, client_for):
    client_for(administrator).post(create_url("industries"), {"name": "ＩＴ服务", "sort_order": "0", "is_active": "on"})
    assert Industry.objects.filter(name="IT服务").exists()


def test_it_refuses_a_manager_the_other_lookups(manager, client_for):
    level = CustomerLevel.objects.get(name="VIP")
    client = client_for(manager)
    assert client.get(list_url("levels")).status_code == 200  # may view
    assert client.post(create_url("levels"), {"name": "S", "sort_order": 0}).status_code == 403
    assert client.post(edit_url("levels", level.pk), {"name": "VVIP", "sort_order": 0}).status_code == 403
    assert client.post(create_url("custom-fields"), field_data()).status_code == 403
    level.refresh_from_db()
    assert level.name == "VIP" and not CustomField.objects.exists()


# --- Tags ----------------------------------------------------------------------------------------


def test_it_lets_a_manager_add_rename_and_recolour_tags(manager, client_for):
    client = client_for(manager)
    page = client.get(create_url("tags")).content.decode()
    assert 'type="color"' in page
    assert client.post(create_url("tags"), {"name": "高价值", "color": "#DC2626"}).status_code == 302
    tag = Tag.objects.get(name="高价值")
    assert tag.color == "#dc2626"
    assert client.post(edit_url("tags", tag.pk), {"name": "重要客户", "color": "#16a34a"}).status_code == 302
    tag.refresh_from_db()
    assert (tag.name, tag.color) == ("重要客户", "#16a34a")
    listing = client.get(list_url("tags")).content.decode()
    assert 'fill="#16a34a"' in listing and "style=" not in listing


@pytest.mark.parametrize("color", ["red", "#12345", "#gggggg", "javascript:alert(1)", ""])
def test_it_refuses_a_bad_colour(administrator, client_for, color):
    response = english(client_for(administrator)).post(create_url("tags"), {"name": "坏颜色", "color": color})
    assert response.status_code == 200
    assert "color" in response.context["form"].errors
    assert not Tag.objects.exists()


# --- Custom fields -------------------------------------------------------------------------------


def test_it_creates_a_custom_field_with_a_lower_case_key(administrator, client_for, sales_rep):
    response = client_for(administrator).post(create_url("custom-fields"), field_data(key="WeChat_ID"))
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert field.key == "wechat_id" and field.label == "微信号"
    assert 'name="cf_wechat_id"' in client_for(sales_rep).get(reverse("customers:create")).content.decode()


def test_it_creates_a_choice_field_with_its_options(administrator, client_for):
    data = field_data(key="grade", field_type="choice", choices="金牌\n\n银牌\n金牌\n铜牌 ", required="on")
    assert client_for(administrator).post(create_url("custom-fields"), data).status_code == 302
    field = CustomField.objects.get()
    assert field.choice_list == ["金牌", "银牌", "铜牌"] and field.required


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"field_type": "choice", "choices": ""}, "choices", "A choice field needs at least one option."),
        ({"field_type": "choice", "choices": "\n \n"}, "choices", "A choice field needs at least one option."),
        ({"key": "1abc"}, "key", "Start with a lower-case letter"),
        ({"key": "has-dash"}, "key", "Start with a lower-case letter"),
        ({"key": "有中文"}, "key", "slug"),
        ({"key": ""}, "key", "This field is required."),
        ({"key": "k" * 33}, "key", "at most 32 characters"),
        ({"label": ""}, "label", "This field is required."),
        ({"field_type": "blob"}, "field_type", "Select a valid choice."),
    ],
)
def test_it_rejects_a_bad_custom_field(administrator, client_for, overrides, field, message):
    response = english(client_for(administrator)).post(create_url("custom-fields"), field_data(**overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not CustomField.objects.exists()


def test_it_refuses_a_key_that_is_taken(administrator, client_for):
    CustomField.objects.create(label="微信", key="wechat")
    response = client_for(administrator).post(create_url("custom-fields"), field_data(key="WECHAT"))
    assert response.status_code == 200 and "key" in response.context["form"].errors
    assert CustomField.objects.count() == 1


def test_it_keeps_the_key_of_an_existing_custom_field(administrator, client_for):
    field = CustomField.objects.create(label="微信", key="wechat")
    url = edit_url("custom-fields", field.pk)
    page = client_for(administrator).get(url).content.decode()
    assert 'name="key"' in page and "disabled" in page.split('name="key"')[1].split(">")[0]
    response = client_for(administrator).post(url, field_data(label="微信号码", key="hacked", is_active=""))
    assert response.status_code == 302
    field.refresh_from_db()
    assert (field.label, field.key, field.is_active) == ("微信号码", "wechat", False)
