"""django-import-export's description of a customer file: one Field per column, one Widget per kind
of value.

The widgets parse and normalise a cell exactly as the customer form does (cims.normalize for
phones, e-mails, ID card and bank account numbers; lookups, provinces, owners and tags by name;
dates in the usual Chinese spellings and Excel date cells). ``Widget.clean`` raises ``ValueError``
with a translated message, which becomes that cell's error in the preview.

Our import engine (customers.importing.engine) calls these widgets row by row itself instead of
``Resource.import_data``; the reasons are in that module's docstring. Each widget loads what it
looks values up in (lookups, provinces, owners, tags) once per resource instance, that is once per
import, and remembers the result of every distinct cell value it has parsed (a file repeats its
provinces, levels and dates many thousand times).
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export import resources, widgets
from import_export.fields import Field

from cims.normalize import (
    fold_width,
    normalize_bank_account,
    normalize_email,
    normalize_id_number,
    normalize_phone,
)
from customers.importing import columns as spec
from customers.importing.files import cell_text
from customers.models import (
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
)

FORMULA_STARTS = spec.FORMULA_STARTS
MEMO_LIMIT = 200_000  # distinct values remembered per widget (bounded memory on huge files)


def unguard(text: str) -> str:
    """Drop the apostrophe our export puts before a formula-like cell ("'=x" → "=x")."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_STARTS:
        return text[1:]
    return text


def word_key(text) -> str:
    """How choice words and names are compared: full-width folded, lower case, no spaces."""
    return re.sub(r"\s+", "", fold_width(str(text))).lower()


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(str(m) for m in exc.messages)
    return str(exc)


class CellWidget(widgets.Widget):
    """A widget for one kind of cell. ``parse`` gets the cell's text (never empty) and returns the
    value to store or raises ValueError/ValidationError; results are remembered per value."""

    memo_results = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._memo: dict = {}

    def __deepcopy__(self, memo):
        # Resources deep-copy their fields per instance: each instance starts with empty caches.
        copy = self.__class__.__new__(self.__class__)
        copy.__dict__.update(self.__dict__)
        copy._memo = {}
        for name in getattr(self, "_caches", ()):
            copy.__dict__.pop(name, None)
        return copy

    def text(self, value) -> str:
        return unguard(cell_text(value)).strip()

    def clean(self, value, row=None, **kwargs):
        if value is None or value == "":
            return self.empty()
        key = value if isinstance(value, str) else (type(value), value)
        hit = self._memo.get(key)
        if hit is not None:
            if hit[0]:
                return hit[1]
            raise ValueError(hit[1])
        try:
            result = self.parse_value(value)
        except (ValueError, ValidationError) as exc:
            message = _message(exc)
            if len(self._memo) < MEMO_LIMIT:
                self._memo[key] = (False, message)
            raise ValueError(message) from None
        if self.memo_results and len(self._memo) < MEMO_LIMIT:
            self._memo[key] = (True, result)
        return result

    def parse_value(self, value):
        text = self.text(value)
        return self.parse(text) if text else self.empty()

    def empty(self):
        return ""

    def parse(self, text: str):
        return text


