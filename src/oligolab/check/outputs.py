"""Writing a check's result: the summary tables, exclusivity tables, ``summary.json`` and ``report.html`` beside
the per-genome rows, the whole folder as one transaction (:func:`oligolab.reports.output_folder`: a kill at any
moment leaves the previous complete result or the new one)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..reports import output_folder, replaceable, write_json, write_table, write_text
from .options import CheckInputs, CheckOptions
from .pipeline import CheckResult, check
from .report import changes_section, render
from .tables import summary_json


def write_outputs(result: CheckResult, folder: Path) -> None:
    """Write everything but the per-genome rows (which the check streamed into ``folder``)."""
    for name, frame in result.tables.items():
        write_table(frame, folder / f"{name}.tsv")
    write_table(result.exclusivity_sites, folder / "exclusivity_sites.tsv")
    write_table(result.exclusivity_assays, folder / "exclusivity_assays.tsv")
    summary = summary_json(result, result.tables)
    write_json(folder / "summary.json", summary)
    extra = []
    if result.inputs.previous:
        write_json(folder / "assay_watch.json", result.watch)
        extra.append(("Changes since the previous check", changes_section(result)))
    write_text(folder / "report.html", render(result, result.tables, summary, extra))


#: every name a check writes into its output folder
OUTPUT_NAMES = {
    "oligo_calls",
    "assay_calls",
    "oligo_calls.tsv",
    "assay_calls.tsv",
    "assay_summary.tsv",
    "group_summary.tsv",
    "lineage_summary.tsv",
    "oligo_lineage_groups.tsv",
    "monthly_summary.tsv",
    "escape_mutations.tsv",
    "design_mismatches.tsv",
    "exclusivity_sites.tsv",
    "exclusivity_assays.tsv",
    "changes.tsv",
    "assay_watch.json",
    "summary.json",
    "report.html",
    "manifest.json",
    "oligo_calls.parquet",
    "assay_calls.parquet",
}


def work_folder(out_dir: Path) -> Path:
    """Where a run on ``out_dir`` keeps its chunk results until the output folder is complete."""
    return out_dir.parent / f".{out_dir.name}.check-work"


def run_check(
    inputs: CheckInputs,
    out_dir: str | Path,
    options: CheckOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """Check and write the result folder ``out_dir`` (replaced as a whole only when the check succeeded). An
    interrupted run on the same folder with the same inputs and options resumes with the chunks still missing."""
    options = options if options is not None else CheckOptions()
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not replaceable(out_dir, OUTPUT_NAMES):  # say so now, not after hours of checking
        raise InputError(
            out_dir,
            "the folder holds files oligolab did not write, so it is not replaced",
            "choose a new or empty output folder",
        )
    work = work_folder(out_dir)
    with output_folder(out_dir) as tmp:
        result = check(inputs, options, tmp, progress, work_dir=work)
        write_outputs(result, tmp)
        names = sorted(p.name for p in tmp.iterdir())
    shutil.rmtree(work, ignore_errors=True)
    result.outputs = {name: str(out_dir / name) for name in names}
    return result
