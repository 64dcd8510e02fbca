"""Consents (同意记录): entries only added, the newest per purpose current, a separate consent for
sensitive data, the Consents tab of the 360 page, and campaigns leaving out a withdrawn customer."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from customers import privacy
from customers.models import Consent
from followups import campaigns
from followups.models import CampaignMember
from tests.customers.factories import CustomerFactory
from tests.followups.factories import CampaignFactory

pytestmark = pytest.mark.django_db

Purpose, Channel = Consent.Purpose, Consent.Channel


def _url(customer) -> str:
    return reverse("customers:consents", args=[customer.pk])


def _record(customer, purpose=Purpose.MARKETING, granted=True, when=None, by=None):
    consent = privacy.consent_record(customer=customer, purpose=purpose, granted=granted, channel=Channel.PAPER, by=by)
    if when is not None:
        Consent.objects.filter(pk=consent.pk).update(recorded_at=when)
    return consent


# --- Services ---------------------------------------------------------------------------------------


def test_it_records_an_entry_with_the_current_notice_version(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    with override_settings(PRIVACY_NOTICE_VERSION="2026-03"):
        consent = privacy.consent_record(
            customer=customer, purpose=Purpose.SERVICE, granted=True, channel=Channel.PHONE, by=sales_rep
        )
    assert (consent.version, consent.channel, consent.recorded_by) == ("2026-03", "phone", sales_rep)
    other = privacy.consent_record(
        customer=customer, purpose=Purpose.SERVICE, granted=True, channel=Channel.PHONE, by=sales_rep, version="v9"
    )
    assert other.version == "v9"


def test_it_takes_the_newest_entry_per_purpose_as_current(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    now = timezone.now()
    _record(customer, Purpose.MARKETING, True, when=now - datetime.timedelta(days=2))
    withdrawn = _record(customer, Purpose.MARKETING, False, when=now - datetime.timedelta(days=1))
    service = _record(customer, Purpose.SERVICE, True)
    current = privacy.current_consents(customer)
    assert current == {"service": service, "marketing": withdrawn, "sensitive": None}
    assert privacy.has_consent(customer, Purpose.SERVICE)
    assert not privacy.has_consent(customer, Purpose.MARKETING)
    assert not privacy.has_consent(customer, Purpose.SENSITIVE)  # never recorded: no consent


def test_it_breaks_a_tie_in_time_by_the_later_entry(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    moment = timezone.now()
    _record(customer, Purpose.MARKETING, False, when=moment)
    _record(customer, Purpose.MARKETING, True, when=moment)
    assert privacy.has_consent(customer, Purpose.MARKETING)
    assert privacy.current_consents(customer)["marketing"].granted


def test_it_refuses_an_unknown_purpose_or_channel(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    with pytest.raises(ValidationError):
        privacy.consent_record(customer=customer, purpose="spam", granted=True, channel=Channel.PAPER, by=sales_rep)
    with pytest.raises(ValidationError):
        privacy.consent_record(customer=customer, purpose=Purpose.SERVICE, granted=True, channel="fax", by=sales_rep)
    assert not Consent.objects.exists()


def test_it_asks_for_a_separate_sensitive_consent_when_an_id_number_is_on_record(sales_rep):
    plain = CustomerFactory(owner=sales_rep)
    sensitive = CustomerFactory(owner=sales_rep, id_number="11010519491231002X")
    banked = CustomerFactory(owner=sales_rep, bank_account="6222020200112233445")
    assert not privacy.needs_sensitive_consent(plain)
    assert privacy.needs_sensitive_consent(sensitive) and privacy.needs_sensitive_consent(banked)
    _record(sensitive, Purpose.SERVICE, True)  # consent to the service is not consent to sensitive data
    assert privacy.needs_sensitive_consent(sensitive)
    _record(sensitive, Purpose.SENSITIVE, True)
    assert not privacy.needs_sensitive_consent(sensitive)


# --- Campaign targets ---------------------------------------------------------------------------------


def test_it_leaves_a_customer_who_withdrew_marketing_consent_out_of_campaign_targets(manager):
    campaign = CampaignFactory(owner=manager)
    never_asked = CustomerFactory(name="从未记录")
    agreed = CustomerFactory(name="同意营销")
    withdrew = CustomerFactory(name="撤回营销")
    changed_mind = CustomerFactory(name="撤回后又同意")
    now = timezone.now()
    _record(agreed, granted=True)
    _record(withdrew, granted=True, when=now - datetime.timedelta(days=3))
    _record(withdrew, granted=False, when=now - datetime.timedelta(days=1))
    _record(changed_mind, granted=False, when=now - datetime.timedelta(days=3))
    _record(changed_mind, granted=True, when=now - datetime.timedelta(days=1))
    _record(agreed, Purpose.SENSITIVE, granted=False)  # another purpose's withdrawal does not count
    customers = campaigns.Customer.objects.all()

    preview = campaigns.target_preview(campaign=campaign, customers=customers, by=manager)
    added = campaigns.campaign_add_targets(campaign=campaign, customers=customers, by=manager)

    assert preview == {"matching": 3, "new": 3, "existing": 0}
    assert added == 3
    members = set(CampaignMember.objects.filter(campaign=campaign).values_list("customer_id", flat=True))
    assert members == {never_asked.pk, agreed.pk, changed_mind.pk}


def test_it_takes_the_withdrawal_into_account_at_once(manager):
    campaign = CampaignFactory(owner=manager)
    customer = CustomerFactory()
    customers = campaigns.Customer.objects.filter(pk=customer.pk)
    assert campaigns.target_preview(campaign=campaign, customers=customers, by=manager)["new"] == 1
    _record(customer, granted=False)
    assert campaigns.target_preview(campaign=campaign, customers=customers, by=manager)["new"] == 0
    assert campaigns.campaign_add_targets(campaign=campaign, customers=customers, by=manager) == 0


def test_it_leaves_an_erased_customer_out_of_campaign_targets(manager):
    campaign = CampaignFactory(owner=manager)
    customer = CustomerFactory()
    privacy.customer_erase(customer=customer, by=manager)
    customers = campaigns.Customer.objects.all()
    assert campaigns.target_preview(campaign=campaign, customers=customers, by=manager)["matching"] == 0


# --- The Consents tab ------------------------------------------------------------------------------------


def test_it_sends_an_anonymous_user_to_log_in(client, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client.get(_url(customer))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_roles_without_the_consent_permission(client_for, analyst, portal_customer, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assert client_for(analyst).get(_url(customer)).status_code == 403
    assert client_for(portal_customer).get(_url(customer)).status_code == 403


def test_it_answers_404_for_another_reps_customer(client_for, sales_rep, other_sales_rep):
    customer = CustomerFactory(owner=other_sales_rep)
    assert client_for(sales_rep).get(_url(customer)).status_code == 404
    response = client_for(sales_rep).post(_url(customer), {"purpose": "marketing", "decision": "1", "channel": "paper"})
    assert response.status_code == 404
    assert not Consent.objects.exists()


def test_it_answers_405_to_other_methods(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assert client_for(sales_rep).delete(_url(customer)).status_code == 405


def test_it_lists_entries_newest_first_with_the_current_state(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    now = timezone.now()
    _record(customer, Purpose.MARKETING, True, when=now - datetime.timedelta(days=5))
    _record(customer, Purpose.MARKETING, False, when=now - datetime.timedelta(days=1))
    with translation.override("en"):
        response = client_for(sales_rep).get(_url(customer), HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    rows = html.split('data-testid="consent-entry"')[1:]
    assert len(rows) == 2
    assert "Withdrawn" in rows[0] and "Granted" in rows[1]  # newest first
    current = html.split('data-purpose="marketing"')[1].split("</div></div>")[0]
    assert "Withdrawn" in current
    assert 'data-testid="consent-form"' in html


def test_it_warns_about_sensitive_data_without_its_own_consent(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep, id_number="11010519491231002X")
    client = client_for(sales_rep)
    assert b'data-testid="sensitive-consent-warning"' in client.get(_url(customer)).content
    _record(customer, Purpose.SENSITIVE, True)
    assert b'data-testid="sensitive-consent-warning"' not in client.get(_url(customer)).content


def test_it_records_a_consent_through_htmx(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).post(
        _url(customer),
        {"purpose": "sensitive", "decision": "1", "channel": "paper"},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert b'data-testid="consent-saved"' in response.content
    consent = Consent.objects.get()
    assert (consent.customer, consent.purpose, consent.granted, consent.channel, consent.recorded_by) == (
        customer,
        "sensitive",
        True,
        "paper",
        sales_rep,
    )


def test_it_records_a_withdrawal_without_script_and_returns_to_the_tab(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).post(_url(customer), {"purpose": "marketing", "decision": "0", "channel": "phone"})
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk]) + "#tab-consents"
    assert not privacy.has_consent(customer, Purpose.MARKETING)
    assert Consent.objects.get().granted is False


def test_it_answers_bad_input_with_a_message(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(sales_rep).post(
        _url(customer),
        {"purpose": "spam", "decision": "maybe", "channel": "portal"},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not Consent.objects.exists()


def test_it_lets_service_read_but_not_record(client_for, service_agent, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    _record(customer, Purpose.SERVICE, True)
    client = client_for(service_agent)
    response = client.get(_url(customer))
    assert response.status_code == 200
    assert b'data-testid="consent-entry"' in response.content
    assert b'data-testid="consent-form"' not in response.content
    response = client.post(_url(customer), {"purpose": "marketing", "decision": "1", "channel": "paper"})
    assert response.status_code == 403
    assert Consent.objects.count() == 1


def test_it_refuses_a_rep_who_may_only_read_the_customer(client_for, sales_rep, other_sales_rep):
    from customers.services import customer_share

    customer = CustomerFactory(owner=other_sales_rep)
    customer_share(customer=customer, user=sales_rep, can_edit_too=False, by=other_sales_rep)
    client = client_for(sales_rep)
    response = client.get(_url(customer))
    assert response.status_code == 200 and b'data-testid="consent-form"' not in response.content
    response = client.post(_url(customer), {"purpose": "marketing", "decision": "1", "channel": "paper"})
    assert response.status_code == 403
    assert not Consent.objects.exists()


def test_it_lets_a_manager_record_for_any_customer(client_for, manager, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = client_for(manager).post(
        _url(customer), {"purpose": "marketing", "decision": "1", "channel": "email"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert Consent.objects.get().recorded_by == manager


def test_it_shows_the_consents_tab_on_the_360_page(client_for, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    assert _url(customer).encode() in client_for(sales_rep).get(reverse("customers:detail", args=[customer.pk])).content


def test_a_withdrawal_takes_the_customer_out_of_campaigns_still_running(manager):
    """Withdrawn marketing consent counts at once: a running or planned campaign that only targeted
    the customer lets them go; a recorded response, and finished campaigns, stay as history."""
    from followups.models import Campaign

    customer = CustomerFactory()
    running = CampaignFactory(owner=manager)
    planned = CampaignFactory(owner=manager, status=Campaign.Status.PLANNED)
    answered = CampaignFactory(owner=manager)
    finished = CampaignFactory(owner=manager, status=Campaign.Status.FINISHED)
    for campaign in (running, planned, finished):
        CampaignMember.objects.create(campaign=campaign, customer=customer)
    CampaignMember.objects.create(campaign=answered, customer=customer, status=CampaignMember.Status.RESPONDED)
    privacy.consent_record(
        customer=customer, purpose=Consent.Purpose.MARKETING, granted=False, channel=Consent.Channel.PORTAL, by=None
    )
    left = set(CampaignMember.objects.filter(customer=customer).values_list("campaign_id", flat=True))
    assert left == {answered.pk, finished.pk}
