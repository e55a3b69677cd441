"""Translations (Babel/gettext), language choice and lab time zones (oligolab.service.i18n).

The catalogue test extracts every translatable string of the service's code, templates and the shipped rule
sets (babel.cfg) and fails on any that the Russian catalogue lacks, leaves empty or marks fuzzy; the committed
.mo must say what the .po says."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from oligolab.errors import InputError
from oligolab.service import i18n

ROOT = Path(__file__).resolve().parents[1]
PO = i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
UTC = dt.timezone.utc


def _extracted() -> dict[str, list]:
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    method_map, options_map = parse_mapping_cfg(io.StringIO((ROOT / "babel.cfg").read_text()))
    found: dict[str, list] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, options_map):
        key = message if isinstance(message, str) else message[0]
        found.setdefault(key, []).append(filename)
    return found


def _catalogue():
    from babel.messages.pofile import read_po

    with open(PO, "rb") as fh:
        return read_po(fh, locale="ru")


def test_every_translatable_string_has_a_reviewed_russian_translation():
    catalogue = _catalogue()
    problems = []
    for key, files in sorted(_extracted().items()):
        msg = catalogue.get(key)
        strings = [] if msg is None else ([msg.string] if isinstance(msg.string, str) else list(msg.string))
        if msg is None or not strings or not all(strings):
            problems.append(f"untranslated: {key!r} ({files[0]})")
        elif msg.fuzzy:
            problems.append(f"fuzzy (not reviewed): {key!r}")
    assert not problems, "run `make translations` and translate:\n" + "\n".join(problems)


def test_catalogue_checks_and_compiled_mo_match_the_po():
    from babel.support import Translations

    catalogue = _catalogue()
    errors = [(m.id, [str(e) for e in errs]) for m, errs in catalogue.check()]
    assert not errors, errors
    with open(MO, "rb") as fh:
        compiled = Translations(fh)
    for msg in catalogue:
        if not msg.id or msg.fuzzy:
            continue
        if isinstance(msg.id, str):
            assert compiled.gettext(msg.id) == msg.string, f"{MO.name} is older than {PO.name}: make translations"
        else:
            for n, form in ((1, 0), (2, 1), (5, 2)):
                assert compiled.ngettext(msg.id[0], msg.id[1], n) == msg.string[form]


def test_rule_set_texts_are_shown_in_the_current_language():
    with i18n.language("ru"):
        assert i18n.rule_text("2019-nCoV detected") == "РНК 2019-nCoV (SARS-CoV-2) обнаружена"
        assert i18n.rule_text("a lab's own text") == "a lab's own text"
    assert i18n.rule_text("2019-nCoV detected") == "2019-nCoV detected"


def test_two_languages_at_once_do_not_mix():
    import concurrent.futures
    import contextvars

    def serve(lang: str) -> str:
        i18n.activate(lang)
        return i18n.rule_text("2019-nCoV not detected")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda lang: contextvars.copy_context().run(serve, lang), ["ru", "en"] * 20))
    assert got == ["РНК 2019-nCoV (SARS-CoV-2) не обнаружена", "2019-nCoV not detected"] * 20


def test_language_choice_user_then_lab_then_browser():
    assert i18n.choose_language("en", "ru", "ru") == "en"
    assert i18n.choose_language(None, "ru", "en") == "ru"
    assert i18n.choose_language(None, None, "de-DE,ru;q=0.8,en;q=0.5") == "ru"
    assert i18n.choose_language(None, None, "en;q=0.2, ru;q=0.9") == "ru"
    assert i18n.choose_language("xx", None, "fr") == "en"
    with pytest.raises(InputError, match="not a language"):
        i18n.check_language("de")


@pytest.mark.parametrize("zone, shown", [
    ("Europe/Kaliningrad", "05.12.2026 09:30 (UTC+02:00)"),       # the labs' zones span UTC+2 ...
    ("Europe/Moscow", "05.12.2026 10:30 (UTC+03:00)"),            # Syktyvkar, Arkhangelsk
    ("Europe/Astrakhan", "05.12.2026 11:30 (UTC+04:00)"),
    ("Asia/Kamchatka", "05.12.2026 19:30 (UTC+12:00)"),           # ... to UTC+12
])
def test_a_stored_utc_time_is_shown_in_the_labs_zone(zone, shown):
    t = dt.datetime(2026, 12, 5, 7, 30, tzinfo=UTC)
    assert i18n.format_datetime(t, zone, lang="ru") == shown
    assert i18n.local(t.replace(tzinfo=None), zone) == t             # a naive stored time is UTC


def test_dates_and_numbers_in_the_language():
    late = dt.datetime(2026, 12, 5, 22, 30, tzinfo=UTC)             # already 6 December in Vladivostok
    assert i18n.format_date(late, "Asia/Vladivostok", lang="ru") == "6 декабря 2026\u202fг."
    assert i18n.format_date(late, "UTC", lang="en") == "December 5, 2026"
    assert i18n.format_number(31.416, lang="ru") == "31,42" and i18n.format_number(31.416, lang="en") == "31.42"
    with pytest.raises(InputError, match="not a time zone"):
        i18n.check_zone("Moscow")
    assert "Europe/Moscow" in i18n.zones()


def test_templates_translate_with_the_request_language():
    import jinja2

    env = jinja2.Environment(autoescape=True)
    i18n.install(env)
    t = env.from_string("{{ _('2019-nCoV detected') }}|{{ when|localtime('Europe/Moscow') }}|{{ x|number }}")
    when = dt.datetime(2026, 12, 5, 7, 30, tzinfo=UTC)
    with i18n.language("ru"):
        assert t.render(when=when, x=3.14159) == "РНК 2019-nCoV (SARS-CoV-2) обнаружена|05.12.2026 10:30 (UTC+03:00)|3,14"
    assert t.render(when=when, x=1).startswith("2019-nCoV detected|")


#: messages as the lab core writes them (oligolab.lab.interpret, .qc, .calling, .audit) and as a Russian lab reads them
LAB_MESSAGES = [
    ("NTC (no template control) 'NTC': P19 (N1) amplified at Cq 19.9, P20 (N1) not amplified, expected negative; "
     "D6 (RP) Cq 41.2 outside [-, 40]: NTC amplified: possible contamination. Invalidate the run and repeat the assay.",
     "К− (отрицательный контроль ПЦР, без матрицы) «NTC»: P19 (N1): амплификация, Cq 19,9, P20 (N1): нет "
     "амплификации, ожидался результат «отрицательный»; D6 (RP): Cq 41,2 вне допустимого диапазона [-; 40]: В "
     "отрицательном контроле ПЦР (К−) есть амплификация: возможна контаминация. Постановка недействительна, "
     "повторите исследование."),
    ("A12 N1: the amplification call needs a person's eyes (weak rise (14x the noise) above the threshold: weak or "
     "late amplification?); N2: weak positive (Cq 38.2 >= 37); RP: indeterminate (replicates disagree: positive, "
     "negative)",
     "A12 N1: решение об амплификации требует просмотра специалистом (слабый подъём (14× уровня шума) выше порога: "
     "слабая или поздняя амплификация?); N2: слабоположительный (Cq 38,2 ≥ 37); RP: неопределённый результат "
     "(повторы не согласуются: положительный, отрицательный)"),
    ("Run invalid: no NTC (no template control) on the plate: the run cannot be validated",
     "Постановка недействительна: на планшете нет контроля К− (отрицательный контроль ПЦР, без матрицы): "
     "достоверность постановки подтвердить невозможно"),
    ("reviewer 2026-12-05T11:44:31+00:00: negative -> inconclusive (проверено)",
     "reviewer 2026-12-05T11:44:31+00:00: отрицательный → сомнительный (проверено)"),
]


@pytest.mark.parametrize("english, russian", LAB_MESSAGES)
def test_lab_core_messages_in_the_labs_language(english, russian):
    from oligolab.service import labtext

    with i18n.language("ru"):
        assert labtext.translate(english) == russian
    assert labtext.translate(english) == english                         # English as the lab core wrote it
    with i18n.language("ru"):
        assert labtext.translate("a reviewer's own words") == "a reviewer's own words"


def test_every_curve_flag_and_caller_reason_of_the_lab_core_has_its_russian_form():
    """Every QC flag the lab core can raise (oligolab.lab.qc.FLAGS), with the details it writes, and the
    run-level reasons of oligolab.lab.interpret read in Russian with no English word left."""
    import re

    from oligolab.lab import interpret, qc
    from oligolab.service import labtext

    details = {"gap_repaired": "cycles 3-5, 9", "doubtful": "rises 9x the noise but does not stay above the "
               "detection threshold to the end of the run", "late_rise": "TD0 38.2 of 40", "baseline_error": "code 4",
               "atypical_efficiency": "1.31", "baseline_drift": "down 23% of height", "jump": "cycle 17",
               "early_jump": "cycle 2", "replicate_spread": "Cq SD 0.62 cycles"}
    texts = [qc.describe(f"{code}:{details[code]}" if code in details else code) for code in qc.FLAGS]
    texts += [interpret.RUN_HELD, "no rule of the decision table matches", "Repeat the run", "2 of 3 amplified"]
    with i18n.language("ru"):
        shown = [labtext.translate(t) for t in texts]
    left = [(t, s) for t, s in zip(texts, shown) if re.search(r"[a-z]{3,}", re.sub(r"LinRegPCR|TD0|Cq|SD", "", s))]
    assert not left, left
