"""``oligolab lab``: a thin command-line shell over :mod:`oligolab.lab` (analysis, overrides, sign-off, audit)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..cli import app, fail
from ..errors import InputError

lab_app = typer.Typer(
    no_args_is_help=True,
    help="qPCR lab: analyse instrument runs into per-sample results, review, override and sign them.",
)
app.add_typer(lab_app, name="lab")
console = Console()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _parse_thresholds(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        target, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[target.strip()] = float(value)
        except ValueError:
            raise InputError(None, f"--threshold '{item}' is not TARGET=VALUE", "e.g. --threshold N1=1500") from None
    return out


@lab_app.command("analyze")
def analyze_cmd(
    run_file: Path = typer.Argument(..., help="RDML file or instrument export (CSV/TSV/TXT/XLSX)."),
    plate_map: Path | None = typer.Option(
        None, "--plate-map", "-p", help="Plate map CSV/XLSX (well, sample, role, target, dye)."
    ),
    rules: str | None = typer.Option(
        None, "--rules", "-r", help="Rule set id (cdc-2019-ncov, who-charite-e-rdrp) or a YAML file."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default out/lab/<file name>)."),
    run: str | None = typer.Option(None, "--run", help="Analyse only this run of a multi-run RDML file."),
    fmt: str | None = typer.Option(
        None, "--format", help="Force the input format (rdml, biorad-cfx, quantstudio, abi-7500, rdes, long, wide)."
    ),
    repair_gaps: bool = typer.Option(
        True,
        "--repair-gaps/--refuse-gaps",
        help=(
            "Missing readings: interpolate them and hold those curves for review (default), "
            "or refuse the run naming the first well."
        ),
    ),
    threshold: list[str] = typer.Option(
        [], "--threshold", help="Fix a target's threshold: TARGET=VALUE (baseline-corrected units); repeatable."
    ),
    dye: str | None = typer.Option(None, "--dye", help="Dye of a single-channel wide export (e.g. FAM)."),
    no_validate: bool = typer.Option(
        False, "--no-validate", help="Skip RDML XSD validation (faster; structure is still checked)."
    ),
    no_html: bool = typer.Option(False, "--no-html", help="Write the tables and JSON only."),
) -> None:
    """Analyse a run: Cq, efficiency, amplification calls, QC flags, controls and per-sample calls."""
    from . import store
    from .analysis import analyze_file

    t0 = time.perf_counter()
    try:
        out_root = out or Path("out") / "lab" / _slug(run_file.stem)

        def folder(r, n_runs: int) -> Path:
            return out_root if n_runs == 1 else out_root / _slug(r.name)

        logs_read: dict[Path, dict] = {}

        def log_of(r, n_runs: int) -> Path:
            logs_read[folder(r, n_runs)] = store.log_state(folder(r, n_runs))
            return folder(r, n_runs) / store.LOG

        with console.status("starting") as status:
            results = analyze_file(
                run_file,
                plate_map=plate_map,
                rules=rules,
                run=run,
                fmt=fmt,
                gaps="repair" if repair_gaps else "refuse",
                thresholds=_parse_thresholds(threshold),
                validate=not no_validate,
                dye=dye,
                audit_log=log_of,
                progress=lambda m: status.update(m),
            )
            written = []
            for res in results:
                target_dir = folder(res.run, len(results))
                status.update(f"writing {target_dir}")
                with store.locked(target_dir):
                    if store.log_state(target_dir) != logs_read[target_dir]:  # an override came in meanwhile
                        res = store.rederive(res, target_dir)
                    store.write(res, target_dir, html=not no_html)
                written.append((res, target_dir))
    except InputError as exc:
        fail(str(exc))
    _print_summary(written, time.perf_counter() - t0)


def _print_summary(written, seconds: float) -> None:
    table = Table(title=f"oligolab lab analyze ({seconds:.2f} s)")
    for col in ("run", "curves", "amplified", "flagged", "run valid", "samples", "calls", "for review"):
        table.add_column(col)
    for res, _folder in written:
        s = res.summary()
        valid = {None: "-", True: "[green]valid[/]", False: "[bold red]INVALID[/]"}[s["valid"]]
        calls = ", ".join(f"{k}: {v}" for k, v in (s.get("calls") or {}).items() if k) or "- (no rule set)"
        table.add_row(
            s["run"],
            str(s["curves"]),
            str(s["amplified"]),
            str(s["flagged_curves"]),
            valid,
            str(s["samples"]),
            calls,
            str(s.get("review", 0)),
        )
    console.print(table)
    for res, folder in written:
        for p in res.problems:
            console.print(f"[bold red]![/] {res.run.name}: {p}", highlight=False)
        if res.run.repaired:
            wells = list(dict.fromkeys(res.run.layout["well"].iloc[sorted(res.run.repaired)]))
            console.print(
                f"[yellow]![/] {res.run.name}: {len(res.run.repaired)} curve(s) with missing readings "
                f"filled in and held for review (wells {', '.join(wells[:10])}"
                f"{' ...' if len(wells) > 10 else ''}); --refuse-gaps refuses such runs",
                highlight=False,
            )
        console.print(f"report: {folder / 'report.html'}", highlight=False)


@lab_app.command("override")
def override_cmd(
    out_dir: Path = typer.Argument(..., help="Output folder of 'oligolab lab analyze' (holds result.json)."),
    user: str = typer.Option(..., "--user", "-u", help="Who makes the change."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
    sample: list[str] = typer.Option([], "--sample", help="Sample whose call changes (repeatable)."),
    call: str | None = typer.Option(None, "--call", help="New call for the --sample(s)."),
    accept: bool = typer.Option(
        False, "--accept", help="Accept the held call of the --sample(s) as it is (records who reviewed it)."
    ),
    well: str | None = typer.Option(None, "--well", help="Well of a curve whose amplification call changes."),
    target: str | None = typer.Option(None, "--target", help="Target of that curve."),
    amplified: bool | None = typer.Option(
        None, "--amplified/--not-amplified", help="New amplification call of the curve."
    ),
) -> None:
    """Record manual overrides in the audit log and rewrite the results with them applied."""
    from . import store

    try:
        entries = store.override(
            out_dir,
            lambda before: _override_changes(before, out_dir, sample, call, accept, well, target, amplified),
            user=user,
            reason=reason,
        )
    except InputError as exc:
        fail(str(exc))
    for e in entries:
        console.print(f"recorded #{e.seq}: {e.field} of {e.subject}: {e.old} -> {e.new} by {e.user}", highlight=False)
    console.print(f"results rewritten in {out_dir}", highlight=False)


def _override_changes(
    before,
    out_dir: Path,
    sample: list[str],
    call: str | None,
    accept: bool,
    well: str | None,
    target: str | None,
    amplified: bool | None,
) -> list[dict]:
    """The overrides the options ask for, checked against the plate (one dict per audit entry)."""
    if sample and (call is not None or accept):
        if call is not None and accept:
            raise InputError(None, "--call and --accept exclude each other", "give one of them")
        current = dict(zip(before.samples["sample"], before.samples["final_call"])) if not before.samples.empty else {}
        missing = [s for s in sample if s not in current]
        if missing:
            raise InputError(out_dir / "samples.csv", "no such sample in this run", "check the name", record=missing[0])
        return [
            {"subject": s, "field": "call", "old": current[s], "new": current[s] if accept else call} for s in sample
        ]
    if well is not None and target is not None and amplified is not None:
        t = before.table
        hit = t[(t["well"] == well.upper()) & (t["target"] == target)]
        if hit.empty:
            raise InputError(
                out_dir / "wells.csv", f"no curve for target '{target}'", "check well and target", record=well
            )
        return [
            {
                "subject": f"{well.upper()}/{target}",
                "field": "amplified",
                "old": str(bool(hit["amplified"].iat[0])).lower(),
                "new": str(amplified).lower(),
            }
        ]
    raise InputError(
        None,
        "nothing to override",
        "give --sample with --call or --accept, or --well, --target and --amplified/--not-amplified",
    )


@lab_app.command("sign")
def sign_cmd(
    out_dir: Path = typer.Argument(..., help="Output folder of 'oligolab lab analyze'."),
    user: str = typer.Option(..., "--user", "-u", help="Who signs the results."),
    reason: str = typer.Option(
        "results reviewed and released", "--reason", help="Statement recorded with the signature."
    ),
    force: bool = typer.Option(False, "--force", help="Sign even though samples are still held for review."),
) -> None:
    """Sign off the per-sample results (their SHA-256 is recorded in the audit log); signing results that are
    already signed writes nothing new."""
    from . import store

    try:
        done = store.sign(out_dir, user=user, reason=reason, force=force)
    except InputError as exc:
        fail(str(exc))
    e = done.entry
    if done.already:
        console.print(f"already signed by {e.user} at {e.time} (entry #{e.seq}); nothing new recorded", highlight=False)
    else:
        console.print(f"signed by {e.user} at {e.time}: samples.csv SHA-256 {e.new[:16]}...", highlight=False)


@lab_app.command("audit")
def audit_cmd(path: Path = typer.Argument(..., help="Output folder (or its audit.jsonl file).")) -> None:
    """Verify the audit log's hash chain, check the result files against the signed SHA-256, regenerate results
    an interrupted override or sign-off left behind the log, and list the entries. Exit 2 on any tampering."""
    from . import audit, store

    folder = path.parent if path.name == store.LOG else path
    try:
        findings = store.check(folder) if (folder / "result.json").exists() else []
        log = folder / store.LOG
        n = audit.verify(log)
        entries = audit.read(log)
    except InputError as exc:
        fail(str(exc))
    table = Table(title=f"{log}: {n} entries, hash chain intact")
    for col in ("#", "when", "who", "kind", "subject", "field", "old", "new", "reason"):
        table.add_column(col)
    for e in entries:
        table.add_row(str(e.seq), e.time, e.user, e.kind, e.subject, e.field, e.old, e.new[:16], e.reason)
    console.print(table)
    marks = {"error": "[bold red]TAMPERED[/]", "fixed": "[yellow]regenerated[/]", "info": "[green]ok[/]"}
    for f in findings:
        console.print(f"{marks[f.severity]} {f.text}", highlight=False)
    if any(f.severity == "error" for f in findings):
        fail(f"{folder}: " + "; ".join(f.text for f in findings if f.severity == "error"))


@lab_app.command("rules")
def rules_cmd(name: str | None = typer.Argument(None, help="Rule set id or YAML file to show.")) -> None:
    """List the shipped rule sets, or show one rule set's targets, controls and decision table."""
    from .rules import load_ruleset, shipped_rulesets

    if name is None:
        for rid in shipped_rulesets():
            rs = load_ruleset(rid)
            console.print(f"{rs.id} v{rs.version}: {rs.title}", highlight=False)
        return
    try:
        rs = load_ruleset(name)
    except InputError as exc:
        fail(str(exc))
    console.print(f"[bold]{rs.title}[/] ({rs.label()}, Cq method: {rs.cq_method})", highlight=False)
    for t in rs.targets.values():
        extra = f", review at >= {t.review_above:g}" if t.review_above is not None else ""
        console.print(
            f"  target {t.name}: positive if Cq < {t.positive_below:g}{extra}; aliases: {', '.join(t.aliases)}",
            highlight=False,
        )
    for c in rs.controls.values():
        console.print(f"  control {c.name}: " + ", ".join(f"{k} {v}" for k, v in c.expect.items()), highlight=False)
    table = Table(title="decision table (first match wins)")
    for name in rs.targets:
        table.add_column(name)
    table.add_column("call")
    table.add_column("report")
    for row in rs.calls:
        table.add_row(
            *[
                ("any" if row.when.get(t) is None or len(row.when[t]) == 4 else "/".join(sorted(row.when[t])))
                for t in rs.targets
            ],
            row.call,
            row.report,
        )
    table.add_row(*["(otherwise)"] + [""] * (len(rs.targets) - 1), rs.default.call, rs.default.report)
    console.print(table)


@lab_app.command("export")
def export_cmd(
    out_dir: Path = typer.Argument(..., help="Output folder of 'oligolab lab analyze'."),
    fmt: str = typer.Option(
        "fhir", "--format", "-f", help="fhir (HL7 FHIR R4 Observations) or csv (spreadsheet-safe samples)."
    ),
    dest: Path | None = typer.Option(None, "--to", help="Folder to write into (default: OUT_DIR)."),
    performer: str = typer.Option("laboratory", "--lab", help="Name of the laboratory (FHIR performer)."),
    loinc: str = typer.Option(
        "", "--loinc", help="LOINC code of the test (default: the rule set's, from knowledge/lab-exports.toml)."
    ),
) -> None:
    """Export the per-sample results for a hospital system: final only while the sign-off matches samples.csv."""
    from .exports.folder import export

    try:
        path = export(out_dir, fmt, dest, performer=performer, loinc=loinc)
    except InputError as exc:
        fail(str(exc))
    console.print(f"wrote {path}", highlight=False)
