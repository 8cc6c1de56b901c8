"""The people page: who the bots met in the owner's groups (issue 16; docs/people.md)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from dashboard import access
from dashboard import people as directory
from dashboard.views.common import base_context, page_or_partial, paginate

PEOPLE_PER_PAGE = 50
YES_NO = [("", _("any")), ("yes", _("yes")), ("no", _("no"))]


class PeopleFilterForm(forms.Form):
    group = forms.IntegerField(required=False, min_value=1, max_value=access.MAX_PK)
    language = forms.RegexField(regex=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length=16,
                                required=False)
    blocked = forms.ChoiceField(choices=YES_NO, required=False)
    referred = forms.ChoiceField(choices=YES_NO, required=False)

    def filters(self) -> directory.Filters:
        """What the form says; a field that does not validate filters nothing."""
        self.is_valid()  # cleaned_data then holds the fields that are valid
        data = self.cleaned_data
        return directory.Filters(
            group=data.get("group"),
            language=data.get("language") or "",
            blocked=_yes_no(data.get("blocked")),
            referred=_yes_no(data.get("referred")),
        )


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@require_GET
@login_required
def people_list(request: HttpRequest) -> HttpResponse:
    form = PeopleFilterForm(request.GET)
    filters = form.filters()
    page = paginate(request, directory.people(request.user, filters), PEOPLE_PER_PAGE)
    page.object_list = directory.describe(request.user, page.object_list)
    context = base_context(request, "people") | {
        "page": page,
        "form": form,
        "filters": filters,
        "groups": access.visible_groups(request.user).order_by("title", "pk"),
        "languages": directory.languages(request.user),
        "links": directory.referral_links(request.user)["owner"],
    }
    return page_or_partial(request, "dashboard/people.html", "people-table", context)
