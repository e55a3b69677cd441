"""Translations, languages and time zones of the lab service (Babel and gettext).

- **Catalogues**: ``service/locale/<lang>/LC_MESSAGES/messages.po`` (edited by translators) and the compiled
  ``messages.mo`` next to it (committed, so a fresh clone serves Russian without a build step; a test fails when
  a ``.mo`` is older than its ``.po`` or a string of the code lacks a translation). ``make translations``
  extracts the strings of the Python code, the Jinja2 templates and the shipped rule sets' texts
  (``babel.cfg``), updates the catalogues and compiles them.
- **The current language** is a context variable set per request (:func:`activate`); templates call ``_()`` /
  ``{% trans %}`` and Python code calls :func:`gettext` (``_``), both reading it, so two users in two languages
  are served at the same time without mixing.
- **Language choice** (:func:`choose_language`): the user's own setting, else the lab's, else the browser's
  ``Accept-Language``, else English.
- **Time**: every time is stored in UTC and shown in the lab's zone (:func:`local`, :func:`format_datetime`,
  IANA zone names, ``zoneinfo`` with the ``tzdata`` package), numbers with the language's decimal sign.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.support import NullTranslations, Translations

from ..errors import InputError

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
#: languages the service speaks: code -> name in that language
LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT_LANGUAGE = "en"
DEFAULT_ZONE = "UTC"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("oligolab_language", default=DEFAULT_LANGUAGE)


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of ``lang`` (English is the source language: no catalogue, strings as written)."""
    if lang == DEFAULT_LANGUAGE or lang not in LANGUAGES:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


def current() -> str:
    """The language of the request being served."""
    return _current.get()


def activate(lang: str) -> contextvars.Token:
    """Serve the rest of this request (this context) in ``lang``."""
    return _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Code inside the block speaks ``lang`` (a printout in the lab's language, a message in the user's)."""
    token = activate(lang)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str, **variables: object) -> str:
    """``message`` in the current language, with ``%(name)s`` variables filled in."""
    text = translations(current()).gettext(message) if message else message
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    """The singular or plural form for ``n`` in the current language (Russian has three), ``%(num)d`` = n."""
    text = translations(current()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def pgettext(context: str, message: str, **variables: object) -> str:
    """``message`` in the current language, told apart by ``context`` (the same English word, two meanings)."""
    text = str(translations(current()).pgettext(context, message))  # babel annotates it as object
    return text % variables if variables else text


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message


#: words pages show from data (states, calls, sexes): marked here so the catalogue has them
VOCABULARY = (
    N_("waiting"),
    N_("on_plate"),
    N_("measured"),
    N_("released"),
    N_("retest"),
    N_("cancelled"),
    N_("queued"),
    N_("running"),
    N_("analysed"),
    N_("failed"),
    N_("signed"),
    N_("pending"),
    N_("sending"),
    N_("delivered"),
    N_("refused"),
    N_("positive"),
    N_("negative"),
    N_("inconclusive"),
    N_("invalid"),
    N_("review"),
    N_("run_invalid"),
    N_("screen_positive"),
    N_("male"),
    N_("female"),
    N_("other"),
    N_("unknown"),
    N_("ok"),
    N_("warning"),
    N_("reject"),
    N_("no result"),
    N_("technician"),
    N_("reviewer"),
    N_("admin"),
    N_("release"),
    N_("rerun"),
    N_("indeterminate"),
    N_("missing"),
    N_("any"),
    N_("control"),
    N_("passed"),
    N_("problems"),
    N_("wells"),
    N_("outcome"),
    N_("role"),
    N_("sample"),
)


def install(env) -> None:
    """Give a Jinja2 environment ``_``, ``gettext``, ``ngettext``, ``pgettext`` and ``{% trans %}`` in the current
    language, and the time and number filters."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(
        lambda s: translations(current()).gettext(s) if s else s,  # '' would give the catalogue header
        lambda s, p, n: translations(current()).ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations(current()).pgettext(c, s),
    )
    env.globals["current_language"] = current
    env.globals["LANGUAGES"] = LANGUAGES
    env.filters["localtime"] = format_datetime
    env.filters["localdate"] = format_date
    env.filters["number"] = format_number
    env.globals["column_label"] = column_label
    env.globals["cell_text"] = cell_text


def column_label(key: str) -> str:
    """A result table's column name for people: ``N1_cq`` -> ``N1 Cq``, ``N1_outcome`` -> ``N1: outcome``
    (translated), other keys translated as words."""
    if key.endswith("_cq"):
        return f"{key[:-3]} Cq"
    if key.endswith("_outcome"):
        return f"{key[:-8]}: {gettext('outcome')}"
    return gettext(key)


