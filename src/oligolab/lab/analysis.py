"""The lab pipeline as one library call: run file (+ plate map, + rule set) -> per-sample results.

This is the API the CLI and the web service use::

    results = analyze_file("plate.rdml", plate_map="map.csv", rules="cdc-2019-ncov")
    for plate in results:
        write_outputs(plate, "out/plate")      # oligolab.lab.report

Each :class:`PlateResult` holds the run, the per-curve table, the control checks, the per-sample calls (with
manual overrides from the audit log applied) and the provenance needed to reproduce it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import InputError
from . import audit
from .curves import CurveResults, analyze_curves, analyze_runs, prepare
from .exports.calls import with_final_texts
from .formats import read_runs
from .interpret import Interpretation, interpret, summarize_without_rules
from .platemap import apply_plate_map, default_layout, read_plate_map
from .rules import RuleSet, load_ruleset
from .run import Run


@dataclass
class PlateResult:
    """Everything known about one analysed plate."""

    run: Run
    curves: CurveResults
    ruleset: RuleSet | None
    samples: pd.DataFrame  # one row per patient sample (or per sample when no rule set)
    controls: pd.DataFrame  # one row per control well group
    valid: bool | None  # run validity from the controls (None without a rule set)
    problems: list[str]
    run_id: str
    provenance: dict
    overrides: list[audit.Entry] = field(default_factory=list)
    signoff: audit.Entry | None = None
    holds: list[str] = field(default_factory=list)  # run-level reasons every sample is held for (given once)

    @property
    def table(self) -> pd.DataFrame:
        """Per-curve table (one row per well x target)."""
        return self.curves.table

    def summary(self) -> dict:
        """Counts for progress lines and dashboards."""
        s = self.samples
        out = {
            "run": self.run.name,
            "curves": int(len(self.table)),
            "amplified": int(self.table["amplified"].sum()),
            "flagged_curves": int(self.table["review"].sum()),
            "samples": int(len(s)),
            "valid": self.valid,
        }
        if not s.empty and "final_call" in s:
            out["calls"] = {k: int(v) for k, v in s["final_call"].value_counts().items()}
        if not s.empty:
            out["review"] = int((s["status"] == "review").sum())
        return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_runs(
    path: str | Path, *, fmt: str | None = None, run: str | None = None, validate: bool = True, dye: str | None = None
) -> list[Run]:
    """Every run in a file (RDML may hold several; tables hold one), or only the run named ``run``."""
    path = Path(path)
    runs = read_runs(path, fmt, validate=validate, dye=dye)
    if run is not None:
        runs = [r for r in runs if run in (r.meta.get("run"), r.name)]
        if not runs:
            raise InputError(path, f"no run '{run}' in the file", "check --run")
    return runs


def analyze_run(
    run: Run,
    rules: str | Path | RuleSet | None = None,
    *,
    plate_map: str | Path | pd.DataFrame | None = None,
    gaps: str = "refuse",
    thresholds: dict[str, float] | None = None,
    audit_log: str | Path | None = None,
    input_sha256: str = "",
    overrides: list[audit.Entry] | None = None,
) -> PlateResult:
    """Analyse one run: layout, gap policy, curves, controls, calls, overrides.

    ``rules`` is a shipped rule-set id, a YAML path or a loaded :class:`RuleSet` (None: no interpretation);
    ``plate_map`` a path or a DataFrame from :func:`read_plate_map`; ``gaps`` 'refuse' or 'repair';
    ``thresholds`` fixes per-target thresholds (baseline-corrected fluorescence units) for ``cq_threshold``;
    ``audit_log`` is read for manual overrides of this run; ``overrides`` gives them directly instead (the
    web service keeps them in its database).
    """
    run = _laid_out(run, rules, plate_map, gaps)
    return _interpreted(
        run,
        analyze_curves(run, thresholds=thresholds),
        rules,
        gaps=gaps,
        audit_log=audit_log,
        input_sha256=input_sha256,
        overrides=overrides,
    )


def _laid_out(
    run: Run, rules: str | Path | RuleSet | None, plate_map: str | Path | pd.DataFrame | None, gaps: str
) -> Run:
    """A run with its plate map (or default layout) applied and its readings checked (:func:`prepare`)."""
    if plate_map is not None:
        pm = read_plate_map(plate_map) if not isinstance(plate_map, pd.DataFrame) else plate_map
        run = apply_plate_map(run, pm, plate_map if not isinstance(plate_map, pd.DataFrame) else "plate map")
    if (run.layout["role"] == "empty").all():
        if rules is not None:
            raise InputError(
                run.source,
                "the file has no plate layout (samples, targets, roles) to apply the rules to",
                "give a plate map with --plate-map (columns well, sample, role, target, dye)",
            )
        run = default_layout(run)
    return prepare(run, gaps)


def _interpreted(
    run: Run,
    curves: CurveResults,
    rules: str | Path | RuleSet | None,
    *,
    gaps: str,
    audit_log: str | Path | None,
    input_sha256: str,
    overrides: list[audit.Entry] | None,
) -> PlateResult:
    """An analysed run's controls, calls, overrides and provenance."""
    ruleset = load_ruleset(rules) if isinstance(rules, (str, Path)) else rules
    run_id = f"{(input_sha256 or _run_digest(run))[:16]}:{run.name}"
    entries = audit.read(audit_log) if audit_log else []
    mine = audit.overrides_for(entries, run_id) if overrides is None else list(overrides)
    if mine:
        curves.table = audit.apply_curve_overrides(curves.table, mine)
    if ruleset is not None:
        interp: Interpretation = interpret(curves.table, ruleset, run.source)
        samples, controls, valid, problems = interp.samples, interp.controls, interp.valid, interp.problems
        holds = interp.holds
        if interp.unmapped_targets:
            problems = problems + [
                f"targets not in rule set {ruleset.label()} (not interpreted): " + ", ".join(interp.unmapped_targets)
            ]
    else:
        samples, controls, valid, problems = summarize_without_rules(curves.table), pd.DataFrame(), None, []
        holds = []
        if not samples.empty:
            samples["call"] = ""
    samples = with_final_texts(audit.apply_call_overrides(samples, mine), ruleset)
    provenance = {
        "software": f"oligolab {__version__}",
        "analysed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "input": run.source,
        "input_sha256": input_sha256,
        "format": run.fmt,
        "run": run.name,
        "plate_map": run.meta.get("plate_map", ""),
        "gaps": gaps,
        "rules": ruleset.label() if ruleset else "",
        "rules_path": ruleset.path if ruleset else "",
        "rules_sha256": ruleset.sha256 if ruleset else "",
        "cq_method": ruleset.cq_method if ruleset else "td0",
        "thresholds": curves.thresholds,
        "notes": curves.notes,
    }
    return PlateResult(
        run=run,
        curves=curves,
        ruleset=ruleset,
        samples=samples,
        controls=controls,
        valid=valid,
        problems=problems,
        run_id=run_id,
        provenance=provenance,
        overrides=mine,
        signoff=audit.latest_signoff(entries, run_id),
        holds=holds,
    )


