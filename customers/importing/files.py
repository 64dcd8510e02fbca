"""Reading uploaded customer files: what kind of file it is, how its text is encoded, and its rows.

Formats are told apart by their content, never by the file name: an XLSX workbook is a zip
archive holding ``xl/workbook.xml``; a legacy XLS workbook starts with the OLE2 signature; CSV is
text that decodes as UTF-8 (with or without Excel's BOM) or as GB18030 (the superset of GBK that
older Excel and WPS write in China). Anything else - a picture, a PDF, a program, a zip that is
not a workbook - is refused with a message, as are XLSX archives whose members would inflate
beyond sane limits (zip bombs).

Rows are read one at a time (CSV through ``csv.reader``, XLSX through openpyxl's read-only mode,
values only), so a million-row file never sits in memory as a whole. Line numbers are the ones
the user sees in Excel: the header is line 1, the first data row line 2, blank lines count but
are skipped.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import datetime
import io
import itertools
import zipfile
from collections.abc import Callable, Iterator

from django.utils.translation import gettext as _

CSV, XLSX, XLS = "csv", "xlsx", "xls"
FORMAT_LABELS = {CSV: "CSV", XLSX: "Excel (XLSX)", XLS: "Excel 97-2003 (XLS)"}

UTF8_BOM, UTF8, GB18030 = "UTF-8 (BOM)", "UTF-8", "GB18030"
CODECS = {UTF8_BOM: "utf-8-sig", UTF8: "utf-8", GB18030: "gb18030"}

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Signatures of files people rename by mistake (or on purpose); named in the refusal.
BINARY_MAGICS = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"MZ", "EXE"),
    (b"\x7fELF", "ELF"),
    (b"\x1f\x8b", "gzip"),
    (b"7z\xbc\xaf", "7z"),
    (b"Rar!", "RAR"),
    (b"BM", None),  # bitmap: only with a NUL nearby (below), "BM" may start a CSV
)

# XLSX archive limits: a workbook of a million customer rows inflates to well under 1 GB, and
# XML compresses 5-20:1; 100:1 on a large member is what zip bombs look like.
XLSX_MAX_MEMBERS = 2000
XLSX_MAX_UNCOMPRESSED = 1 << 30
XLSX_MAX_RATIO = 100
XLSX_RATIO_FLOOR = 1 << 20  # members smaller than this may compress as well as they like

CHUNK_SIZE = 1 << 20  # pieces of the stored upload (plaintext bytes per ImportChunk)


class ImportRefused(Exception):
    """A file or request refused before anything was written; ``message`` is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Formats -------------------------------------------------------------------------------------


def sniff_format(fileobj) -> str:
    """CSV, XLSX or XLS from the first bytes (and for zips, the archive's members)."""
    fileobj.seek(0)
    head = fileobj.read(4096)
    fileobj.seek(0)
    if not head:
        raise ImportRefused(_("The file is empty."))
    if head.startswith(OLE2_MAGIC):
        return XLS
    if head.startswith(ZIP_MAGICS):
        check_xlsx_archive(fileobj)
        return XLSX
    for magic, name in BINARY_MAGICS:
        if head.startswith(magic) and (name or b"\x00" in head):
            raise ImportRefused(
                _("This is not a spreadsheet (it looks like a %(kind)s file). Upload CSV, XLSX or XLS.")
                % {"kind": name or "BMP"}
            )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportRefused(_("This text file is in UTF-16. Save it as CSV (UTF-8) and upload it again."))
    if b"\x00" in head:
        raise ImportRefused(_("This is not a spreadsheet or a text file. Upload CSV, XLSX or XLS."))
    return CSV


def check_xlsx_archive(fileobj) -> None:
    """Refuse a zip that is not a workbook, or whose members would inflate too far (zip bomb)."""
    fileobj.seek(0)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            members = archive.infolist()
            names = {info.filename for info in members}
            if "xl/workbook.xml" not in names:
                raise ImportRefused(_("This zip archive is not an Excel workbook. Upload CSV, XLSX or XLS."))
            if len(members) > XLSX_MAX_MEMBERS:
                raise ImportRefused(_("This workbook has too many parts to be a plain spreadsheet; it was refused."))
            total = 0
            for info in members:
                total += info.file_size
                ratio = info.file_size / max(info.compress_size, 1)
                if total > XLSX_MAX_UNCOMPRESSED or (info.file_size > XLSX_RATIO_FLOOR and ratio > XLSX_MAX_RATIO):
                    raise ImportRefused(
                        _("This workbook would expand to an unreasonable size (a “zip bomb”); it was refused.")
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError):
        raise ImportRefused(_("This Excel file is damaged or not a real workbook.")) from None
    finally:
        fileobj.seek(0)


class EncodingSniffer:
    """Fed the file's bytes in order while it is stored: whether it is all UTF-8 (and has a BOM).

    When it is not, ``detect_encoding`` reads the file once more as GB18030 (GBK's superset).
    """

    def __init__(self):
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.utf8_ok = True
        self.bom: bool | None = None
        self.nul = False

    def feed(self, data: bytes, final: bool = False) -> None:
        if self.bom is None and data:
            self.bom = data.startswith(codecs.BOM_UTF8)
        if b"\x00" in data:
            self.nul = True
        if self.utf8_ok:
            try:
                self.utf8.decode(data, final)
            except UnicodeDecodeError:
                self.utf8_ok = False


