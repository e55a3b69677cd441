"""`oligolab design`: the command over :func:`oligolab.design.design` and :func:`oligolab.design.rescue`; it
validates the options, shows progress, and writes the result folder (one transaction, :mod:`.outputs`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..cli import app, fail
from ..errors import InputError

if TYPE_CHECKING:
    from .pipeline import DesignResult
    from .rescue import RescueResult

console = Console()


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]designing[/] {task.fields[stage]}"),
        BarColumn(bar_width=None),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _show_design(result, seconds: float, out: Path) -> None:
    table = Table(title=f"{len(result.assays)} assays for {result.collection.n:,} genomes in {seconds:.1f} s")
    for col in (
        "assay",
        "amplicon",
        "guides",
        "detected",
        "at risk",
        "not detected",
        "survival",
        "specific",
        "activity",
    ):
        table.add_column(col, justify="left" if col in ("assay", "amplicon") else "right")
    for a in result.assays:
        c = a.scores["check"]
        act = a.scores.get("activity", float("nan"))
        table.add_row(
            a.name,
            f"{a.amplicon[0] + 1}-{a.amplicon[1]}",
            str(len(a.guides)),
            f"{c['detected']:,}",
            f"{c['at risk']:,}",
            f"{c['not detected']:,}",
            f"{a.prescore.get('survival', 1.0):.3f}",
            "yes" if a.scores["specificity"]["specific"] else "NO",
            ""
            if act != act
            else f"{act:.2f}" + (" (heuristic)" if a.scores.get("activity_kind") == "heuristic" else ""),
        )
    console.print(table)
    for n in result.notes:
        console.print(f"[yellow]note:[/] {n}")
    console.print(f"order sheet: [bold]{out / 'order_sheet.tsv'}[/]  report: [bold]{out / 'report.html'}[/]")


def _show_rescue(result, seconds: float, out: Path) -> None:
    table = Table(title=f"rescue of {len(result.assays)} assays on {result.collection.n:,} genomes in {seconds:.1f} s")
    for col in ("assay", "detected before", "detected after", "changes"):
        table.add_column(col, justify="left" if col in ("assay", "changes") else "right")
    for r in result.assays:
        table.add_row(
            r.original.name,
            f"{r.before['detected']:,}",
            f"{r.after['detected']:,}",
            "; ".join(r.changes) or "; ".join(r.not_rescued) or "nothing escapes",
        )
    console.print(table)
    for n in result.notes:
        console.print(f"[yellow]note:[/] {n}")
    console.print(f"rescued assays: [bold]{out / 'assays.tsv'}[/]  report: [bold]{out / 'report.html'}[/]")


@app.command("design")
def design_command(
    genomes: list[Path] = typer.Option(
        ..., "--genomes", "-g", help="Target genome FASTA (plain, gz, xz, zst). Repeat for several."
    ),
    enzyme: str = typer.Option(
        "LbCas12a",
        "--enzyme",
        "-e",
        help="An enzyme file's name: LbCas12a, AsCas12a, "
        "AacCas12b, Un1Cas12f1, LwaCas13a, PspCas13b, or one from --enzymes.",
    ),
    amplification: str = typer.Option("lamp", "--amplification", "-A", help="rpa, lamp (RT-LAMP) or pcr."),
    out: Path = typer.Option(Path("oligolab-design"), "--out", "-o", help="Output folder."),
    n_assays: int = typer.Option(3, "--n-assays", "-n", min=1, max=50, help="Assays to return, in distinct regions."),
    max_guides: int = typer.Option(
        3,
        "--max-guides",
        min=1,
        max=10,
        help="Guides per assay at most: to detect every genome, then for redundancy where one guide is fragile.",
    ),
    region: str | None = typer.Option(
        None, "--region", help="Gene name (needs --annotation) or 1-based START-END on the reference."
    ),
    metadata: Path | None = typer.Option(None, "--metadata", "-m", help="TSV/CSV with id, lineage, date."),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference genome FASTA (coordinates; default: the first genome)."
    ),
    annotation: Path | None = typer.Option(None, "--annotation", help="GenBank of the reference (genes)."),
    alias_key: Path | None = typer.Option(None, "--alias-key", help="Pango alias_key.json (lineage groups)."),
    off_target: list[Path] = typer.Option(
        [],
        "--off-target",
        help="Off-target FASTA that designs must not detect (near neighbours, human background). Repeat.",
    ),
    related: list[Path] = typer.Option(
        [],
        "--related",
        help="Near neighbours of the family (FASTA): sites that "
        "vary among them count as more likely to mutate. Repeat.",
    ),
    rescue: Path | None = typer.Option(
        None, "--rescue", help="An assay file (as for check): keep each assay and redesign only its escaping oligo(s)."
    ),
    rescue_assay: list[str] = typer.Option([], "--rescue-assay", help="With --rescue: only this assay (repeat)."),
    max_mismatches: int = typer.Option(
        3,
        "--max-mismatches",
        "-k",
        min=0,
        max=4,
        help="Differences searched per site, as in check (design: at most 4).",
    ),
    max_gaps: int = typer.Option(2, "--max-gaps", min=0, max=2, help="Gap nucleotides per site, as in check."),
    rules: Path | None = typer.Option(None, "--rules", help="Call rule file (TOML); default: shipped rules."),
    enzymes: Path | None = typer.Option(None, "--enzymes", help="Folder of extra enzyme TOML files."),
    threads: int | None = typer.Option(None, "--threads", help="Threads (default: all cores)."),
) -> None:
    """Design CRISPR diagnostic assays (guides + amplification primers) that detect every genome of a
    collection, keep detecting unseen variants, and nothing in the off-target collections; or, with --rescue,
    repair an assay in use. Writes assays.tsv, an order sheet and report.html."""
    from . import DesignInputs, DesignOptions, design
    from . import rescue as run_rescue
    from .outputs import DESIGN_FILES, RESCUE_FILES, refuse_early, write_outputs, write_rescue

    inputs = DesignInputs(
        list(genomes), metadata, reference, annotation, alias_key, list(off_target), related=list(related)
    )
    options = DesignOptions(
        enzyme=enzyme,
        amplification=amplification.lower(),
        n_assays=n_assays,
        max_guides=max_guides,
        region=region,
        max_mismatches=max_mismatches,
        max_gaps=max_gaps,
        rules_path=str(rules) if rules else None,
        enzymes_dir=str(enzymes) if enzymes else None,
        threads=threads,
    )
    t0 = time.perf_counter()
    try:
        if rescue_assay and rescue is None:
            raise InputError(None, "--rescue-assay needs --rescue", "give the assay file with --rescue")
        refuse_early(out, RESCUE_FILES if rescue is not None else DESIGN_FILES)
        with _progress() as progress:
            task = progress.add_task("design", total=1.0, stage="")

            def report(stage: str, frac: float) -> None:
                progress.update(task, stage=stage, completed=frac)

            result: DesignResult | RescueResult
            if rescue is not None:
                result = run_rescue(inputs, rescue, options, list(rescue_assay) or None, progress=report)
                write_rescue(result, out)
            else:
                result = design(inputs, options, progress=report)
                write_outputs(result, out)
    except InputError as exc:
        fail(str(exc))
    (_show_rescue if rescue is not None else _show_design)(result, time.perf_counter() - t0, out)
