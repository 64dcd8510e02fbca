"""The columns of customer files: one list for the import template, the import's header mapping
and the export, so that an exported file can be fixed and imported again.

A file's header cell matches a column by its Chinese header, its English key or one of its
aliases, compared after folding full-width characters, lower-casing and removing all whitespace
and a trailing ``*`` (the template marks required columns that way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from cims.normalize import fold_width


@dataclass(frozen=True)
class Column:
    key: str  # the Customer field (or "cf_<key>" for a custom field); the English header
    header: str  # the Chinese header of the template and of exports
    label: object = ""  # UI label (lazy translation) for mapping tables and error messages
    aliases: tuple[str, ...] = ()
    required: bool = False
    importable: bool = True
    example: str = ""  # the template's example row
    personal: bool = False  # masked in exports unless the user sees it in clear (customers.access)
    extra: dict = field(default_factory=dict, compare=False)


COLUMNS: tuple[Column, ...] = (
    Column("code", "客户编号", _("Customer code"), ("编号", "客户代码", "customer code"), importable=False),
    Column(
        "name",
        "客户名称",
        _("Name"),
        ("名称", "客户名", "客户姓名", "姓名", "公司名称", "企业名称", "customer name", "customer"),
        required=True,
        example="张伟",
    ),
    Column("kind", "个人/企业", _("Kind"), ("客户性质", "个人或企业", "kind"), example="个人"),
    Column(
        "company", "所在单位", _("Company"), ("公司", "单位", "工作单位", "company name"), example="星辰科技有限公司"
    ),
    Column("gender", "性别", _("Gender"), ("sex",), example="男"),
    Column("birth_date", "出生日期", _("Birth date"), ("生日", "birthday", "date of birth"), example="1949-12-31"),
    Column(
        "mobile",
        "手机",
        _("Mobile"),
        ("手机号", "手机号码", "移动电话", "mobile phone", "cell", "cellphone"),
        example="13812345678",
        personal=True,
    ),
    Column(
        "phone",
        "电话",
        _("Phone"),
        ("电话号码", "固定电话", "座机", "联系电话", "telephone", "tel"),
        example="010-62345678",
        personal=True,
    ),
    Column("fax", "传真", _("Fax"), ("传真号码",)),
    Column(
        "email",
        "邮箱",
        _("Email"),
        ("电子邮箱", "电子邮件", "邮件", "e-mail", "mail"),
        example="zhang.wei@example.com",
        personal=True,
    ),
    Column(
        "id_number",
        "身份证号",
        _("ID card number"),
        ("身份证", "身份证号码", "证件号码", "id card", "id card number", "idnumber"),
        example="11010519491231002X",
        personal=True,
    ),
    Column("bank_account", "银行账号", _("Bank account"), ("银行卡号", "账号", "bank account number"), personal=True),
    Column("province", "所在省份", _("Province"), ("省份", "省", "地区", "省/直辖市"), example="北京"),
    Column("city", "城市", _("City"), ("所在城市", "市"), example="北京市"),
    Column(
        "address",
        "地址",
        _("Address"),
        ("详细地址", "联系地址", "通讯地址", "住址"),
        example="海淀区中关村大街1号",
        personal=True,
    ),
    Column("level", "客户级别", _("Level"), ("级别", "客户等级", "等级", "customer level"), example="A"),
    Column("source", "客户来源", _("Source"), ("来源", "渠道", "customer source"), example="展会"),
    Column("customer_type", "客户类型", _("Customer type"), ("类型", "customer type"), example="普通客户"),
    Column("industry", "行业", _("Industry"), ("所属行业",), example="信息技术"),
    Column("status", "客户状态", _("Lifecycle status"), ("状态", "生命周期", "lifecycle status"), example="潜在客户"),
    Column("owner", "负责人", _("Owner"), ("所属销售", "销售", "业务员", "owner username"), example=""),
    Column("tags", "标签", _("Tags"), ("客户标签",), example=""),
    Column("notes", "备注", _("Notes"), ("说明", "remark", "remarks", "note"), example="展会上认识"),
    Column("enterprise_type", "企业类型", _("Enterprise type"), ("enterprise type",)),
    Column("enterprise_nature", "企业性质", _("Enterprise nature"), ("enterprise nature",)),
    Column("scale", "企业规模", _("Scale"), ("规模", "人数", "员工人数", "company size")),
    Column("created_at", "创建时间", _("Created at"), ("创建日期", "created"), importable=False),
)

BY_KEY = {column.key: column for column in COLUMNS}
IMPORT_COLUMNS = tuple(column for column in COLUMNS if column.importable)

# Values of the choice columns as people write them (Chinese, English, and the stored value).
KIND_VALUES = {"个人": "individual", "企业": "enterprise", "公司": "enterprise", "单位": "enterprise"}
GENDER_VALUES = {"男": "M", "女": "F", "男性": "M", "女性": "F", "male": "M", "female": "F", "m": "M", "f": "F"}
STATUS_VALUES = {
    "潜在客户": "prospect",
    "潜在": "prospect",
    "意向客户": "intent",
    "意向": "intent",
    "成交客户": "won",
    "成交": "won",
    "售后中": "after_sales",
    "售后": "after_sales",
    "流失": "lost",
    "流失客户": "lost",
}
SCALE_VALUES = {
    "20人以下": "micro",
    "20-99人": "small",
    "100-499人": "medium",
    "500-1999人": "large",
    "2000人以上": "huge",
}
# The Chinese words exports write for the stored values (the first spelling above of each).
KIND_LABELS = {"individual": "个人", "enterprise": "企业"}
GENDER_LABELS = {"M": "男", "F": "女"}
STATUS_LABELS = {
    "prospect": "潜在客户",
    "intent": "意向客户",
    "won": "成交客户",
    "after_sales": "售后中",
    "lost": "流失",
}
SCALE_LABELS = {value: label for label, value in SCALE_VALUES.items()}

# A cell beginning with one of these may be run as a formula by Excel, WPS or LibreOffice (``=``,
# ``+``, ``-``, ``@``; a leading tab, CR or NUL can be skipped before the formula is read). Exports
# put an apostrophe before such a cell; the import removes it again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")

TAG_SEPARATORS = re.compile(r"[,，;；、|/]")


def header_key(text) -> str:
    """The form a header cell is compared in: full-width folded, lower case, no whitespace or '*'."""
    text = fold_width(str(text or ""))
    return re.sub(r"\s+", "", text).lower().rstrip("*").lstrip("\ufeff")


def custom_columns(custom_fields) -> list[Column]:
    """Columns for the administrator's custom fields: the label as header, ``cf_<key>`` as key."""
    return [
        Column(f"cf_{custom.key}", custom.label, custom.label, (custom.key,), required=False)
        for custom in custom_fields
    ]


