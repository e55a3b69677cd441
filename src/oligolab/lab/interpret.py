"""Apply a rule set to analysed curves: run validity from the controls, then one call per sample.

Per target, a sample's curves give one outcome: ``positive`` (amplified, Cq below the target's cutoff),
``negative`` (not amplified, or amplified at or after the cutoff), ``indeterminate`` (replicates disagree, the
curve was excluded, or an amplified curve has no Cq by the rule set's method) or ``missing`` (not run).
Controls must show their expected outcomes for every target run on the plate; one failed control makes the
run invalid and every sample "run_invalid" (or, where the rule set says ``on_failure: hold``, holds every
sample for a specialist, naming the control's wells and what they showed).
Samples whose curves carry review flags, whose positives are weak,
or that fall to the rule set's default row are held for review.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from . import qc
from .rules import RuleSet

#: a sample's review reason when the whole run is held (the reasons themselves: Interpretation.holds)
RUN_HELD = "the whole run is held (see the run's review reasons)"
#: statuses of a sample result
STATUS_RELEASE, STATUS_REVIEW, STATUS_RERUN = "release", "review", "rerun"


@dataclass
class Interpretation:
    """Run validity, control checks and per-sample calls."""

    samples: pd.DataFrame
    controls: pd.DataFrame
    valid: bool
    problems: list[str] = field(default_factory=list)
    unmapped_targets: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)  # run-level reasons every sample is held for


def map_targets(table: pd.DataFrame, ruleset: RuleSet, source: str = "run") -> tuple[pd.Series, list[str]]:
    """Rule target for each curve ('' for targets the rule set does not know) and the unknown target names."""
    names = table["target"].astype(str)
    lookup = {t: (ruleset.target_of(t) or "") for t in names.unique()}
    mapped = names.map(lookup)
    used = table["role"] != "empty"
    unknown = sorted({t for t, m in lookup.items() if not m and (used & (names == t)).any()})
    if used.any() and not (mapped[used] != "").any():
        raise InputError(
            source,
            f"none of the run's targets ({', '.join(sorted(names[used].unique()))}) is a target "
            f"of rule set {ruleset.label()} ({', '.join(ruleset.targets)})",
            f"add the run's target names as aliases in a lab rule file (extends: {ruleset.id})",
        )
    return mapped, unknown


class _Curves:
    """The columns interpretation needs, as plain arrays, with curves grouped by (role, sample)."""

    def __init__(self, table: pd.DataFrame, rule_target: pd.Series, cq_column: str):
        self.well = table["well"].to_numpy(dtype=object)
        self.sample = table["sample"].to_numpy(dtype=object)
        self.role = table["role"].to_numpy(dtype=object)
        self.target = rule_target.to_numpy(dtype=object)
        self.excluded = (table["excluded"] != "").to_numpy()
        self.amplified = table["amplified"].to_numpy(dtype=bool)
        self.cq = table[cq_column].to_numpy(dtype=np.float64)
        self.flags = table["flags"].to_numpy(dtype=object)
        self.groups: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(zip(self.role, self.sample)):
            self.groups.setdefault(key, []).append(i)

    def outcome(self, i: int, cutoff: float) -> tuple[str, float]:
        if self.excluded[i]:
            return "indeterminate", np.nan
        if not self.amplified[i]:
            return "negative", np.nan
        if not np.isfinite(self.cq[i]):
            return "indeterminate", np.nan
        return ("positive" if self.cq[i] < cutoff else "negative"), float(self.cq[i])


def group_outcome(results: list[tuple[str, float]]) -> tuple[str, float, str]:
    """Outcome, mean Cq (cycles) and a note for one sample's curves of one target (replicates combined)."""
    if not results:
        return "missing", np.nan, ""
    kinds = {k for k, _ in results}
    cqs = [c for _, c in results if np.isfinite(c)]
    cq = float(np.mean(cqs)) if cqs else np.nan
    if len(kinds) == 1:
        return kinds.pop(), cq, ""
    return "indeterminate", cq, "replicates disagree: " + ", ".join(k for k, _ in results)


