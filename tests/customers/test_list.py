"""The customer list, its search, filters and keyset pages; the phone book; the access log."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import Department, Employee
from cims.pagination import CappedCount, KeysetPaginator, capped_count
from customers import services, views
from customers.models import Customer, CustomerLevel, CustomField, Province
from tests.customers.factories import ContactFactory, CustomerFactory, TagFactory

LIST = reverse("customers:list")
PHONEBOOK = reverse("customers:phonebook")
ACCESS_LOG = reverse("customers:access_log")


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def listed(response) -> list[str]:
    assert response.status_code == 200
    return [customer.code for customer in response.context["page"].object_list]


def listed_names(response) -> list[str]:
    assert response.status_code == 200
    return [customer.name for customer in response.context["page"].object_list]


# --- Who may enter --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, PHONEBOOK, ACCESS_LOG])
def test_it_redirects_anonymous_users_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", [LIST, PHONEBOOK, ACCESS_LOG])
@pytest.mark.parametrize("role", ["analyst", "customer"])
def test_it_refuses_analysts_and_portal_customers(cast, client_for, role, url):
    CustomerFactory(owner=cast["sales"])
    assert client_for(cast[role]).get(url).status_code == 403


def test_it_refuses_the_access_log_to_sales_and_service(sales_rep, service_agent, client_for):
    assert client_for(sales_rep).get(ACCESS_LOG).status_code == 403
    assert client_for(service_agent).get(ACCESS_LOG).status_code == 403


@pytest.mark.parametrize("url", [LIST, PHONEBOOK, ACCESS_LOG])
def test_it_answers_405_to_a_post(manager, client_for, url):
    assert client_for(manager).post(url).status_code == 405


# --- Who sees which customers ---------------------------------------------------------------------


def test_it_shows_a_sales_rep_only_their_own_customers(sales_rep, other_sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    codes = listed(client_for(sales_rep).get(LIST))
    assert mine.code in codes and theirs.code not in codes


def test_it_shows_a_sales_rep_customers_shared_with_them(sales_rep, other_sales_rep, client_for):
    shared = CustomerFactory(owner=other_sales_rep)
    services.customer_share(customer=shared, user=sales_rep, by=other_sales_rep)
    not_shared = CustomerFactory(owner=other_sales_rep)
    codes = listed(client_for(sales_rep).get(LIST))
    assert shared.code in codes and not_shared.code not in codes


def test_it_shows_a_department_head_the_customers_of_their_department(sales_rep, other_sales_rep, client_for):
    department = Department.objects.create(name="销售一部", head=sales_rep)
    Employee.objects.create(name="王销售", department=department, user=other_sales_rep)
    theirs = CustomerFactory(owner=other_sales_rep)
    assert theirs.code in listed(client_for(sales_rep).get(LIST))
    # …but the member does not see the head's customers.
    heads = CustomerFactory(owner=sales_rep)
    assert heads.code not in listed(client_for(other_sales_rep).get(LIST))


def test_it_does_not_let_a_model_wide_view_permission_widen_a_sales_reps_scope(sales_rep, other_sales_rep, client_for):
    # guardian's global-permission shortcut: holding customers.view_customer directly (not only
    # through the sales group) must not show every customer.
    sales_rep.user_permissions.add(
        Permission.objects.get(content_type__app_label="customers", codename="view_customer"),
        Permission.objects.get(content_type__app_label="customers", codename="change_customer"),
    )
    theirs = CustomerFactory(owner=other_sales_rep)
    client = client_for(sales_rep)
    assert theirs.code not in listed(client.get(LIST))
    assert client.get(reverse("customers:detail", args=[theirs.pk])).status_code == 404


def test_it_shows_service_staff_every_customer_with_the_mobile_masked(sales_rep, service_agent, client_for):
    customer = CustomerFactory(owner=sales_rep, mobile="+8613812345678")
    response = client_for(service_agent).get(LIST)
    assert customer.code in listed(response)
    page = response.content.decode()
    assert "138****5678" in page
    assert "13812345678" not in page and "138 1234 5678" not in page


def test_it_shows_the_owner_the_whole_mobile(sales_rep, client_for):
    CustomerFactory(owner=sales_rep, mobile="+8613812345678")
    page = client_for(sales_rep).get(LIST).content.decode()
    assert "138 1234 5678" in page and "138****5678" not in page


def test_it_shows_a_manager_every_customer_and_the_owner_filter(manager, sales_rep, other_sales_rep, client_for):
    first, second = CustomerFactory(owner=sales_rep), CustomerFactory(owner=other_sales_rep)
    client = client_for(manager)
    response = client.get(LIST)
    assert {first.code, second.code} <= set(listed(response))
    assert "owner" in response.context["form"].fields
    assert listed(client.get(LIST, {"owner": other_sales_rep.pk})) == [second.code]


def test_it_offers_no_owner_filter_to_sales_reps(sales_rep, other_sales_rep, client_for):
    mine = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).get(LIST, {"owner": other_sales_rep.pk})
    assert "owner" not in response.context["form"].fields
    assert listed(response) == [mine.code]  # the parameter is ignored, not an error


def test_it_leaves_deleted_customers_out(manager, client_for):
    gone = CustomerFactory(owner=manager)
    services.customer_soft_delete(customer=gone, by=manager)
    assert gone.code not in listed(client_for(manager).get(LIST))


# --- Search -------------------------------------------------------------------------------------


def test_it_finds_a_customer_by_exact_phone_typed_with_spaces(sales_rep, client_for):
    wanted = CustomerFactory(owner=sales_rep, mobile="+8613800138000")
    CustomerFactory(owner=sales_rep, mobile="+8613800138001")
    assert listed(client_for(sales_rep).get(LIST, {"q": "138 0013 8000"})) == [wanted.code]


def test_it_finds_a_customer_by_exact_email_in_any_case(sales_rep, client_for):
    wanted = CustomerFactory(owner=sales_rep, email="zhang.wei@example.com")
    assert listed(client_for(sales_rep).get(LIST, {"q": " Zhang.Wei@Example.COM "})) == [wanted.code]


def test_it_does_not_find_another_reps_customer_by_phone(sales_rep, other_sales_rep, client_for):
    CustomerFactory(owner=other_sales_rep, mobile="+8613800138000")
    assert listed(client_for(sales_rep).get(LIST, {"q": "13800138000"})) == []


def test_it_finds_a_two_character_chinese_name_by_substring(sales_rep, client_for):
    wang_wei = CustomerFactory(owner=sales_rep, name="王伟")
    wang_wei_ming = CustomerFactory(owner=sales_rep, name="王伟明")
    CustomerFactory(owner=sales_rep, name="王小伟")
    CustomerFactory(owner=sales_rep, name="李伟")
    assert set(listed(client_for(sales_rep).get(LIST, {"q": "王伟"}))) == {wang_wei.code, wang_wei_ming.code}


def test_it_finds_a_customer_by_company_name(sales_rep, client_for):
    wanted = CustomerFactory(owner=sales_rep, name="张三", company="杭州云起科技有限公司")
    CustomerFactory(owner=sales_rep, name="李四", company="上海某公司")
    assert listed(client_for(sales_rep).get(LIST, {"q": "云起"})) == [wanted.code]


def test_it_finds_a_customer_by_exact_code_in_lower_case(sales_rep, client_for):
    wanted = CustomerFactory(owner=sales_rep)
    CustomerFactory(owner=sales_rep)
    assert listed(client_for(sales_rep).get(LIST, {"q": wanted.code.lower()})) == [wanted.code]


# --- Filters ------------------------------------------------------------------------------------


def test_it_filters_by_status_level_province_tag_and_kind(manager, client_for):
    level = CustomerLevel.objects.get(name="VIP")
    province = Province.objects.get(short_name="浙江")
    tag = TagFactory(name="高价值")
    wanted = CustomerFactory(
        status=Customer.Status.WON, level=level, province=province, kind=Customer.ENTERPRISE, name="目标"
    )
    wanted.tags.add(tag)
    CustomerFactory(status=Customer.Status.WON, level=level, province=province)
    CustomerFactory(status=Customer.Status.LOST, level=level, province=province, kind=Customer.ENTERPRISE)
    client = client_for(manager)
    params = {"status": "won", "level": level.pk, "province": province.pk, "tag": tag.pk, "kind": "enterprise"}
    assert listed(client.get(LIST, params)) == [wanted.code]
    assert len(listed(client.get(LIST, {"status": "won"}))) == 2


def test_it_filters_by_created_date_range_in_local_days(manager, client_for):
    tz = timezone.get_current_timezone()
    inside = CustomerFactory(created_at=datetime.datetime(2026, 3, 10, 23, 30, tzinfo=tz))
    CustomerFactory(created_at=datetime.datetime(2026, 3, 11, 0, 30, tzinfo=tz))
    CustomerFactory(created_at=datetime.datetime(2026, 3, 8, 12, 0, tzinfo=tz))
    response = client_for(manager).get(LIST, {"created_from": "2026-03-09", "created_to": "2026-03-10"})
    assert listed(response) == [inside.code]


def test_it_filters_by_custom_fields_of_each_type(manager, client_for):
    CustomField.objects.create(label="区域", key="region", field_type=CustomField.TEXT)
    CustomField.objects.create(label="员工数", key="staff", field_type=CustomField.NUMBER)
    CustomField.objects.create(label="签约日", key="signed", field_type=CustomField.DATE)
    CustomField.objects.create(label="渠道", key="channel", field_type=CustomField.CHOICE, choices="直销\n代理")
    CustomField.objects.create(label="停用", key="retired", field_type=CustomField.TEXT, is_active=False)
    wanted = CustomerFactory(
        custom_data={"region": "华东大区", "staff": 120, "signed": "2026-01-05", "channel": "代理"}
    )
    north = CustomerFactory(
        custom_data={"region": "华北大区", "staff": "120", "signed": "2026-01-05", "channel": "代理"}
    )
    small = CustomerFactory(custom_data={"region": "华东大区", "staff": 80, "signed": "2026-02-01", "channel": "直销"})
    CustomerFactory(custom_data={})
    client = client_for(manager)
    assert set(listed(client.get(LIST, {"cf_region": "华东"}))) == {wanted.code, small.code}
    assert listed(client.get(LIST, {"cf_region": "华东", "cf_staff": "120"})) == [wanted.code]
    # A number stored as text matches too.
    assert set(listed(client.get(LIST, {"cf_staff": "120.0"}))) == {wanted.code, north.code}
    assert listed(client.get(LIST, {"cf_signed": "2026-02-01"})) == [small.code]
    assert set(listed(client.get(LIST, {"cf_channel": "代理"}))) == {wanted.code, north.code}
    # An inactive custom field is no filter.
    assert "cf_retired" not in client.get(LIST).context["form"].fields


@pytest.mark.parametrize(
    "params",
    [
        {"status": "nonsense"},
        {"level": "abc"},
        {"level": "99999999999999999999999"},
        {"province": "-1"},
        {"tag": "1 OR 1=1"},
        {"owner": "x"},
        {"kind": "robot"},
        {"created_from": "not-a-date", "created_to": "2026-02-30"},
        {"created_from": "2026-05-01", "created_to": "2026-04-01"},
        {"created_to": "9999-12-31"},
        {"created_from": "0001-01-01"},
        {"sort": "password"},
        {"per_page": "1000000"},
        {"after": "'; DROP TABLE customers_customer; --"},
        {"before": "x" * 5000},
        {"sort": "name", "after": "forged:token"},
        {"after": "99999999999999999999999999"},
        {"q": "王" * 500},
        {"cf_staff": "many", "cf_signed": "yesterday", "cf_channel": "不存在"},
    ],
)
def test_it_ignores_garbage_filter_values_without_a_500(manager, client_for, params):
    CustomField.objects.create(label="员工数", key="staff", field_type=CustomField.NUMBER)
    CustomField.objects.create(label="签约日", key="signed", field_type=CustomField.DATE)
    CustomField.objects.create(label="渠道", key="channel", field_type=CustomField.CHOICE, choices="直销\n代理")
    customer = CustomerFactory()
    response = client_for(manager).get(LIST, params)
    assert response.status_code == 200
    form = response.context["form"]
    if not any(key in params for key in ("after", "before")):
        assert form.errors  # shown to the user …
        assert 'data-testid="filter-errors"' in response.content.decode()
    assert customer.code in listed(response)  # … and the bad filter is ignored


def test_it_keeps_the_valid_filters_when_another_is_bad(manager, client_for):
    won = CustomerFactory(status=Customer.Status.WON)
    CustomerFactory(status=Customer.Status.LOST)
    response = client_for(manager).get(LIST, {"status": "won", "level": "abc"})
    assert listed(response) == [won.code]
    assert "level" in response.context["form"].errors


def test_it_answers_an_htmx_request_with_the_table_only(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).get(LIST, {"q": customer.name}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and customer.code in body
    assert "<html" not in body and 'data-testid="customer-table"' in body
    assert "HX-Request" in response["Vary"]


def test_it_renders_the_filter_form_for_htmx_with_the_table_as_target(sales_rep, client_for):
    body = client_for(sales_rep).get(LIST).content.decode()
    assert 'hx-get="/customers/"' in body and 'hx-target="#customer-table"' in body and 'hx-push-url="true"' in body
    assert "style=" not in body and "<script>" not in body


def test_it_shows_tags_as_palette_badges_without_inline_styles(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    customer.tags.add(TagFactory(name="红色", color="#dc2626"), TagFactory(name="绿色", color="#16a34a"))
    body = client_for(sales_rep).get(LIST).content.decode()
    assert 'text-bg-danger me-1" data-color="#dc2626">红色' in body
    assert 'text-bg-success me-1" data-color="#16a34a">绿色' in body
    assert "style=" not in body


# --- Sorting and keyset pages ---------------------------------------------------------------------


def _follow(client, response, rel):
    links = {"next": response.context["next_query"], "previous": response.context["previous_query"]}
    assert links[rel], f"no {rel} link"
    return client.get(f"{LIST}?{links[rel]}")


def test_it_pages_forward_and_back_by_id_cursor(manager, client_for, monkeypatch):
    monkeypatch.setattr(views, "PER_PAGE", 3)
    customers = [CustomerFactory() for _ in range(7)]
    newest_first = [c.code for c in reversed(customers)]
    client = client_for(manager)
    first = client.get(LIST)
    assert listed(first) == newest_first[:3]
    assert not first.context["previous_query"]
    assert first.context["next_query"] == f"after={customers[4].pk}"
    assert not first.context["show_first"]
    second = _follow(client, first, "next")
    assert listed(second) == newest_first[3:6]
    assert second.context["show_first"] and 'data-testid="page-first"' in second.content.decode()
    third = _follow(client, second, "next")
    assert listed(third) == newest_first[6:]
    assert not third.context["next_query"]
    back = _follow(client, third, "previous")
    assert listed(back) == newest_first[3:6]
    assert listed(_follow(client, back, "previous")) == newest_first[:3]


def test_it_pages_forward_and_back_by_a_signed_cursor_on_another_sort_key(manager, client_for, monkeypatch):
    monkeypatch.setattr(views, "PER_PAGE", 2)
    names = ["周", "吴", "郑", "王", "冯", "陈", "王"]  # a repeated name: ties broken by id
    for name in names:
        CustomerFactory(name=name)
    expected = [c.name for c in Customer.objects.order_by("name", "pk")]
    client = client_for(manager)
    seen, response = [], client.get(LIST, {"sort": "name", "status": ""})
    seen += listed_names(response)
    pages = [listed_names(response)]
    while response.context["next_query"]:
        assert "after=" in response.context["next_query"] and "sort=name" in response.context["next_query"]
        response = _follow(client, response, "next")
        seen += listed_names(response)
        pages.append(listed_names(response))
    assert seen == expected
    # And all the way back.
    for page in reversed(pages[:-1]):
        response = _follow(client, response, "previous")
        assert listed_names(response) == page


def test_it_ignores_a_cursor_signed_for_another_sort_key(manager, client_for):
    customers = [CustomerFactory() for _ in range(3)]
    paginator = KeysetPaginator(Customer.objects.all(), key="code", descending=False)
    token = paginator.encode(customers[0])
    response = client_for(manager).get(LIST, {"sort": "name", "after": token})
    assert len(listed(response)) == 3  # not decoded: the first page


def test_it_sorts_only_by_whitelisted_keys(manager, client_for):
    older, newer = CustomerFactory(name="B"), CustomerFactory(name="A")
    client = client_for(manager)
    assert listed(client.get(LIST)) == [newer.code, older.code]
    assert listed(client.get(LIST, {"sort": "id"})) == [older.code, newer.code]
    assert listed(client.get(LIST, {"sort": "name"})) == [newer.code, older.code]
    assert listed(client.get(LIST, {"sort": "mobile"})) == [newer.code, older.code]  # refused: default order


# --- Counting -----------------------------------------------------------------------------------


def test_capped_count_is_exact_up_to_the_cap_and_capped_beyond(db):
    for _ in range(5):
        CustomerFactory()
    assert capped_count(Customer.objects.all(), cap=10) == CappedCount(value=5, capped=False, cap=10)
    assert capped_count(Customer.objects.all(), cap=5).display == "5"
    over = capped_count(Customer.objects.all(), cap=3)
    assert over.capped and over.value == 3 and over.display == "3+"
    assert str(capped_count(Customer.objects.none(), cap=10_000)) == "0"
    assert CappedCount(value=10_000, capped=True, cap=10_000).display == "10,000+"


def test_it_shows_the_count_with_a_plus_beyond_the_cap(manager, client_for, monkeypatch):
    monkeypatch.setattr(views, "COUNT_CAP", 3)
    for _ in range(5):
        CustomerFactory()
    body = english(client_for(manager)).get(LIST).content.decode()
    assert "3+ records" in body


def test_it_shows_the_exact_count_below_the_cap(manager, client_for):
    for _ in range(2):
        CustomerFactory()
    body = english(client_for(manager)).get(LIST).content.decode()
    assert "2 records" in body


# --- Query budget -------------------------------------------------------------------------------


def _populate(owner, count):
    level, province = CustomerLevel.objects.first(), Province.objects.first()
    tags = [TagFactory(), TagFactory()]
    for _ in range(count):
        customer = CustomerFactory(owner=owner, level=level, province=province)
        customer.tags.add(*tags)


@pytest.mark.parametrize("role", ["manager", "sales", "service"])
def test_it_lists_30_customers_within_the_query_budget(cast, client_for, django_assert_max_num_queries, role):
    CustomField.objects.create(label="区域", key="region", field_type=CustomField.TEXT)
    _populate(cast["sales"], 30)
    client = client_for(cast[role])
    with django_assert_max_num_queries(15):
        response = client.get(LIST)
    assert len(listed(response)) == 30


def test_it_uses_as_many_queries_for_3_customers_as_for_30(manager, client_for, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _populate(manager, 3)
    client = client_for(manager)
    client.get(LIST)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(LIST, {"status": "prospect"})
    _populate(manager, 27)
    with CaptureQueriesContext(connection) as many:
        client.get(LIST, {"status": "prospect"})
    assert len(many) == len(few)


def test_it_decrypts_only_the_mobile_for_a_list_row(manager, client_for, monkeypatch):
    from cims import crypto

    CustomerFactory(
        mobile="+8613812345678", phone="+861088886666", id_number="11010519491231002X", address="北京市朝阳区某路1号"
    )
    decrypted = []
    real = crypto.decrypt

    def spy(token, *, aad):
        decrypted.append(aad)
        return real(token, aad=aad)

    monkeypatch.setattr(crypto, "decrypt", spy)
    client_for(manager).get(LIST)
    assert decrypted and set(decrypted) == {"customers.Customer.mobile"}


# --- Phone book ---------------------------------------------------------------------------------


def test_it_lists_contacts_of_the_reps_customers_only(sales_rep, other_sales_rep, client_for):
    mine = ContactFactory(customer=CustomerFactory(owner=sales_rep), name="赵敏")
    theirs = ContactFactory(customer=CustomerFactory(owner=other_sales_rep), name="周芷若")
    names = [c.name for c in client_for(sales_rep).get(PHONEBOOK).context["page"].object_list]
    assert mine.name in names and theirs.name not in names


def test_it_masks_phone_book_numbers_for_service_staff(service_agent, sales_rep, client_for):
    ContactFactory(customer=CustomerFactory(owner=sales_rep), phone="+8613912345678")
    body = client_for(service_agent).get(PHONEBOOK).content.decode()
    assert "139****5678" in body and "13912345678" not in body and "139 1234 5678" not in body


def test_it_searches_the_phone_book_by_exact_phone_and_by_name(sales_rep, client_for):
    customer = CustomerFactory(owner=sales_rep)
    wanted = ContactFactory(customer=customer, name="黄蓉", phone="+8613911112222")
    ContactFactory(customer=customer, name="郭靖", phone="+8613911112223")
    client = client_for(sales_rep)
    by_phone = client.get(PHONEBOOK, {"q": "139-1111-2222"}).context["page"].object_list
    assert [c.pk for c in by_phone] == [wanted.pk]
    by_name = client.get(PHONEBOOK, {"q": "黄"}).context["page"].object_list
    assert [c.pk for c in by_name] == [wanted.pk]


def test_it_leaves_contacts_of_deleted_customers_out_of_the_phone_book(manager, client_for):
    contact = ContactFactory(customer=CustomerFactory(owner=manager))
    services.customer_soft_delete(customer=contact.customer, by=manager)
    assert list(client_for(manager).get(PHONEBOOK).context["page"].object_list) == []


def test_it_pages_the_phone_book_in_a_constant_number_of_queries(
    manager, client_for, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(views, "PER_PAGE", 5)
    for _ in range(4):
        customer = CustomerFactory()
        for _ in range(3):
            ContactFactory(customer=customer)
    client = client_for(manager)
    with django_assert_max_num_queries(12):
        first = client.get(PHONEBOOK)
    assert len(first.context["page"].object_list) == 5
    with django_assert_max_num_queries(12):
        second = client.get(f"{PHONEBOOK}?{first.context['next_query']}")
    assert not {c.pk for c in first.context["page"]} & {c.pk for c in second.context["page"]}


def test_it_survives_garbage_phone_book_input(manager, client_for):
    response = client_for(manager).get(PHONEBOOK, {"q": "x" * 1000, "after": "%%%", "before": "-1"})
    assert response.status_code == 200


# --- Access log ---------------------------------------------------------------------------------
# The access log moved to /audit/access-log/ (tests/cims/test_audit_views.py); the old address redirects.


def test_it_redirects_the_old_access_log_address_to_the_audit_page(manager, client_for):
    response = client_for(manager).get(ACCESS_LOG, {"action": "reveal"})
    assert response.status_code == 301 and response["Location"] == reverse("audit:access_log") + "?action=reveal"
