"""Assay interpretation rule sets: data files (YAML) that turn per-target curve outcomes into sample calls.

A rule set names its targets (with the aliases labs use for them) and the Cq cutoff of each, the Cq method the
cutoffs refer to, the expected outcome of each control, and an ordered decision table: the first row whose
``when`` matches the sample's target outcomes gives the call, the report text and the action. Shipped rule
sets live in ``oligolab/lab/rulesets``; a lab adds its own file, usually with ``extends: <shipped id>`` and
only the keys it changes (aliases for its target names, a validated cutoff, ...). See docs/lab.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

#: per-target outcomes a curve group can have
OUTCOMES = ("positive", "negative", "indeterminate", "missing")
#: words a decision-table cell may use, and the outcomes each stands for
OUTCOME_WORDS = {
    "positive": {"positive"},
    "negative": {"negative"},
    "indeterminate": {"indeterminate"},
    "missing": {"missing"},
    "not_tested": {"missing"},
    "tested": {"positive", "negative"},
    "any": set(OUTCOMES),
}
CONTROL_ROLES = ("ntc", "pc", "ec")
CQ_METHOD_COLUMNS = {"td0": "cq_td0", "threshold": "cq_threshold", "sdm": "cq_sdm"}
_TOP_KEYS = {
    "id",
    "version",
    "title",
    "description",
    "sources",
    "extends",
    "cq_method",
    "targets",
    "controls",
    "calls",
    "default",
    "notes",
}
_TARGET_KEYS = {"aliases", "positive_below", "review_above", "note"}
_CONTROL_KEYS = {"required", "expect", "cq_range", "failure", "note", "name", "on_failure"}
#: what a failed control does to the run: invalidate it (every sample "run_invalid", rerun) or hold every
#: sample for a specialist's decision (the run stays valid; nothing is released unreviewed)
ON_FAILURE = ("invalidate", "hold")
_CALL_KEYS = {"when", "call", "report", "action", "note"}


@dataclass(frozen=True)
class TargetRule:
    """One assay target: its aliases and its Cq cutoffs (cycles)."""

    name: str
    aliases: tuple[str, ...]
    positive_below: float
    review_above: float | None = None


@dataclass(frozen=True)
class ControlRule:
    """What a control well group must show for the run to be valid."""

    role: str
    name: str
    required: bool
    expect: Mapping[str, str]
    cq_range: Mapping[str, tuple[float | None, float | None]]
    failure: str
    on_failure: str = "invalidate"


@dataclass(frozen=True)
class CallRule:
    """One decision-table row: allowed outcomes per target -> call, report text and action."""

    when: Mapping[str, frozenset[str]]
    call: str
    report: str
    action: str = ""

    def matches(self, outcomes: Mapping[str, str]) -> bool:
        return all(outcomes.get(t, "missing") in allowed for t, allowed in self.when.items())


@dataclass(frozen=True)
class RuleSet:
    """A loaded, validated rule set."""

    id: str
    version: str
    title: str
    sources: tuple[str, ...]
    cq_method: str
    targets: Mapping[str, TargetRule]
    controls: Mapping[str, ControlRule]
    calls: tuple[CallRule, ...]
    default: CallRule
    path: str
    sha256: str
    data: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def cq_column(self) -> str:
        return CQ_METHOD_COLUMNS[self.cq_method]

    def label(self) -> str:
        return f"{self.id} v{self.version}"

    def interpret(self, outcomes: Mapping[str, str]) -> CallRule:
        """The decision-table row for a sample's per-target outcomes (the default row if none matches)."""
        for row in self.calls:
            if row.matches(outcomes):
                return row
        return self.default

    def target_of(self, run_target: str) -> str | None:
        """The rule target a run's target name stands for (case-insensitive name or alias), else None."""
        key = run_target.strip().lower()
        for t in self.targets.values():
            if key == t.name.lower() or key in (a.lower() for a in t.aliases):
                return t.name
        return None


# -------------------------------------------------------------------------------------------------- loading


