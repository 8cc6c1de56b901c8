"""`{% load language_choices %}{% language_choices as languages %}`: the switcher's list.

Each language by the name settings.LANGUAGES gives it, in that language itself
("Español", "العربية"), untranslated: Django's own `get_available_languages`
would translate "English" into the page's language, and someone who cannot read
the page must still find their own.
"""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def language_choices() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)
