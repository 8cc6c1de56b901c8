"""Keep the gettext catalogs under locale/ in step with the code, and fill them.

    python scripts/translations.py extract          # makemessages for every shipped language
    python scripts/translations.py todo es > es.json  # what Spanish still misses, as JSON
    python scripts/translations.py fill es es.json  # write those translations into the .po
    python scripts/translations.py status           # missing / fuzzy counts per language

`todo` lists each untranslated or fuzzy entry with its English text, its plural, its
context and the translators' comments; `fill` takes the same list back with a
`msgstr` (or, for a plural, `msgstr_plural`: one text per plural form of the language)
and clears the fuzzy flag. Working in JSON keeps translators away from the .po syntax
(escaping, line folding, plural indices), which polib handles.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import polib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from groups.languages import PLURAL_FORMS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"


# Code that no person reads: tests, benchmarks, the Bot API emulator, tooling.
IGNORED = [".venv", "node_modules", "staticfiles", "benchmarks", "scripts", "tests",
           "*/tests", "bots/emulator", "ops", "docs"]


def locales() -> list[str]:
    return list(PLURAL_FORMS)


def po_path(locale: str) -> Path:
    return LOCALE / locale / "LC_MESSAGES" / "django.po"


def extract() -> None:
    """Run makemessages for every language (file-level locations: fewer merge conflicts)."""
    LOCALE.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nezuko.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("NEZUKO_READ_DOTENV", "false")
    os.chdir(ROOT)  # makemessages reads the tree from the working directory
    import django
    from django.core.management import call_command

    django.setup()
    call_command("makemessages", locale=locales(), ignore_patterns=IGNORED, no_wrap=True,
                 add_location="file", no_obsolete=True, verbosity=0)
    for locale in locales():
        if not po_path(locale).exists():  # makemessages writes nothing when nothing is marked
            continue
        catalog = polib.pofile(str(po_path(locale)), wrapwidth=0)
        catalog.metadata["Plural-Forms"] = PLURAL_FORMS[locale]
        catalog.metadata["Language"] = locale
        catalog.metadata["Content-Type"] = "text/plain; charset=UTF-8"
        catalog.metadata["Project-Id-Version"] = "Nezuko"
        catalog.metadata_is_fuzzy = False
        catalog.save()


def needs_work(entry: polib.POEntry) -> bool:
    if entry.obsolete:
        return False
    if "fuzzy" in entry.flags:
        return True
    if entry.msgid_plural:
        return not all(entry.msgstr_plural.values())
    return not entry.msgstr


def todo(locale: str) -> list[dict]:
    catalog = polib.pofile(str(po_path(locale)))
    nplurals = int(PLURAL_FORMS[locale].split(";")[0].split("=")[1])
    items = []
    for entry in catalog:
        if not needs_work(entry):
            continue
        item = {"msgid": entry.msgid}
        if entry.msgctxt:
            item["msgctxt"] = entry.msgctxt
        if entry.comment:
            item["comment"] = entry.comment
        if entry.msgid_plural:
            item["msgid_plural"] = entry.msgid_plural
            item["msgstr_plural"] = [""] * nplurals
        else:
            item["msgstr"] = ""
        items.append(item)
    return items


def fill(locale: str, items: list[dict]) -> int:
    catalog = polib.pofile(str(po_path(locale)), wrapwidth=0)
    filled = 0
    for item in items:
        entry = catalog.find(item["msgid"], msgctxt=item.get("msgctxt"))
        if entry is None:
            print(f"not in the catalog (stale?): {item['msgid'][:60]!r}", file=sys.stderr)
            continue
        if entry.msgid_plural:
            forms = item.get("msgstr_plural") or []
            if not all(forms):
                continue
            entry.msgstr_plural = dict(enumerate(forms))
        else:
            if not item.get("msgstr"):
                continue
            entry.msgstr = item["msgstr"]
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
        entry.previous_msgid = entry.previous_msgid_plural = entry.previous_msgctxt = None
        filled += 1
    catalog.save()
    return filled


def status() -> None:
    for locale in locales():
        catalog = polib.pofile(str(po_path(locale)))
        missing = sum(1 for entry in catalog if needs_work(entry))
        print(f"{locale:6} {len(catalog):5} messages, {missing:5} to translate")


def main(argv: list[str]) -> None:
    match argv:
        case ["extract"]:
            extract()
        case ["todo", locale]:
            json.dump(todo(locale), sys.stdout, ensure_ascii=False, indent=1)
        case ["fill", locale, path]:
            items = json.loads(Path(path).read_text(encoding="utf-8"))
            print(f"{fill(locale, items)} entries filled in {po_path(locale)}")
        case ["status"]:
            status()
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