def cell_text(value: object) -> str:
    """A result table's cell for people: yes/no, numbers with the language's decimal sign, known words
    translated, anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, float):
        return format_number(value)
    text = str(value)
    return gettext(text) if text in VOCABULARY else text


# --------------------------------------------------------------------------------------------- choices


def parse_accept_language(header: str) -> list[str]:
    """Language codes of an Accept-Language header, best first (``ru-RU,ru;q=0.9,en;q=0.8`` -> ru, ru, en)."""
    weighted = []
    for i, part in enumerate(header.split(",")[:20]):
        code, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if code:
            weighted.append((-q, i, code.split("-")[0].strip().lower()))
    return [code for _q, _i, code in sorted(weighted)]


def choose_language(user: str | None = None, lab: str | None = None, accept: str = "") -> str:
    """The language to serve: the user's own choice, the lab's, the browser's first known one, English."""
    for choice in (user, lab, *parse_accept_language(accept)):
        if choice in LANGUAGES:
            return choice
    return DEFAULT_LANGUAGE


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise InputError("language", f"'{lang}' is not a language of the service", f"use one of {', '.join(LANGUAGES)}")
    return lang


@lru_cache(maxsize=1)
def zones() -> tuple[str, ...]:
    """Every IANA time zone name, sorted (for the lab settings form)."""
    return tuple(sorted(available_timezones()))


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone (Europe/Moscow, Asia/Vladivostok, ...), else one-line InputError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            "time zone",
            f"'{name[:60]}' is not a time zone",
            "use an IANA name such as Europe/Moscow, Europe/Astrakhan, Asia/Yekaterinburg or Asia/Vladivostok",
        ) from None
    return name


# ------------------------------------------------------------------------------------------------ time


def local(t: _dt.datetime, zone: str = DEFAULT_ZONE) -> _dt.datetime:
    """A stored time (UTC; a naive one is taken as UTC) in the lab's zone."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone(ZoneInfo(zone))


def format_datetime(
    t: _dt.datetime | None, zone: str = DEFAULT_ZONE, fmt: str = "dd.MM.yyyy HH:mm", lang: str | None = None
) -> str:
    """A stored time as the lab reads it: in its zone, with the zone's offset when ``fmt`` has none
    (``05.12.2026 10:30 (UTC+03:00)``). ``fmt`` is a CLDR pattern."""
    from babel.dates import format_datetime as babel_format

    if t is None:
        return ""
    here = local(t, zone)
    text = babel_format(here, fmt, locale=Locale.parse(lang or current()))
    offset = here.utcoffset() or _dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{text} (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"


def format_date(t: _dt.datetime | _dt.date | None, zone: str = DEFAULT_ZONE, lang: str | None = None) -> str:
    """A date in the language's long form (``5 декабря 2026 г.``); a time is first put in the lab's zone."""
    from babel.dates import format_date as babel_date

    if t is None:
        return ""
    day = local(t, zone).date() if isinstance(t, _dt.datetime) else t
    return babel_date(day, "long", locale=Locale.parse(lang or current()))


def format_number(x: float | None, digits: int = 2, lang: str | None = None) -> str:
    """A number with the language's decimal sign (``31,42`` in Russian); '' for none."""
    from babel.numbers import format_decimal

    if x is None:
        return ""
    return format_decimal(
        round(float(x), digits), f"0.{'0' * digits}" if digits else "0", locale=Locale.parse(lang or current())
    )


# ------------------------------------------------------------------------------------------ extraction

#: the rule-set fields whose texts a clinician or technician reads
RULESET_TEXT_KEYS = ("name", "failure", "report", "action", "title")


def extract_ruleset(fileobj, keywords, comment_tags, options) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor of a rule set's readable texts (``babel.cfg``): control names and failures, call report
    and action texts, so a result is shown in the lab's language."""
    import yaml

    data = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    seen: set[str] = set()

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in RULESET_TEXT_KEYS and isinstance(value, str) and value.strip():
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for text in walk(data):
        if text not in seen:
            seen.add(text)
            yield 0, "gettext", text, [f"rule set {data.get('id', '')}"]


def rule_text(text: str) -> str:
    """A rule set's text in the current language (as written when the catalogue has none: a lab's own rule set)."""
    return translations(current()).gettext(text) if text else text
