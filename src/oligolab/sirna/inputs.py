"""Readers of the optional `oligolab sirna` inputs: variants (VCF or table), miRNA seeds, reference siRNAs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..errors import InputError
from ..sequences import iter_lines


def read_variants(path: str | Path, transcript_id: str) -> list[tuple[int, float, str]]:
    """Variants on the target transcript: (1-based position, allele frequency, label). A TSV with a position
    column (position / transcript_position / nm_start, 1-based on the target transcript), a frequency column
    (frequency / af) and optionally id / rsids and transcript_id; or a VCF whose CHROM is the transcript id and
    whose INFO has AF. Compressed files are read as they are."""
    path = Path(path)
    out = []
    lines = [ln.decode("utf-8", errors="replace").rstrip("\n") for ln in iter_lines(path)]
    if any(ln.startswith("##fileformat=VCF") for ln in lines[:5]):
        for lineno, ln in enumerate(lines, 1):
            if not ln or ln.startswith("#"):
                continue
            f = ln.split("\t")
            if len(f) < 8:
                raise InputError(path, "VCF line with fewer than 8 columns", "give a VCF", line=lineno)
            if f[0] != transcript_id:
                continue
            m = re.search(r"(?:^|;)AF=([0-9.eE\-]+)", f[7])
            if not m:
                raise InputError(path, "no AF in INFO", "add AF= (allele frequency) to INFO", line=lineno)
            out.append((int(f[1]), float(m.group(1)), f[2] if f[2] != "." else f"{f[3]}{f[1]}{f[4]}"))
        return out
    header = [h.strip().lower() for h in lines[0].split("\t")]
    pos_col = next((c for c in ("position", "transcript_position", "nm_start") if c in header), None)
    freq_col = next((c for c in ("frequency", "af", "allele_frequency") if c in header), None)
    id_col = next((c for c in ("id", "rsids", "variant_id") if c in header), None)
    if pos_col is None or freq_col is None:
        raise InputError(path, "variant table needs a position column (position or nm_start, 1-based on the "
                         "target transcript) and a frequency column (frequency or af)",
                         "add the columns or give a VCF", line=1)
    for lineno, ln in enumerate(lines[1:], 2):
        if not ln.strip():
            continue
        row = dict(zip(header, ln.split("\t")))
        if row.get("transcript_id") and row["transcript_id"].split(".")[0] != transcript_id.split(".")[0]:
            continue
        if not row.get(pos_col) or not row.get(freq_col):
            continue
        try:
            label = (row.get(id_col) or "") if id_col else ""
            out.append((int(row[pos_col]), float(row[freq_col]), label or f"pos{row[pos_col]}"))
        except ValueError:
            raise InputError(path, f"{pos_col} or {freq_col} is not a number", "fix the row", line=lineno) from None
    return out


def read_mirna_seeds(path: str | Path) -> dict[str, list[str]]:
    """miRNA names by seed (nucleotides 2-8, RNA letters) from a TSV with columns name and seed_2_8."""
    seeds: dict[str, list[str]] = {}
    with open(path) as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            seeds.setdefault(row["seed_2_8"].upper().replace("T", "U"), []).append(row["name"])
    return seeds


def read_known(path: str | Path) -> list[dict[str, str]]:
    """Rows of a reference-siRNA table (approved-sirnas.tsv format: drug, strand, sequence, ...)."""
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))
