"""Helpers every dashboard view uses."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django_htmx.http import retarget

from dashboard import access


def page_or_partial(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """The whole page, or only the named partial when htmx asks (same template)."""
    name = f"{template}#{partial}" if request.htmx and not request.htmx.boosted else template
    response = render(request, name, context)
    response.headers["Vary"] = "HX-Request"
    return response


def flash(request: HttpRequest, message: str, level: str = "error") -> HttpResponse:
    """A failure outside a form, swapped into the page's one #flash region."""
    html = render_to_string("dashboard/_flash.html", {"message": message, "level": level},
                            request=request)
    response = HttpResponse(html)
    return retarget(response, "#flash")


def refused(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """A refused change: in the #flash slot for htmx (which does not swap a 403),
    otherwise the 403 page, both saying why ("You need the 'Ban users' right in Cats.")."""
    if request.htmx:
        return flash(request, str(exc) or _("You may not do that here."))
    raise exc


def paginate(request: HttpRequest, items: Any, per_page: int = 25) -> Page:
    paginator = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))


def base_context(request: HttpRequest, section: str) -> dict[str, Any]:
    return {"section": section, "can_change": access.can_change(request.user)}
