"""Import pages: upload, the dry-run preview, progress (htmx polling), confirm, result, error file.

The work itself is the engine's (customers/importing/engine.py); these views only parse input,
call it and render. A job is reached only through ``engine.get_job_for`` (404 for another user's).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from customers.attachments import as_download
from customers.forms_import import ImportUploadForm
from customers.importing import engine
from customers.models import ImportJob

PERMISSION = "customers.import_customers"

RUNNING = {ImportJob.Status.UPLOADED, ImportJob.Status.CHECKING, ImportJob.Status.IMPORTING}
SHOWN_ROWS = 200
ACTION_LABELS = {
    engine.SKIP: gettext_lazy("Skipped"),
    engine.UPDATE: gettext_lazy("Updates the existing customer"),
    engine.CREATE: gettext_lazy("Created anyway"),
}


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    return as_download(response, filename=filename)


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD", "POST"])
def import_start(request: HttpRequest) -> HttpResponse:
    user = request.user
    status = 200
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES, user=user)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = engine.job_create(
                    upload=upload,
                    file_name=upload.name,
                    by=user,
                    owner=form.owner_or_self(),
                    on_duplicate=form.cleaned_data["on_duplicate"],
                )
            except engine.ImportRefused as refused:
                form.add_error("file", refused.message)
            else:
                engine.start_check(job)
                return redirect("customers:import_job", pk=job.pk)
        status = 400
    else:
        form = ImportUploadForm(user=user)
    context = {"form": form, "recent": engine.jobs_for(user).select_related("created_by")[:5]}
    return render(request, "customers/import_start.html", context, status=status)


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD"])
def import_template(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        return render(request, "400.html", {"message": _("Choose the template as XLSX or CSV.")}, status=400)
    filename, content_type, content = engine.import_template(fmt)
    return _attachment(HttpResponse(content, content_type=content_type), filename)


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD"])
def import_jobs(request: HttpRequest) -> HttpResponse:
    jobs = engine.jobs_for(request.user).select_related("created_by", "owner")
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    return render(request, "customers/import_jobs.html", {"page": page})


def _job_context(user, job: ImportJob) -> dict:
    stalled = job.status in RUNNING and engine.job_is_stalled(job)
    checking = job.status in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKING)
    if checking:
        done, total = job.rows_checked, job.total_rows
    else:
        done, total = job.rows_done, job.plan_rows
    percent = int(done * 100 / total) if total else (100 if job.status == ImportJob.Status.DONE else 0)
    return {
        "job": job,
        "running": job.status in RUNNING and not stalled,
        "stalled": stalled,
        "checking": checking,
        "progress": {"done": done, "total": total, "percent": min(percent, 100)},
        "previous": engine.previous_import_of(job) if job.status == ImportJob.Status.CHECKED else None,
        "errors": job.errors[:SHOWN_ROWS],
        "duplicates": [
            {**row, "action_label": ACTION_LABELS.get(row.get("action"), row.get("action"))}
            for row in job.duplicates[:SHOWN_ROWS]
        ],
        "may_confirm": job.status == ImportJob.Status.CHECKED and (job.to_create or job.to_update),
    }


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD"])
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = engine.get_job_for(request.user, pk)
    return render(request, "customers/import_job.html", _job_context(request.user, job))


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD"])
def import_job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar, polled by htmx while the job runs; once it stops, the whole page reloads."""
    job = engine.get_job_for(request.user, pk)
    context = _job_context(request.user, job)
    response = render(request, "customers/_partials/import_progress.html", context)
    if not context["running"]:
        response["HX-Refresh"] = "true"
    return response


@staff_permission_required(PERMISSION)
@require_POST
def import_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    job = engine.get_job_for(request.user, pk)
    resumable = job.status in RUNNING and engine.job_is_stalled(job)
    if resumable:
        engine.job_resume(job, by=request.user)
        messages.info(request, _("The import continues where it stopped."))
    elif job.status != ImportJob.Status.CHECKED:
        messages.error(
            request, _("This import cannot be confirmed now: it is %(status)s.") % {"status": job.get_status_display()}
        )
    else:
        engine.start_commit(job, by=request.user)
    return redirect("customers:import_job", pk=job.pk)


@staff_permission_required(PERMISSION)
@require_POST
def import_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = engine.get_job_for(request.user, pk)
    if job.status in (ImportJob.Status.CHECKED, ImportJob.Status.UPLOADED, ImportJob.Status.FAILED) or (
        job.status == ImportJob.Status.CHECKING and engine.job_is_stalled(job)
    ):
        engine.job_cancel(job, by=request.user)
        messages.success(request, _("The import was cancelled; nothing was imported."))
        return redirect("customers:import")
    messages.error(
        request, _("This import cannot be cancelled now: it is %(status)s.") % {"status": job.get_status_display()}
    )
    return redirect("customers:import_job", pk=job.pk)


@staff_permission_required(PERMISSION)
@require_http_methods(["GET", "HEAD"])
def import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    job = engine.get_job_for(request.user, pk)
    fmt = request.GET.get("format", "csv")
    if fmt not in ("xlsx", "csv"):
        return render(request, "400.html", {"message": _("Choose the error file as XLSX or CSV.")}, status=400)
    if not job.rejected:
        messages.info(request, _("No row was rejected: there is no error file."))
        return redirect(reverse("customers:import_job", args=[job.pk]))
    filename, content_type, chunks = engine.error_file(job, fmt)
    return _attachment(StreamingHttpResponse(chunks, content_type=content_type), filename)
