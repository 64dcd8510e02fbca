"""Uploading, downloading and deleting the files kept with a customer (customers.attachments).

Every attachment id is resolved to its customer through ``customers.access.get_customer_for``:
404 when the customer is out of the user's reach, 403 when the user may only read it and wants
to change something. Downloads are logged in the personal-data access log.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_permission_required
from cims.models import PersonalDataAccess, log_personal_data_access
from customers import attachments
from customers.access import can_edit, get_customer_for
from customers.attachments import download_response
from customers.models import Attachment

PANEL = "customers/_partials/detail_attachments.html"
# A downloaded file is never run as a page of ours: no scripts, plugins, forms or same-origin access.


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _files_tab(customer) -> str:
    return reverse("customers:detail", args=[customer.pk]) + "#tab-files"


def _panel(request: HttpRequest, customer, *, form=None, saved: str = "") -> HttpResponse:
    editable = can_edit(request.user, customer)
    context = attachments.panel_context(request.user, customer, editable, form=form)
    # oob: the count on the Files tab's button, outside the swapped panel, follows too.
    context.update({"customer": customer, "editable": editable, "attachment_saved": saved, "attachment_oob": True})
    return render(request, PANEL, context)


@staff_permission_required("customers.add_attachment")
@require_POST
def attachment_upload(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_customer_for(request.user, pk, edit=True)
    form = attachments.AttachmentForm(request.POST, request.FILES, customer=customer)
    if form.is_valid():
        try:
            attachment = attachments.attachment_upload(customer=customer, by=request.user, **form.values())
        except ValidationError as error:  # a rule the form did not see (it checks the same ones)
            form.add_error(None, error)
        else:
            done = _("The file “%(name)s” was uploaded.") % {"name": attachment.filename}
            if _is_htmx(request):
                return _panel(request, customer, saved=done)
            messages.success(request, done)
            return redirect(_files_tab(customer))
    if _is_htmx(request):
        return _panel(request, customer, form=form)  # htmx swaps only 2xx answers
    # Without script there is no page of its own to show the form on: the errors go to the 360 page.
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(_files_tab(customer))


@staff_permission_required("customers.view_attachment")
@require_GET
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse:
    attachment = get_object_or_404(Attachment, pk=pk)
    customer = get_customer_for(request.user, attachment.customer_id)
    data = attachments.attachment_bytes(attachment)
    file_type = attachments.type_of(attachment)
    log_personal_data_access(
        user=request.user,
        action=PersonalDataAccess.Action.EXPORT,
        object_type="customers.attachment",
        object_id=attachment.pk,
        object_label=customer.code,
        field=attachment.kind,
        # The file name is left out: it may carry a person's name.
        detail=f"{file_type.label if file_type else attachment.content_type}, {attachment.size} B, "
        f"SHA-256 {attachment.sha256[:16]}",
        request=request,
    )
    return download_response(data, filename=attachment.filename, content_type=attachment.content_type)


@staff_permission_required("customers.delete_attachment")
@require_POST
def attachment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    attachment = get_object_or_404(Attachment, pk=pk)
    customer = get_customer_for(request.user, attachment.customer_id, edit=True)
    attachments.attachment_delete(attachment=attachment, by=request.user)
    done = _("The file “%(name)s” was deleted.") % {"name": attachment.filename}
    if _is_htmx(request):
        return _panel(request, customer, saved=done)
    messages.success(request, done)
    return redirect(_files_tab(customer))
