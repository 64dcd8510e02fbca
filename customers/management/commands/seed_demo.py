"""Seed the customer archive with realistic Chinese demo data, fast: ``seed_demo --customers N``.

Rows are generated batch by batch (memory stays flat whatever N is) and written with
``bulk_create``, or on PostgreSQL with ``COPY`` on a second connection while the next batch is
generated — several times faster at a million customers (docs/performance.md). Both
paths take every value through the model fields (``pre_save`` and ``get_db_prep_save``), so the
encrypted columns hold ciphertext under each field's associated data, the blind indexes are the
HMAC of the stored normalised value, and ``name_grams`` is filled: the rows are what
``Customer.save()`` would have written. Customer and contract numbers come from the same sequences
as normal creation: each batch reserves a block under a row lock, so creations after the seed
continue after it and a second seed adds more without collisions.
"""

from __future__ import annotations

import datetime
import io
import json
import queue
import random
import threading
import time
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

from accounts import roles
from accounts.management.commands.load_demo import DEMO_PASSWORD
from accounts.models import Department, Employee, User
from accounts.services import department_save, employee_save
from cims.models import Sequence
from cims.pgcopy import copy_text
from customers.models import (
    Contact,
    Contract,
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    CustomerUserObjectPermission,
    EnterpriseNature,
    EnterpriseType,
    Industry,
    Province,
    Tag,
    Transaction,
)

# --- The data the generator draws from ------------------------------------------------------------

# (surname, pinyin, weight ≈ share of the population in ‰)
SURNAMES = [
    ("王", "wang", 72), ("李", "li", 72), ("张", "zhang", 68), ("刘", "liu", 54), ("陈", "chen", 47),
    ("杨", "yang", 32), ("黄", "huang", 23), ("赵", "zhao", 20), ("吴", "wu", 20), ("周", "zhou", 19),
    ("徐", "xu", 14), ("孙", "sun", 13), ("马", "ma", 12), ("朱", "zhu", 12), ("胡", "hu", 11),
    ("郭", "guo", 11), ("何", "he", 10), ("林", "lin", 10), ("高", "gao", 10), ("罗", "luo", 9),
    ("郑", "zheng", 9), ("梁", "liang", 8), ("谢", "xie", 7), ("宋", "song", 6), ("唐", "tang", 6),
    ("许", "xu", 6), ("邓", "deng", 5), ("冯", "feng", 5), ("韩", "han", 5), ("曹", "cao", 5),
    ("曾", "zeng", 5), ("彭", "peng", 5), ("萧", "xiao", 4), ("蔡", "cai", 4), ("潘", "pan", 4),
    ("田", "tian", 4), ("董", "dong", 4), ("袁", "yuan", 4), ("于", "yu", 4), ("余", "yu", 4),
    ("叶", "ye", 4), ("蒋", "jiang", 4), ("杜", "du", 4), ("苏", "su", 4), ("魏", "wei", 4),
    ("程", "cheng", 4), ("吕", "lv", 3), ("丁", "ding", 3), ("沈", "shen", 3), ("任", "ren", 3),
    ("姚", "yao", 3), ("卢", "lu", 3), ("傅", "fu", 3), ("钟", "zhong", 3), ("姜", "jiang", 3),
    ("崔", "cui", 3), ("谭", "tan", 3), ("廖", "liao", 3), ("范", "fan", 3), ("汪", "wang", 3),
    ("陆", "lu", 3), ("金", "jin", 2), ("石", "shi", 2), ("戴", "dai", 2), ("贾", "jia", 2),
    ("欧阳", "ouyang", 1), ("司马", "sima", 1), ("诸葛", "zhuge", 1),
]  # fmt: skip

