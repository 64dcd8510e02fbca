"""Files kept with customers and contracts (附件: scanned contracts, business licences, quotes).

A file is accepted for what its bytes are, never for its name or the browser's content type: a
PDF, JPEG or PNG is recognised by its signature and walked far enough to show it is one (PDF
header and trailer, JPEG segments up to the image data, PNG chunks up to IEND); Word and Excel
files are zip archives whose ``[Content_Types].xml`` declares a plain (macro-free) document or
workbook, guarded against zip bombs the way customer imports are. The name's extension must
agree with what was found. HTML, SVG, scripts, programs, archives, macro-enabled and legacy
Office files are refused with a message.

The bytes are stored encrypted in ``AttachmentContent`` (``cims.crypto.encrypt_bytes``, bound to
the attachment's id), so web and worker processes keep no files and a database backup holds them.
Who may do what: ``customers.view/add/delete_attachment`` on top of seeing (or editing) the
customer; views resolve the customer through ``customers.access.get_customer_for``.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BinaryField, Count
from django.db.models.functions import Substr
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from cims.crypto import decrypt_bytes, encrypt_bytes, primary_key_id
from customers.models import Attachment, AttachmentContent, Contract

# How many files the Files tab lists (newest first); a customer rarely has more.
ATTACHMENT_ROWS = 50
ACCEPT = ".pdf,.jpg,.jpeg,.png,.docx,.xlsx"
FILENAME_MAX = 200  # Attachment.filename's max_length

# Zip (DOCX/XLSX) limits. Office XML compresses 5-20:1; 100:1 on a large member, or a document that
# would inflate past 256 MB, is what a zip bomb looks like. Nothing here is ever decompressed except
# [Content_Types].xml, but the user's Office would be the victim.
ZIP_MAX_MEMBERS = 5000
ZIP_MAX_UNCOMPRESSED = 256 << 20
ZIP_MAX_RATIO = 100
ZIP_RATIO_FLOOR = 1 << 20
CONTENT_TYPES_MAX = 1 << 20

PDF_MAGIC = b"%PDF-"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class FileType:
    key: str
    label: str
    content_type: str
    extensions: tuple[str, ...]  # the first is the one added to a name without extension
    icon: str


PDF = FileType("pdf", "PDF", "application/pdf", (".pdf",), "file-earmark-pdf")
JPEG = FileType("jpeg", "JPEG", "image/jpeg", (".jpg", ".jpeg"), "file-earmark-image")
PNG = FileType("png", "PNG", "image/png", (".png",), "file-earmark-image")
DOCX = FileType(
    "docx",
    "Word",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    (".docx",),
    "file-earmark-word",
)
XLSX = FileType(
    "xlsx",
    "Excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    (".xlsx",),
    "file-earmark-excel",
)
FILE_TYPES = {file_type.content_type: file_type for file_type in (PDF, JPEG, PNG, DOCX, XLSX)}

# The main part of a plain document or workbook, as [Content_Types].xml declares it. Macro-enabled
# (docm/xlsm) and template (dotx/xltx) files declare other types and are refused.
OFFICE_MAIN_PARTS = {
    DOCX: ("word/document.xml", b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    XLSX: ("xl/workbook.xml", b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
}


def _not_allowed() -> ValidationError:
    return ValidationError(
        _("Only PDF, JPG, PNG, Word (.docx) or Excel (.xlsx) files can be uploaded."), code="type_not_allowed"
    )


def _damaged(file_type: FileType) -> ValidationError:
    return ValidationError(
        _("This %(kind)s file is damaged or incomplete; it was refused."),
        code="damaged",
        params={"kind": file_type.label},
    )


# --- What a file is ------------------------------------------------------------------------------


def detect_type(data: bytes) -> FileType:
    """The type of ``data`` from its content; ValidationError when it is none we keep or is damaged."""
    if not data:
        raise ValidationError(_("The file is empty."), code="empty")
    if data.startswith(PDF_MAGIC):
        _check_pdf(data)
        return PDF
    if data.startswith(PNG_MAGIC):
        _check_png(data)
        return PNG
    if data.startswith(JPEG_MAGIC):
        _check_jpeg(data)
        return JPEG
    if data.startswith(ZIP_MAGIC):
        return _check_office_zip(data)
    if data.startswith(OLE2_MAGIC):
        raise ValidationError(
            _(
                "Word and Excel 97-2003 files (.doc, .xls) and password-protected Office files cannot be uploaded. "
                "Save it as .docx or .xlsx without a password and upload it again."
            ),
            code="legacy_office",
        )
    raise _not_allowed()


# Markup a browser would render (and run the scripts of): HTML, XHTML, SVG, XML. Never kept.
_MARKUP = re.compile(rb"<(?:!doctype|html|head|body|script|svg|\?xml|iframe|!--|meta|a\s|div|img|object)", re.I)


def looks_like_markup(head: bytes) -> bool:
    """Whether the first bytes of a text file are a web page, SVG or XML document rather than data
    (for uploads taken as text, such as CSV imports; binary uploads are recognised by signature)."""
    text = head[:1024].removeprefix(b"\xef\xbb\xbf").lstrip()
    return bool(_MARKUP.match(text))


def _check_pdf(data: bytes) -> None:
    # "%PDF-1.7" then, at the end (a few bytes of trailing junk are common), the "%%EOF" marker.
    if not re.match(rb"%PDF-\d\.\d", data[:8]) or b"%%EOF" not in data[-2048:]:
        raise _damaged(PDF)


def _check_png(data: bytes) -> None:
    # Chunks (length, type, data, CRC) from IHDR to IEND.
    offset, first = len(PNG_MAGIC), True
    while True:
        if offset + 12 > len(data):
            raise _damaged(PNG)
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if (first and (kind != b"IHDR" or length != 13)) or not kind.isalpha():
            raise _damaged(PNG)
        first = False
        offset += 12 + length
        if kind == b"IEND":
            if offset > len(data):
                raise _damaged(PNG)
            return


def _check_jpeg(data: bytes) -> None:
    # Marker segments after SOI up to the start of the scan (SOS): the headers of a real image.
    offset = 2
    while True:
        if offset + 4 > len(data) or data[offset] != 0xFF:
            raise _damaged(JPEG)
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker == 0xDA:  # start of scan: the compressed image follows
            if b"\xff\xd9" not in data[offset:]:
                raise _damaged(JPEG)
            return
        if marker == 0xD9 or marker == 0x00:
            raise _damaged(JPEG)
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            offset += 2
            continue
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        if length < 2:
            raise _damaged(JPEG)
        offset += 2 + length


def _check_office_zip(data: bytes) -> FileType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MAX_MEMBERS:
                raise ValidationError(
                    _("This file has too many parts to be a plain document; it was refused."), code="zip_members"
                )
            total = 0
            for info in members:
                total += info.file_size
                ratio = info.file_size / max(info.compress_size, 1)
                if total > ZIP_MAX_UNCOMPRESSED or (info.file_size > ZIP_RATIO_FLOOR and ratio > ZIP_MAX_RATIO):
                    raise ValidationError(
                        _("This file would expand to an unreasonable size (a “zip bomb”); it was refused."),
                        code="zip_bomb",
                    )
                if info.flag_bits & 0x1:  # an encrypted member
                    raise _not_allowed()
            names = {info.filename for info in members}
            if "[Content_Types].xml" not in names:
                raise _not_allowed()  # a zip archive, not an Office document
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                raise _macros()
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > CONTENT_TYPES_MAX:
                raise _not_allowed()
            with archive.open(info) as member:
                declared = member.read(CONTENT_TYPES_MAX + 1)
    except ValidationError:
        raise
    # A damaged member fails in its decompressor (zlib.error, lzma.LZMAError), not only in zipfile.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        zlib.error,
        lzma.LZMAError,
    ):
        raise ValidationError(
            _("This Word or Excel file is damaged or not a real document; it was refused."), code="damaged"
        ) from None
    if b"macroEnabled" in declared:
        raise _macros()
    for file_type, (main_part, main_type) in OFFICE_MAIN_PARTS.items():
        if main_part in names and main_type in declared:
            return file_type
    raise _not_allowed()


def _macros() -> ValidationError:
    return ValidationError(
        _("Office files with macros cannot be uploaded. Save it as a plain .docx or .xlsx file and upload it again."),
        code="macros",
    )


# --- Names ---------------------------------------------------------------------------------------

_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi overrides, unassigned
_RESERVED = re.compile(r'[<>:"|?*]')


def clean_filename(name: str, file_type: FileType) -> str:
    """A safe display and download name: no folders, control or direction characters, Windows-
    reserved characters or leading dots; Chinese kept; the extension agrees with ``file_type``
    (added when missing, refused when it names another type)."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(" " if ch in "\t\n\r" else ch for ch in name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
    name = " ".join(_RESERVED.sub("_", name).split()).strip(" .")
    stem, extension = os.path.splitext(name)
    extension = extension.lower()
    if not extension or not stem:
        stem, extension = name or "attachment", file_type.extensions[0]
    elif extension not in file_type.extensions:
        raise ValidationError(
            _(
                "The file is a %(kind)s file but its name ends in “%(extension)s”. "
                "Rename it to end in “%(expected)s” and upload it again."
            ),
            code="extension_mismatch",
            params={"kind": file_type.label, "extension": extension, "expected": file_type.extensions[0]},
        )
    stem = stem[: FILENAME_MAX - len(extension)].rstrip(" .") or "attachment"
    return stem + extension