def detect_encoding(sniffer: EncodingSniffer, fileobj) -> str:
    if sniffer.nul:
        raise ImportRefused(_("This is not a spreadsheet or a text file. Upload CSV, XLSX or XLS."))
    if sniffer.utf8_ok:
        return UTF8_BOM if sniffer.bom else UTF8
    if sniff_gb18030(fileobj):
        return GB18030
    raise ImportRefused(
        _("The text of this file is neither UTF-8 nor GBK/GB18030. Save it as CSV (UTF-8) and try again.")
    )


def sniff_gb18030(fileobj) -> bool:
    """Whether the whole file decodes as GB18030 (second pass after UTF-8 failed)."""
    decoder = codecs.getincrementaldecoder("gb18030")()
    fileobj.seek(0)
    try:
        while data := fileobj.read(CHUNK_SIZE):
            decoder.decode(data)
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return False
    finally:
        fileobj.seek(0)
    return True


# --- The stored upload, read back --------------------------------------------------------------


class ChunkReader(io.RawIOBase):
    """A seekable, read-only file over the stored pieces of an upload (each decrypted on demand).

    openpyxl and zipfile need to seek; the plaintext size of every piece is known, so any offset
    maps to one piece. The last two pieces read are kept, which serves zipfile's mostly forward
    reads.
    """

    def __init__(self, sizes: list[int], load: Callable[[int], bytes]):
        super().__init__()
        self.starts = list(itertools.accumulate(sizes, initial=0))
        self.size = self.starts[-1]
        self.load = load
        self.position = 0
        self.cache: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def _piece(self, index: int) -> bytes:
        piece = self.cache.get(index)
        if piece is None:
            piece = self.load(index)
            if len(self.cache) >= 2:
                self.cache.pop(next(iter(self.cache)))
            self.cache[index] = piece
        return piece

    def readinto(self, buffer) -> int:
        if self.position >= self.size:
            return 0
        index = bisect.bisect_right(self.starts, self.position) - 1
        piece = self._piece(index)
        start = self.position - self.starts[index]
        data = piece[start : start + len(buffer)]
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


# --- Rows ----------------------------------------------------------------------------------------


def cell_text(value) -> str:
    """A cell as the text a person sees (numbers without a spurious ".0", dates as ISO)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _blank(cells) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def csv_delimiter(first_line: str) -> str:
    """The delimiter of a CSV file from its header line: the most frequent of , ; and tab."""
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def iter_csv(fileobj, encoding: str) -> Iterator[tuple[int, list]]:
    fileobj.seek(0)
    text = io.TextIOWrapper(fileobj, encoding=CODECS[encoding], newline="")
    try:
        first = text.readline()
        delimiter = csv_delimiter(first)
        reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
        for line, cells in enumerate(reader, start=1):
            if cells and not _blank(cells):
                yield line, cells
    except csv.Error as exc:
        raise ImportRefused(_("This CSV file cannot be read: %(error)s") % {"error": exc}) from None
    finally:
        try:
            text.detach()  # leave the underlying file open for its owner
        except ValueError:
            pass  # already closed by its owner


def iter_xlsx(fileobj) -> Iterator[tuple[int, list]]:
    import openpyxl

    fileobj.seek(0)
    try:
        workbook = openpyxl.load_workbook(fileobj, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on a damaged archive
        raise ImportRefused(_("This Excel file is damaged or not a real workbook.")) from None
    try:
        sheet = workbook.worksheets[0]
        line = 0
        for cells in sheet.iter_rows(values_only=True):
            line += 1
            if cells and not _blank(cells):
                yield line, list(cells)
    finally:
        workbook.close()


def xlsx_dimension_rows(fileobj) -> int | None:
    """Rows of the first sheet according to its stored dimension (None when the file has none)."""
    import openpyxl

    fileobj.seek(0)
    try:
        workbook = openpyxl.load_workbook(fileobj, read_only=True, data_only=True)
        try:
            return workbook.worksheets[0].max_row
        finally:
            workbook.close()
    except Exception:  # noqa: BLE001
        return None


def iter_xls(fileobj) -> Iterator[tuple[int, list]]:
    import xlrd

    fileobj.seek(0)
    try:
        # An XLS sheet has at most 65,536 rows: reading the whole (small) file is bounded.
        book = xlrd.open_workbook(file_contents=fileobj.read(), on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception:  # noqa: BLE001 - xlrd raises many kinds on damaged files
        raise ImportRefused(_("This Excel file is damaged or not a real workbook.")) from None
    for index in range(sheet.nrows):
        cells = []
        for cell in sheet.row(index):
            if cell.ctype == xlrd.XL_CELL_DATE:
                try:
                    cells.append(xlrd.xldate_as_datetime(cell.value, book.datemode))
                except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                    cells.append(cell.value)
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                cells.append(None)
            else:
                cells.append(cell.value)
        if not _blank(cells):
            yield index + 1, cells


def iter_rows(fileobj, file_format: str, encoding: str = "") -> Iterator[tuple[int, list]]:
    """Every non-blank row of the file as (line number, cells), the header row first."""
    if file_format == XLSX:
        return iter_xlsx(fileobj)
    if file_format == XLS:
        return iter_xls(fileobj)
    return iter_csv(fileobj, encoding)