# (given name, pinyin, gender, weight): one-character names make the 王伟/李娜/张伟 two-character
# full names that are so common (and that a trigram index cannot find).
GIVEN_NAMES = [
    ("伟", "wei", "M", 40), ("娜", "na", "F", 30), ("敏", "min", "F", 28), ("静", "jing", "F", 28),
    ("强", "qiang", "M", 25), ("磊", "lei", "M", 25), ("军", "jun", "M", 24), ("洋", "yang", "M", 22),
    ("勇", "yong", "M", 22), ("艳", "yan", "F", 22), ("杰", "jie", "M", 22), ("娟", "juan", "F", 20),
    ("涛", "tao", "M", 20), ("明", "ming", "M", 18), ("超", "chao", "M", 18), ("霞", "xia", "F", 18),
    ("平", "ping", "M", 16), ("刚", "gang", "M", 16), ("芳", "fang", "F", 30), ("丽", "li", "F", 22),
    ("斌", "bin", "M", 12), ("鹏", "peng", "M", 12), ("婷", "ting", "F", 14), ("雪", "xue", "F", 10),
    ("秀英", "xiuying", "F", 20), ("桂英", "guiying", "F", 12), ("秀兰", "xiulan", "F", 10),
    ("建华", "jianhua", "M", 12), ("建国", "jianguo", "M", 12), ("志强", "zhiqiang", "M", 10),
    ("海燕", "haiyan", "F", 8), ("晓明", "xiaoming", "M", 8), ("建军", "jianjun", "M", 8),
    ("丽娟", "lijuan", "F", 6), ("晓燕", "xiaoyan", "F", 6), ("文博", "wenbo", "M", 5),
    ("子涵", "zihan", "F", 6), ("梓轩", "zixuan", "M", 6), ("浩然", "haoran", "M", 6),
    ("欣怡", "xinyi", "F", 6), ("宇航", "yuhang", "M", 5), ("雨萱", "yuxuan", "F", 5),
    ("俊杰", "junjie", "M", 5), ("思远", "siyuan", "M", 4), ("佳怡", "jiayi", "F", 5),
    ("嘉欣", "jiaxin", "F", 4), ("一鸣", "yiming", "M", 4), ("国庆", "guoqing", "M", 4),
    ("红梅", "hongmei", "F", 4), ("玉兰", "yulan", "F", 4), ("春生", "chunsheng", "M", 3),
    ("美玲", "meiling", "F", 3), ("志刚", "zhigang", "M", 4), ("小红", "xiaohong", "F", 4),
]  # fmt: skip

# province short name → (city, landline area code or "" where +86 landlines do not apply), weight
CITIES = {
    "北京": ([("北京", "10")], 6), "天津": ([("天津", "22")], 3), "河北": ([("石家庄", "311"), ("唐山", "315"), ("保定", "312")], 5),
    "山西": ([("太原", "351"), ("大同", "352")], 2), "内蒙古": ([("呼和浩特", "471"), ("包头", "472")], 2),
    "辽宁": ([("沈阳", "24"), ("大连", "411")], 4), "吉林": ([("长春", "431"), ("吉林", "432")], 2),
    "黑龙江": ([("哈尔滨", "451"), ("大庆", "459")], 2), "上海": ([("上海", "21")], 7),
    "江苏": ([("南京", "25"), ("苏州", "512"), ("无锡", "510"), ("常州", "519")], 9),
    "浙江": ([("杭州", "571"), ("宁波", "574"), ("温州", "577"), ("绍兴", "575")], 8),
    "安徽": ([("合肥", "551"), ("芜湖", "553")], 3), "福建": ([("福州", "591"), ("厦门", "592"), ("泉州", "595")], 4),
    "江西": ([("南昌", "791"), ("赣州", "797")], 2), "山东": ([("济南", "531"), ("青岛", "532"), ("烟台", "535")], 7),
    "河南": ([("郑州", "371"), ("洛阳", "379")], 5), "湖北": ([("武汉", "27"), ("宜昌", "717")], 4),
    "湖南": ([("长沙", "731"), ("岳阳", "730")], 4), "广东": ([("广州", "20"), ("深圳", "755"), ("东莞", "769"), ("佛山", "757")], 12),
    "广西": ([("南宁", "771"), ("桂林", "773")], 2), "海南": ([("海口", "898"), ("三亚", "898")], 1),
    "重庆": ([("重庆", "23")], 3), "四川": ([("成都", "28"), ("绵阳", "816")], 5), "贵州": ([("贵阳", "851")], 2),
    "云南": ([("昆明", "871"), ("大理", "872")], 2), "西藏": ([("拉萨", "891")], 1), "陕西": ([("西安", "29"), ("宝鸡", "917")], 3),
    "甘肃": ([("兰州", "931")], 1), "青海": ([("西宁", "971")], 1), "宁夏": ([("银川", "951")], 1),
    "新疆": ([("乌鲁木齐", "991")], 1), "台湾": ([("台北", ""), ("高雄", "")], 1), "香港": ([("香港", "")], 1),
    "澳门": ([("澳门", "")], 1),
}  # fmt: skip

