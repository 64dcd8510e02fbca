"""Factories of the customer archive (shared by every customer test)."""

from decimal import Decimal

import factory

from customers.models import Contact, Contract, Customer, Product, ProductCategory, Tag, Transaction


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"客户{n}")
    mobile = factory.Sequence(lambda n: f"+86138{n:08d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    status = Customer.Status.PROSPECT


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"联系人{n}")
    phone = factory.Sequence(lambda n: f"+86139{n:08d}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"标签{n}")


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transaction

    customer = factory.SubFactory(CustomerFactory)
    amount = "1280.00"
    product = "年度服务套餐"


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    customer = factory.SubFactory(CustomerFactory)
    title = "年度合作协议"
    amount = "50000.00"
    start_date = "2026-01-01"
    end_date = "2026-12-31"


class ProductCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductCategory
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"产品类别{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    """A stocked product on sale. Its stock is set directly (no movement): tests of the stock
    services start from it; the services themselves always write movements."""

    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"P-{n:04d}")
    name = factory.Sequence(lambda n: f"办公用品{n}")
    unit = "件"
    list_price = Decimal("100.00")
    stock_quantity = Decimal(10)
    low_stock_threshold = Decimal(2)
