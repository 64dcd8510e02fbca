"""The import upload form: the file, who owns what it creates, and what to do with duplicates."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from customers.attachments import looks_like_markup
from customers.forms_list import UserChoiceField, eligible_owners
from customers.importing import files
from customers.models import ImportJob

ACCEPT = ".csv,.txt,.xlsx,.xls,text/csv,application/vnd.ms-excel,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("CSV (UTF-8 or GBK, as Excel and WPS save it), XLSX or XLS; the first sheet is read."),
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
    )
    owner = UserChoiceField(
        label=_("Owner"),
        queryset=eligible_owners().none(),
        required=False,
        empty_label=_("Myself"),
        help_text=_("Owner of the imported customers; a 负责人 column naming a user overrides it row by row."),
    )
    on_duplicate = forms.ChoiceField(
        label=_("Customers already in the archive"),
        choices=ImportJob.OnDuplicate.choices,
        initial=ImportJob.OnDuplicate.SKIP,
        widget=forms.RadioSelect,
        help_text=_(
            "A row is a duplicate when its mobile, phone, e-mail or ID card number, or its name at the same company, "
            "matches a customer already in CIMS or an earlier row of the file."
        ),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user.has_perm("customers.change_all_customers"):
            self.fields["owner"].queryset = eligible_owners()
        else:
            # A sales rep imports customers they will own themselves.
            del self.fields["owner"]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024
        if upload.size > limit:
            raise ValidationError(
                _("The file is %(size)s MB; files up to %(limit)s MB can be imported. Split it into smaller files."),
                code="too_large",
                params={"size": f"{upload.size / 1048576:.1f}", "limit": settings.IMPORT_MAX_UPLOAD_MB},
            )
        if upload.size == 0:
            raise ValidationError(_("The file is empty."), code="empty")
        # What the file is, by its bytes (never its name): CSV text, XLSX or XLS. The engine checks
        # the rest (encoding, header, rows) when it stores the file.
        raw = getattr(upload, "file", upload)
        try:
            files.sniff_format(raw)
            raw.seek(0)
            head = raw.read(4096)
        except files.ImportRefused as refused:
            raise ValidationError(refused.message, code="not_a_spreadsheet") from None
        finally:
            raw.seek(0)
        if looks_like_markup(head):
            raise ValidationError(
                _("This is a web page or an SVG/XML document, not a spreadsheet. Upload CSV, XLSX or XLS."),
                code="markup",
            )
        return upload

    def owner_or_self(self):
        return self.cleaned_data.get("owner") or self.user