STREETS = [
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "长江路",
    "黄河路",
    "新华路",
    "科技路",
    "滨江大道",
    "文化路",
    "东风路",
]
DISTRICTS = ["高新区", "经开区", "朝阳区", "西湖区", "天河区", "南山区", "武侯区", "江北区", "鼓楼区", "历下区"]

# 字号 (trade name) of enterprises, with pinyin for their e-mail domains
BRANDS = [
    ("云帆", "yunfan"), ("华信", "huaxin"), ("恒达", "hengda"), ("鼎盛", "dingsheng"), ("金石", "jinshi"),
    ("瑞丰", "ruifeng"), ("博远", "boyuan"), ("天成", "tiancheng"), ("宏图", "hongtu"), ("中科", "zhongke"),
    ("新星", "xinxing"), ("东方", "dongfang"), ("嘉禾", "jiahe"), ("永信", "yongxin"), ("海纳", "haina"),
    ("盛世", "shengshi"), ("万通", "wantong"), ("汇丰源", "huifengyuan"), ("启明", "qiming"), ("创联", "chuanglian"),
    ("智远", "zhiyuan"), ("锦程", "jincheng"), ("光华", "guanghua"), ("正泰", "zhengtai"), ("蓝海", "lanhai"),
    ("卓越", "zhuoyue"), ("安达", "anda"), ("百川", "baichuan"), ("同创", "tongchuang"), ("伟业", "weiye"),
]  # fmt: skip

# (行业 in the company name, Industry lookup it belongs to)
TRADES = [
    ("科技", "信息技术"), ("网络科技", "信息技术"), ("软件", "信息技术"), ("信息技术", "信息技术"),
    ("贸易", "批发零售"), ("商贸", "批发零售"), ("实业", "制造业"), ("机械", "制造业"), ("电子", "制造业"),
    ("智能装备", "制造业"), ("物流", "物流运输"), ("餐饮管理", "餐饮酒店"), ("建筑工程", "建筑工程"),
    ("医药", "医疗健康"), ("文化传媒", "文化传媒"), ("教育咨询", "教育"), ("新能源", "能源化工"),
    ("化工", "能源化工"), ("食品", "农林牧渔"), ("置业", "房地产"), ("投资", "金融"),
]  # fmt: skip

MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "176", "177", "180", "181", "182", "183", "184", "185", "186",
    "187", "188", "189", "191", "198", "199",
]  # fmt: skip
EMAIL_DOMAINS = ["163.com", "126.com", "qq.com", "sina.com", "foxmail.com", "139.com", "outlook.com"]
TITLES = ["总经理", "采购经理", "财务主管", "行政主管", "技术总监", "销售总监", "项目经理", "办公室主任"]
PRODUCTS = [
    ("年度服务套餐", 800, 20000), ("标准版软件授权", 2000, 50000), ("办公设备", 300, 30000),
    ("会员充值", 50, 5000), ("定制开发服务", 10000, 300000), ("耗材补货", 100, 8000),
    ("培训课程", 500, 12000), ("硬件维保", 1000, 40000), ("咨询服务", 3000, 80000),
]  # fmt: skip
NOTES = [
    "",
    "",
    "",
    "",
    "偏好电话联系",
    "周末不便联系",
    "老客户介绍",
    "对价格较敏感",
    "需要开具增值税专用发票",
    "关注售后响应速度",
]
DEMO_TAGS = [
    ("重点客户", "#dc2626"), ("老客户", "#16a34a"), ("潜力客户", "#2563eb"),
    ("价格敏感", "#d97706"), ("需回访", "#7c3aed"), ("大客户", "#0891b2"),
]  # fmt: skip

