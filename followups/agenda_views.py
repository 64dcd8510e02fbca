"""The personal agenda: tasks (待办), notifications (the bell), the calendar (日程), its history and
personal notes (记事本). Everything here belongs to the user: another user's task, note or
notification answers 404, whatever the requester's role."""

from __future__ import annotations

import datetime
from collections import defaultdict
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import staff_permission_required, staff_required
from followups import reminders
from followups.forms_agenda import HistorySearchForm, NoteForm, TaskForm
from followups.models import FollowUp, Note, Notification, Task

CALENDAR_DAYS = 14
DONE_TASKS_SHOWN = 20
NOTIFICATIONS_PER_PAGE = 30
HISTORY_PER_PAGE = 25


def _is_htmx(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")


def _day_start(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of ``day`` in the current time zone (Asia/Shanghai)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _my_task(user, pk: int) -> Task:
    """A task the user is assigned or created; any other is 404, a manager's colleague's too."""
    return get_object_or_404(
        Task.objects.select_related("customer", "assignee").filter(Q(assignee=user) | Q(created_by=user)), pk=pk
    )


# --- Tasks ---------------------------------------------------------------------------------------


@staff_permission_required("followups.view_task")
@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    mine = Task.objects.filter(assignee=request.user).select_related("customer")
    open_tasks = list(mine.filter(done=False).order_by("due_at", "pk"))
    done_tasks = list(mine.filter(done=True).order_by("-done_at", "-pk")[:DONE_TASKS_SHOWN])
    delegated = list(
        Task.objects.filter(created_by=request.user, done=False)
        .exclude(assignee=request.user)
        .select_related("customer", "assignee")
        .order_by("due_at", "pk")
    )
    context = {"open_tasks": open_tasks, "done_tasks": done_tasks, "delegated": delegated, "now": timezone.now()}
    return render(request, "followups/task_list.html", context)


@staff_permission_required("followups.add_task")
@require_http_methods(["GET", "POST"])
def task_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TaskForm(request.POST, user=request.user)
        if form.is_valid():
            task = reminders.task_create(**form.changes(), by=request.user)
            messages.success(request, _("Task “%(title)s” added.") % {"title": task.title})
            return redirect("followups:tasks")
    else:
        initial = {"due_at": timezone.localtime().replace(second=0, microsecond=0) + datetime.timedelta(days=1)}
        form = TaskForm(user=request.user, initial=initial)
    return render(request, "followups/task_form.html", {"form": form, "task": None})


@staff_permission_required("followups.change_task")
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = _my_task(request.user, pk)
    if request.method == "POST":
        form = TaskForm(request.POST, user=request.user, task=task)
        if form.is_valid():
            reminders.task_update(task=task, by=request.user, **form.changes())
            messages.success(request, _("Task “%(title)s” saved.") % {"title": task.title})
            return redirect("followups:tasks")
    else:
        form = TaskForm(user=request.user, task=task)
    return render(request, "followups/task_form.html", {"form": form, "task": task})


@staff_permission_required("followups.change_task")
@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    task = _my_task(request.user, pk)
    reminders.task_complete(task=task, by=request.user)
    if _is_htmx(request):
        return render(request, "followups/_partials/task_row.html", {"task": task, "now": timezone.now()})
    messages.success(request, _("Task “%(title)s” done.") % {"title": task.title})
    return redirect("followups:tasks")


# --- Notifications -------------------------------------------------------------------------------


@staff_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.filter(user=request.user).order_by("-created_at", "-id")
    page = Paginator(notifications, NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    unread = Notification.objects.filter(user=request.user, read_at__isnull=True).count()
    return render(request, "followups/notification_list.html", {"page": page, "unread": unread})


@staff_required
@require_GET
def notification_bell(request: HttpRequest) -> HttpResponse:
    unread = Notification.objects.filter(user=request.user, read_at__isnull=True).count()
    return render(request, "followups/_partials/bell.html", {"unread": unread})


@staff_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    reminders.notification_mark_read(notification=notification)
    url = notification.url
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(url)
    return redirect("followups:notifications")


@staff_required
@require_POST
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    count = reminders.notifications_mark_all_read(user=request.user)
    messages.success(request, _("%(count)d notifications marked as read.") % {"count": count})
    return redirect("followups:notifications")


# --- Calendar and history ------------------------------------------------------------------------


@staff_permission_required("followups.view_task")
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    """Today and the next days (当天或大于当天的显示在日程中): open tasks, the next contact dates of
    the user's own customers, and personal notes, grouped by day in the local time zone."""
    user = request.user
    today = timezone.localdate()
    days = [today + datetime.timedelta(days=n) for n in range(CALENDAR_DAYS)]
    start, end = _day_start(days[0]), _day_start(days[-1] + datetime.timedelta(days=1))
    by_day: dict[datetime.date, dict[str, list]] = defaultdict(lambda: {"tasks": [], "followups": [], "notes": []})
    tasks = (
        Task.objects.open()
        .filter(assignee=user, due_at__gte=start, due_at__lt=end)
        .select_related("customer")
        .order_by("due_at", "pk")
    )
    for task in tasks:
        by_day[timezone.localdate(task.due_at)]["tasks"].append(task)
    followups = (
        FollowUp.objects.visible_to(user)
        .filter(customer__owner=user, next_contact_date__gte=days[0], next_contact_date__lte=days[-1])
        .select_related("customer")
        .order_by("next_contact_date", "pk")
    )
    for followup in followups:
        by_day[followup.next_contact_date]["followups"].append(followup)
    for note in Note.objects.filter(author=user, date__gte=days[0], date__lte=days[-1]).order_by("date", "pk"):
        by_day[note.date]["notes"].append(note)
    overdue = list(
        Task.objects.open().filter(assignee=user, due_at__lt=start).select_related("customer").order_by("due_at")[:20]
    )
    context = {
        "days": [{"date": day, "is_today": day == today, **by_day[day]} for day in days],
        "overdue": overdue,
        "today": today,
    }
    return render(request, "followups/calendar.html", context)


def _history_sources(user, kind: str, text: str) -> list[tuple]:
    """(queryset, entry maker) of each source of the past entries of the chosen kind(s)."""
    today = timezone.localdate()
    sources = []
    if kind in ("", "note"):
        notes = Note.objects.filter(author=user, date__lt=today)
        if text:
            notes = notes.filter(text__icontains=text)
        sources.append(
            (
                notes.order_by("-date", "-pk"),
                lambda n: {"kind": "note", "date": n.date, "object": n},
            )
        )
    if kind in ("", "task"):
        tasks = Task.objects.filter(assignee=user, done=True).select_related("customer")
        if text:
            tasks = tasks.filter(title__icontains=text)
        sources.append(
            (
                tasks.order_by("-done_at", "-pk"),
                lambda t: {"kind": "task", "date": timezone.localdate(t.done_at or t.due_at), "object": t},
            )
        )
    if kind in ("", "followup"):
        followups = FollowUp.objects.visible_to(user).filter(created_by=user, happened_at__lt=_day_start(today))
        if text:
            followups = followups.filter(
                Q(content__icontains=text) | Q(result__icontains=text) | Q(customer__name__icontains=text)
            )
        sources.append(
            (
                followups.select_related("customer").order_by("-happened_at", "-pk"),
                lambda f: {"kind": "followup", "date": timezone.localdate(f.happened_at), "object": f},
            )
        )
    return sources


def _history_entries(sources: list[tuple], limit: int) -> list[dict]:
    """The newest ``limit`` entries of the sources, merged by date. Each source is asked for at most
    ``limit`` rows (the page's end), so a deep archive costs no more than the page asked for."""
    entries = []
    for queryset, entry in sources:
        entries.extend(entry(obj) for obj in queryset[:limit])
    entries.sort(key=lambda e: e["date"], reverse=True)
    return entries[:limit]


@staff_permission_required("followups.view_task")
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """The past (历史记录在历史数据中查询): the user's past notes, done tasks and follow-ups, searchable."""
    form = HistorySearchForm(request.GET or None)
    text, kind = "", ""
    if form.is_bound and form.is_valid():
        text, kind = form.cleaned_data["q"].strip(), form.cleaned_data["kind"]
    page = request.GET.get("page", "1")
    number = max(1, int(page)) if page.isascii() and page.isdigit() and len(page) <= 6 else 1
    sources = _history_sources(request.user, kind, text)
    # Counted first, so that a page beyond the last (?page=999999) is clamped before any rows are read.
    total = sum(queryset.count() for queryset, _entry in sources)
    pages = max(1, -(-total // HISTORY_PER_PAGE))
    number = min(number, pages)
    entries = _history_entries(sources, number * HISTORY_PER_PAGE)
    page_entries = entries[(number - 1) * HISTORY_PER_PAGE : number * HISTORY_PER_PAGE]
    query = urlencode({name: value for name, value in (("q", text), ("kind", kind)) if value})
    context = {
        "form": form if form.is_bound else HistorySearchForm(),
        "entries": page_entries,
        "total": total,
        "number": number,
        "pages": pages,
        "previous_page": number - 1 if number > 1 else None,
        "next_page": number + 1 if number < pages else None,
        "query": query,
    }
    return render(request, "followups/history.html", context)


# --- Notes ---------------------------------------------------------------------------------------


def _after_note(note_date: datetime.date) -> str:
    return reverse("followups:calendar") if note_date >= timezone.localdate() else reverse("followups:history")


@staff_permission_required("followups.add_note")
@require_http_methods(["GET", "POST"])
def note_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            note = reminders.note_create(author=request.user, **form.cleaned_data)
            messages.success(request, _("Note saved."))
            return redirect(_after_note(note.date))
    else:
        initial = {"date": timezone.localdate()}
        try:
            initial["date"] = datetime.date.fromisoformat(request.GET.get("date", ""))
        except ValueError:
            pass
        form = NoteForm(initial=initial)
    return render(request, "followups/calendar_note_form.html", {"form": form, "note": None})


@staff_permission_required("followups.change_note")
@require_http_methods(["GET", "POST"])
def note_edit(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=pk, author=request.user)
    if request.method == "POST":
        form = NoteForm(request.POST, instance=Note(pk=note.pk, author=note.author))
        if form.is_valid():
            reminders.note_update(note=note, **form.cleaned_data)
            messages.success(request, _("Note saved."))
            return redirect(_after_note(note.date))
    else:
        form = NoteForm(instance=note)
    return render(request, "followups/calendar_note_form.html", {"form": form, "note": note})


@staff_permission_required("followups.delete_note")
@require_POST
def note_delete(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=pk, author=request.user)
    target = _after_note(note.date)
    reminders.note_delete(note=note)
    messages.success(request, _("Note deleted."))
    return redirect(target)