@dataclass(frozen=True)
class Inspected:
    filename: str
    file_type: FileType
    size: int
    sha256: str


def inspect_file(data: bytes, filename: str) -> Inspected:
    """Everything the rules check about an upload, or ValidationError with the user's message."""
    limit = settings.ATTACHMENT_MAX_MB * 1024 * 1024
    if len(data) > limit:
        raise _too_large(len(data))
    file_type = detect_type(data)
    return Inspected(
        filename=clean_filename(filename, file_type),
        file_type=file_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _too_large(size: int) -> ValidationError:
    return ValidationError(
        _("The file is %(size)s MB; files up to %(limit)s MB can be uploaded."),
        code="too_large",
        params={"size": f"{size / 1048576:.1f}", "limit": settings.ATTACHMENT_MAX_MB},
    )


def type_of(attachment: Attachment) -> FileType | None:
    return FILE_TYPES.get(attachment.content_type)


# --- Services ------------------------------------------------------------------------------------


def _aad(attachment_id: int) -> str:
    # Bound to the row: bytes copied onto another attachment do not decrypt.
    return f"attachment:{attachment_id}"


def attachment_upload(
    *, customer, data: bytes, filename: str, kind: str, contract: Contract | None = None, by
) -> Attachment:
    """Keep ``data`` with ``customer`` (and one of its contracts): checked, then stored encrypted."""
    inspected = inspect_file(data, filename)
    if kind not in Attachment.Kind.values:
        raise ValidationError(_("Choose the type of the file."), code="kind")
    if contract is not None and contract.customer_id != customer.pk:
        raise ValidationError(_("The contract belongs to another customer."), code="contract")
    attachment = Attachment(
        customer=customer,
        contract=contract,
        kind=kind,
        filename=inspected.filename,
        content_type=inspected.file_type.content_type,
        size=inspected.size,
        sha256=inspected.sha256,
        uploaded_by=by,
    )
    attachment._history_user = by
    with transaction.atomic():
        attachment.save()
        AttachmentContent.objects.create(attachment=attachment, data=encrypt_bytes(data, aad=_aad(attachment.pk)))
    return attachment


def attachment_delete(*, attachment: Attachment, by) -> bool:
    """Delete the file and its bytes; its history keeps who uploaded and who deleted what, when.
    False when someone else deleted it meanwhile (locked, so the history records one deletion)."""
    with transaction.atomic():
        locked = Attachment.objects.select_for_update().filter(pk=attachment.pk).first()
        if locked is None:
            return False
        locked._history_user = by
        AttachmentContent.objects.filter(attachment_id=locked.pk).delete()
        locked.delete()
    return True


def attachment_bytes(attachment: Attachment) -> bytes:
    sealed = AttachmentContent.objects.values_list("data", flat=True).get(attachment_id=attachment.pk)
    return decrypt_bytes(bytes(sealed), aad=_aad(attachment.pk))


def attachment_contents_rotate(*, batch_size: int = 20, dry_run: bool = False) -> int:
    """Re-encrypt the stored bytes still under an older key of FIELD_ENCRYPTION_KEYS; the number of
    files (to be) re-encrypted. For ``manage.py rotate_field_keys``: the blobs are not
    EncryptedTextField columns, so its walk over models does not see them."""
    return blobs_rotate(AttachmentContent, aad=_aad, batch_size=batch_size, dry_run=dry_run)


def blobs_rotate(model, *, aad, batch_size: int = 20, dry_run: bool = False) -> int:
    """Re-encrypt the ``data`` blobs of ``model`` (a file's encrypted bytes, keyed by its primary
    key, sealed with ``aad(pk)``) still under an older key; the number (to be) re-encrypted.

    Only the key id at the head of each blob is read to pick the stale ones; each batch is locked
    and rewritten in one transaction, so an interrupted run resumes where it stopped.
    """
    current = primary_key_id().encode("ascii") + b":"
    stale = (
        model.objects.annotate(head=Substr("data", 1, len(current), output_field=BinaryField()))
        .exclude(head=current)
        .order_by("pk")
    )
    if dry_run:
        return stale.count()
    done, last = 0, None
    while True:
        page = stale if last is None else stale.filter(pk__gt=last)
        pks = list(page.values_list("pk", flat=True)[:batch_size])
        if not pks:
            return done
        last = pks[-1]
        with transaction.atomic():
            for pk, sealed in stale.filter(pk__in=pks).select_for_update(of=("self",)).values_list("pk", "data"):
                plain = decrypt_bytes(bytes(sealed), aad=aad(pk))
                model.objects.filter(pk=pk).update(data=encrypt_bytes(plain, aad=aad(pk)))
                done += 1


# --- The upload form -----------------------------------------------------------------------------


class ContractChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Contract) -> str:
        return f"{obj.number} · {obj.title}"


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=Attachment.Kind.choices, initial=Attachment.Kind.OTHER)
    contract = ContractChoiceField(
        label=_("Contract"),
        queryset=Contract.objects.none(),
        required=False,
        empty_label=_("None (a file of the customer)"),
    )
    file = forms.FileField(label=_("File"), widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}))

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contract"].queryset = Contract.objects.filter(customer=customer).order_by("-start_date", "-id")
        self.fields["file"].help_text = _(
            "PDF, JPG, PNG, Word (.docx) or Excel (.xlsx), up to %(limit)s MB. Stored encrypted; "
            "only people who may see this customer can download it."
        ) % {"limit": settings.ATTACHMENT_MAX_MB}

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.ATTACHMENT_MAX_MB * 1024 * 1024:
            raise _too_large(upload.size)  # before reading a byte of it
        upload.seek(0)
        self.data_bytes = upload.read()
        self.inspected = inspect_file(self.data_bytes, upload.name)
        return upload

    def values(self) -> dict:
        return {
            "data": self.data_bytes,
            "filename": self.cleaned_data["file"].name,
            "kind": self.cleaned_data["kind"],
            "contract": self.cleaned_data["contract"],
        }


