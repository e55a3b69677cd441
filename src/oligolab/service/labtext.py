"""The lab core's messages in the reader's language.

The lab core (:mod:`oligolab.lab`) writes its reasons in English into every stored result: why a run is
invalid, why a sample is held (curve flags with their details, the amplification caller's reasons, weak
positives, indeterminate targets), what a control showed against what it expected, and reviewers' overrides.
A stored result is a signed document and stays as written; pages and printouts show these texts through
:func:`translate`, which recognises each of the lab core's message forms (:data:`FORMS`, one per sentence the
lab core writes, with its parts) and renders the translated form with its parts translated in turn: numbers with
the language's decimal sign, outcome and call words from the catalogue, control names and failures from the
rule set's translations, nested messages again by their forms. A text of no known form (a reviewer's own
words) is shown as written. ``tests/test_day_pages_ru.py`` renders every page for a Russian lab after a day
with held, invalid and corrected runs and fails on any English left, so a new or reworded message in the lab
core needs its form here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import i18n

N_ = i18n.N_


def _number(text: str) -> str:
    """A number as the lab core wrote it ('19.9'), with the language's decimal sign and the same digits."""
    digits = len(text.partition(".")[2])
    try:
        return i18n.format_number(float(text), digits)
    except ValueError:
        return text


def _word(text: str) -> str:
    return i18n.gettext(text) if text in i18n.VOCABULARY else _any(text)


def _rule(text: str) -> str:
    """A rule set's text (control names, failures) by the catalogue, else by its form."""
    shown = i18n.rule_text(text)
    return shown if shown != text else _any(text)


def _keep(text: str) -> str:
    return text