STATUSES = list(Customer.Status.values)
SCALES = list(Customer.Scale.values)
CHANNELS = list(Transaction.Channel.values)
SALES_DEPARTMENTS = [("销售中心", None), ("销售一部", "销售中心"), ("销售二部", "销售中心"), ("销售三部", "销售中心")]
SALES_REPS = 10

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_for(region: str, birth: datetime.date, serial: int) -> str:
    """An 18-character resident ID number with the given region, birth date and a valid check digit."""
    body = f"{region}{birth:%Y%m%d}{serial:03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


# --- Writing batches ------------------------------------------------------------------------------


# Built-in fields whose database value is the attribute itself (for the values generated here);
# every other field (encrypted, blind index, name grams, auto_now …) goes through its own
# pre_save() and get_db_prep_save(), exactly as in bulk_create.
_PLAIN_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.DateField,
    models.DateTimeField,
    models.DecimalField,
    models.ForeignKey,
    models.IntegerField,
    models.TextField,
)


def _is_plain(field) -> bool:
    if type(field) not in _PLAIN_FIELDS:
        return False
    return not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)


class _CopyWriter:
    """Writes model instances with PostgreSQL's COPY, values prepared by the model's own fields."""

    def __init__(self, model, *, with_pk: bool):
        self.connection = connections[DEFAULT_DB_ALIAS]
        fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        self.columns = []
        for field in fields:
            kind = "json" if isinstance(field, models.JSONField) else "plain" if _is_plain(field) else "field"
            self.columns.append((field, field.attname, kind))
        columns = ", ".join(self.connection.ops.quote_name(f.column) for f in fields)
        self.sql = f"COPY {self.connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"

    def serialize(self, objects) -> str:
        """The rows in COPY's text format (prepared in the generating thread)."""
        connection = self.connection
        lines = []
        for obj in objects:
            row = []
            for field, attname, kind in self.columns:
                if kind == "plain":
                    value = getattr(obj, attname)
                elif kind == "json":
                    value = json.dumps(getattr(obj, attname), ensure_ascii=False)
                else:
                    value = field.get_db_prep_save(field.pre_save(obj, True), connection)
                row.append(copy_text(value))
            lines.append("\t".join(row))
        return "\n".join(lines) + "\n" if lines else ""


