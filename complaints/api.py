"""The REST API of the complaints app (cims.api): tickets (投诉 / 服务工单) and their categories,
registered on /api/v1/.

The same rules as the desk (complaints.views): a ticket is reached through
``Ticket.objects.visible_to(user)`` (404 outside it), filed through ``ticket_file`` (numbered, due by
its severity's SLA, assigned automatically, a complaint moves the customer to 售后中) after the
desk's TicketForm, and changed only by the desk's actions: ``transition`` (the status flow),
``assign`` (a service lead) and ``comments`` (a reply or an internal note). There is no PUT or
PATCH: a ticket's status and assignee never change as plain fields. Files are not taken through
the API (the desk and the portal upload them).
"""

from __future__ import annotations

from django import forms as django_forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from cims.api.errors import Conflict, run_form
from cims.api.views import CimsSerializer, CimsViewSet, StrictFieldsMixin
from cims.forms import PK_MAX
from complaints import forms, services
from complaints.models import Ticket, TicketCategory, TicketEvent
from complaints.views import filter_tickets
from customers.access import get_customer_for
from customers.api_records import CustomerField, id_param, query_filters
from followups.api import ContactBriefSerializer, OptionalIdField

S = Ticket.Status


def _refused(error: services.TicketError, code: str) -> Conflict:
    """A write the ticket's current state refuses (the flow, a closed ticket): 409 with the reason."""
    return Conflict(str(error), code=code)


# --- Serializers ---------------------------------------------------------------------------------


class TicketCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class TicketEventSerializer(serializers.ModelSerializer):
    actor_name = serializers.SerializerMethodField()

    class Meta:
        model = TicketEvent
        fields = [
            "id",
            "kind",
            "from_status",
            "to_status",
            "actor",
            "actor_name",
            "by_customer",
            "internal",
            "body",
            "created_at",
        ]
        read_only_fields = fields

    def get_actor_name(self, event: TicketEvent) -> str:
        return event.actor.display_name if event.actor else ""


class StepSerializer(serializers.Serializer):
    to = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)


class TicketSerializer(CimsSerializer):
    """A ticket as the desk shows it; filing takes the fields of the desk's form, nothing else."""

    customer = CustomerField(help_text=gettext_lazy("The customer's id."))
    customer_detail = TicketCustomerSerializer(source="customer", read_only=True)
    category = serializers.IntegerField(
        source="category_id", min_value=1, help_text=gettext_lazy("An active category.")
    )
    category_name = serializers.CharField(source="category.name", read_only=True)
    contact = OptionalIdField(source="contact_id")
    contact_detail = ContactBriefSerializer(source="contact", read_only=True, allow_null=True)
    opportunity = OptionalIdField(source="opportunity_id")
    assignee_name = serializers.SerializerMethodField()
    sla_state = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "number",
            "customer",
            "customer_detail",
            "kind",
            "category",
            "category_name",
            "severity",
            "channel",
            "subject",
            "description",
            "contact",
            "contact_detail",
            "opportunity",
            "status",
            "assignee",
            "assignee_name",
            "sla_due_at",
            "sla_state",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "escalated_at",
            "rating",
            "rating_comment",
            "rated_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "number",
            "status",
            "assignee",
            "sla_due_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "escalated_at",
            "rating",
            "rating_comment",
            "rated_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"kind": {"required": False}, "severity": {"required": False}, "channel": {"required": False}}

    def get_assignee_name(self, ticket: Ticket) -> str:
        return ticket.assignee.display_name if ticket.assignee else ""

    def get_sla_state(self, ticket: Ticket) -> str:
        """ "ok", "due_soon", "breached", or "" (not open)."""
        return services.sla_state(ticket, self.context.get("now"))

    def validate(self, attrs):
        customer = get_customer_for(self.context["user"], attrs["customer_id"])
        given = {name.removesuffix("_id"): value for name, value in attrs.items()}
        data = {
            "kind": Ticket.Kind.COMPLAINT,
            "severity": Ticket.Severity.MEDIUM,
            "channel": Ticket.Channel.PHONE,
        } | given
        form = forms.TicketForm(data=data, customer=customer)
        run_form(form)
        self._customer, self._values = customer, form.values()
        return attrs

    def create(self, validated_data):
        try:
            return services.ticket_file(customer=self._customer, by=self.context["user"], **self._values)
        except services.TicketError as error:
            raise serializers.ValidationError(
                {"non_field_errors": [ErrorDetail(str(error), code="ticket_refused")]}
            ) from None


class TicketDetailSerializer(TicketSerializer):
    """A ticket with its whole timeline (internal notes too, as the desk shows staff) and the steps
    its status may take now."""

    events = TicketEventSerializer(many=True, read_only=True)
    steps = serializers.SerializerMethodField()

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "events", "steps"]

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, ticket: Ticket) -> list[dict]:
        if not self.context["user"].has_perm("complaints.change_ticket"):
            return []
        return [{"to": to, "label": label} for to, label in services.steps_for(ticket)]


class TransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    to = serializers.ChoiceField(choices=S.choices, help_text=gettext_lazy("The new status."))
    comment = serializers.CharField(required=False, allow_blank=True, max_length=services.BODY_MAX)


class AssignSerializer(StrictFieldsMixin, serializers.Serializer):
    to = serializers.IntegerField(min_value=1, help_text=gettext_lazy("The service staff member's user id."))
    comment = serializers.CharField(required=False, allow_blank=True, max_length=services.BODY_MAX)


class CommentSerializer(StrictFieldsMixin, serializers.Serializer):
    body = serializers.CharField(max_length=services.BODY_MAX)
    internal = serializers.BooleanField(
        default=False, help_text=gettext_lazy("An internal note the customer never sees.")
    )


class TicketCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketCategory
        fields = ["id", "name", "sort_order", "is_active"]
        read_only_fields = fields


# --- Views ---------------------------------------------------------------------------------------


class TicketApiFilterForm(forms.TicketFilterForm):
    """The desk's filters, strict (a bad value is a 400 here, not ignored) and with the assignee."""

    assignee = django_forms.IntegerField(required=False, min_value=1, max_value=PK_MAX)


@extend_schema_view(
    list=extend_schema(
        summary="Tickets of the customers this account may see, newest first (open ones unless a status is given)",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=[*S.values, forms.ALL],
                description="A status, or “all”; without it, the open tickets (new, assigned, in progress).",
            ),
            OpenApiParameter("severity", str, enum=Ticket.Severity.values),
            OpenApiParameter("kind", str, enum=Ticket.Kind.values),
            OpenApiParameter("channel", str, enum=Ticket.Channel.values),
            OpenApiParameter(
                "sla", str, enum=[forms.DUE_SOON, forms.BREACHED], description="Open tickets due soon or overdue."
            ),
            id_param("category", "Only this category."),
            id_param("customer", "Only this customer's tickets."),
            id_param("assignee", "Only the tickets assigned to this user."),
            OpenApiParameter(
                "q", str, description="A ticket number or customer code (exact), or the start of a customer's name."
            ),
        ],
    ),
    retrieve=extend_schema(summary="A ticket with its timeline", responses=TicketDetailSerializer),
    create=extend_schema(
        summary="File a ticket for a customer this account may see: numbered, due by its SLA, assigned automatically",
        responses={201: TicketDetailSerializer},
    ),
)
class TicketViewSet(CimsViewSet):
    model = Ticket
    access_log_type = "complaints.ticket"
    http_method_names = ["get", "post", "head", "options"]

    PERMISSIONS = {
        "transition": "complaints.change_ticket",
        "assign": "complaints.assign_ticket",
        "comments": "complaints.add_ticketevent",
    }

    @property
    def permission_map(self):
        needed = self.PERMISSIONS.get(getattr(self, "action", None) or "")
        return {"POST": needed, "GET": "complaints.view_ticket"} if needed else None

    def get_serializer_class(self):
        return TicketSerializer if self.action == "list" else TicketDetailSerializer

    def get_serializer_context(self):
        return super().get_serializer_context() | {"user": self.request.user, "now": timezone.now()}

    def get_queryset(self):
        user = self.request.user
        queryset = Ticket.objects.visible_to(user).select_related("customer", "category", "assignee", "contact")
        if self.action == "list":
            data = query_filters(TicketApiFilterForm(self.request.query_params))
            data["tab"] = forms.TEAM  # "mine" is the desk's view of one agent; ?assignee= says whose
            queryset, _order = filter_tickets(user, data, now=timezone.now(), base=queryset)
            if data.get("assignee"):
                queryset = queryset.filter(assignee_id=data["assignee"])
        elif self.action == "retrieve":
            queryset = queryset.select_related("created_by").prefetch_related("events__actor")
        return queryset

    def _answer(self, ticket: Ticket, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().prefetch_related("events__actor").get(pk=ticket.pk)
        return Response(TicketDetailSerializer(fresh, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(
        summary="Move a ticket along the status flow", request=TransitionSerializer, responses=TicketDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        ticket = self.get_object()
        body = TransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        to, comment = body.validated_data["to"], body.validated_data.get("comment", "")
        if (ticket.status, to) in services.COMMENT_REQUIRED and not comment.strip():
            raise serializers.ValidationError(
                {"comment": [ErrorDetail(_("Say why the ticket is reopened."), code="required")]}
            )
        try:
            ticket = services.ticket_transition(ticket=ticket, to=to, by=request.user, comment=comment)
        except services.TicketError as error:
            raise _refused(error, "transition_refused") from None
        return self._answer(ticket)

    @extend_schema(
        summary="Assign a ticket to a service staff member", request=AssignSerializer, responses=TicketDetailSerializer
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        ticket = self.get_object()
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = forms.AssignForm(data=body.validated_data)
        data = run_form(form)
        try:
            ticket = services.ticket_assign(ticket=ticket, to=data["to"], by=request.user, comment=data["comment"])
        except services.TicketError as error:
            raise _refused(error, "assign_refused") from None
        return self._answer(ticket)

    @extend_schema(
        summary="Reply on a ticket (the customer sees it) or add an internal note",
        request=CommentSerializer,
        responses={201: TicketEventSerializer},
    )
    @action(detail=True, methods=["post"])
    def comments(self, request, pk=None):
        ticket = self.get_object()
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = run_form(forms.CommentForm(data=body.validated_data))
        try:
            event = services.ticket_comment(
                ticket=ticket, body=data["body"], by=request.user, internal=data["internal"]
            )
        except services.TicketError as error:
            raise _refused(error, "comment_refused") from None
        return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="Ticket categories (in use or not)"),
    retrieve=extend_schema(summary="A ticket category"),
)
class TicketCategoryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The categories a ticket is filed under: a short list maintained by administrators."""

    model = TicketCategory
    queryset = TicketCategory.objects.order_by("sort_order", "name")
    serializer_class = TicketCategorySerializer
    http_method_names = ["get", "head", "options"]
    lookup_value_regex = r"[0-9]{1,18}"

    def keyset_order(self, request) -> tuple[str, bool]:
        return "sort_order", False  # as the desk's form lists them


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("complaints", TicketViewSet, basename="complaint")
    router.register("ticket-categories", TicketCategoryViewSet, basename="ticket-category")