class TextWidget(CellWidget):
    memo_results = False  # names and notes rarely repeat

    def __init__(self, max_length: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def parse(self, text: str) -> str:
        text = fold_width(text)
        if self.max_length and len(text) > self.max_length:
            raise ValueError(
                _("At most %(max)d characters (this one has %(length)d).")
                % {"max": self.max_length, "length": len(text)}
            )
        return text


class PhoneWidget(CellWidget):
    def parse(self, text: str) -> str:
        return normalize_phone(text)

    def render(self, value, obj=None, **kwargs):
        from cims.normalize import format_phone

        return format_phone(value or "")


class EmailWidget(CellWidget):
    memo_results = False

    def parse(self, text: str) -> str:
        value = normalize_email(text)
        if len(value) > 254:
            raise ValueError(_("An e-mail address has at most 254 characters."))
        return value


class IdNumberWidget(CellWidget):
    memo_results = False

    def parse(self, text: str) -> str:
        return normalize_id_number(text)


class BankAccountWidget(CellWidget):
    memo_results = False

    def parse(self, text: str) -> str:
        return normalize_bank_account(text)


DATE_PATTERN = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")


def parse_date(value) -> datetime.date:
    """2026-01-05, 2026/1/5, 2026年1月5日, 2026.1.5, 20260105, or an Excel date cell."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = fold_width(unguard(cell_text(value)))
    text = text.split(" ")[0] if re.fullmatch(r"\S+ \d{1,2}:\d{2}(:\d{2})?", text) else text
    match = DATE_PATTERN.fullmatch(text) or COMPACT_DATE.fullmatch(text)
    if match:
        try:
            return datetime.date(*(int(part) for part in match.groups()))
        except ValueError:
            pass
    raise ValueError(_("“%(value)s” is not a date; write it like 2026-01-05.") % {"value": text})


class DateWidget(CellWidget):
    def __init__(self, birth_date: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.birth_date = birth_date

    def empty(self):
        return None

    def parse_value(self, value):
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
        date = parse_date(value)
        if self.birth_date:
            # The customer form's rules (CustomerForm.clean_birth_date).
            if date > timezone.localdate():
                raise ValueError(_("The birth date cannot be in the future."))
            if date.year < 1900:
                raise ValueError(_("Enter a birth date after 1900."))
        return date

    def render(self, value, obj=None, **kwargs):
        return value.isoformat() if value else ""


class ChoiceWidget(CellWidget):
    """A choice column: the words people write (columns.py maps), the stored value, or the label."""

    def __init__(self, words: dict[str, str], choices, labels: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.words, self.choices, self.labels = words, choices, labels or {}

    def _table(self) -> dict[str, str]:
        table = getattr(self, "_table_cache", None)
        if table is None:
            table = {word_key(word): value for word, value in self.words.items()}
            for value, label in self.choices:
                if value:
                    table.setdefault(word_key(value), value)
                    table.setdefault(word_key(label), value)
            self._table_cache = table
        return table

    _caches = ("_table_cache",)

    def parse(self, text: str) -> str:
        found = self._table().get(word_key(text))
        if found is None:
            options = "、".join(dict.fromkeys(self.labels.values())) or "、".join(dict.fromkeys(self.words))
            raise ValueError(_("“%(value)s” is not one of: %(options)s.") % {"value": text, "options": options})
        return found

    def render(self, value, obj=None, **kwargs):
        return self.labels.get(value, value or "")


class LookupWidget(CellWidget):
    """A lookup (level, source, industry …) by its name; only entries in use are accepted."""

    _caches = ("_ids",)

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def ids(self) -> dict[str, int]:
        ids = getattr(self, "_ids", None)
        if ids is None:
            ids = {
                word_key(name): pk for pk, name in self.model.objects.filter(is_active=True).values_list("pk", "name")
            }
            self._ids = ids
        return ids

    def empty(self):
        return None

    def parse(self, text: str) -> int:
        found = self.ids().get(word_key(text))
        if found is None:
            raise ValueError(
                _("There is no %(kind)s “%(value)s” in the system settings.")
                % {"kind": self.model._meta.verbose_name, "value": text}
            )
        return found


class ProvinceWidget(LookupWidget):
    """A province by full name (广东省), short name (广东) or GB/T 2260 code (44)."""

    def __init__(self, **kwargs):
        super().__init__(Province, **kwargs)

    def ids(self) -> dict[str, int]:
        ids = getattr(self, "_ids", None)
        if ids is None:
            ids = {}
            for pk, code, name, short in Province.objects.values_list("pk", "code", "name", "short_name"):
                for spelling in (code, name, short):
                    ids[word_key(spelling)] = pk
            self._ids = ids
        return ids

    def parse(self, text: str) -> int:
        found = self.ids().get(word_key(text))
        if found is None:
            raise ValueError(_("“%(value)s” is not a province; write it like 广东 or 广东省.") % {"value": text})
        return found


AMBIGUOUS = -1


class OwnerWidget(CellWidget):
    """An owner by username or name, among the users who may own customers (the form's choices)."""

    _caches = ("_ids",)

    def ids(self) -> dict[str, int]:
        ids = getattr(self, "_ids", None)
        if ids is None:
            from customers.forms import owner_choices

            ids = {}
            users = list(owner_choices().values_list("pk", "username", "name"))
            for pk, _username, name in users:
                if name:
                    key = word_key(name)
                    ids[key] = AMBIGUOUS if ids.get(key, pk) != pk else pk
            for pk, username, _name in users:
                ids[word_key(username)] = pk  # a username is unique and wins over a same-named person
            self._ids = ids
        return ids

    def empty(self):
        return None

    def parse(self, text: str) -> int:
        found = self.ids().get(word_key(text))
        if found == AMBIGUOUS:
            raise ValueError(_("Several users are called “%(value)s”; write the username.") % {"value": text})
        if found is None:
            raise ValueError(_("“%(value)s” is not a user who may own customers.") % {"value": text})
        return found


class TagsWidget(CellWidget):
    """Existing tags by name, separated by commas, semicolons, 、 or |; returns their ids."""

    _caches = ("_ids",)

    def ids(self) -> dict[str, int]:
        ids = getattr(self, "_ids", None)
        if ids is None:
            ids = {word_key(name): pk for pk, name in Tag.objects.values_list("pk", "name")}
            self._ids = ids
        return ids

    def empty(self):
        return []

    def parse(self, text: str) -> list[int]:
        names = [part.strip() for part in spec.TAG_SEPARATORS.split(text) if part.strip()]
        found, unknown = [], []
        for name in names:
            pk = self.ids().get(word_key(name))
            if pk is None:
                unknown.append(name)
            elif pk not in found:
                found.append(pk)
        if unknown:
            raise ValueError(_("No such tag: %(names)s.") % {"names": "、".join(unknown)})
        return found


class CustomFieldWidget(CellWidget):
    """A value of an administrator-defined field, typed as the form types it (custom_form_field);
    returned as it is stored in Customer.custom_data (dates ISO, numbers as strings)."""

    def __init__(self, definition: CustomField, **kwargs):
        super().__init__(**kwargs)
        self.definition = definition
        self.required = definition.required

    def empty(self):
        return None

    def parse_value(self, value):
        kind = self.definition.field_type
        if kind == CustomField.DATE and isinstance(value, datetime.date | datetime.datetime):
            return parse_date(value).isoformat()
        text = self.text(value)
        if not text:
            return None
        if kind == CustomField.NUMBER:
            try:
                number = Decimal(fold_width(text).replace(",", ""))
            except InvalidOperation:
                raise ValueError(_("“%(value)s” is not a number.") % {"value": text}) from None
            if not number.is_finite():
                raise ValueError(_("“%(value)s” is not a number.") % {"value": text})
            sign, digits, exponent = number.as_tuple()
            decimals = max(0, -exponent)
            if decimals > 4 or len(digits) - decimals > 14:
                raise ValueError(_("At most 14 digits before and 4 after the decimal point."))
            return str(number)
        if kind == CustomField.DATE:
            return parse_date(text).isoformat()
        if kind == CustomField.CHOICE:
            options = {word_key(option): option for option in self.definition.choice_list}
            found = options.get(word_key(text))
            if found is None:
                raise ValueError(
                    _("“%(value)s” is not one of: %(options)s.")
                    % {"value": text, "options": "、".join(self.definition.choice_list)}
                )
            return found
        text = fold_width(text)
        if len(text) > 200:
            raise ValueError(
                _("At most %(max)d characters (this one has %(length)d).") % {"max": 200, "length": len(text)}
            )
        return text


def _field(key: str, widget) -> Field:
    column = spec.BY_KEY[key]
    return Field(attribute=key, column_name=column.header, widget=widget)


class CustomerImportResource(resources.ModelResource):
    """The importable columns of a customer file, headed in Chinese as in the template."""

    name = _field("name", TextWidget(128))
    kind = _field("kind", ChoiceWidget(spec.KIND_VALUES, Customer.KINDS, spec.KIND_LABELS))
    company = _field("company", TextWidget(128))
    gender = _field("gender", ChoiceWidget(spec.GENDER_VALUES, Customer.Gender.choices, spec.GENDER_LABELS))
    birth_date = _field("birth_date", DateWidget(birth_date=True))
    mobile = _field("mobile", PhoneWidget())
    phone = _field("phone", PhoneWidget())
    fax = _field("fax", PhoneWidget())
    email = _field("email", EmailWidget())
    id_number = _field("id_number", IdNumberWidget())
    bank_account = _field("bank_account", BankAccountWidget())
    province = _field("province", ProvinceWidget())
    city = _field("city", TextWidget(32))
    address = _field("address", TextWidget(200))
    level = _field("level", LookupWidget(CustomerLevel))
    source = _field("source", LookupWidget(CustomerSource))
    customer_type = _field("customer_type", LookupWidget(CustomerType))
    industry = _field("industry", LookupWidget(Industry))
    status = _field("status", ChoiceWidget(spec.STATUS_VALUES, Customer.Status.choices, spec.STATUS_LABELS))
    owner = _field("owner", OwnerWidget())
    tags = _field("tags", TagsWidget())
    notes = _field("notes", TextWidget(5000))
    enterprise_type = _field("enterprise_type", LookupWidget(EnterpriseType))
    enterprise_nature = _field("enterprise_nature", LookupWidget(EnterpriseNature))
    scale = _field("scale", ChoiceWidget(spec.SCALE_VALUES, Customer.Scale.choices, spec.SCALE_LABELS))

    class Meta:
        model = Customer
        fields = tuple(column.key for column in spec.IMPORT_COLUMNS)
        import_id_fields = ()

    @classmethod
    def for_import(cls, custom_fields=None) -> CustomerImportResource:
        """A resource with the active custom fields as ``cf_<key>`` columns (fresh caches)."""
        from customers.forms import active_custom_fields

        resource = cls()
        definitions = list(custom_fields if custom_fields is not None else active_custom_fields())
        for definition in definitions:
            resource.fields[f"cf_{definition.key}"] = Field(
                attribute=None, column_name=definition.label, widget=CustomFieldWidget(definition)
            )
        resource.custom_fields = definitions
        return resource

    def widget_for(self, key: str) -> CellWidget:
        return self.fields[key].widget
