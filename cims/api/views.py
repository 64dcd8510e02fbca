"""The base of every API viewset and serializer: scope, masking, strict fields, access logging."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.cache import patch_cache_control
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ErrorDetail, Throttled, ValidationError

from cims import audit, hardening
from cims.api.idempotency import IdempotentCreateMixin
from cims.api.permissions import api_token
from cims.models import PersonalDataAccess
from cims.request_ip import client_ip


class StrictFieldsMixin:
    """No mass assignment: a field this request may not set is refused by name (400
    ``field_not_allowed``), never silently ignored. Which fields are writable is the serializer's
    ``get_fields()`` for the request's user (read-only ones are not)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {field.field_name for field in self._writable_fields}
            refused = sorted(str(name) for name in data if name not in writable)
            if refused:
                message = _("This field cannot be set by this account (or does not exist).")
                raise ValidationError({name: [ErrorDetail(str(message), code="field_not_allowed")] for name in refused})
        return super().to_internal_value(data)


@extend_schema_field({"type": "array", "items": {"type": "string"}, "readOnly": True})
class MaskedFieldsField(serializers.Field):
    """Names of the personal fields shown masked to this account (``masked_fields``)."""

    def __init__(self, **kwargs):
        kwargs.update(read_only=True, source="*")
        super().__init__(**kwargs)

    def to_representation(self, instance) -> list[str]:
        return self.parent.masked_names(instance)


class PersonalDataMixin:
    """Personal fields (customers.access.REVEALABLE_FIELDS) as the role sees them in the UI: plain,
    or masked unless the user holds the permission; sensitive ones (ID number, bank account) masked
    for everyone, as in the UI (revealing is a logged UI action). Lists them in ``masked_fields``."""

    personal_fields: tuple[str, ...] = ()

    def _shown(self, instance) -> dict:
        from customers.access import personal_fields_for

        cache = self.__dict__.setdefault("_shown_cache", {})
        key = id(instance)
        if key not in cache:
            cache[key] = (instance, personal_fields_for(self.context["request"].user, instance, self.personal_fields))
        return cache[key][1]

    def masked_names(self, instance) -> list[str]:
        return [name for name, shown in self._shown(instance).items() if shown["masked"]]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name, shown in self._shown(instance).items():
            if name in data:
                data[name] = shown["value"]
        return data


class CimsSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pass


class CimsViewSet(
    IdempotentCreateMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create, update; never delete. Subclasses set ``model`` (whose permissions
    guard the methods unless ``permission_map`` says otherwise), ``get_queryset`` through the
    app's ``visible_to(user)``, and ``access_log_type`` when the objects hold personal data."""

    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    lookup_value_regex = r"[0-9]{1,18}"
    model = None
    access_log_type = ""  # e.g. "customers.customer": reads are written to the access log
    keyset_key = "pk"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.action == "list" and request.query_params.get("q", "").strip():
            # A search (a term that may be a phone number) counts against the user's search limit,
            # as in the UI: several tokens of one service user do not multiply it.
            wait = hardening.hit(hardening.SEARCH, f"u{request.user.pk}")
            if wait is not None:
                raise Throttled(wait=wait)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Personal data: neither a proxy nor a client cache keeps it (NoStoreMiddleware only sees sessions).
        patch_cache_control(response, private=True, no_store=True)
        return response

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        page = getattr(self.paginator, "page", None)
        if self.access_log_type and page is not None and page.object_list:
            self._log(request, response, list(page.object_list))
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        if self.access_log_type:
            self._log(request, response, [self._object])
        return response

    def get_object(self):
        self._object = super().get_object()
        return self._object

    def _log(self, request, response, objects: list):
        """One VIEW row per object read (rows = how many were read together), naming the token;
        written after the response went out, in one INSERT."""
        token = api_token(request)
        detail = f"API {token.name}" if token is not None else "API"
        user = request.user
        address = client_ip(request._request)

        def write() -> None:
            PersonalDataAccess.objects.bulk_create(
                PersonalDataAccess(
                    user=user,
                    action=PersonalDataAccess.Action.VIEW,
                    object_type=self.access_log_type,
                    object_id=str(obj.pk),
                    object_label=str(getattr(obj, "code", "") or obj.pk)[:64],
                    rows=len(objects),
                    detail=detail[:500],
                    ip_address=address,
                )
                for obj in objects
            )

        return audit.after_response(response, write)