def _run_digest(run: Run) -> str:
    h = hashlib.sha256(run.fluor.tobytes())
    h.update(pd.util.hash_pandas_object(run.layout[["well", "sample", "target", "role"]], index=False).values.tobytes())
    return h.hexdigest()


def analyze_file(
    path: str | Path,
    *,
    plate_map: str | Path | None = None,
    rules: str | Path | RuleSet | None = None,
    run: str | None = None,
    fmt: str | None = None,
    gaps: str = "refuse",
    thresholds: dict[str, float] | None = None,
    validate: bool = True,
    dye: str | None = None,
    audit_log: str | Path | Callable[[Run, int], Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[PlateResult]:
    """Analyse every run of a file (see :func:`analyze_run` for the options); ``progress`` gets status lines.

    ``audit_log`` may be a callable (run, number of runs in the file) -> log path, for one log per run.
    """
    say = progress or (lambda _msg: None)
    path = Path(path)
    digest = file_sha256(path) if path.exists() else ""
    say(f"reading {path.name}")
    runs = load_runs(path, fmt=fmt, run=run, validate=validate, dye=dye)
    ruleset = load_ruleset(rules) if isinstance(rules, (str, Path)) else rules
    settings = {
        "input": str(path.resolve()),
        "plate_map": str(Path(plate_map).resolve()) if plate_map else None,
        "rules": _rules_ref(rules, ruleset),
        "fmt": fmt,
        "gaps": gaps,
        "thresholds": dict(thresholds or {}),
        "validate": validate,
        "dye": dye,
    }
    laid = []
    for r in runs:
        say(f"analysing {r.describe()}")
        laid.append(_laid_out(r, ruleset, plate_map, gaps))
    results = []
    # the curves of all runs at once (a file of many small runs); each run's results are its own
    for r, prepared, curves in zip(runs, laid, analyze_runs(laid, thresholds=thresholds)):
        log = audit_log(r, len(runs)) if callable(audit_log) else audit_log
        res = _interpreted(prepared, curves, ruleset, gaps=gaps, audit_log=log, input_sha256=digest, overrides=None)
        res.provenance["settings"] = dict(settings, run=r.meta.get("run") or r.name)
        results.append(res)
    return results


def _rules_ref(rules, ruleset: RuleSet | None) -> str | None:
    """How to load the rule set again: the id or path given, or the shipped id of a loaded rule set."""
    if isinstance(rules, (str, Path)):
        return str(Path(rules).resolve()) if Path(rules).is_file() else str(rules)
    if ruleset is None:
        return None
    return ruleset.id if ruleset.path.startswith("oligolab/lab/rulesets/") else ruleset.path


def reanalyze(out_dir: str | Path, *, audit_log: str | Path | None = None) -> PlateResult:
    """Analyse a plate again from the settings in ``out_dir/result.json`` (after an override or sign-off).

    The run file must be unchanged (same SHA-256); the audit log defaults to ``out_dir/audit.jsonl``.
    """
    import json

    out_dir = Path(out_dir)
    doc_path = out_dir / "result.json"
    if not doc_path.exists():
        raise InputError(out_dir, "no result.json here", "give the output folder of 'oligolab lab analyze'")
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    st = doc["provenance"].get("settings") or {}
    src = Path(st.get("input", ""))
    if not src.exists():
        raise InputError(src, "the analysed run file is gone", "restore it at the same path")
    if file_sha256(src) != doc["provenance"].get("input_sha256"):
        raise InputError(src, "the run file changed since it was analysed", "analyse it again as a new run")
    # the bytes are the ones validated at the first analysis (same SHA-256): no need to validate them again
    results = analyze_file(
        src,
        plate_map=st.get("plate_map"),
        rules=st.get("rules"),
        run=st.get("run"),
        fmt=st.get("fmt"),
        gaps=st.get("gaps", "refuse"),
        thresholds=st.get("thresholds") or None,
        validate=False,
        dye=st.get("dye"),
        audit_log=audit_log or out_dir / "audit.jsonl",
    )
    match = [r for r in results if r.run_id == doc["run_id"]]
    if not match:
        raise InputError(doc_path, f"run {doc['run_id']} not found again in {src}", "analyse the file again")
    match[0].provenance["settings"]["validate"] = st.get("validate", True)  # as the user asked, not the re-read
    return match[0]