def shipped_rulesets() -> list[str]:
    """Ids of the rule sets shipped with oligolab."""
    folder = resources.files("oligolab.lab").joinpath("rulesets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(name_or_path: str | Path) -> tuple[dict, str]:
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise InputError(path, "rule file not found", "check the --rules path")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        res = resources.files("oligolab.lab").joinpath("rulesets", f"{name_or_path}.yaml")
        if not res.is_file():
            raise InputError(
                None,
                f"no rule set '{name_or_path}'",
                "use a shipped one (" + ", ".join(shipped_rulesets()) + ") or a path to a .yaml file",
            )
        text, where = res.read_text(encoding="utf-8"), f"oligolab/lab/rulesets/{name_or_path}.yaml"
    return _parse_yaml(text, where), where


def _parse_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            where,
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            "fix the YAML syntax",
            line=mark.line + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise InputError(where, "a rule file must be a YAML mapping", "see docs/lab.md, rule-set format")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_ruleset(name_or_path: str | Path) -> RuleSet:
    """Load a shipped rule set by id or a lab's YAML file (``extends`` resolved), validated.

    Lists (aliases, the decision table ``calls``) in a lab file replace the parent's; mappings are merged key
    by key. Each file is parsed once per version (size, modification time), so a batch of runs does not
    re-read unchanged rule files while an edited file is read again.
    """
    data, where = _read_yaml_cached(name_or_path)
    return _build(_with_parents(data, where), where)


def _with_parents(data: dict, where: str) -> dict:
    """``data`` merged over the rule sets it ``extends`` (shipped ids or files), parents first."""
    seen = {where}
    while "extends" in data:
        parent, pwhere = _read_yaml_cached(data["extends"])
        if pwhere in seen:
            raise InputError(where, f"'extends' loops back to {pwhere}", "remove the cycle")
        seen.add(pwhere)
        data = _merge(parent, {k: v for k, v in data.items() if k != "extends"})
    return data


def _read_yaml_cached(name_or_path: str | Path) -> tuple[dict, str]:
    path = Path(name_or_path)
    if path.is_file():
        st = path.stat()
        stamp: tuple = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    else:
        stamp = (str(name_or_path),)
    data, where = _parsed(stamp, str(name_or_path))
    return copy.deepcopy(data), where


@lru_cache(maxsize=64)
def _parsed(stamp: tuple, name_or_path: str) -> tuple[dict, str]:
    return _read_yaml(name_or_path)


def ruleset_from_dict(data: dict, where: str = "<rules>") -> RuleSet:
    """Validate and build a rule set from an already-parsed mapping (``extends`` resolved)."""
    return _build(_with_parents(copy.deepcopy(data), where), where)


def ruleset_from_yaml(text: str, where: str = "<rules>") -> RuleSet:
    """Validate and build a rule set from YAML text (``extends`` resolved): for services that store rules."""
    return _build(_with_parents(_parse_yaml(text, where), where), where)


def _need(cond: bool, where: str, key: str, problem: str, fix: str) -> None:
    if not cond:
        raise InputError(where, problem, fix, record=key)


def _num(value: Any, where: str, key: str) -> float | None:
    if value is None:
        return None
    _need(
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        where,
        key,
        f"'{value}' is not a number of cycles",
        "give a number such as 40",
    )
    return float(value)


def _controls(data: dict, targets: dict, where: str) -> dict[str, ControlRule]:
    """The rule set's control rules, validated (roles, keys, expectations, Cq ranges, action on failure)."""
    controls: dict[str, ControlRule] = {}
    for role, spec in (data.get("controls") or {}).items():
        key = f"controls.{role}"
        _need(role in CONTROL_ROLES, where, key, "unknown control role", "use " + ", ".join(CONTROL_ROLES))
        spec = spec or {}
        bad = set(spec) - _CONTROL_KEYS
        _need(
            not bad,
            where,
            key,
            f"unknown key(s) {', '.join(sorted(bad))}",
            "allowed: " + ", ".join(sorted(_CONTROL_KEYS)),
        )
        expect = {}
        for t, v in (spec.get("expect") or {}).items():
            _need(
                t in targets, where, f"{key}.expect.{t}", "not a target of this rule set", "use " + ", ".join(targets)
            )
            _need(
                v in ("positive", "negative", "any"),
                where,
                f"{key}.expect.{t}",
                f"unknown expectation '{v}'",
                "use positive, negative or any",
            )
            expect[t] = v
        ranges = {}
        for t, rng in (spec.get("cq_range") or {}).items():
            _need(
                t in targets, where, f"{key}.cq_range.{t}", "not a target of this rule set", "use " + ", ".join(targets)
            )
            _need(
                isinstance(rng, list) and len(rng) == 2,
                where,
                f"{key}.cq_range.{t}",
                "must be [low, high]",
                "e.g. [20, 35]; null for an open end",
            )
            ranges[t] = (_num(rng[0], where, f"{key}.cq_range.{t}"), _num(rng[1], where, f"{key}.cq_range.{t}"))
        on_failure = str(spec.get("on_failure", "invalidate"))
        _need(
            on_failure in ON_FAILURE,
            where,
            f"{key}.on_failure",
            f"unknown action '{on_failure}'",
            "use " + " or ".join(ON_FAILURE),
        )
        controls[role] = ControlRule(
            role,
            str(spec.get("name", role.upper())),
            bool(spec.get("required", True)),
            expect,
            ranges,
            str(spec.get("failure", "control failed: repeat the run")),
            on_failure,
        )
    return controls


def _build(data: dict, where: str) -> RuleSet:
    unknown = set(data) - _TOP_KEYS
    _need(not unknown, where, ",".join(sorted(unknown)), "unknown key(s)", "allowed: " + ", ".join(sorted(_TOP_KEYS)))
    for key in ("id", "version", "targets", "calls"):
        _need(key in data, where, key, "missing key", "see docs/lab.md, rule-set format")
    cq_method = data.get("cq_method", "threshold")
    _need(
        cq_method in CQ_METHOD_COLUMNS,
        where,
        "cq_method",
        f"unknown Cq method '{cq_method}'",
        "use " + ", ".join(CQ_METHOD_COLUMNS),
    )
    _need(
        bool(isinstance(data["targets"], dict) and data["targets"]), where, "targets", "no targets", "list the targets"
    )

    targets: dict[str, TargetRule] = {}
    for name, spec in data["targets"].items():
        spec = spec or {}
        key = f"targets.{name}"
        _need(isinstance(spec, dict), where, key, "must be a mapping", "give aliases and positive_below")
        bad = set(spec) - _TARGET_KEYS
        _need(
            not bad,
            where,
            f"{key}.{','.join(sorted(bad))}",
            "unknown key(s)",
            "allowed: " + ", ".join(sorted(_TARGET_KEYS)),
        )
        cutoff = _num(spec.get("positive_below"), where, f"{key}.positive_below")
        _need(cutoff is not None, where, f"{key}.positive_below", "missing Cq cutoff", "e.g. positive_below: 40")
        assert cutoff is not None  # _need refused a missing one
        review = _num(spec.get("review_above"), where, f"{key}.review_above")
        aliases = tuple(str(a) for a in (spec.get("aliases") or []))
        targets[str(name)] = TargetRule(str(name), aliases, cutoff, review)
    # one alias must not point at two targets
    owner: dict[str, str] = {}
    for t in targets.values():
        for a in (t.name, *t.aliases):
            prev = owner.setdefault(a.lower(), t.name)
            _need(
                prev == t.name, where, f"targets.{t.name}", f"alias '{a}' also belongs to {prev}", "keep aliases unique"
            )

    def outcome_set(value: Any, key: str) -> frozenset[str]:
        words = value if isinstance(value, list) else [value]
        out: set[str] = set()
        for w in words:
            _need(str(w) in OUTCOME_WORDS, where, key, f"unknown outcome '{w}'", "use " + ", ".join(OUTCOME_WORDS))
            out |= OUTCOME_WORDS[str(w)]
        return frozenset(out)

    def call_row(spec: Any, key: str, with_when: bool) -> CallRule:
        _need(isinstance(spec, dict), where, key, "must be a mapping", "give when, call, report")
        bad = set(spec) - _CALL_KEYS
        _need(
            not bad, where, key, f"unknown key(s) {', '.join(sorted(bad))}", "allowed: " + ", ".join(sorted(_CALL_KEYS))
        )
        _need("call" in spec and "report" in spec, where, key, "needs 'call' and 'report'", "add them")
        when: dict[str, frozenset[str]] = {}
        if with_when:
            _need(
                isinstance(spec.get("when"), dict) and spec["when"],
                where,
                key,
                "needs a 'when' mapping",
                "e.g. when: {N1: positive, N2: positive}",
            )
            for t, v in spec["when"].items():
                _need(
                    t in targets, where, f"{key}.when.{t}", "not a target of this rule set", "use " + ", ".join(targets)
                )
                when[t] = outcome_set(v, f"{key}.when.{t}")
        return CallRule(when, str(spec["call"]), str(spec["report"]), str(spec.get("action", "")))

    _need(
        bool(isinstance(data["calls"], list) and data["calls"]), where, "calls", "no decision table", "list call rows"
    )
    calls = tuple(call_row(s, f"calls[{i}]", True) for i, s in enumerate(data["calls"]))
    default = call_row(
        data.get("default")
        or {"call": "review", "report": "No rule matched these target outcomes", "action": "Specialist review"},
        "default",
        False,
    )

    controls = _controls(data, targets, where)

    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return RuleSet(
        id=str(data["id"]),
        version=str(data["version"]),
        title=str(data.get("title", data["id"])),
        sources=tuple(str(s) for s in (data.get("sources") or [])),
        cq_method=cq_method,
        targets=targets,
        controls=controls,
        calls=calls,
        default=default,
        path=where,
        sha256=hashlib.sha256(canonical).hexdigest(),
        data=data,
    )


def all_outcome_combinations(ruleset: RuleSet, outcomes: Iterable[str] = ("positive", "negative")) -> list[dict]:
    """Every combination of ``outcomes`` over the rule set's targets (for decision-table reviews and tests)."""
    import itertools

    names = list(ruleset.targets)
    return [dict(zip(names, combo)) for combo in itertools.product(list(outcomes), repeat=len(names))]
