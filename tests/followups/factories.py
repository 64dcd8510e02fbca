"""Factories of follow-ups and tasks (shared by the follow-up and agenda tests)."""

import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from followups.models import Campaign, CampaignMember, FollowUp, Opportunity, Task
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory


class FollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FollowUp

    customer = factory.SubFactory(CustomerFactory)
    kind = FollowUp.Kind.PHONE
    happened_at = factory.LazyFunction(timezone.now)
    content = factory.Sequence(lambda n: f"电话沟通需求 {n}")
    result = "客户有兴趣"
    created_by = factory.LazyAttribute(lambda f: f.customer.owner)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"待办 {n}")
    customer = factory.SubFactory(CustomerFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=1))
    # The customer's owner by default (as a task from a follow-up), else a fresh user.
    assignee = factory.LazyAttribute(lambda t: (t.customer.owner if t.customer else None) or UserFactory())
    created_by = factory.LazyAttribute(lambda t: t.assignee)


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    customer = factory.SubFactory(CustomerFactory)
    title = factory.Sequence(lambda n: f"年度采购项目 {n}")
    amount = Decimal("100000.00")
    probability = 10
    owner = factory.LazyAttribute(lambda o: o.customer.owner)
    created_by = factory.LazyAttribute(lambda o: o.owner)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"春季促销活动 {n}")
    kind = Campaign.Kind.PROMOTION
    status = Campaign.Status.RUNNING
    start_date = factory.LazyFunction(lambda: timezone.localdate() - datetime.timedelta(days=3))
    end_date = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=27))
    budget = Decimal("10000.00")
    owner = factory.SubFactory(UserFactory)
    created_by = factory.LazyAttribute(lambda c: c.owner)


class CampaignMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignMember

    campaign = factory.SubFactory(CampaignFactory)
    customer = factory.SubFactory(CustomerFactory)
    status = CampaignMember.Status.TARGETED