def _items(separator: str, part: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: separator.join(part(t) for t in text.split(separator))


def _any(text: str) -> str:
    return _translate(i18n.current(), text)


@dataclass(frozen=True)
class Form:
    """One message form of the lab core: its English as a pattern, its translatable text, and how each part
    (a named group) is shown (kept as written unless named in ``parts``)."""

    pattern: re.Pattern
    msgid: str
    parts: dict[str, Callable[[str], str]]
    whole: bool = False  #: a message that holds '; ' itself (tried before a text is cut at '; ')

    def render(self, m: re.Match) -> str:
        values = {k: self.parts.get(k, _keep)(v) for k, v in m.groupdict().items()}
        return i18n.gettext(self.msgid, **values) if values else i18n.gettext(self.msgid)


def _form(pattern: str, msgid: str, whole: bool = False, **parts: Callable[[str], str]) -> Form:
    return Form(re.compile(pattern, re.S), msgid, parts, whole)


def _exact(msgid: str) -> Form:
    return Form(re.compile(re.escape(msgid)), msgid, {})


NUM = r"-?\d+(?:\.\d+)?"
WELL = r"[A-Z]{1,2}\d{1,3}"
#: the QC flags' meanings (oligolab.lab.qc.FLAGS; a test checks that every one has its form here)
FLAG_TEXTS = (
    N_("excluded in the run file or unrepairable (no usable readings)"),
    N_("missing readings were interpolated"),
    N_("the amplification call needs a person's eyes"),
    N_("rise starts in the last 5 cycles: no room to confirm the curve shape"),
    N_("the curve rises but no log-linear window could be fitted"),
    N_("PCR efficiency outside 1.5-2.2 (not a normal amplification shape)"),
    N_("a single reading or step departs from the smooth curve"),
    N_("a step in the first 5 cycles (instrument settling)"),
    N_("readings are clipped at the detector maximum"),
    N_("replicates of this sample and target disagree"),
    N_("no plateau reached (LinRegPCR criterion)"),
    N_("efficiency is an outlier within its target"),
)
_FLAG = "|".join(re.escape(t) for t in sorted(FLAG_TEXTS, key=len, reverse=True))
_DRIFT_FLAG = r"the baseline drifts by more than (?P<pct>\d+)% of the amplification height"

#: every message form of the lab core, most specific first
FORMS: tuple[Form, ...] = (
    # oligolab.lab.interpret: run validity, control checks, review reasons, calls of an invalid run
    _exact(N_("the whole run is held (see the run's review reasons)")),
    _exact(N_("no rule of the decision table matches")),
    _exact(N_("Repeat the run")),
    _form(r"Run invalid: (?P<problem>.+)", N_("Run invalid: %(problem)s"), True, problem=_any),
    _form(r"held by the rule set: (?P<text>.+)", N_("held by the rule set: %(text)s"), True, text=_any),
    _form(
        r"control (?P<sample>.+?) flagged \((?P<reasons>.+)\)",
        N_("control %(sample)s flagged (%(reasons)s)"),
        reasons=_any,
    ),
    _form(
        r"no (?P<name>.+) on the plate: the run cannot be validated",
        N_("no %(name)s on the plate: the run cannot be validated"),
        name=_rule,
    ),
    _form(
        r"(?P<name>.+?) '(?P<sample>[^']*)': (?P<failures>.+?(?:, expected \w+|outside \[[^\]]*\])): (?P<failure>.+)",
        N_("%(name)s '%(sample)s': %(failures)s: %(failure)s"),
        True,
        name=_rule,
        failures=_items("; ", _any),
        failure=_rule,
    ),
    _form(
        r"(?P<seen>.+), expected (?P<expected>\w+)",
        N_("%(seen)s, expected %(expected)s"),
        seen=_items(", ", _any),
        expected=_word,
    ),
    _form(
        rf"(?P<wells>\S+) \((?P<target>[^)]*)\) Cq (?P<cq>{NUM}) outside \[(?P<lo>[^,\]]*), (?P<hi>[^\]]*)\]",
        N_("%(wells)s (%(target)s) Cq %(cq)s outside [%(lo)s, %(hi)s]"),
        cq=_number,
    ),
    _form(rf"(?P<well>{WELL}) \((?P<target>[^)]*)\) (?P<shown>.+)", N_("%(well)s (%(target)s) %(shown)s"), shown=_any),
    _form(r"(?P<target>\S+) missing", N_("%(target)s missing")),
    _exact(N_("not amplified")),
    _exact(N_("amplified without a Cq")),
    _exact(N_("excluded")),
    _form(rf"amplified at Cq (?P<cq>{NUM})", N_("amplified at Cq %(cq)s"), cq=_number),
    _form(
        rf"(?P<name>\S+): weak positive \(Cq (?P<cq>{NUM}) >= (?P<limit>{NUM})\)",
        N_("%(name)s: weak positive (Cq %(cq)s >= %(limit)s)"),
        cq=_number,
        limit=_number,
    ),
    _form(r"(?P<name>\S+): indeterminate \((?P<note>.+)\)", N_("%(name)s: indeterminate (%(note)s)"), note=_any),
    _form(r"(?P<name>\S+): indeterminate", N_("%(name)s: indeterminate")),
    _form(r"replicates disagree: (?P<kinds>.+)", N_("replicates disagree: %(kinds)s"), kinds=_items(", ", _word)),
    _form(rf"(?P<well>{WELL}) (?P<target>\S+): (?P<flag>.+)", N_("%(well)s %(target)s: %(flag)s"), flag=_any),
    # oligolab.lab.qc: flags (qc.describe: the meaning, and the detail in brackets)
    *(_exact(t) for t in FLAG_TEXTS),
    _form(_DRIFT_FLAG, N_("the baseline drifts by more than %(pct)s%% of the amplification height")),
    _form(
        rf"(?P<flag>{_FLAG}|{_DRIFT_FLAG.replace('?P<pct>', '?:')}) \((?P<detail>.+)\)",
        N_("%(flag)s (%(detail)s)"),
        flag=_any,
        detail=_any,
    ),
    _form(r"cycles (?P<cycles>[\d, -]+)", N_("cycles %(cycles)s")),
    _form(r"unrepairable: (?P<reason>.+)", N_("unrepairable: %(reason)s"), reason=_any),
    _form(rf"TD0 (?P<td0>{NUM}) of (?P<n>\d+)", N_("TD0 %(td0)s of %(n)s"), td0=_number),
    _form(r"code (?P<code>-?\d+)", N_("code %(code)s")),
    _form(r"up (?P<pct>\d+)% of height", N_("up %(pct)s%% of height")),
    _form(r"down (?P<pct>\d+)% of height", N_("down %(pct)s%% of height")),
    _form(r"cycle (?P<n>\d+)", N_("cycle %(n)s")),
    _form(r"(?P<a>\d+) of (?P<n>\d+) amplified", N_("%(a)s of %(n)s amplified")),
    _form(rf"Cq SD (?P<sd>{NUM}) cycles", N_("Cq SD %(sd)s cycles"), sd=_number),
    _form(rf"(?P<value>{NUM})", "%(value)s", value=_number),
    # oligolab.lab.calling: why a curve is held for a person's eyes
    _form(
        rf"rises only in the last (?P<late>\d+) cycles \(threshold crossed at cycle (?P<cq>{NUM}) of (?P<n>\d+)\): "
        r"too late to confirm the curve shape",
        N_(
            "rises only in the last %(late)s cycles (threshold crossed at cycle %(cq)s of %(n)s): too late to "
            "confirm the curve shape"
        ),
        cq=_number,
    ),
    _form(
        r"ends (?P<x>\d+)x the noise above its first cycles without an amplification shape \(drift\?\): look at "
        r"the curve",
        N_("ends %(x)sx the noise above its first cycles without an amplification shape (drift?): look at the curve"),
    ),
    _form(
        r"rises (?P<x>\d+)x the noise but does not stay above the detection threshold to the end of the run",
        N_("rises %(x)sx the noise but does not stay above the detection threshold to the end of the run"),
    ),
    _form(
        r"weak rise \((?P<x>\d+)x the noise\) above the threshold: weak or late amplification\?",
        N_("weak rise (%(x)sx the noise) above the threshold: weak or late amplification?"),
    ),
    _form(
        r"rises (?P<x>\d+)x the noise but not with an amplification shape \(drift, step or bubble\?\): look at "
        r"the curve",
        N_("rises %(x)sx the noise but not with an amplification shape (drift, step or bubble?): look at the curve"),
    ),
    _form(
        rf"rises from the first cycles \(threshold crossed at cycle (?P<cq>{NUM})\) without a flat baseline before "
        r"it: drift or a very early amplification\? look at the curve",
        N_(
            "rises from the first cycles (threshold crossed at cycle %(cq)s) without a flat baseline before it: "
            "drift or a very early amplification? look at the curve"
        ),
        cq=_number,
    ),
    _form(
        r"its baseline drifts by (?P<pct>\d+)% of the rise before it: drift or amplification\? look at the curve",
        N_("its baseline drifts by %(pct)s%% of the rise before it: drift or amplification? look at the curve"),
    ),
    _form(
        r"rises back from a dip only to (?P<x>\d+)x the noise above its first cycles: drift or amplification\? "
        r"look at the curve",
        N_(
            "rises back from a dip only to %(x)sx the noise above its first cycles: drift or "
            "amplification? look at the curve"
        ),
    ),
    # the service's analysis states (oligolab.service.uploads, .worker)
    _exact(N_("waiting in the queue")),
    _exact(N_("starting")),
    _exact(N_("queued again after a service restart")),
    _exact(N_("queued again after a database outage")),
    _exact(N_("done")),
    _exact(N_("automatic analysis")),
    _exact(N_("system")),
    _form(r"analysing (?P<file>.+)", N_("analysing %(file)s")),
    # oligolab.lab.accessioning: where a specimen was received from (the list's line, the bundle's entry)
    _form(r"(?P<file>.+), line (?P<n>\d+)", N_("%(file)s, line %(n)s")),
    _form(r"(?P<file>.+), entry (?P<n>\d+)", N_("%(file)s, entry %(n)s")),
    # oligolab.lab.audit: a reviewer's override of a call (user, time, old -> new, the reviewer's reason)
    _form(
        r"(?P<user>\S+) (?P<time>\S+): (?P<old>\S+) -> (?P<new>\S+) \((?P<reason>.*)\)",
        N_("%(user)s %(time)s: %(old)s -> %(new)s (%(reason)s)"),
        old=_word,
        new=_word,
    ),
)


_WHOLE = tuple(f for f in FORMS if f.whole)
_SINGLE = tuple(f for f in FORMS if not f.whole)


def _split(text: str, separator: str = "; ") -> list[str]:
    """``text`` cut at ``separator`` outside brackets (the lab core joins reasons with '; ')."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += ch in "([" and 1 or ch in ")]" and -1 or 0
        if depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    return parts + [text[start:]]


def _match(forms, text: str) -> str | None:
    for form in forms:
        m = form.pattern.fullmatch(text)
        if m:
            return form.render(m)
    return None


@lru_cache(maxsize=20000)
def _translate(lang: str, text: str) -> str:
    """``text`` by the first form it is whole, else each of its '; ' parts, else as written (``lang`` keys the
    cache: the forms render in the current language)."""
    shown = _match(_WHOLE, text)
    if shown is not None:
        return shown
    parts = _split(text)
    if len(parts) > 1:
        return "; ".join(_translate(lang, p) for p in parts)
    shown = _match(_SINGLE, text)
    return text if shown is None else shown


def translate(text: object) -> str:
    """A text of the lab core in the current language (English as written; anything not of a known form as
    written)."""
    if text is None:
        return ""
    text = str(text)
    if not text or i18n.current() == i18n.DEFAULT_LANGUAGE:
        return text
    return _translate(i18n.current(), text)


def shown(text: object) -> str:
    """A stored result's text in the current language: the rule set's own texts by the catalogue (reports,
    actions), the lab core's messages by their forms."""
    if text is None:
        return ""
    shown_text = i18n.rule_text(str(text))
    return shown_text if shown_text != text else translate(text)


def flags_text(codes: object) -> str:
    """A curve's flag codes (``late_rise:TD0 38.2 of 40;no_plateau``) as their meanings, in the current
    language."""
    from ..lab.qc import describe

    return "; ".join(translate(describe(c)) for c in str(codes or "").split(";") if c)
