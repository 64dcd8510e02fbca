"""Exports of customers, transactions and contracts: CSV and XLSX, streamed, masked, logged.

The columns and their Chinese headers are the import's (``customers.importing.columns``), so an
exported file can be corrected and imported again. Rows are rendered by django-import-export
resources (declared fields and ``dehydrate_*`` methods, below) and written by our own streaming
writers (``stream_csv``, ``stream_xlsx``), for the reasons given on ``CustomerExportResource``.

Three rules hold for every file written here:

- Scope and masking: only customers ``Customer.objects.visible_to(user)``; personal values exactly
  as the user sees them on screen (``customers.access.personal_fields_for``), in clear only for
  holders of ``customers.export_unmasked_customers`` (``exports_masked`` decides, once).
- No formulas: a text cell that a spreadsheet could read as a formula is neutralised with a
  leading apostrophe (``neutralise``); the importer strips it again.
- One access-log row per export: who, the filter (never a personal value), the row count, masked.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import partial
from types import SimpleNamespace
from xml.sax.saxutils import escape

from django.db.models import CharField, Prefetch, QuerySet, Value
from django.utils import timezone
from import_export import resources
from import_export.fields import Field

from cims.models import PersonalDataAccess, log_personal_data_access
from cims.normalize import format_phone
from customers.access import REVEALABLE_FIELDS, personal_fields_for
from customers.access_requests import active_export_grant
from customers.importing import columns
from customers.importing.columns import BY_KEY
from customers.models import (
    Contract,
    Customer,
    CustomerLevel,
    CustomerSource,
    CustomerType,
    CustomField,
    EnterpriseNature,
    EnterpriseType,
    Industry,
    Province,
    Tag,
    Transaction,
)
from followups.models import FollowUp

CSV, XLSX = "csv", "xlsx"
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FORMATS = tuple(CONTENT_TYPES)

# Rows fetched (and tags prefetched) per database round trip: what the export holds in memory.
CHUNK_SIZE = 2000
# Bytes gathered before a piece of the file is handed to the response.
FLUSH_BYTES = 64 * 1024
# Excel's limits: rows per sheet (a longer export continues on the next sheet) and text per cell.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL = 32_767

FORMULA_STARTS = columns.FORMULA_STARTS
# Characters XML 1.0 does not allow (an XLSX cannot hold them; they are dropped).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Cell = str | Decimal | int | float | None
_CN_MOBILE = re.compile(r"^\+861[3-9][0-9]{9}$")


# The lookup columns, written by name.
LOOKUPS = {
    "province": Province,
    "level": CustomerLevel,
    "source": CustomerSource,
    "customer_type": CustomerType,
    "industry": Industry,
    "enterprise_type": EnterpriseType,
    "enterprise_nature": EnterpriseNature,
}


class ExportError(ValueError):
    """An export that cannot be made as asked (an unknown format); the message is for the user."""


# --- Cell values -------------------------------------------------------------------------------


def neutralise(value: Cell) -> Cell:
    """A text cell that could run as a formula, made inert with a leading apostrophe.

    django-import-export's ``IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT`` is not enough: it removes
    one leading ``=`` (``==1+1`` still starts with ``=``), ignores ``+``, ``-``, ``@``, tab and CR,
    and turns ``None`` into the text "None". The apostrophe (OWASP's advice, and how a person
    types such text into Excel) keeps the value readable, and the importer removes it again.
    Numbers stay numbers; ``None`` becomes an empty cell.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def exports_masked(user) -> bool:
    """Whether ``user``'s exports mask personal data: the one answer for the file and the log.

    Masked means "as on screen": phone, mobile, email and address in clear only for holders of
    ``customers.view_personal_data``, ID and bank account numbers masked for everyone. Only
    ``customers.export_unmasked_customers`` writes every field in clear, and so does an active
    unmasked-export grant (an approved access request, ``customers.access_requests``): it is read
    here rather than added to the user's permissions, so it stops counting at its end exactly,
    whenever the expiry job runs.
    """
    if user.has_perm("customers.export_unmasked_customers"):
        return False
    return _export_grant(user) is None