# --- The Files tab of the 360 page ---------------------------------------------------------------


def panel_context(user, customer, editable: bool, *, form: AttachmentForm | None = None) -> dict:
    """The Files tab: the customer's files (newest first), counts per contract, the upload form.

    Two queries whatever the number of files: the listed files with their contract and uploader,
    and the contract choices of the form; a customer with more files than are listed costs one
    more, for the counts (grouped by contract, which also gives the total).
    """
    attachments = list(
        Attachment.objects.filter(customer=customer).select_related("contract", "uploaded_by")[:ATTACHMENT_ROWS]
    )
    for attachment in attachments:
        attachment.file_type = type_of(attachment)
    if len(attachments) < ATTACHMENT_ROWS:
        counts = Counter(attachment.contract_id for attachment in attachments)
    else:
        counts = Counter(
            dict(
                Attachment.objects.filter(customer=customer)
                .order_by()
                .values("contract_id")
                .annotate(count=Count("pk"))
                .values_list("contract_id", "count")
            )
        )
    total = sum(counts.values())
    may_add = editable and user.has_perm("customers.add_attachment")
    if may_add and form is None:
        form = AttachmentForm(customer=customer)
    return {
        "attachments_shown": True,
        "attachment_count": total,
        "attachments": attachments,
        "attachment_rows": ATTACHMENT_ROWS,
        "attachment_form": form if may_add else None,
        "may_delete_attachment": editable and user.has_perm("customers.delete_attachment"),
        # (contract id, number of files) for the paperclips of the Contracts tab.
        "attachment_contract_counts": [(pk, n) for pk, n in counts.items() if pk is not None],
    }