def _outcomes(curves: _Curves, idx: list[int], ruleset: RuleSet) -> dict[str, tuple[str, float, str]]:
    out = {}
    for name, t in ruleset.targets.items():
        out[name] = group_outcome([curves.outcome(i, t.positive_below) for i in idx if curves.target[i] == name])
    return out


def _review_reasons(curves: _Curves, idx: list[int], outcomes: dict, ruleset: RuleSet) -> list[str]:
    reasons = []
    for i in idx:
        if not curves.target[i]:
            continue
        for f in filter(None, str(curves.flags[i]).split(";")):
            if qc.needs_review([f]):
                reasons.append(f"{curves.well[i]} {curves.target[i]}: {qc.describe(f)}")
    for name, (kind, cq, note) in outcomes.items():
        t = ruleset.targets[name]
        if kind == "positive" and t.review_above is not None and cq >= t.review_above:
            reasons.append(f"{name}: weak positive (Cq {cq:.1f} >= {t.review_above:g})")
        if kind == "indeterminate":
            reasons.append(f"{name}: indeterminate{' (' + note + ')' if note else ''}")
    return reasons


def _wells(curves: _Curves, idx: list[int]) -> str:
    return ",".join(sorted({curves.well[i] for i in idx}, key=_well_key))


def check_controls(curves: _Curves, ruleset: RuleSet) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per control well group with its outcomes and verdict; the failures that invalidate the run; the
    failures that hold every sample (controls whose rule says ``on_failure: hold``)."""
    rows: list[dict] = []
    problems: list[str] = []
    holds: list[str] = []
    run_targets = {t for t, r in zip(curves.target, curves.role) if t and r != "empty"}
    for role, rule in ruleset.controls.items():
        groups = [(sample, idx) for (r, sample), idx in curves.groups.items() if r == role]
        if not groups:
            if rule.required:
                problems.append(f"no {rule.name} on the plate: the run cannot be validated")
            continue
        for sample, idx in groups:
            outcomes = _outcomes(curves, idx, ruleset)
            failures = _control_failures(curves, idx, rule, outcomes, run_targets)
            review = _review_reasons(curves, idx, {k: v for k, v in outcomes.items() if k in run_targets}, ruleset)
            row = {
                "role": role,
                "control": rule.name,
                "sample": sample,
                "wells": _wells(curves, idx),
                "passed": not failures,
                "problems": "; ".join(failures),
                "review": "; ".join(review),
            }
            for target, (kind, cq, _) in outcomes.items():
                row[f"{target}_outcome"] = kind
                row[f"{target}_cq"] = cq
            rows.append(row)
            if failures:
                text = f"{rule.name} '{sample}': {'; '.join(failures)}: {rule.failure}"
                (holds if rule.on_failure == "hold" else problems).append(text)
    return pd.DataFrame(rows), problems, holds


def _control_failures(curves: _Curves, idx: list[int], rule, outcomes: dict, run_targets: set[str]) -> list[str]:
    """What a control group shows against what its rule expects, well by well ("D6 (N1) amplified at Cq 24.1,
    expected negative")."""
    failures = []
    for target, expected in rule.expect.items():
        if target not in run_targets or expected == "any":
            continue
        kind, cq, _ = outcomes[target]
        mine = [i for i in idx if curves.target[i] == target]
        if kind != expected:
            seen = [f"{curves.well[i]} ({target}) {_shown(curves, i)}" for i in mine] or [f"{target} missing"]
            failures.append(f"{', '.join(seen)}, expected {expected}")
        lo, hi = rule.cq_range.get(target, (None, None))
        if kind == "positive" and ((lo is not None and cq < lo) or (hi is not None and cq > hi)):
            failures.append(
                f"{','.join(curves.well[i] for i in mine)} ({target}) Cq {cq:.1f} outside "
                f"[{lo if lo is not None else '-'}, {hi if hi is not None else '-'}]"
            )
    return failures


def _shown(curves: _Curves, i: int) -> str:
    """What one curve shows, in words: 'amplified at Cq 24.1', 'not amplified', 'excluded'."""
    if curves.excluded[i]:
        return "excluded"
    if not curves.amplified[i]:
        return "not amplified"
    return f"amplified at Cq {curves.cq[i]:.1f}" if np.isfinite(curves.cq[i]) else "amplified without a Cq"


def _well_key(w: str):
    from .run import well_sort_key

    return well_sort_key(w)


def interpret(table: pd.DataFrame, ruleset: RuleSet, source: str = "run") -> Interpretation:
    """Validate the run by its controls and call every patient sample (role 'sample')."""
    rule_target, unknown = map_targets(table, ruleset, source)
    curves = _Curves(table, rule_target, ruleset.cq_column)
    controls, problems, holds = check_controls(curves, ruleset)
    valid = not problems
    held_by_controls = [f"held by the rule set: {h}" for h in holds]
    if not controls.empty:
        held_by_controls += [
            f"control {r['sample']} flagged ({r['review']})"
            for r in controls.to_dict("records")
            if r["passed"] and r["review"]
        ]
    rows = []
    for (role, sample), idx in curves.groups.items():
        if role != "sample":
            continue
        outcomes = _outcomes(curves, idx, ruleset)
        rule = ruleset.interpret({k: v[0] for k, v in outcomes.items()})
        reasons = _review_reasons(curves, idx, outcomes, ruleset)
        if held_by_controls:  # the run-level reasons are given once (Interpretation.holds), not per sample
            reasons.append(RUN_HELD)
        if rule is ruleset.default:
            reasons.append("no rule of the decision table matches")
        if not valid:
            call, status, report, action = "run_invalid", STATUS_RERUN, "Run invalid: " + problems[0], "Repeat the run"
        else:
            call, report, action = rule.call, rule.report, rule.action
            status = STATUS_REVIEW if reasons else STATUS_RELEASE
        row: dict[str, object] = {
            "sample": sample,
            "wells": _wells(curves, idx),
            "call": call,
            "rule_call": rule.call,
            "status": status,
            "report": report,
            "action": action,
            "review_reasons": "; ".join(reasons),
        }
        for target, (kind, cq, _) in outcomes.items():
            row[f"{target}_outcome"] = kind
            row[f"{target}_cq"] = cq
        rows.append(row)
    samples = pd.DataFrame(rows)
    return Interpretation(
        samples=samples,
        controls=controls,
        valid=valid,
        problems=problems,
        unmapped_targets=unknown,
        holds=held_by_controls,
    )


def summarize_without_rules(table: pd.DataFrame) -> pd.DataFrame:
    """Per-sample summary when no rule set applies: per target, amplification and mean TD0 Cq (cycles)."""
    groups: dict[tuple, list[int]] = {}
    samples, roles, targets = (table[c].to_numpy(dtype=object) for c in ("sample", "role", "target"))
    wells, amp, review = table["well"].to_numpy(dtype=object), table["amplified"].to_numpy(), table["review"].to_numpy()
    cq = table["cq_td0"].to_numpy(dtype=np.float64)
    for i in range(len(table)):
        if roles[i] != "empty":
            groups.setdefault((samples[i], roles[i]), []).append(i)
    rows = []
    for (sample, role), idx in groups.items():
        row = {
            "sample": sample,
            "role": role,
            "wells": ",".join(sorted({wells[i] for i in idx}, key=_well_key)),
            "status": STATUS_REVIEW if review[idx].any() else STATUS_RELEASE,
        }
        for target in dict.fromkeys(targets[i] for i in idx):
            sel = [i for i in idx if targets[i] == target]
            row[f"{target}_amplified"] = f"{int(amp[sel].sum())}/{len(sel)}"
            row[f"{target}_cq"] = float(np.nanmean(cq[sel])) if amp[sel].any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
