"""`oligolab sirna`: design (the command itself), ``score`` (given duplexes) and ``index`` (the off-target
transcriptome, built once). A thin shell over :mod:`oligolab.sirna.design`; it writes every result folder as one
output-folder transaction.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from ..cli import app, fail
from ..errors import InputError
from ..reports import output_folder, write_json, write_table, write_text

console = Console()
sirna_app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    help="Design siRNA duplexes against transcripts (efficacy, off-targets, SNPs, orthologs, "
    "chemistry); `score` given duplexes; `index` an off-target transcriptome.",
)
app.add_typer(sirna_app, name="sirna")


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """'1-60,900-950' -> [(1, 60), (900, 950)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if not m:
            raise InputError(None, f"--avoid range {part!r} is not START-END", "write e.g. --avoid 1-60,900-950")
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def split_list(values: list[str]) -> list[str]:
    """Repeated and comma-separated option values, in order."""
    return [v.strip() for x in values for v in x.split(",") if v.strip()]


def write_files(files: dict[str, Any], folder: Path) -> None:
    """Write a result's files (tables, JSON, text; a dict value under a name ending '/' is a subfolder)."""
    for name, content in files.items():
        if name.endswith("/"):
            (folder / name).mkdir()
            write_files(content, folder / name)
        elif isinstance(content, pd.DataFrame):
            write_table(content, folder / name)
        elif isinstance(content, str):
            write_text(folder / name, content)
        else:
            write_json(folder / name, content)


def show(results: list, top: int, t0: float) -> None:
    """The top of each ranking and where the reference siRNAs fall, on the console."""
    for result in results:
        table = Table(
            title=f"{result.info['candidates']:,} candidates on {result.target.id} in {time.perf_counter() - t0:.1f} s"
        )
        for col in ("rank", "name", "position", "guide", "efficacy", "score", "flags"):
            table.add_column(col)
        for r in result.table.head(min(top, 10)).itertuples():
            table.add_row(
                str(r.rank),
                r.name,
                str(r.position),
                r.guide,
                f"{r.predicted_efficacy:.3f}",
                f"{r.score:.3f}",
                r.flags or "",
            )
        console.print(table)
        for k in result.info.get("known", []):
            console.print(f"{k['name']}: site {k['position']} ranks {k['rank']} of {k['of']}")


# common options (one definition each, shared by design and score)
TARGET = typer.Option(
    None,
    "--target",
    "-t",
    help="Target transcript(s): FASTA or GenBank (RefSeq); may be "
    "left out with --index (the targets are then taken from the index).",
)
TARGET_ID = typer.Option(
    [],
    "--target-id",
    help="Record(s) to design against (repeat or comma-separate; default: "
    "the first); other records of the same gene are its transcript variants.",
)
GENE = typer.Option(
    [],
    "--gene",
    help="Gene symbol(s) to design against: the MANE Select transcript (else the "
    "first) of the gene among the target records or in the index.",
)
INDEX = typer.Option(None, "--index", help="Off-target transcriptome folder written by `oligolab sirna index`.")
OFF_TARGET = typer.Option(
    [],
    "--off-target",
    help="Off-target transcripts (FASTA/GenBank), indexed in memory for "
    "this run (for a few transcripts; use --index for a transcriptome). Repeat.",
)
ORTHOLOG = typer.Option(
    [],
    "--ortholog",
    help="Ortholog transcripts of the preclinical species (cynomolgus/rhesus, "
    "mouse, rat), FASTA/GenBank, species from the header. Repeat.",
)
VARIANTS = typer.Option(
    None, "--variants", help="VCF (CHROM = transcript id, AF in INFO) or table (position, frequency; tab or comma)."
)
MIRNAS = typer.Option(
    None, "--mirnas", help="Mature miRNAs: FASTA (miRBase, MirGeneDB) or a table with name and seed_2_8 (or sequence)."
)
KNOWN = typer.Option(None, "--known", help="Reference siRNAs to locate in the ranking (approved-sirnas.tsv format).")
RULES = typer.Option(None, "--rules", help="Rule file (TOML) replacing sirna-rules.toml.")
THREADS = typer.Option(None, "--threads")
TOP = typer.Option(20, "--top", min=1, help="Candidates in the top table, off-target lists and order sheet.")


def run_and_write(call: Any, out: Path, top: int, what: str) -> list:
    """Run a pipeline under a progress line, write its folder, print the tops; InputError -> one line."""
    from .report import output_files

    t0 = time.perf_counter()
    try:
        with console.status(what) as status:
            results = call(lambda msg: status.update(msg))
            status.update("writing outputs")
            with output_folder(out) as tmp:
                write_files(output_files(results, top), tmp)
    except InputError as exc:
        fail(str(exc))
    show(results, top, t0)
    console.print(f"report: [bold]{Path(out) / 'report.html'}[/]")
    return results


@sirna_app.callback()
def sirna_command(
    ctx: typer.Context,
    target: Path | None = TARGET,
    out: Path = typer.Option(Path("oligolab-sirna"), "--out", "-o", help="Output folder."),
    target_id: list[str] = TARGET_ID,
    gene: list[str] = GENE,
    index: Path | None = INDEX,
    off_target: list[Path] = OFF_TARGET,
    ortholog: list[Path] = ORTHOLOG,
    variants: Path | None = VARIANTS,
    mirnas: Path | None = MIRNAS,
    known: Path | None = KNOWN,
    layout: str = typer.Option("", "--layout", help="19+2 or 21/23 (default: the pattern's)."),
    pattern: str = typer.Option(
        "galnac-full",
        "--pattern",
        help="Modification pattern (galnac-full, "
        "vutrisiran-like, esc-plus, alternating, lnp-light, or one added to "
        "knowledge/sirna-modifications.toml).",
    ),
    guide_gna: list[int] = typer.Option(
        [], "--guide-gna", help="Make this guide position a (S)-GNA residue (seed destabilisation: 7). Repeat."
    ),
    guide_vp: bool = typer.Option(False, "--guide-vp", help="5'-(E)-vinylphosphonate on the guide."),
    top: int = TOP,
    avoid: str = typer.Option("", "--avoid", help="Transcript ranges not to target, 1-based: 1-60,900-950."),
    rules: Path | None = RULES,
    threads: int | None = THREADS,
) -> None:
    """Design siRNA duplexes against transcripts: efficacy, off-targets, SNPs, orthologs, chemistry."""
    if ctx.invoked_subcommand is not None:
        return
    if target is None and index is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    from .design import SirnaInputs, SirnaOptions, design_targets

    def call(say: Any) -> list:
        inputs = SirnaInputs(target, list(off_target), list(ortholog), variants, mirnas, known, index)
        options = SirnaOptions(
            target_ids=split_list(target_id),
            genes=split_list(gene),
            layout=layout,
            pattern=pattern,
            guide_gna=list(guide_gna),
            guide_vp=guide_vp,
            top=top,
            avoid=parse_ranges(avoid),
            rules_path=str(rules) if rules else None,
            threads=threads,
        )
        return design_targets(inputs, options, say)

    run_and_write(call, out, top, "designing siRNAs")


@sirna_app.command("score")
def score_command(
    duplexes: Path = typer.Argument(
        ...,
        help="Duplexes: CSV/TSV (name, guide, passenger; or one strand per row) "
        "or FASTA (<name>_AS / <name>_S), plain or modified notation.",
    ),
    target: Path | None = TARGET,
    out: Path = typer.Option(Path("oligolab-sirna-score"), "--out", "-o", help="Output folder."),
    target_id: list[str] = TARGET_ID,
    gene: list[str] = GENE,
    index: Path | None = INDEX,
    off_target: list[Path] = OFF_TARGET,
    ortholog: list[Path] = ORTHOLOG,
    variants: Path | None = VARIANTS,
    mirnas: Path | None = MIRNAS,
    known: Path | None = KNOWN,
    top: int = TOP,
    rules: Path | None = RULES,
    threads: int | None = THREADS,
) -> None:
    """Score given siRNA duplexes against a target: knock-down with mismatches and wobbles at their positions,
    off-targets, the same columns as a design."""
    from .design import SirnaInputs, SirnaOptions, score_duplexes

    def call(say: Any) -> list:
        inputs = SirnaInputs(target, list(off_target), list(ortholog), variants, mirnas, known, index)
        options = SirnaOptions(
            target_ids=split_list(target_id),
            genes=split_list(gene),
            top=top,
            rules_path=str(rules) if rules else None,
            threads=threads,
        )
        return score_duplexes(inputs, duplexes, options, say)

    run_and_write(call, out, top, "scoring duplexes")


@sirna_app.command("index")
def index_command(
    transcripts: list[Path] = typer.Argument(
        ...,
        help="Transcript sequences: Ensembl or RefSeq cDNA FASTA (any "
        "compression). Several files are indexed together.",
    ),
    annotation: Path | None = typer.Option(
        None, "--annotation", "-a", help="GTF or GFF3 of the same release (CDS/UTR coordinates, genes, biotypes)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (reused by --index)."),
    rules: Path | None = RULES,
) -> None:
    """Index an off-target transcriptome once: encoded transcripts, CDS/UTRs, the 3' UTR seed table, with the
    sources' SHA-256."""
    from .index import build_index, save_index
    from .rules import load_sirna_rules

    t0 = time.perf_counter()
    try:
        with console.status("indexing") as status:
            idx = build_index(
                list(transcripts),
                annotation,
                load_sirna_rules(str(rules) if rules else None),
                lambda msg: status.update(msg),
            )
            status.update("writing the index")
            with output_folder(out) as tmp:
                save_index(idx, tmp)
    except InputError as exc:
        fail(str(exc))
    m = idx.meta
    console.print(
        f"{m['transcripts']:,} transcripts ({m['nucleotides'] / 1e6:.1f} Mnt, {m['genes']:,} genes; CDS "
        f"from annotation {m['cds_source']['annotation']:,}, longest ORF {m['cds_source']['longest ORF']:,})"
        f" indexed in {time.perf_counter() - t0:.1f} s: [bold]{out}[/]"
    )
