"""API errors as RFC 9457 problem details (`application/problem+json`).

Every error has `type`, `title`, `status` and `detail`; invalid input adds
`errors`, one `{"field", "message"}` per problem, so a client can point at the
field. Input is checked before any view runs (`StrictParser`): a NUL character
anywhere in a query string or body, or a JSON body that is not an object, is a
422, never a 500 from the database or a no-op that still writes an audit row.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from dashboard.services import ServiceError

PROBLEM_JSON = "application/problem+json"
# Problem types: tag URIs (RFC 4151) name them without promising a page behind them.
INVALID_INPUT = "tag:nezuko,2025:problem/invalid-input"


class FieldErrors(Exception):
    """Invalid input: {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid input")
        self.errors = errors


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank",
            **extra: Any) -> JsonResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JsonResponse(body, status=status, content_type=PROBLEM_JSON)


def invalid_input(errors: list[dict[str, str]]) -> JsonResponse:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", f"Invalid input: {summary}", type_=INVALID_INPUT,
                   errors=errors)


# --- input checks before validation ------------------------------------------------------


def _nul_fields(value: Any, where: str) -> list[str]:
    """Dotted paths of every string (or key) in `value` holding a NUL character."""
    if isinstance(value, str):
        return [where] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found += [path] if "\x00" in str(key) else _nul_fields(item, path)
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_fields(item, f"{where}.{i}")]
    return []


def _refuse_nul(data: Any) -> None:
    if fields := _nul_fields(data, ""):
        raise NinjaValidationError([
            {"loc": [f or "request"], "msg": "Null characters are not allowed."} for f in fields
        ])


class StrictParser(Parser):
    """JSON objects only, and no NUL characters in a query string or a body."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise NinjaValidationError([{"loc": ["request"], "msg": "The body must be a "
                                         f"JSON object, not {type(data).__name__}."}])
        _refuse_nul(data)
        return data

    def parse_querydict(self, data: MultiValueDict, list_fields: list[str],
                        request: HttpRequest) -> dict[str, Any]:
        result = super().parse_querydict(data, list_fields, request)
        _refuse_nul(result)
        return result


# --- handlers ------------------------------------------------------------------------------


def _field_name(loc: list) -> str:
    # Ninja locations look like ["body", "payload", "warning_text"] or ["query", "limit"].
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload")]
    return ".".join(parts) or "request"


def _validation_errors(exc: NinjaValidationError) -> list[dict[str, str]]:
    return [{"field": _field_name(e.get("loc", [])), "message": e.get("msg", "invalid")}
            for e in exc.errors]


def install(api: NinjaAPI) -> None:
    @api.exception_handler(NinjaValidationError)
    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return invalid_input(_validation_errors(exc))

    @api.exception_handler(FieldErrors)
    def on_field_errors(request: HttpRequest, exc: FieldErrors) -> HttpResponse:
        return invalid_input([{"field": f, "message": m}
                              for f, msgs in exc.errors.items() for m in msgs])

    @api.exception_handler(ValidationError)
    def on_model_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        # What a service's full_clean refused, field by field.
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"request": exc.messages}
        return invalid_input([{"field": f, "message": m}
                              for f, msgs in errors.items() for m in msgs])

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja wraps what the parser raises in "400 Cannot parse request body".
        if isinstance(exc.__cause__, NinjaValidationError):
            return invalid_input(_validation_errors(exc.__cause__))
        if isinstance(exc.__cause__, ValueError):
            return invalid_input([{"field": "request", "message": "The body is not JSON."}])
        return problem(exc.status_code, _title(exc.status_code), str(exc))

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(404, "Not found", str(exc) or "Not found.")

    @api.exception_handler(PermissionDenied)
    def on_forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem(403, "Forbidden", str(exc) or "Forbidden.")

    @api.exception_handler(ServiceError)
    def on_service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
        return problem(400, "Bad request", str(exc))

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = problem(401, "Unauthorized", "Log in, or send Authorization: Bearer <token> "
                           "(create one on /tokens/).")
        response["WWW-Authenticate"] = 'Bearer realm="nezuko"'
        return response

    @api.exception_handler(Throttled)
    def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        # Ninja adds Retry-After to this response.
        return problem(429, "Too many requests",
                       "Request rate exceeded; retry after the number of seconds in Retry-After.")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
