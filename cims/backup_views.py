"""The backup page (备份与恢复): the backups, the last drill, "back up now" and the guarded restore."""

from __future__ import annotations

import logging
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_permission_required
from cims.models import Backup, RestoreRun
from cims.pagination import KeysetPaginator, page_links

security_log = logging.getLogger("cims.security")


class RestoreConfirmForm(forms.Form):
    """A restore replaces every row of the live database: the administrator types the backup's file
    name and their own password."""

    confirm = forms.CharField(label=gettext_lazy("Backup file name"), max_length=255, strip=True)
    password = forms.CharField(label=gettext_lazy("Your password"), max_length=256, widget=forms.PasswordInput)

    def __init__(self, *args, backup: Backup, user, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.backup = backup
        self.user = user
        self.request = request
        self.fields["confirm"].help_text = _("Type %(name)s to confirm.") % {"name": backup.file_name}

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value != self.backup.file_name:
            raise forms.ValidationError(_("This is not the backup's file name."))
        return value

    def clean_password(self) -> str:
        value = self.cleaned_data["password"]
        # Through the authentication backends, so that django-axes counts wrong guesses and locks
        # the account out as on the login page (a stolen session can't try passwords at leisure).
        if authenticate(self.request, username=self.user.get_username(), password=value) != self.user:
            raise forms.ValidationError(_("The password is not correct."))
        return value


def _file_present(backup: Backup) -> bool:
    return (Path(settings.BACKUP_DIR) / backup.file_name).is_file()


@staff_permission_required("cims.view_backup")
@require_http_methods(["GET", "HEAD"])
def backup_list(request: HttpRequest) -> HttpResponse:
    paginator = KeysetPaginator(Backup.objects.select_related("created_by"), key="started_at", per_page=30)
    page = paginator.page(after=request.GET.get("after"), before=request.GET.get("before"))
    runs = RestoreRun.objects.select_related("created_by")
    context = {
        "page": page,
        **page_links(request, page),
        "last_drill": runs.filter(kind=RestoreRun.Kind.DRILL).first(),
        "last_passed_drill": runs.filter(kind=RestoreRun.Kind.DRILL, status=RestoreRun.Status.PASSED).first(),
        "recent_runs": list(runs[:5]),
        "running": Backup.objects.filter(status=Backup.Status.RUNNING).exists(),
        "backup_dir": settings.BACKUP_DIR,
        "may_create": request.user.has_perm("cims.add_backup"),
        "may_restore": request.user.has_perm("cims.restore_backup"),
    }
    return render(request, "system/backups.html", context)


@staff_permission_required("cims.add_backup")
@require_POST
def backup_create(request: HttpRequest) -> HttpResponse:
    from cims import backups
    from cims.tasks_backup import backup_now

    # A backup killed half-way is marked failed here rather than blocking the button.
    try:
        backups.clean_leftovers(backups.backup_dir())
    except OSError as exc:
        security_log.error("backup folder unusable: %s", type(exc).__name__)
        messages.error(request, _("The backup folder cannot be used; check BACKUP_DIR and its permissions."))
        return redirect("system:backups")
    if Backup.objects.filter(status=Backup.Status.RUNNING).exists():
        messages.warning(request, _("A backup is already running; wait for it to finish."))
        return redirect("system:backups")
    with transaction.atomic():
        backup = backups.start_backup(kind=Backup.Kind.MANUAL, user=request.user)
        transaction.on_commit(lambda: backup_now.delay(backup.pk))
    messages.success(
        request, _("The backup %(name)s has started; this page shows when it is done.") % {"name": backup.file_name}
    )
    return redirect("system:backups")


def _detail(request: HttpRequest, backup: Backup, form: RestoreConfirmForm | None, status: int = 200) -> HttpResponse:
    may_restore = request.user.has_perm("cims.restore_backup")
    restorable = backup.status == Backup.Status.COMPLETE and _file_present(backup)
    if form is None and may_restore and restorable:
        form = RestoreConfirmForm(backup=backup, user=request.user)
    manifest = backup.manifest or {}
    tables = sorted((manifest.get("tables") or {}).items())
    context = {
        "backup": backup,
        "manifest": manifest,
        "tables": tables,
        "migrations": sorted(
            (app, len(names), names[-1]) for app, names in (manifest.get("migrations") or {}).items() if names
        ),
        "runs": backup.restores.select_related("created_by")[:50],
        "file_present": _file_present(backup),
        "restorable": restorable,
        "may_restore": may_restore,
        "form": form,
    }
    return render(request, "system/backup_detail.html", context, status=status)


@staff_permission_required("cims.view_backup")
@require_http_methods(["GET", "HEAD"])
def backup_detail(request: HttpRequest, pk: int) -> HttpResponse:
    backup = get_object_or_404(Backup.objects.select_related("created_by"), pk=pk)
    return _detail(request, backup, None)


@staff_permission_required("cims.restore_backup")
@require_POST
def backup_restore(request: HttpRequest, pk: int) -> HttpResponse:
    from cims.tasks_backup import restore_backup

    backup = get_object_or_404(Backup, pk=pk)
    if backup.status != Backup.Status.COMPLETE or not _file_present(backup):
        messages.error(request, _("Only a complete backup whose file is present can be restored."))
        return _detail(request, backup, None, status=400)
    if (
        RestoreRun.objects.filter(status=RestoreRun.Status.RUNNING).exists()
        or Backup.objects.filter(status=Backup.Status.RUNNING).exists()
    ):
        # Two restores into the live database at once (a double submit, two administrators), or one
        # next to a running backup, would leave neither whole.
        messages.error(request, _("A backup or a restore is running; wait for it to finish."))
        return _detail(request, backup, None, status=409)
    form = RestoreConfirmForm(request.POST, backup=backup, user=request.user, request=request)
    if not form.is_valid():
        return _detail(request, backup, form, status=400)
    # The restore replaces the access log too: this line outside the database says who did it.
    security_log.warning("restore of %s requested by user id %s", backup.file_name, request.user.pk)
    with transaction.atomic():
        run = RestoreRun.objects.create(
            backup=backup, backup_name=backup.file_name, kind=RestoreRun.Kind.RESTORE, created_by=request.user
        )
        transaction.on_commit(lambda: restore_backup.delay(backup.pk, request.user.pk, run.pk))
    messages.warning(
        request,
        _("The restore of %(name)s has started. Every user will find the data as it was at the time of the backup.")
        % {"name": backup.file_name},
    )
    return redirect("system:backup_detail", pk=backup.pk)
