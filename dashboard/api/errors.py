"""JSON errors with a clear message; validation errors name the field."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError

from dashboard.services import ServiceError


class FieldErrors(Exception):
    """Invalid input: {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid input")
        self.errors = errors


def _field_name(loc: list) -> str:
    # Ninja locations look like ["body", "payload", "warning_text"] or ["query", "limit"].
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload")]
    return ".".join(parts) or "request"


def _answer(api: NinjaAPI, request: HttpRequest, errors: list[dict]) -> HttpResponse:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return api.create_response(
        request, {"detail": f"Invalid input: {summary}", "errors": errors}, status=422
    )


def install(api: NinjaAPI) -> None:
    @api.exception_handler(NinjaValidationError)
    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = [{"field": _field_name(e.get("loc", [])), "message": e.get("msg", "invalid")}
                  for e in exc.errors]
        return _answer(api, request, errors)

    @api.exception_handler(FieldErrors)
    def on_field_errors(request: HttpRequest, exc: FieldErrors) -> HttpResponse:
        errors = [{"field": f, "message": m} for f, msgs in exc.errors.items() for m in msgs]
        return _answer(api, request, errors)

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)

    @api.exception_handler(PermissionDenied)
    def on_forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc) or "Forbidden."}, status=403)

    @api.exception_handler(ServiceError)
    def on_service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc)}, status=400)

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return api.create_response(request, {
            "detail": "Log in, or send Authorization: Bearer <token> (create one on /tokens/)."
        }, status=401)
