"""What an integration writes through the API is what people then find in the UI, with its history."""

from __future__ import annotations

from django.urls import reverse

from customers.models import Customer


def test_it_shows_a_customer_created_through_the_api_in_the_ui(api_for, sales_rep, manager, client_for):
    api, token = api_for(sales_rep, name="erp-sync")
    response = api.post(
        reverse("api:customer-list"), {"name": "接口客户", "kind": "individual", "mobile": "139 2000 3000"}
    )
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(pk=response.json()["id"])
    assert customer.owner == sales_rep

    browser = client_for(manager)
    page = browser.get(reverse("customers:detail", args=[customer.pk]))
    assert page.status_code == 200
    assert customer.code in page.content.decode() and "接口客户" in page.content.decode()

    history = browser.get(reverse("customers:history", args=[customer.pk]))
    assert history.status_code == 200
    text = history.content.decode()
    assert "API: erp-sync" in text
    assert sales_rep.name in text  # the token's service user is who did it
    record = customer.history.get()
    assert (record.history_user, record.history_change_reason) == (sales_rep, "API: erp-sync")


def test_it_shows_an_api_edit_in_the_ui_history(api_for, sales_rep, manager, client_for):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(owner=sales_rep, name="旧名字")
    api, _token = api_for(sales_rep, name="crm-bridge")
    response = api.patch(reverse("api:customer-detail", args=[customer.pk]), {"name": "新名字"})
    assert response.status_code == 200, response.json()

    history = client_for(manager).get(reverse("customers:history", args=[customer.pk]))
    text = history.content.decode()
    assert "API: crm-bridge" in text
    assert "新名字" in text