def _copy_batch(payloads: list[tuple[str, str]]) -> None:
    """One batch of COPY statements in one transaction, on this thread's connection."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")  # demo data: a crash loses the last batches
        for sql, text in payloads:
            if text:
                cursor.cursor.copy_expert(sql, io.StringIO(text))  # the psycopg2 cursor under Django's wrapper


class _CopyPipeline:
    """Writes batches on a second connection while the next batch is generated.

    Python generates and PostgreSQL indexes at the same time: on two cores this nearly halves the
    wall time of a large seed. Bounded: at most two batches wait in the queue.
    """

    def __init__(self):
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="seed-demo-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (payloads := self.queue.get()) is not None:
                if self.error is None:  # after a failure keep draining, so the producer never blocks
                    try:
                        _copy_batch(payloads)
                    except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
                        self.error = exc
        finally:
            connections.close_all()

    def put(self, payloads: list[tuple[str, str]]) -> None:
        self._raise()
        self.queue.put(payloads)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise CommandError(f"Writing a batch failed: {self.error}") from self.error


class Command(BaseCommand):
    help = (
        "Seed N realistic Chinese demo customers with contacts, transactions, contracts, tags and "
        "owners spread over sales reps sales1..sales10 (created in the 'sales' group if missing). "
        "Bulk demo data: NO history rows are written for seeded records. Not for production databases."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True, help="How many customers to add.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Customers per batch (default 5000).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--contacts", type=float, default=1.0, help="Scale the number of contacts (default 1.0; 0 for none)."
        )
        parser.add_argument(
            "--transactions",
            type=float,
            default=1.0,
            help="Scale the number of transactions (default 1.0 ≈ 2.5 per customer; 0 for none).",
        )
        parser.add_argument(
            "--not-production",
            action="store_true",
            help="Confirm this database is not a production one (needed when DEBUG is off).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["not_production"]:
            raise CommandError(
                "Refusing to seed demo customers while DEBUG is off. "
                "Pass --not-production if this database really is a demo or benchmark one."
            )
        total, batch_size = options["customers"], options["batch_size"]
        if total < 0 or batch_size < 1:
            raise CommandError("--customers must be 0 or more and --batch-size at least 1.")
        if options["contacts"] < 0 or options["transactions"] < 0:
            raise CommandError("--contacts and --transactions must be 0 or more.")
        started = time.monotonic()
        self.verbosity = options["verbosity"]
        self.contact_ratio, self.transaction_ratio = options["contacts"], options["transactions"]
        self._load_reference()
        self.copy = connection.vendor == "postgresql"
        if self.copy:
            models_written = (
                Customer,
                Contact,
                Transaction,
                Contract,
                Customer.tags.through,
                CustomerUserObjectPermission,
            )
            self.writers = {model: _CopyWriter(model, with_pk=model is Customer) for model in models_written}
        self.year = timezone.localdate().year
        first_code = self._peek_sequence(f"customer:{self.year}") + 1
        # A second run draws different people, but the same run is reproducible.
        self.rng = random.Random(f"{options['seed']}:{first_code}")  # noqa: S311 - demo data, not secrets
        self.now = timezone.now()
        # Inside a caller's transaction (a test) a second connection could not see its rows: write inline.
        self.pipeline = _CopyPipeline() if self.copy and not connection.in_atomic_block else None
        done = 0
        try:
            while done < total:
                count = min(batch_size, total - done)
                self._batch(count, position=done, total=total)
                done += count
                if self.verbosity:
                    elapsed = time.monotonic() - started
                    self.stdout.write(f"  {done:,}/{total:,} customers  {elapsed:6.1f}s  ({done / elapsed:,.0f}/s)")
                    self.stdout.flush()
        finally:
            if self.pipeline is not None:
                self.pipeline.close()
        if self.copy and total:
            with connection.cursor() as cursor:
                # Fresh statistics, so the planner knows the new size straight away.
                for model in (Customer, Contact, Transaction, Contract, Customer.tags.through):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Seeded {total:,} customers in {elapsed:.1f}s."))

    # --- set-up ----------------------------------------------------------------------------------

    def _load_reference(self) -> None:
        self.provinces = {p.short_name: p for p in Province.objects.all()}
        if len(self.provinces) < len(CITIES):
            raise CommandError("The provinces are missing: run `manage.py migrate` first.")
        self.province_choices = [(self.provinces[short], cities) for short, (cities, _w) in CITIES.items()]
        self.province_weights = [weight for _cities, weight in CITIES.values()]
        self.levels = {obj.name: obj.pk for obj in CustomerLevel.objects.all()}
        self.sources = list(CustomerSource.objects.values_list("pk", flat=True))
        self.types = list(CustomerType.objects.values_list("pk", flat=True))
        self.industries = {obj.name: obj.pk for obj in Industry.objects.all()}
        self.enterprise_types = list(EnterpriseType.objects.values_list("pk", flat=True))
        self.enterprise_natures = list(EnterpriseNature.objects.values_list("pk", flat=True))
        with transaction.atomic():
            for name, color in DEMO_TAGS:
                Tag.objects.get_or_create(name=name, defaults={"color": color})
            self.tags = list(Tag.objects.filter(name__in=[n for n, _ in DEMO_TAGS]).values_list("pk", flat=True))
            self.reps = self._sales_reps()
            self.managers = list(User.objects.filter(groups__name=roles.MANAGER).values_list("pk", flat=True)[:5])
        self.view_permission = Permission.objects.get(content_type__app_label="customers", codename="view_customer")
        level_names = list(self.levels)
        weights = {"VIP": 5, "A": 15, "B": 35, "C": 45}
        self.level_weights = [weights.get(name, 10) for name in level_names]
        self.level_ids = [self.levels[name] for name in level_names]
        self.surnames = [s[:2] for s in SURNAMES]
        self.surname_weights = [s[2] for s in SURNAMES]
        self.given = [g[:3] for g in GIVEN_NAMES]
        self.given_weights = [g[3] for g in GIVEN_NAMES]

    def _sales_reps(self) -> list[int]:
        """sales1..sales10 in the 'sales' group, as employees of the sales departments (the demo
        users of ``load_demo`` are reused when present)."""
        sales_group = Group.objects.get(name=roles.SALES)
        departments: dict[str, Department] = {}
        for name, parent_name in SALES_DEPARTMENTS:
            parent = departments.get(parent_name) if parent_name else None
            department = Department.objects.filter(name=name, parent=parent).first()
            if department is None:
                department = department_save(department=Department(name=name, parent=parent))
            departments[name] = department
        units = [departments[name] for name, parent in SALES_DEPARTMENTS if parent]
        reps = []
        for number in range(1, SALES_REPS + 1):
            username = f"sales{number}"
            user = User.objects.filter(username=username).first()
            if user is None:
                surname = SURNAMES[number % len(SURNAMES)][0]
                user = User(username=username, name=f"{surname}销售{number}", email=f"{username}@example.com")
                user.set_password(DEMO_PASSWORD)
                user.save()
                user.groups.add(sales_group)
                employee_save(
                    employee=Employee(
                        name=user.name,
                        department=units[(number - 1) % len(units)],
                        position="销售代表",
                        hire_date=datetime.date(2024, 3, 1),
                        user=user,
                    )
                )
            elif not user.groups.filter(pk=sales_group.pk).exists():
                continue  # a user of that name who is not a sales rep: leave them alone
            reps.append(user.pk)
        if not reps:
            raise CommandError("No sales reps to own the customers.")
        return reps

    # --- sequences ---------------------------------------------------------------------------------

    @staticmethod
    def _peek_sequence(name: str) -> int:
        return Sequence.objects.filter(name=name).values_list("last_value", flat=True).first() or 0

    @staticmethod
    def _reserve(name: str, count: int) -> int:
        """Reserve ``count`` numbers of sequence ``name`` in one step; returns the first."""
        with transaction.atomic():
            Sequence.objects.get_or_create(name=name)
            sequence = Sequence.objects.select_for_update().get(name=name)
            first = sequence.last_value + 1
            sequence.last_value += count
            sequence.save(update_fields=["last_value"])
        return first

    # --- one batch ---------------------------------------------------------------------------------

    def _batch(self, count: int, *, position: int, total: int) -> None:
        first_code = self._reserve(f"customer:{self.year}", count)
        customers = [self._customer(first_code + i, (position + i) / max(total, 1)) for i in range(count)]
        if not self.copy:
            with transaction.atomic():
                Customer.objects.bulk_create(customers)
                for model, rows in self._children(customers):
                    model.objects.bulk_create(rows)
            return
        with connection.cursor() as cursor:
            # Ids from the table's own sequence, so that the children can point at their customer.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Customer._meta.db_table, count],
            )
            for customer, (pk,) in zip(customers, cursor.fetchall(), strict=True):
                customer.pk = pk
        payloads = [(self.writers[Customer].sql, self.writers[Customer].serialize(customers))]
        for model, rows in self._children(customers):
            payloads.append((self.writers[model].sql, self.writers[model].serialize(rows)))
        if self.pipeline is not None:
            self.pipeline.put(payloads)
        else:
            _copy_batch(payloads)

    def _children(self, customers: list[Customer]) -> list[tuple[type[models.Model], list]]:
        contacts, transactions, contracts, tags, shares = [], [], [], [], []
        for customer in customers:
            contacts += self._contacts(customer)
            transactions += self._transactions(customer)
            contracts += self._contracts(customer)
            tags += [
                Customer.tags.through(customer_id=customer.pk, tag_id=tag)
                for tag in self.rng.sample(self.tags, self.rng.choices((0, 1, 2), (50, 40, 10))[0])
            ]
            if self.rng.random() < 0.002 and len(self.reps) > 1:
                colleague = self.rng.choice([rep for rep in self.reps if rep != customer.owner_id])
                shares.append(
                    CustomerUserObjectPermission(
                        user_id=colleague, permission=self.view_permission, content_object_id=customer.pk
                    )
                )
        if contracts:
            first_number = self._reserve(f"contract:{self.year}", len(contracts))
            for offset, contract in enumerate(contracts):
                contract.number = f"HT{self.year}-{first_number + offset:06d}"
        return [
            (Contact, contacts),
            (Transaction, transactions),
            (Contract, contracts),
            (Customer.tags.through, tags),
            (CustomerUserObjectPermission, shares),
        ]

    def _person(self) -> tuple[str, str, str]:
        rng = self.rng
        surname, surname_py = rng.choices(self.surnames, self.surname_weights)[0]
        given, given_py, gender = rng.choices(self.given, self.given_weights)[0]
        return surname + given, f"{given_py}.{surname_py}", gender

    def _landline_prefixes(self, area_code: str) -> list[str]:
        """First two digits of 8-digit local numbers that are valid under ``area_code``."""
        cache = self.__dict__.setdefault("_landline_cache", {})
        if area_code not in cache:
            cache[area_code] = [
                prefix
                for prefix in map(str, range(20, 90))
                if area_code and phonenumbers.is_valid_number(phonenumbers.parse(f"+86{area_code}{prefix}345678", None))
            ]
        return cache[area_code]

    def _mobile(self) -> str:
        return f"+86{self.rng.choice(MOBILE_PREFIXES)}{self.rng.randrange(10**8):08d}"

    def _customer(self, code_number: int, progress: float) -> Customer:
        rng = self.rng
        province, cities = rng.choices(self.province_choices, self.province_weights)[0]
        city, area_code = rng.choice(cities)
        owner = rng.choice(self.reps)
        enterprise = rng.random() < 0.35
        # Older customers have lower numbers: spread creation over the last three years.
        created_at = self.now - datetime.timedelta(days=1095 * (1 - progress), seconds=rng.randrange(86400))
        address = f"{province.name}{city}市{rng.choice(DISTRICTS)}{rng.choice(STREETS)}{rng.randrange(1, 999)}号"
        customer = Customer(
            code=f"C{self.year}-{code_number:06d}",
            province=province,
            city=city,
            address=address if rng.random() < 0.7 else "",
            level_id=rng.choices(self.level_ids, self.level_weights)[0] if rng.random() < 0.9 else None,
            source_id=rng.choice(self.sources) if self.sources else None,
            customer_type_id=rng.choice(self.types) if self.types and rng.random() < 0.8 else None,
            status=rng.choices(STATUSES, (35, 25, 25, 8, 7))[0],
            owner_id=owner,
            created_by_id=owner,
            created_at=created_at,
            notes=rng.choice(NOTES),
        )
        if enterprise:
            brand, brand_py = rng.choice(BRANDS)
            trade, industry = rng.choice(TRADES)
            customer.kind = Customer.ENTERPRISE
            customer.name = f"{city}{brand}{trade}有限公司"
            customer.industry_id = self.industries.get(industry)
            customer.enterprise_type_id = rng.choice(self.enterprise_types) if self.enterprise_types else None
            customer.enterprise_nature_id = rng.choice(self.enterprise_natures) if self.enterprise_natures else None
            customer.scale = rng.choices(SCALES, (40, 30, 18, 8, 4))[0]
            customer.email = f"info@{brand_py}{rng.randrange(1, 9999)}.com.cn" if rng.random() < 0.6 else ""
            prefixes = self._landline_prefixes(area_code)
            if prefixes and rng.random() < 0.7:
                local = f"{rng.choice(prefixes)}{rng.randrange(10**6):06d}"
                customer.phone = f"+86{area_code}{local}"
                if rng.random() < 0.3:
                    customer.fax = f"0{area_code}-{local[:-1]}{(int(local[-1]) + 1) % 10}"
            customer.mobile = self._mobile() if rng.random() < 0.5 else ""
        else:
            name, handle, gender = self._person()
            customer.name = name
            customer.gender = gender
            birth = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(20000))  # 1950 – 2004
            customer.birth_date = birth if rng.random() < 0.6 else None
            customer.mobile = self._mobile() if rng.random() < 0.95 else ""
            customer.email = (
                f"{handle}{rng.randrange(1, 9999)}@{rng.choice(EMAIL_DOMAINS)}" if rng.random() < 0.6 else ""
            )
            if customer.birth_date and rng.random() < 0.5:
                region = f"{province.code}{rng.randrange(1, 20):02d}{rng.randrange(1, 30):02d}"
                serial = rng.randrange(1, 500) * 2 - (1 if gender == "M" else 0)  # odd for men, even for women
                customer.id_number = id_number_for(region, birth, serial)
            if rng.random() < 0.1:
                customer.bank_account = f"6222{rng.randrange(10**15):015d}"
            if rng.random() < 0.3:
                customer.company = f"{city}{rng.choice(BRANDS)[0]}{rng.choice(TRADES)[0]}有限公司"
            customer.industry_id = self.industries.get(rng.choice(TRADES)[1]) if rng.random() < 0.3 else None
        if rng.random() < 0.01:
            customer.deleted_at = created_at + datetime.timedelta(days=rng.randrange(1, 30))
            customer.deleted_by_id = rng.choice(self.managers) if self.managers else None
        return customer

    def _contacts(self, customer: Customer) -> list[Contact]:
        rng = self.rng
        # 0–3 per enterprise and 0–1 per individual, evenly, at the default ratio of 1.
        count = int(rng.random() * ((3 if customer.is_enterprise else 1) * self.contact_ratio + 1))
        contacts = []
        for index in range(count):
            name, handle, _gender = self._person()
            contacts.append(
                Contact(
                    customer_id=customer.pk,
                    name=name,
                    title=rng.choice(TITLES) if customer.is_enterprise else "",
                    phone=self._mobile(),
                    email=f"{handle}{rng.randrange(1, 999)}@{rng.choice(EMAIL_DOMAINS)}" if rng.random() < 0.5 else "",
                    is_primary=index == 0,
                )
            )
        return contacts

    def _transactions(self, customer: Customer) -> list[Transaction]:
        rng = self.rng
        count = int(rng.random() * (5 * self.transaction_ratio + 1))
        rows = []
        today = self.now.date()
        for _ in range(count):
            product, low, high = rng.choice(PRODUCTS)
            amount = Decimal(rng.randrange(low * 100, high * 100)) / 100
            rows.append(
                Transaction(
                    customer_id=customer.pk,
                    date=min(today, (customer.created_at + datetime.timedelta(days=rng.randrange(0, 700))).date()),
                    amount=amount.quantize(Decimal("0.01")),
                    product=product,
                    channel=rng.choice(CHANNELS),
                    rep_id=customer.owner_id,
                    created_by_id=customer.owner_id,
                )
            )
        return rows

    def _contracts(self, customer: Customer) -> list[Contract]:
        rng = self.rng
        if rng.random() >= (0.25 if customer.is_enterprise else 0.03):
            return []
        start = (customer.created_at + datetime.timedelta(days=rng.randrange(0, 365))).date()
        end = start + datetime.timedelta(days=rng.choice((180, 365, 730)))
        today = self.now.date()
        status = Contract.Status.ACTIVE if start <= today <= end else Contract.Status.EXPIRED
        if start > today:
            status = Contract.Status.DRAFT
        elif rng.random() < 0.05:
            status = Contract.Status.TERMINATED
        product = rng.choice(PRODUCTS)[0]
        return [
            Contract(
                customer_id=customer.pk,
                title=f"{product}合作协议",
                amount=Decimal(rng.randrange(10_000, 2_000_000)),
                start_date=start,
                end_date=end,
                status=status,
                created_by_id=customer.owner_id,
            )
        ]