def _export_grant(user):
    """``user``'s active unmasked-export grant, looked up once per user object (one request): the
    file's masks and its log row ask for it, and must agree; its end is checked on every call."""
    if not hasattr(user, "_cims_export_grant"):
        user._cims_export_grant = active_export_grant(user)
    grant = user._cims_export_grant
    return grant if grant is not None and grant.expires_at > timezone.now() else None


def masks_for(user) -> dict[str, Callable[[str], str] | None]:
    """For each personal field: the mask the export applies, or None to write it in clear.

    Decided once per export from ``personal_fields_for`` (the rule the screen uses), asked about a
    probe object, rather than per row: a million rows would otherwise ask for the permissions
    twelve million times.
    """
    if not exports_masked(user):
        return dict.fromkeys(REVEALABLE_FIELDS)
    probe = SimpleNamespace(**dict.fromkeys(REVEALABLE_FIELDS, "probe"))
    shown = personal_fields_for(user, probe)
    return {name: REVEALABLE_FIELDS[name] if shown[name]["masked"] else None for name in REVEALABLE_FIELDS}


def _text(value) -> str:
    return "" if value is None else str(value)


def _iso_date(value: datetime.date | None) -> str:
    return value.isoformat() if value else ""


def _local_datetime(value: datetime.datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def format_phone_fast(e164: str) -> str:
    """``cims.normalize.format_phone``, without parsing the common case (a mainland mobile number,
    138 1234 5678), which is most of a million-row export's phone numbers."""
    if _CN_MOBILE.match(e164):
        return f"{e164[3:6]} {e164[6:10]} {e164[10:]}"
    return format_phone(e164)


# --- Resources ---------------------------------------------------------------------------------


def _column(key: str, attribute: str | None = None) -> Field:
    """A declared export field with the Chinese header of the shared column spec."""
    return Field(attribute=attribute, column_name=BY_KEY[key].header)


class FastExportMixin:
    """Render a row with django-import-export's field and dehydrate machinery, planned once.

    ``Resource.export_resource`` looks up the export order and each field's name (a linear search
    over the fields, per field) for every row; the plan of (field → dehydrate method or
    ``Field.export``) does not change within an export, so it is built once in ``__init__``.
    """

    def _build_plan(self) -> None:
        self._plan = []
        for field in self.get_export_fields():
            method = field.get_dehydrate_method(self.get_field_name(field))
            method = method if callable(method) else getattr(self, method, None)
            self._plan.append(method if method is not None else field.export)

    def export_resource(self, instance, selected_fields=None, **kwargs):
        if selected_fields or kwargs:
            return super().export_resource(instance, selected_fields, **kwargs)
        return [render(instance) for render in self._plan]

    def rows(self, queryset: QuerySet) -> Iterator[list[Cell]]:
        for instance in queryset.iterator(chunk_size=CHUNK_SIZE):
            yield self.export_resource(instance)


class CustomerExportResource(FastExportMixin, resources.ModelResource):
    """A customer as a row of an export: the columns of ``columns.COLUMNS`` and the active custom fields.

    Values as people read them: lookups, province and tags by name, the owner by username, choices
    as the Chinese words the importer accepts, dates in ISO form, phones formatted for reading, and
    personal fields masked for ``user`` as on screen (``masks_for``).

    The rows are streamed by ``stream_csv`` / ``stream_xlsx`` instead of ``Resource.export()``:
    that builds one ``tablib.Dataset`` holding every row (and tablib builds the whole file again
    in memory on ``Dataset.export``), where a million-row export must run in bounded memory. Its
    formula escaping (``IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT``) is not used either: it strips a
    single leading ``=`` and nothing else; ``neutralise`` prefixes an apostrophe instead.
    """

    code = _column("code", "code")
    name = _column("name", "name")
    kind = _column("kind")
    company = _column("company", "company")
    gender = _column("gender")
    birth_date = _column("birth_date")
    mobile = _column("mobile")
    phone = _column("phone")
    fax = _column("fax", "fax")
    email = _column("email")
    id_number = _column("id_number")
    bank_account = _column("bank_account")
    province = _column("province")
    city = _column("city", "city")
    address = _column("address")
    level = _column("level")
    source = _column("source")
    customer_type = _column("customer_type")
    industry = _column("industry")
    status = _column("status")
    owner = _column("owner")
    tags = _column("tags")
    notes = _column("notes", "notes")
    enterprise_type = _column("enterprise_type")
    enterprise_nature = _column("enterprise_nature")
    scale = _column("scale")
    created_at = _column("created_at")

    class Meta:
        model = Customer
        fields = tuple(column.key for column in columns.COLUMNS)
        export_order = fields

    def __init__(self, *, user, custom_fields: Iterable[CustomField] = (), **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.masks = masks_for(user)
        self.names = self.lookup_names()
        for column in columns.custom_columns(custom_fields):
            key = column.key.removeprefix("cf_")
            self.fields[column.key] = Field(column_name=column.header, dehydrate_method=partial(self._custom, key))
        self._build_plan()

    @staticmethod
    def queryset(queryset: QuerySet) -> QuerySet:
        """What one export reads: the owner in the same query, the tags once per chunk; the
        lookups (``LOOKUPS``) are small tables read once, by id, rather than joined to every row."""
        return (
            queryset.select_related("owner")
            .defer(
                "name_grams",
                "phone_bidx",
                "mobile_bidx",
                "email_bidx",
                "id_number_bidx",
                "updated_at",
                "deleted_at",
                "deleted_by",
                "created_by",
                "merged_into",
                "owner__password",
                "owner__last_login",
                "owner__email",
                "owner__date_joined",
            )
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name").order_by("name")))
        )

    @staticmethod
    def lookup_names() -> dict[str, dict[int, str]]:
        """{lookup field: {id: name}} of every lookup, in one query."""
        parts = [
            model.objects.order_by()
            .annotate(field=Value(name, output_field=CharField()))
            .values_list("field", "id", "name")
            for name, model in LOOKUPS.items()
        ]
        names: dict[str, dict[int, str]] = {name: {} for name in LOOKUPS}
        for field, pk, name in parts[0].union(*parts[1:], all=True):
            names[field][pk] = name
        return names

    def _personal(self, customer: Customer, name: str) -> str:
        value = getattr(customer, name) or ""
        mask = self.masks[name]
        if mask is not None:
            return mask(value)
        return format_phone_fast(value) if name in ("phone", "mobile") else value

    def _custom(self, key: str, customer: Customer) -> Cell:
        value = (customer.custom_data or {}).get(key)
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, list | tuple):
            return ",".join(_text(item) for item in value)
        if isinstance(value, int | float | Decimal):
            return value
        return _text(value)

    def dehydrate_kind(self, customer: Customer) -> str:
        return columns.KIND_LABELS.get(customer.kind, customer.kind)

    def dehydrate_gender(self, customer: Customer) -> str:
        return columns.GENDER_LABELS.get(customer.gender, customer.gender)

    def dehydrate_birth_date(self, customer: Customer) -> str:
        return _iso_date(customer.birth_date)

    def dehydrate_mobile(self, customer: Customer) -> str:
        return self._personal(customer, "mobile")

    def dehydrate_phone(self, customer: Customer) -> str:
        return self._personal(customer, "phone")

    def dehydrate_email(self, customer: Customer) -> str:
        return self._personal(customer, "email")

    def dehydrate_id_number(self, customer: Customer) -> str:
        return self._personal(customer, "id_number")

    def dehydrate_bank_account(self, customer: Customer) -> str:
        return self._personal(customer, "bank_account")

    def dehydrate_address(self, customer: Customer) -> str:
        return self._personal(customer, "address")

    def dehydrate_province(self, customer: Customer) -> str:
        return self.names["province"].get(customer.province_id, "")

    def dehydrate_level(self, customer: Customer) -> str:
        return self.names["level"].get(customer.level_id, "")

    def dehydrate_source(self, customer: Customer) -> str:
        return self.names["source"].get(customer.source_id, "")

    def dehydrate_customer_type(self, customer: Customer) -> str:
        return self.names["customer_type"].get(customer.customer_type_id, "")

    def dehydrate_industry(self, customer: Customer) -> str:
        return self.names["industry"].get(customer.industry_id, "")

    def dehydrate_enterprise_type(self, customer: Customer) -> str:
        return self.names["enterprise_type"].get(customer.enterprise_type_id, "")

    def dehydrate_enterprise_nature(self, customer: Customer) -> str:
        return self.names["enterprise_nature"].get(customer.enterprise_nature_id, "")

    def dehydrate_status(self, customer: Customer) -> str:
        return columns.STATUS_LABELS.get(customer.status, customer.status)

    def dehydrate_scale(self, customer: Customer) -> str:
        return columns.SCALE_LABELS.get(customer.scale, customer.scale)

    def dehydrate_owner(self, customer: Customer) -> str:
        return customer.owner.username if customer.owner is not None else ""

    def dehydrate_tags(self, customer: Customer) -> str:
        return ",".join(tag.name for tag in customer.tags.all())

    def dehydrate_created_at(self, customer: Customer) -> str:
        return _local_datetime(customer.created_at)


# The Chinese words of the transaction and contract choices (as the zh-hans UI shows them).
CHANNEL_LABELS = {"offline": "门店", "online": "线上", "phone": "电话", "partner": "合作伙伴", "other": "其他"}
CONTRACT_STATUS_LABELS = {"draft": "草稿", "active": "生效中", "expired": "已到期", "terminated": "已终止"}


class TransactionExportResource(FastExportMixin, resources.ModelResource):
    """A transaction with its customer's code and name; the amount a plain decimal (a number in XLSX)."""

    customer_code = Field(attribute="customer__code", column_name="客户编号")
    customer_name = Field(attribute="customer__name", column_name="客户名称")
    date = Field(column_name="日期")
    amount = Field(column_name="金额（元）")
    product = Field(attribute="product", column_name="产品/说明")
    channel = Field(column_name="渠道")

    class Meta:
        model = Transaction
        fields = ("customer_code", "customer_name", "date", "amount", "product", "channel")
        export_order = fields

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._build_plan()

    @staticmethod
    def queryset(queryset: QuerySet) -> QuerySet:
        return queryset.select_related("customer").only(
            "id", "date", "amount", "product", "channel", "customer__id", "customer__code", "customer__name"
        )

    def dehydrate_date(self, transaction: Transaction) -> str:
        return _iso_date(transaction.date)

    def dehydrate_amount(self, transaction: Transaction) -> Decimal:
        return transaction.amount

    def dehydrate_channel(self, transaction: Transaction) -> str:
        return CHANNEL_LABELS.get(transaction.channel, transaction.channel)


class FollowUpExportResource(FastExportMixin, resources.ModelResource):
    """A follow-up (跟进记录) with its customer's code and name and who recorded it."""

    customer_code = Field(attribute="customer__code", column_name="客户编号")
    customer_name = Field(attribute="customer__name", column_name="客户名称")
    kind = Field(column_name="跟进方式")
    happened_at = Field(column_name="跟进时间")
    content = Field(attribute="content", column_name="跟进内容")
    result = Field(attribute="result", column_name="跟进结果")
    next_contact_date = Field(column_name="下次联系日期")
    satisfaction = Field(attribute="satisfaction", column_name="满意度")
    created_by = Field(column_name="记录人")

    class Meta:
        model = FollowUp
        fields = (
            "customer_code",
            "customer_name",
            "kind",
            "happened_at",
            "content",
            "result",
            "next_contact_date",
            "satisfaction",
            "created_by",
        )
        export_order = fields

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._build_plan()
        self.kinds = dict(FollowUp.Kind.choices)

    @staticmethod
    def queryset(queryset: QuerySet) -> QuerySet:
        return queryset.select_related("customer", "created_by").only(
            "id",
            "kind",
            "happened_at",
            "content",
            "result",
            "next_contact_date",
            "satisfaction",
            "customer__id",
            "customer__code",
            "customer__name",
            "created_by__id",
            "created_by__username",
        )

    def dehydrate_kind(self, followup: FollowUp) -> str:
        return str(self.kinds.get(followup.kind, followup.kind))

    def dehydrate_happened_at(self, followup: FollowUp) -> str:
        return _local_datetime(followup.happened_at)

    def dehydrate_next_contact_date(self, followup: FollowUp) -> str:
        return _iso_date(followup.next_contact_date)

    def dehydrate_created_by(self, followup: FollowUp) -> str:
        return followup.created_by.username if followup.created_by else ""


class ContractExportResource(FastExportMixin, resources.ModelResource):
    customer_code = Field(attribute="customer__code", column_name="客户编号")
    customer_name = Field(attribute="customer__name", column_name="客户名称")
    number = Field(attribute="number", column_name="合同编号")
    title = Field(attribute="title", column_name="合同名称")
    amount = Field(column_name="金额（元）")
    start_date = Field(column_name="开始日期")
    end_date = Field(column_name="结束日期")
    status = Field(column_name="状态")

    class Meta:
        model = Contract
        fields = ("customer_code", "customer_name", "number", "title", "amount", "start_date", "end_date", "status")
        export_order = fields

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._build_plan()

    @staticmethod
    def queryset(queryset: QuerySet) -> QuerySet:
        return queryset.select_related("customer").only(
            "id",
            "number",
            "title",
            "amount",
            "start_date",
            "end_date",
            "status",
            "customer__id",
            "customer__code",
            "customer__name",
        )

    def dehydrate_amount(self, contract: Contract) -> Decimal:
        return contract.amount

    def dehydrate_start_date(self, contract: Contract) -> str:
        return _iso_date(contract.start_date)

    def dehydrate_end_date(self, contract: Contract) -> str:
        return _iso_date(contract.end_date)

    def dehydrate_status(self, contract: Contract) -> str:
        return CONTRACT_STATUS_LABELS.get(contract.status, contract.status)


# --- Writers -----------------------------------------------------------------------------------


def stream_csv(headers: list[str], rows: Iterable[list[Cell]]) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM (so that Excel reads Chinese), yielded about every ``FLUSH_BYTES``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")

    def cell(value: Cell) -> Cell:
        if value.__class__ is str:
            if "\0" in value:
                value = value.replace("\0", "")  # a NUL breaks most CSV readers
            return "'" + value if value.startswith(FORMULA_STARTS) else value
        if isinstance(value, Decimal):
            return format(value, "f")
        return neutralise(value)

    writer.writerow([cell(header) for header in headers])
    for row in rows:
        writer.writerow([cell(value) for value in row])
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class _Sink:
    """A write-only file for ``zipfile``: having no ``seek``/``tell``, the archive is written
    front to back (sizes in data descriptors), and what was written can be drained and sent."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return data


_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Every .xml part not named below is a worksheet, so the content types can be written first,
# before the number of sheets is known.
_CONTENT_TYPES = (
    _XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _XML_HEAD + f'<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_STYLES = (
    _XML_HEAD + f'<styleSheet xmlns="{_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# The header row stays in view while scrolling.
_SHEET_HEAD = (
    _XML_HEAD + f'<worksheet xmlns="{_NS}"><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    "</sheetView></sheetViews><sheetData>"
).encode()
_SHEET_TAIL = b"</sheetData></worksheet>"
_QUOTE = {'"': "&quot;"}


def _column_letters(count: int) -> list[str]:
    letters = []
    for index in range(1, count + 1):
        name = ""
        while index:
            index, remainder = divmod(index - 1, 26)
            name = chr(65 + remainder) + name
        letters.append(name)
    return letters


def _xlsx_row(number: int, letters: list[str], values: list[Cell], style: str = "") -> str:
    cells = []
    for letter, value in zip(letters, values, strict=False):
        if value is None or value == "":
            continue  # an empty cell is an absent cell
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            shown = format(value, "f") if isinstance(value, Decimal) else repr(value)
            cells.append(f'<c r="{letter}{number}"{style}><v>{shown}</v></c>')
            continue
        text = neutralise(XML_ILLEGAL.sub("", str(value)))[:XLSX_MAX_CELL]
        cells.append(
            f'<c r="{letter}{number}" t="inlineStr"{style}><is><t xml:space="preserve">{escape(text)}</t></is></c>'
        )
    return f'<row r="{number}">{"".join(cells)}</row>'


def _sheet_names(title: str, count: int) -> list[str]:
    title = re.sub(r"[\[\]:*?/\\]", "", title)[:24] or "Sheet"
    return [title if index == 1 else f"{title} ({index})" for index in range(1, count + 1)]


def stream_xlsx(headers: list[str], rows: Iterable[list[Cell]], *, title: str = "Sheet") -> Iterator[bytes]:
    """A minimal XLSX (inline strings, bold frozen header row), yielded while rows are produced.

    ``zipfile`` writes to the unseekable ``_Sink``, so each member's sizes go into a data
    descriptor after its data and nothing is ever rewritten; the sheet is opened with
    ``force_zip64`` because its final size is unknown when it starts (a million rows of thirty
    columns can pass 4 GB uncompressed). An export longer than Excel's sheet continues on further
    sheets, each with the header row.
    """
    sink = _Sink()
    letters = _column_letters(len(headers))
    header_xml = _xlsx_row(1, letters, list(headers), style=' s="1"')
    rows = iter(rows)
    pending = next(rows, None)
    sheets = 0
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        while True:
            sheets += 1
            with archive.open(f"xl/worksheets/sheet{sheets}.xml", "w", force_zip64=True) as sheet:
                sheet.write(_SHEET_HEAD)
                sheet.write(header_xml.encode())
                batch, batch_size, number = [], 0, 1
                while pending is not None and number < XLSX_MAX_ROWS:
                    number += 1
                    row_xml = _xlsx_row(number, letters, pending)
                    batch.append(row_xml)
                    batch_size += len(row_xml)
                    pending = next(rows, None)
                    if batch_size >= FLUSH_BYTES:
                        sheet.write("".join(batch).encode())
                        batch, batch_size = [], 0
                        if sink.size >= FLUSH_BYTES:
                            yield sink.drain()
                sheet.write("".join(batch).encode())
                sheet.write(_SHEET_TAIL)
            yield sink.drain()
            if pending is None:
                break
        names = _sheet_names(title, sheets)
        sheet_entries = "".join(
            f'<sheet name="{escape(name, _QUOTE)}" sheetId="{index}" r:id="rId{index}"/>'
            for index, name in enumerate(names, start=1)
        )
        archive.writestr(
            "xl/workbook.xml",
            _XML_HEAD + f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheets>{sheet_entries}</sheets></workbook>',
        )
        relations = "".join(
            f'<Relationship Id="rId{index}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{index}.xml"/>'
            for index in range(1, sheets + 1)
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            _XML_HEAD + f'<Relationships xmlns="{_PKG_REL_NS}">{relations}'
            f'<Relationship Id="rId{sheets + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>',
        )
    yield sink.drain()


def stream(fmt: str, headers: list[str], rows: Iterable[list[Cell]], *, title: str = "Sheet") -> Iterator[bytes]:
    if fmt == CSV:
        return stream_csv(headers, rows)
    if fmt == XLSX:
        return stream_xlsx(headers, rows, title=title)
    raise ExportError(f"unknown export format {fmt!r}")


# --- Exports -----------------------------------------------------------------------------------


class ExportFile(tuple):
    """``(file name, content type, the file's bytes as an iterator)``, and the row count in ``rows``."""

    def __new__(cls, filename: str, content_type: str, content: Iterator[bytes], *, rows: int):
        export = super().__new__(cls, (filename, content_type, content))
        export.rows = rows
        return export


# Filter values that may carry personal data (a searched phone number, a custom field's text):
# the access log records that they were used, not what they were.
_FREE_TEXT = re.compile(r"^(q|search|cf_.+)$")


def describe_filters(data: dict) -> str:
    """The filter of an export for the access log: ``status=won&level=3&q=…``, personal text hidden."""
    parts = []
    for name, value in data.items():
        if value in (None, "", [], ()) or name in ("format", "after", "before", "per_page"):
            continue
        if _FREE_TEXT.match(name):
            value = "…"
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        elif hasattr(value, "pk"):
            value = value.pk
        parts.append(f"{name}={value}")
    return "&".join(parts)


def _filename(stem: str, fmt: str) -> str:
    return f"{stem}-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"


def _check_format(fmt: str) -> None:
    if fmt not in CONTENT_TYPES:
        raise ExportError(f"unknown export format {fmt!r}")


def export_customers(
    *, user, queryset: QuerySet, fmt: str, detail: str = "", request=None, custom_fields=None
) -> ExportFile:
    """A customer export for ``user``: (file name, content type, the file's bytes as an iterator).

    ``queryset`` is the filtered and sorted list; it is narrowed to what ``user`` may see here
    again, so that no caller can export beyond the user's scope. The access-log row is written
    now, before the first byte leaves, with the number of rows the file will hold. ``custom_fields``:
    the active custom fields if the caller has them already (one query fewer).
    """
    _check_format(fmt)
    queryset = queryset.visible_to(user)
    if custom_fields is None:
        custom_fields = CustomField.objects.filter(is_active=True)
    resource = CustomerExportResource(user=user, custom_fields=custom_fields)
    count = queryset.count()
    masked = exports_masked(user)
    if not masked and not user.has_perm("customers.export_unmasked_customers"):
        grant = _export_grant(user)
        detail = f"{detail} [access request #{grant.pk}]".strip() if grant else detail
    log_personal_data_access(
        user=user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="customers.customer",
        rows=count,
        detail=detail,
        masked=masked,
        request=request,
    )
    rows = resource.rows(resource.queryset(queryset))
    content = stream(fmt, resource.get_export_headers(), rows, title="客户")
    return ExportFile(_filename("customers", fmt), CONTENT_TYPES[fmt], content, rows=count)


def _export_related(
    *, user, queryset: QuerySet, fmt: str, detail: str, request, resource, stem: str, title: str, object_type: str
) -> ExportFile:
    _check_format(fmt)
    queryset = queryset.filter(customer__in=Customer.objects.visible_to(user).values("pk"))
    count = queryset.count()
    # No personal field is in these files (code, name and the deal), so nothing is masked or not.
    log_personal_data_access(
        user=user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type=object_type,
        rows=count,
        detail=detail,
        masked=None,
        request=request,
    )
    rows = resource.rows(resource.queryset(queryset))
    content = stream(fmt, resource.get_export_headers(), rows, title=title)
    return ExportFile(_filename(stem, fmt), CONTENT_TYPES[fmt], content, rows=count)


def export_transactions(*, user, queryset: QuerySet, fmt: str, detail: str = "", request=None) -> ExportFile:
    """Transactions of the customers ``user`` may see (``queryset`` filtered and sorted by the caller)."""
    return _export_related(
        user=user,
        queryset=queryset,
        fmt=fmt,
        detail=detail,
        request=request,
        resource=TransactionExportResource(),
        stem="transactions",
        title="交易记录",
        object_type="customers.transaction",
    )


def export_followups(*, user, queryset: QuerySet, fmt: str, detail: str = "", request=None) -> ExportFile:
    """Follow-ups of the customers ``user`` may see (``queryset`` filtered and sorted by the caller)."""
    return _export_related(
        user=user,
        queryset=queryset,
        fmt=fmt,
        detail=detail,
        request=request,
        resource=FollowUpExportResource(),
        stem="followups",
        title="跟进记录",
        object_type="followups.followup",
    )


def export_contracts(*, user, queryset: QuerySet, fmt: str, detail: str = "", request=None) -> ExportFile:
    """Contracts of the customers ``user`` may see (``queryset`` filtered and sorted by the caller)."""
    return _export_related(
        user=user,
        queryset=queryset,
        fmt=fmt,
        detail=detail,
        request=request,
        resource=ContractExportResource(),
        stem="contracts",
        title="合同",
        object_type="customers.contract",
    )