def detail_context(request, customer, editable: bool) -> dict:
    if not request.user.has_perm("customers.view_attachment"):
        return {"attachments_shown": False}
    return panel_context(request.user, customer, editable)


# A stored file is served as a download that no browser renders or sniffs: never inline, never a
# page with scripts, never cached on a shared machine.
SANDBOX_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"


def as_download(response, *, filename: str):
    """Mark ``response`` as a download of personal data: the one rule for every such file (stored
    files, exports, import error files, the portal's copy of one's data, the audit exports).

    An attachment under an ASCII fallback name and the UTF-8 one, never sniffed, never cached, and
    sandboxed should a browser render it anyway."""
    from urllib.parse import quote

    fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "_")
    response["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = SANDBOX_POLICY
    return response


def download_response(data: bytes, *, filename: str, content_type: str) -> HttpResponse:
    """The response serving a file held in memory (stored customer and ticket files, the portal's copy)."""
    response = HttpResponse(data, content_type=content_type)
    response["Content-Length"] = str(len(data))
    return as_download(response, filename=filename)


def streaming_download_response(content, *, filename: str, content_type: str):
    """The response streaming a file as it is written (exports of a million rows)."""
    from django.http import StreamingHttpResponse

    return as_download(StreamingHttpResponse(content, content_type=content_type), filename=filename)
