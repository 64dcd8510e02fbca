"""Every API error as JSON with a stable code and a message in the request's language.

    {"error": {"code": "validation_error", "message": "…",
               "fields": {"mobile": [{"code": "invalid", "message": "…"}]}}}

``code`` is part of the API's contract (docs/api.md lists them); ``message`` is for people and
follows Accept-Language (zh-hans by default, en).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)

# DRF's default codes, renamed where ours are clearer; anything else keeps DRF's code.
CODES = {
    "invalid": "validation_error",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "not_acceptable": "not_acceptable",
    "unsupported_media_type": "unsupported_media_type",
    "throttled": "rate_limited",
    "parse_error": "parse_error",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def form_errors(form, rename=None) -> exceptions.ValidationError:
    """A Django form's errors as a 400, each with the form's own message and code, under the API's
    field names (``rename``). The API validates through the UI's forms: this is how their verdict
    reaches the client."""
    from django.core.exceptions import NON_FIELD_ERRORS
    from rest_framework.settings import api_settings

    detail: dict = {}
    for name, errors in form.errors.as_data().items():
        if name == NON_FIELD_ERRORS:
            key = api_settings.NON_FIELD_ERRORS_KEY
        else:
            key = rename(name) if rename else name
        for error in errors:
            for message in error.messages:
                detail.setdefault(key, []).append(exceptions.ErrorDetail(message, code=error.code or "invalid"))
    return exceptions.ValidationError(detail)


def run_form(form) -> dict:
    """The form's cleaned data, or a 400 naming each field (see ``form_errors``)."""
    if not form.is_valid():
        raise form_errors(form)
    return form.cleaned_data


def _field_errors(detail) -> dict:
    """DRF's nested detail as {field: [{"code", "message"}]}; nested objects joined with dots."""
    fields: dict[str, list] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, exceptions.ErrorDetail):
                    fields.setdefault(prefix or "non_field_errors", []).append(
                        {"code": item.code, "message": str(item)}
                    )
                else:
                    walk(f"{prefix}.{index}" if prefix else str(index), item)
        elif isinstance(value, exceptions.ErrorDetail):
            fields.setdefault(prefix or "non_field_errors", []).append({"code": value.code, "message": str(value)})

    walk("", detail)
    return fields


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found, or not visible to this account."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(_("This account may not change this record."), code="read_only_record")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's handler500 (JSON under /api/) takes it
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        code = "validation_error"
        if any(item["code"] == "field_not_allowed" for errors in fields.values() for item in errors):
            code = "field_not_allowed"
        message = _("The request has invalid fields.")
        response.data = error_body(code, message, fields)
        return response
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    code = getattr(exc.detail, "code", None) or exc.default_code
    code = CODES.get(code, code)
    if isinstance(exc, exceptions.Throttled):
        code = "rate_limited"
    response.data = error_body(code, str(detail))
    return response


def json_error(request, status_code: int, code: str, message: str) -> JsonResponse:
    """For Django's own 404/500 handlers when the path is the API's."""
    return JsonResponse(error_body(code, message), status=status_code, json_dumps_params={"ensure_ascii": False})


def is_api_path(request) -> bool:
    return request.path.startswith("/api/")


__all__ = [
    "Conflict",
    "Response",
    "Unprocessable",
    "error_body",
    "exception_handler",
    "form_errors",
    "is_api_path",
    "json_error",
    "run_form",
]