def header_lookup(columns) -> dict[str, Column]:
    """Every accepted spelling of every column → the column. Earlier columns win a shared alias."""
    found: dict[str, Column] = {}
    for column in columns:
        for text in (column.header, column.key, *column.aliases, str(column.label)):
            found.setdefault(header_key(text), column)
    return found


@dataclass
class HeaderMapping:
    """How a file's header row maps onto columns."""

    columns: list[Column | None]  # per file column: the column it fills, or None (ignored)
    ignored: list[str]  # header cells that match no importable column
    missing: list[Column]  # required columns the file lacks
    repeated: list[str]  # header cells naming a column already mapped (the first one is used)

    def as_json(self) -> list[dict]:
        return [
            {"header": header, "key": column.key if column else "", "label": str(column.label) if column else ""}
            for header, column in zip(self.headers, self.columns, strict=True)
        ]

    headers: list[str] = field(default_factory=list)


def map_headers(header_row, columns) -> HeaderMapping:
    lookup = header_lookup(columns)
    mapped: list[Column | None] = []
    ignored, repeated, seen = [], [], set()
    headers = [str(cell or "").strip() for cell in header_row]
    for text in headers:
        column = lookup.get(header_key(text))
        if column is not None and not column.importable:
            column = None  # codes and creation times are assigned by CIMS, not imported
        if column is not None and column.key in seen:
            repeated.append(text)
            column = None
        elif column is None and text:
            ignored.append(text)
        if column is not None:
            seen.add(column.key)
        mapped.append(column)
    missing = [column for column in columns if column.required and column.key not in seen]
    return HeaderMapping(columns=mapped, ignored=ignored, missing=missing, repeated=repeated, headers=headers)
