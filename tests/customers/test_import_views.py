"""The import pages: who may use them, the upload → check → confirm flow, and bad files."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from customers.models import Customer, ImportJob
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "客户名称,手机,邮箱,所在省份,客户级别,备注\n"
GOOD = "张伟,13812345678,zhang.wei@example.com,广东,A,展会\n李娜,13912345678,,广东省,B,\n"
BAD = "王芳,12345,not-an-email,火星,,\n"


def csv_upload(text: str, name: str = "客户.csv", encoding: str = "utf-8-sig") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


def upload(client, text: str = HEADER + GOOD, **data):
    payload = {"file": csv_upload(text), "on_duplicate": "skip", **data}
    return client.post(reverse("customers:import"), payload)


def last_job() -> ImportJob:
    return ImportJob.objects.order_by("-pk").first()


# --- who may ---------------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_log_in(client):
    for name in ("customers:import", "customers:import_jobs", "customers:import_template"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("cast", ["service_agent", "analyst", "portal_customer", "roleless_user"])
def test_it_refuses_roles_without_the_import_permission(request, client_for, cast):
    client = client_for(request.getfixturevalue(cast))
    assert client.get(reverse("customers:import")).status_code == 403
    assert upload(client).status_code == 403
    assert not ImportJob.objects.exists()


def test_it_offers_the_owner_choice_only_to_those_who_may_assign_owners(client_for, sales_rep, manager):
    assert 'name="owner"' not in client_for(sales_rep).get(reverse("customers:import")).content.decode()
    assert 'name="owner"' in client_for(manager).get(reverse("customers:import")).content.decode()


def test_it_keeps_a_sales_rep_as_the_owner_even_if_the_post_names_another(client_for, sales_rep, other_sales_rep):
    client = client_for(sales_rep)
    upload(client, owner=other_sales_rep.pk)
    job = last_job()
    assert job.owner == sales_rep
    client.post(reverse("customers:import_confirm", args=[job.pk]))
    assert set(Customer.objects.values_list("owner", flat=True)) == {sales_rep.pk}


def test_it_hides_one_users_import_from_another(client_for, sales_rep, other_sales_rep):
    upload(client_for(sales_rep))
    job = last_job()
    other = client_for(other_sales_rep)
    for name in ("customers:import_job", "customers:import_job_status", "customers:import_errors"):
        assert other.get(reverse(name, args=[job.pk])).status_code == 404
    assert other.post(reverse("customers:import_confirm", args=[job.pk])).status_code == 404
    assert other.post(reverse("customers:import_cancel", args=[job.pk])).status_code == 404
    assert not Customer.objects.exists()


def test_it_refuses_confirming_with_get(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client)
    assert client.get(reverse("customers:import_confirm", args=[last_job().pk])).status_code == 405
    assert not Customer.objects.exists()


# --- the flow --------------------------------------------------------------------------------


def test_it_checks_first_and_imports_only_when_confirmed(client_for, manager, sales_rep):
    client = client_for(manager)
    response = upload(client, text=HEADER + GOOD + BAD, owner=sales_rep.pk)
    job = last_job()
    assert response.status_code == 302 and response["Location"] == reverse("customers:import_job", args=[job.pk])
    assert not Customer.objects.exists()  # the dry run writes no customer

    with translation.override("en"):
        page = client.get(reverse("customers:import_job", args=[job.pk])).content.decode()
    assert job.status == ImportJob.Status.CHECKED
    assert (job.to_create, job.rejected) == (2, 1)
    assert 'data-testid="count-create">2<' in page
    assert 'data-testid="count-rejected">1<' in page
    assert "UTF-8" in page  # the encoding that was detected
    assert '<td class="ps-3">4</td>' in page  # the rejected row's line as Excel numbers it

    client.post(reverse("customers:import_confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.created == 2
    names = set(Customer.objects.values_list("name", flat=True))
    assert names == {"张伟", "李娜"}
    assert set(Customer.objects.values_list("owner", flat=True)) == {sales_rep.pk}
    assert Customer.objects.get(name="张伟").mobile == "+8613812345678"


def test_it_does_not_import_twice_when_confirmed_twice(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client)
    job = last_job()
    client.post(reverse("customers:import_confirm", args=[job.pk]))
    response = client.post(reverse("customers:import_confirm", args=[job.pk]), follow=True)
    assert response.status_code == 200
    assert Customer.objects.count() == 2


def test_it_skips_customers_already_in_the_archive(client_for, sales_rep):
    CustomerFactory(name="张伟", mobile="+8613812345678", owner=sales_rep)
    client = client_for(sales_rep)
    upload(client)
    job = last_job()
    assert (job.to_create, job.to_skip) == (1, 1)
    page = client.get(reverse("customers:import_job", args=[job.pk])).content.decode()
    assert 'data-testid="import-duplicates"' in page


def test_it_cancels_a_checked_import_without_writing(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client)
    job = last_job()
    response = client.post(reverse("customers:import_cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CANCELLED
    assert client.post(reverse("customers:import_confirm", args=[job.pk])).status_code == 302
    assert not Customer.objects.exists()


def test_it_serves_the_error_file_with_the_original_rows_and_reasons(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client, text=HEADER + GOOD + BAD)
    job = last_job()
    response = client.get(reverse("customers:import_errors", args=[job.pk]) + "?format=csv")
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("客户名称,手机")
    assert len(lines) == 2 and lines[1].startswith("王芳,12345")


def test_it_answers_a_bad_format_with_400(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client, text=HEADER + BAD)
    job = last_job()
    assert client.get(reverse("customers:import_errors", args=[job.pk]) + "?format=pdf").status_code == 400
    assert client.get(reverse("customers:import_template") + "?format=exe").status_code == 400


def test_it_reports_the_progress_partial_and_asks_for_a_reload_when_the_job_stops(client_for, sales_rep):
    client = client_for(sales_rep)
    upload(client)
    response = client.get(reverse("customers:import_job_status", args=[last_job().pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"  # the check finished inline


def test_it_serves_a_template_with_the_exact_headers(client_for, sales_rep):
    response = client_for(sales_rep).get(reverse("customers:import_template") + "?format=xlsx")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    headers = [cell.value for cell in sheet[1]]
    assert headers[:3] == ["客户名称", "个人/企业", "所在单位"]
    assert sheet.max_row == 2  # the headers and one example row


# --- bad files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "fragment"),
    [
        (b"", "empty.csv", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "customers.csv", "not"),
        (HEADER.encode("utf-8"), "header-only.csv", "no data"),
        ("手机,邮箱\n13812345678,a@example.com\n".encode(), "no-name.csv", "客户名称"),
    ],
)
def test_it_refuses_bad_files_with_a_message_and_writes_nothing(client_for, sales_rep, content, name, fragment):
    client = client_for(sales_rep)
    with translation.override("en"):
        response = client.post(
            reverse("customers:import"),
            {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "on_duplicate": "skip"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 400
    page = response.content.decode()
    assert "invalid-feedback" in page
    assert fragment.lower() in page.lower()
    assert not ImportJob.objects.exists()
    assert not Customer.objects.exists()


@override_settings(IMPORT_MAX_UPLOAD_MB=1)
def test_it_refuses_a_file_over_the_size_limit(client_for, sales_rep):
    big = HEADER + "张伟,13812345678,,,,\n" * 60_000
    response = upload(client_for(sales_rep), text=big)
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_it_refuses_an_unknown_duplicate_policy(client_for, sales_rep):
    response = upload(client_for(sales_rep), on_duplicate="explode")
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_it_lists_the_users_own_imports(client_for, sales_rep, other_sales_rep):
    upload(client_for(sales_rep), text=HEADER + GOOD)
    page = client_for(other_sales_rep).get(reverse("customers:import_jobs")).content.decode()
    assert "客户.csv" not in page
    page = client_for(sales_rep).get(reverse("customers:import_jobs")).content.decode()
    assert "客户.csv" in page


def test_it_offers_the_import_from_the_list_and_menu_only_to_those_who_may_import(client_for, sales_rep, service_agent):
    page = client_for(sales_rep).get(reverse("customers:list")).content.decode()
    assert 'data-testid="action-import"' in page and reverse("customers:import") in page
    page = client_for(service_agent).get(reverse("customers:list")).content.decode()
    assert 'data-testid="action-import"' not in page and reverse("customers:import") not in page


def test_it_names_what_happens_to_each_duplicate_in_words(client_for, sales_rep):
    CustomerFactory(name="张伟", mobile="+8613812345678", owner=sales_rep)
    client = client_for(sales_rep)
    upload(client)
    page = client.get(reverse("customers:import_job", args=[last_job().pk]), HTTP_ACCEPT_LANGUAGE="en")
    table = page.content.decode().split('data-testid="import-duplicates"')[1]
    assert "<td>Skipped</td>" in table and "<td>skip</td>" not in table


def test_it_lights_only_the_import_entry_of_the_menu_on_the_import_page(client_for, sales_rep):
    response = client_for(sales_rep).get(reverse("customers:import"))
    active = [item["url"] for item in response.context["nav_items"] if item["active"]]
    assert active == [reverse("customers:import")]
