"""`oligolab check`: the command-line shell over :func:`oligolab.check.run_check`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..cli import app, fail
from ..engine import MAX_GAPS, MAX_MISMATCHES
from ..errors import InputError
from .options import CheckInputs, CheckOptions
from .outputs import run_check

console = Console()


@app.command("check")
def check_command(
    assays: list[Path] = typer.Option(
        ...,
        "--assays",
        "-a",
        help="Assay file(s): TSV/CSV table, published-assay CSV or primal-scheme BED. Repeat for several.",
    ),
    genomes: list[Path] = typer.Option(
        ..., "--genomes", "-g", help="Genome FASTA (plain, gz, xz, zst). Repeat for several."
    ),
    out: Path = typer.Option(Path("oligolab-check"), "--out", "-o", help="Output folder."),
    metadata: Path | None = typer.Option(None, "--metadata", "-m", help="TSV/CSV with id, lineage, date, ..."),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference genome FASTA (expected sites, mutation names)."
    ),
    annotation: Path | None = typer.Option(
        None, "--annotation", help="GenBank of the reference (gene and amino-acid names)."
    ),
    alias_key: Path | None = typer.Option(None, "--alias-key", help="Pango alias_key.json (lineage groups)."),
    off_target: list[Path] = typer.Option([], "--off-target", help="Off-target FASTA for exclusivity. Repeat."),
    previous: Path | None = typer.Option(
        None,
        "--previous",
        help="Output folder of an earlier check: report the "
        "genomes, lineages and mutations that newly escape or degrade each assay.",
    ),
    max_mismatches: int = typer.Option(
        CheckOptions.max_mismatches,
        "--max-mismatches",
        "-k",
        min=0,
        max=MAX_MISMATCHES,
        help="Differences allowed per site (mismatches + gap nt).",
    ),
    max_gaps: int = typer.Option(
        CheckOptions.max_gaps, "--max-gaps", min=0, max=MAX_GAPS, help="Gap nucleotides allowed per site."
    ),
    rules: Path | None = typer.Option(None, "--rules", help="Call rule file (TOML); default: shipped rules."),
    enzymes: Path | None = typer.Option(None, "--enzymes", help="Folder of extra enzyme TOML files."),
    threads: int | None = typer.Option(None, "--threads", help="Threads (default: all cores)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Local worker processes (default: this "
        "process up to 400 Mnt of genomes, every core past that; 1 checks in "
        "this process).",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Check on a Dask cluster: local:N starts N workers here, tcp://host:8786 joins a running scheduler.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda to run the engine's filter on a GPU."),
) -> None:
    """Check assays against a genome collection: per genome, lineage and month, which oligos still bind,
    where the mismatches are, which variants escape, and what else the assays would detect."""
    inputs = CheckInputs(
        list(assays), list(genomes), metadata, reference, annotation, alias_key, list(off_target), previous
    )
    options = CheckOptions(
        max_mismatches=max_mismatches,
        max_gaps=max_gaps,
        rules_path=str(rules) if rules else None,
        enzymes_dir=str(enzymes) if enzymes else None,
        threads=threads,
        workers=workers,
        cluster=cluster,
        device=device,
    )
    t0 = time.perf_counter()
    try:
        if device not in ("cpu", "cuda"):
            raise InputError(None, f"unknown device {device!r}", "use --device cpu or --device cuda")
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]checking[/]"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[genomes]:,} genomes, {task.fields[mb]:.1f} Mb"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("check", total=None, genomes=0, mb=0.0)

            def report(n_genomes: int, n_nt: int) -> None:
                progress.update(task, genomes=n_genomes, mb=n_nt / 1e6)

            result = run_check(inputs, out, options, progress=report)
    except InputError as exc:
        fail(str(exc))
    seconds = time.perf_counter() - t0
    summary = Table(
        title=f"{result.genomes:,} genomes, {len(result.checker.assays.assays)} assays in {seconds:.1f} s",
        show_lines=False,
    )
    for col in ("assay", "detected", "at risk", "no data", "not detected"):
        summary.add_column(col, justify="left" if col == "assay" else "right")
    rows = []
    agg = result.aggregates.lin_assay.sum(axis=0)
    for ai, a in enumerate(result.checker.assays.assays):
        rows.append((agg[ai, 3], a.name, agg[ai]))
    for _, name, c in sorted(rows, key=lambda r: (-r[0], r[1]))[:20]:
        summary.add_row(name, *(f"{int(x):,}" for x in c))
    console.print(summary)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"report: [bold]{Path(out) / 'report.html'}[/]")
