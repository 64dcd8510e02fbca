"""The user guide's screenshots (docs/user-guide/img/): the main pages with demo-like data, in the
Chinese UI, at a fixed 1280×800 viewport.

Every run checks that the pages render without a console error. The pictures in the guide are only
replaced when asked (CIMS_UPDATE_SCREENSHOTS=1) or when one is missing: their dates change with
every run, and an ordinary test run must not leave the checkout with modified images.
"""

from __future__ import annotations

import datetime
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from complaints.models import Ticket, TicketCategory
from complaints.services import ticket_file
from customers.models import Customer, DataRequest
from followups.models import FollowUp, Opportunity
from tests.browser.test_audit_flow import settle
from tests.browser.test_customers_flow import log_in
from tests.customers.factories import ContactFactory, CustomerFactory, ProductFactory, TransactionFactory
from tests.factories import DepartmentFactory, EmployeeFactory, UserFactory
from tests.followups.factories import FollowUpFactory, OpportunityFactory, TaskFactory
from tests.lottery.factories import make_event

pytestmark = pytest.mark.browser

IMG = Path(settings.BASE_DIR) / "docs" / "user-guide" / "img"
VIEWPORT = {"width": 1280, "height": 800}

CUSTOMERS = [
    ("杭州云帆科技有限公司", "王建国", Customer.Status.WON),
    ("苏州恒信精密机械有限公司", "陈立", Customer.Status.INTENT),
    ("宁波海曙家居用品商行", "周敏", Customer.Status.PROSPECT),
    ("上海浦东晨光贸易有限公司", "刘洋", Customer.Status.AFTER_SALES),
    ("南京秦淮文化传媒有限公司", "赵婷", Customer.Status.INTENT),
    ("无锡新吴电子科技有限公司", "孙浩", Customer.Status.WON),
    ("合肥蜀山餐饮管理有限公司", "吴静", Customer.Status.PROSPECT),
    ("温州鹿城鞋业有限公司", "郑强", Customer.Status.LOST),
]


def _demo_data(administrator, sales_rep, service_agent):
    now = timezone.now()
    sales_dept = DepartmentFactory(name="华东销售部", head=sales_rep)
    service_dept = DepartmentFactory(name="客户服务部")
    EmployeeFactory(name=sales_rep.display_name, department=sales_dept, position="销售经理", user=sales_rep)
    EmployeeFactory(name=service_agent.display_name, department=service_dept, position="客服专员", user=service_agent)
    for name, position in (("张伟", "销售代表"), ("何丽", "销售代表"), ("马超", "售前顾问")):
        EmployeeFactory(name=name, department=sales_dept, position=position)

    customers = []
    for index, (company, contact, status) in enumerate(CUSTOMERS):
        customer = CustomerFactory(
            name=company,
            kind=Customer.ENTERPRISE,
            company=company,
            owner=sales_rep,
            status=status,
            mobile=f"+8613{index + 1}0013{index + 1}800",
            email=f"contact{index}@example.com",
        )
        ContactFactory(customer=customer, name=contact)
        customers.append(customer)
    first = customers[0]
    for kind, content in (
        (FollowUp.Kind.VISIT, "上门拜访，演示了新版系统，客户对报表功能很感兴趣。"),
        (FollowUp.Kind.PHONE, "电话确认年度维保合同条款，约定下周二签约。"),
        (FollowUp.Kind.WECHAT, "微信发送报价单，客户表示会内部讨论。"),
    ):
        FollowUpFactory(customer=first, kind=kind, content=content, created_by=sales_rep)
    for customer in customers[1:5]:
        FollowUpFactory(customer=customer, content=f"电话回访{customer.name}，了解近期采购计划。", created_by=sales_rep)
    TransactionFactory(customer=first, amount="86000.00", product="云帆 ERP 年度授权")
    TaskFactory(customer=customers[1], assignee=sales_rep, title="给恒信精密发送方案报价")
    TaskFactory(
        customer=customers[2], assignee=sales_rep, title="回访海曙家居", due_at=now - datetime.timedelta(days=1)
    )
    stages = [
        (customers[1], "数控机床年度维保", Opportunity.Stage.PROPOSAL, "86000.00"),
        (customers[2], "门店收银系统升级", Opportunity.Stage.INITIAL, "24000.00"),
        (customers[4], "品牌宣传片拍摄", Opportunity.Stage.NEEDS, "56000.00"),
        (customers[5], "产线数据采集项目", Opportunity.Stage.NEGOTIATION, "168000.00"),
        (customers[6], "连锁门店会员系统", Opportunity.Stage.INITIAL, "32000.00"),
    ]
    for customer, title, stage, amount in stages:
        OpportunityFactory(customer=customer, title=title, stage=stage, amount=Decimal(amount))
    ProductFactory(name="云帆 ERP 标准版", stock_quantity=Decimal(1), low_stock_threshold=Decimal(3))

    category, _ = TicketCategory.objects.get_or_create(name="产品质量", defaults={"sort_order": 10})
    category.agents.add(service_agent)
    for customer, subject, severity in (
        (customers[3], "发票抬头开错，需要重开", Ticket.Severity.MEDIUM),
        (customers[0], "系统登录偶尔超时", Ticket.Severity.HIGH),
        (customers[5], "设备安装后无法联网", Ticket.Severity.CRITICAL),
    ):
        ticket_file(
            customer=customer,
            by=service_agent,
            kind=Ticket.Kind.COMPLAINT,
            category=category,
            severity=severity,
            channel=Ticket.Channel.PHONE,
            subject=subject,
            description="客户来电反映，请尽快处理。",
        )
    DataRequest.objects.create(
        customer=customers[6], kind=DataRequest.Kind.CORRECTION, details="我的地址已改为合肥市蜀山区长江西路 88 号"
    )
    make_event(by=administrator)


