from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.access import portal_required, staff_permission_required
from accounts.forms import DepartmentForm, EmployeeFilterForm, EmployeeForm, LoginForm
from accounts.models import Department, Employee
from accounts.portal import customer_for
from accounts.services import department_save, employee_save


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:home")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been changed."))
        return response


def locked_out(request: HttpRequest, credentials: dict | None = None, *args, **kwargs) -> HttpResponse:
    """django-axes calls this instead of logging in once an account or address is locked out."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "accounts/locked_out.html", {"minutes": minutes}, status=429)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Where a user lands after login: staff → dashboard, customers → portal."""
    if request.user.is_staff_member:
        return redirect("reports:dashboard")
    if request.user.is_portal_customer:
        return redirect("accounts:portal_home")
    raise PermissionDenied(_("Your account has no role yet. Please ask your administrator to assign one."))


@portal_required
def portal_home(request: HttpRequest) -> HttpResponse:
    # A portal user whose customer record is gone (erased, deleted) still gets the page, without counts.
    customer = customer_for(request.user)
    open_tickets = customer.tickets.open().count() if customer is not None else 0
    return render(request, "accounts/portal_home.html", {"customer": customer, "open_tickets": open_tickets})


# --- Employees (员工信息) -------------------------------------------------------------------


def _get_employee(pk: int) -> Employee:
    # Employees have no per-object scope: model permissions decide, checked by the view decorators.
    return get_object_or_404(Employee.objects.select_related("department", "user"), pk=pk)


@staff_permission_required("accounts.view_employee")
def employee_list(request: HttpRequest) -> HttpResponse:
    form = EmployeeFilterForm(request.GET or None)
    employees = Employee.objects.select_related("department", "user")
    if form.is_valid():
        employees = employees.search(form.cleaned_data["q"] or "")
        if form.cleaned_data["department"]:
            employees = employees.in_department_tree(form.cleaned_data["department"])
        if form.cleaned_data["status"] == "active":
            employees = employees.filter(is_active=True)
        elif form.cleaned_data["status"] == "inactive":
            employees = employees.filter(is_active=False)
    page = Paginator(employees.order_by("number"), 25).get_page(request.GET.get("page"))
    context = {"form": form, "page": page}
    if request.headers.get("HX-Request"):
        return render(request, "accounts/_partials/employee_table.html", context)
    return render(request, "accounts/employee_list.html", context)


@staff_permission_required("accounts.add_employee")
@require_http_methods(["GET", "POST"])
def employee_create(request: HttpRequest) -> HttpResponse:
    form = EmployeeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        employee = employee_save(employee=form.save(commit=False))
        messages.success(
            request, _("Employee %(number)s %(name)s was created.") % {"number": employee.number, "name": employee.name}
        )
        return redirect("accounts:employee_list")
    return render(request, "accounts/employee_form.html", {"form": form})


@staff_permission_required("accounts.change_employee")
@require_http_methods(["GET", "POST"])
def employee_edit(request: HttpRequest, pk: int) -> HttpResponse:
    employee = _get_employee(pk)
    form = EmployeeForm(request.POST or None, instance=employee)
    if request.method == "POST" and form.is_valid():
        employee_save(employee=form.save(commit=False))
        messages.success(request, _("Employee %(number)s was saved.") % {"number": employee.number})
        return redirect("accounts:employee_list")
    return render(request, "accounts/employee_form.html", {"form": form, "employee": employee})


@staff_permission_required("accounts.delete_employee")
@require_http_methods(["GET", "POST"])
def employee_delete(request: HttpRequest, pk: int) -> HttpResponse:
    employee = _get_employee(pk)
    if request.method == "POST":
        try:
            employee.delete()
        except ProtectedError:
            messages.error(request, _("This employee is still referenced by other records; deactivate them instead."))
            return redirect("accounts:employee_edit", pk=employee.pk)
        messages.success(request, _("Employee %(number)s was deleted.") % {"number": employee.number})
        return redirect("accounts:employee_list")
    return render(request, "accounts/confirm_delete.html", {"object": employee, "cancel_url": "accounts:employee_list"})


# --- Departments --------------------------------------------------------------------------------


def _get_department(pk: int) -> Department:
    return get_object_or_404(Department, pk=pk)


@staff_permission_required("accounts.view_department")
def department_list(request: HttpRequest) -> HttpResponse:
    departments = list(Department.objects.select_related("head", "parent"))
    children: dict[int | None, list[Department]] = {}
    for department in departments:
        children.setdefault(department.parent_id, []).append(department)
    rows: list[tuple[int, Department]] = []

    def walk(parent_id: int | None, depth: int) -> None:
        for department in children.get(parent_id, []):
            rows.append((depth, department))
            walk(department.pk, depth + 1)

    walk(None, 0)
    counts = dict(
        Employee.objects.filter(is_active=True, department__isnull=False)
        .values("department_id")
        .annotate(n=Count("pk"))
        .values_list("department_id", "n")
    )
    rows_with_counts = [(depth, department, counts.get(department.pk, 0)) for depth, department in rows]
    return render(request, "accounts/department_list.html", {"rows": rows_with_counts})


@staff_permission_required("accounts.add_department")
@require_http_methods(["GET", "POST"])
def department_create(request: HttpRequest) -> HttpResponse:
    form = DepartmentForm(request.POST or None, initial={"parent": request.GET.get("parent")})
    if request.method == "POST" and form.is_valid():
        department = department_save(department=form.save(commit=False))
        messages.success(request, _("Department %(name)s was created.") % {"name": department.name})
        return redirect("accounts:department_list")
    return render(request, "accounts/department_form.html", {"form": form})


@staff_permission_required("accounts.change_department")
@require_http_methods(["GET", "POST"])
def department_edit(request: HttpRequest, pk: int) -> HttpResponse:
    department = _get_department(pk)
    form = DepartmentForm(request.POST or None, instance=department)
    if request.method == "POST" and form.is_valid():
        department_save(department=form.save(commit=False))
        messages.success(request, _("Department %(name)s was saved.") % {"name": department.name})
        return redirect("accounts:department_list")
    return render(request, "accounts/department_form.html", {"form": form, "department": department})


@staff_permission_required("accounts.delete_department")
@require_http_methods(["GET", "POST"])
def department_delete(request: HttpRequest, pk: int) -> HttpResponse:
    department = _get_department(pk)
    if request.method == "POST":
        try:
            department.delete()
        except ProtectedError:
            messages.error(request, _("This department still has sub-departments or employees; move them first."))
            return redirect("accounts:department_list")
        messages.success(request, _("Department %(name)s was deleted.") % {"name": department.name})
        return redirect("accounts:department_list")
    return render(
        request, "accounts/confirm_delete.html", {"object": department, "cancel_url": "accounts:department_list"}
    )
