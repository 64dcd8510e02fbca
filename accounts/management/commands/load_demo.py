"""Demo organisation and one account per role, for the quick start. Idempotent.

Demo passwords are public (printed by ``make run``), so the command refuses to run with DEBUG off
unless told explicitly that the database is not a production one.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import roles
from accounts.models import Department, Employee, User
from accounts.services import employee_save

DEMO_PASSWORD = "cims-demo-2026"  # noqa: S105 - public demo password, refused with DEBUG off

# username, name, role, department, position
DEMO_USERS = [
    ("admin", "系统管理员", roles.ADMIN, "总经办", "系统管理员"),
    ("manager", "周运营", roles.MANAGER, "总经办", "运营总监"),
    ("sales1", "李销售", roles.SALES, "销售一部", "销售代表"),
    ("sales2", "王销售", roles.SALES, "销售二部", "销售代表"),
    ("service", "陈客服", roles.SERVICE, "客服中心", "客服专员"),
    ("analyst", "赵分析", roles.ANALYST, "数据分析部", "数据分析师"),
    ("customer1", "刘女士", roles.CUSTOMER, None, None),
    ("customer2", "杭州云帆科技有限公司", roles.CUSTOMER, None, None),
]

# name, parent
DEMO_DEPARTMENTS = [
    ("总经办", None),
    ("销售中心", None),
    ("销售一部", "销售中心"),
    ("销售二部", "销售中心"),
    ("客服中心", None),
    ("数据分析部", None),
]


# code, name, category, unit, list price, opening stock (None: not stocked), low-stock threshold
DEMO_PRODUCTS = [
    ("P-1001", "A4 复印纸（500张/包）", "办公耗材", "包", "25.00", 400, 50),
    ("P-1002", "激光打印机硒鼓", "办公耗材", "个", "380.00", 3, 5),
    ("P-2001", "商用激光打印机", "办公设备", "台", "2680.00", 12, 2),
    ("P-2002", "碎纸机", "办公设备", "台", "899.00", 20, 3),
    ("S-0001", "年度上门维护服务", "服务", "年", "3600.00", None, 0),
]


class Command(BaseCommand):
    help = "Create the demo departments, employees and one login per role (quick start only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--not-production",
            action="store_true",
            help="Confirm this database is not a production one (needed when DEBUG is off).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["not_production"]:
            raise CommandError(
                "Refusing to create demo accounts with public passwords while DEBUG is off. "
                "Pass --not-production if this database really is a demo."
            )
        with transaction.atomic():
            departments = self._departments()
            for username, name, role, department, position in DEMO_USERS:
                self._user(username, name, role, departments.get(department), position)
            heads = {"销售中心": "manager", "销售一部": "sales1", "总经办": "manager", "客服中心": "service"}
            for department_name, username in heads.items():
                department = departments[department_name]
                if department.head_id is None:
                    department.head = User.objects.get(username=username)
                    department.save(update_fields=["head"])
        self._products()
        from django.core.management import call_command

        from customers.models import Customer

        if not Customer.all_objects.exists():
            # A first start gets a small archive to look at; seed_demo makes large ones.
            call_command("seed_demo", customers=300, not_production=True, stdout=self.stdout)
        # Two campaigns with members in every state (once; after the customers exist).
        from followups.campaigns import seed_demo_campaigns

        seed_demo_campaigns()
        self._service_desk()
        # Last year's lottery drawn and announced, this year's as a draft (once).
        from lottery.demo import seed_demo_lottery

        seed_demo_lottery(User.objects.get(username="admin"))
        # The reports' summary tables and the customer profiles, so the dashboard has figures at
        # once rather than after the first scheduled refresh.
        from reports.facts import facts_refresh

        facts_refresh()
        self._profiles()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Demo logins (password for all: {DEMO_PASSWORD}):"))
        for username, name, role, _department, _position in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role:<9} {name}")

    def _profiles(self) -> None:
        try:
            from reports.profiles import profiles_refresh
        except ImportError:  # the profiles arrive with their own change
            return
        profiles_refresh()

    def _products(self) -> None:
        """A small catalogue with one product low on stock (the dashboard's warning), once."""
        from decimal import Decimal

        from customers.models import Product, ProductCategory
        from customers.products import product_save

        if Product.objects.exists():
            return
        admin = User.objects.get(username="admin")
        manager = User.objects.get(username="manager")
        with transaction.atomic():
            for code, name, category, unit, price, stock, threshold in DEMO_PRODUCTS:
                product = Product(
                    code=code,
                    name=name,
                    category=ProductCategory.objects.get_or_create(name=category)[0] if category else None,
                    unit=unit,
                    list_price=Decimal(price),
                    is_stocked=stock is not None,
                    low_stock_threshold=Decimal(threshold),
                    manager=manager,
                )
                product_save(product=product, by=admin, opening_stock=Decimal(stock or 0))

    def _service_desk(self) -> None:
        """The demo service agent takes every ticket category; the two demo portal logins become the
        portal accounts of a customer each, with a few tickets in different states (once)."""
        from accounts.models import PortalAccount
        from complaints import services as tickets
        from complaints.models import Ticket, TicketCategory
        from customers.models import Customer

        agent = User.objects.get(username="service")
        for category in TicketCategory.objects.all():
            category.agents.add(agent)
        if PortalAccount.objects.exists():
            return
        sales1 = User.objects.get(username="sales1")
        with transaction.atomic():
            for username, kind in (("customer1", Customer.INDIVIDUAL), ("customer2", Customer.ENTERPRISE)):
                user = User.objects.get(username=username)
                customer = Customer.objects.filter(name=user.name).first() or Customer.objects.create(
                    name=user.name, kind=kind, owner=sales1, status=Customer.Status.WON, email=user.email
                )
                PortalAccount.objects.create(user=user, customer=customer, created_by=sales1)
            liu = PortalAccount.objects.get(user__username="customer1")
            quality = TicketCategory.objects.order_by("sort_order").first()
            billing = TicketCategory.objects.filter(name="账单费用").first() or quality
            first = tickets.ticket_file(
                customer=liu.customer, by=liu.user, by_customer=True, kind=Ticket.Kind.COMPLAINT,
                category=quality, severity=Ticket.Severity.MEDIUM, channel=Ticket.Channel.PORTAL,
                subject="打印机卡纸", description="新买的商用激光打印机每打印十几页就卡纸一次。",
            )  # fmt: skip
            tickets.ticket_comment(ticket=first, by=agent, body="您好，我们已安排工程师明天上门检查。")
            second = tickets.ticket_file(
                customer=liu.customer, by=agent, kind=Ticket.Kind.INQUIRY, category=billing,
                severity=Ticket.Severity.LOW, channel=Ticket.Channel.PHONE,
                subject="发票抬头变更", description="客户来电询问如何变更发票抬头。",
            )  # fmt: skip
            tickets.ticket_transition(ticket=second, to=Ticket.Status.IN_PROGRESS, by=agent)
            tickets.ticket_comment(ticket=second, by=agent, body="已告知客户在门户中修改资料后重新开票。")
            tickets.ticket_transition(ticket=second, to=Ticket.Status.RESOLVED, by=agent, comment="已答复")

    def _departments(self) -> dict[str, Department]:
        created: dict[str, Department] = {}
        for order, (name, parent_name) in enumerate(DEMO_DEPARTMENTS):
            parent = created.get(parent_name) if parent_name else None
            created[name], _ = Department.objects.get_or_create(
                name=name, parent=parent, defaults={"sort_order": order}
            )
        return created

    def _user(self, username: str, name: str, role: str, department: Department | None, position: str | None) -> None:
        user, created = User.objects.get_or_create(
            username=username, defaults={"name": name, "email": f"{username}@example.com"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            # The administrator also enters the Django admin (is_staff); permissions come from the group.
            user.is_staff = role == roles.ADMIN
            user.save()
        user.groups.add(Group.objects.get(name=role))
        if role in roles.STAFF_ROLES and not Employee.objects.filter(user=user).exists():
            employee_save(
                employee=Employee(
                    name=name,
                    department=department,
                    position=position or "",
                    hire_date=datetime.date(2024, 3, 1),
                    user=user,
                )
            )