def _shoot(page, name: str, out: Path) -> None:
    settle(page)
    target = IMG / name
    if os.environ.get("CIMS_UPDATE_SCREENSHOTS") or not target.exists():
        page.screenshot(path=str(target))
    else:
        page.screenshot(path=str(out / name))


def test_it_takes_the_user_guides_screenshots(browser, live_server, tmp_path):
    administrator = UserFactory(username="g_admin", name="系统管理员", role=roles.ADMIN, is_staff=True)
    sales_rep = UserFactory(username="g_sales", name="李明", role=roles.SALES)
    service_agent = UserFactory(username="g_service", name="陈客服", role=roles.SERVICE)
    # The pictures show the pages themselves, without the first sign-in's tour card over them.
    for user in (administrator, sales_rep, service_agent):
        user.tour_done_at = timezone.now()
        user.save(update_fields=["tour_done_at"])
    _demo_data(administrator, sales_rep, service_agent)
    IMG.mkdir(parents=True, exist_ok=True)

    context = browser.new_context(base_url=live_server.url, locale="zh-CN", viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        log_in(page, sales_rep)
        first = Customer.objects.get(name=CUSTOMERS[0][0])
        for path, name in (
            ("/", "dashboard.png"),
            ("/customers/", "customers-list.png"),
            (f"/customers/{first.pk}/", "customer-detail.png"),
            ("/followups/", "followups-list.png"),
            ("/followups/pipeline/", "pipeline.png"),
            ("/help/", "help.png"),
        ):
            page.goto(path)
            page.locator("main h1").wait_for()
            _shoot(page, name, tmp_path)
        settle(page)
        context.clear_cookies()

        log_in(page, administrator)
        for path, name in (
            ("complaints:list", "tickets.png"),
            ("reports:index", "reports.png"),
            ("lottery:list", "lottery.png"),
            ("customers:data_requests", "data-requests.png"),
            ("accounts:employee_list", "employees.png"),
            ("system:status", "system-status.png"),
        ):
            page.goto(reverse(path))
            page.locator("main h1").wait_for()
            _shoot(page, name, tmp_path)
    finally:
        context.close()
    assert not errors, errors
    for name in ("dashboard.png", "customers-list.png", "pipeline.png", "tickets.png", "help.png"):
        assert (IMG / name).stat().st_size > 10_000, name
