"""`oligolab sirna`: command-line shell over :func:`oligolab.sirna.design_sirnas`; it writes the result folder."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from ..cli import app, fail
from ..errors import InputError
from ..reports import output_folder, write_json, write_table, write_text

console = Console()


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """'1-60,900-950' -> [(1, 60), (900, 950)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if not m:
            raise InputError(None, f"--avoid range {part!r} is not START-END", "write e.g. --avoid 1-60,900-950")
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def write_files(files: dict[str, Any], out: Path) -> None:
    """Write a result's files (tables, JSON, text) as one output-folder transaction."""
    with output_folder(out) as tmp:
        for name, content in files.items():
            if isinstance(content, pd.DataFrame):
                write_table(content, tmp / name)
            elif isinstance(content, str):
                write_text(tmp / name, content)
            else:
                write_json(tmp / name, content)


@app.command("sirna")
def sirna_command(
    target: Path = typer.Option(..., "--target", "-t", help="Target transcript(s): FASTA or GenBank (RefSeq)."),
    out: Path = typer.Option(Path("oligolab-sirna"), "--out", "-o", help="Output folder."),
    target_id: Optional[str] = typer.Option(None, "--target-id", help="Record to design against (default: first);"
                                            " other records of the same gene are its transcript variants."),
    off_target: list[Path] = typer.Option([], "--off-target", help="Off-target transcripts (FASTA/GenBank; up to "
                                          "a whole transcriptome). Repeat."),
    ortholog: list[Path] = typer.Option([], "--ortholog", help="Ortholog transcripts (e.g. cynomolgus, mouse)."),
    variants: Optional[Path] = typer.Option(None, "--variants", help="VCF (CHROM = transcript id) or TSV "
                                            "(position, frequency)."),
    mirnas: Optional[Path] = typer.Option(None, "--mirnas", help="TSV of miRNAs with a seed_2_8 column."),
    known: Optional[Path] = typer.Option(None, "--known", help="Reference siRNAs to locate in the ranking "
                                         "(approved-sirnas.tsv format)."),
    layout: str = typer.Option("", "--layout", help="19+2 or 21/23 (default: the pattern's)."),
    pattern: str = typer.Option("galnac-full", "--pattern", help="Modification pattern (galnac-full, alternating, "
                                "lnp-light, or one added to knowledge/sirna-modifications.toml)."),
    top: int = typer.Option(20, "--top", min=1, help="Candidates in the top table and order sheet."),
    avoid: str = typer.Option("", "--avoid", help="Transcript ranges not to target, 1-based: 1-60,900-950."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Rule file (TOML) replacing sirna-rules.toml."),
    threads: Optional[int] = typer.Option(None, "--threads"),
) -> None:
    """Design siRNA duplexes against a transcript: efficacy, off-targets, SNPs, orthologs, chemistry."""
    from .design import SirnaInputs, SirnaOptions, design_sirnas
    from .report import output_files

    t0 = time.perf_counter()
    try:
        inputs = SirnaInputs(target, list(off_target), list(ortholog), variants, mirnas, known)
        options = SirnaOptions(target_id=target_id, layout=layout, pattern=pattern, top=top,
                               avoid=parse_ranges(avoid), rules_path=str(rules) if rules else None, threads=threads)
        with console.status("designing siRNAs") as status:
            result = design_sirnas(inputs, options, progress=lambda msg: status.update(msg))
            status.update("writing outputs")
            write_files(output_files(result, top), out)
    except InputError as exc:
        fail(str(exc))
    table = Table(title=f"{result.info['candidates']:,} candidates on {result.target.id} in "
                        f"{time.perf_counter() - t0:.1f} s")
    for col in ("rank", "position", "guide", "efficacy", "score", "flags"):
        table.add_column(col)
    for r in result.table.head(min(top, 10)).itertuples():
        table.add_row(str(r.rank), str(r.position), r.guide, f"{r.predicted_efficacy:.3f}", f"{r.score:.3f}",
                      r.flags or "")
    console.print(table)
    for k in result.info.get("known", []):
        console.print(f"{k['name']}: site {k['position']} ranks {k['rank']} of {k['of']}")
    console.print(f"report: [bold]{Path(out) / 'report.html'}[/]")
