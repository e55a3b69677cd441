"""Readers of the optional `oligolab sirna` inputs: variants (VCF or table), miRNAs (FASTA or table), reference
siRNAs (table). Each validates what it reads and raises only :class:`~oligolab.errors.InputError` naming the file,
the line, the problem and the fix; lines, rows and values are bounded so that no file can take unbounded time or
memory. Tables may be tab- or comma-separated (told apart by the header line) and compressed.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..sequences import iter_lines, read_fasta

MAX_LINE = 1 << 20  #: bytes per line of a table or VCF
MAX_ROWS = 20_000_000  #: data lines read from one table or VCF
MAX_KEPT = 1_000_000  #: variants or miRNAs kept from one file
RNA_LETTERS = re.compile(r"[ACGUT]+")


@dataclass(frozen=True)
class Variant:
    """A variant on the target transcript."""

    position: int  #: 1-based on the transcript
    frequency: float  #: allele frequency, 0..1
    label: str


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text without the line end) of a possibly compressed text file, bounded in line length and
    count."""
    path = Path(path)
    for lineno, raw in enumerate(iter_lines(path, max_line=MAX_LINE), 1):
        if lineno > MAX_ROWS:
            raise InputError(
                path, f"more than {MAX_ROWS:,} lines", "split the file or keep the rows you need", line=lineno
            )
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if "\x00" in text:
            raise InputError(path, "binary content (a NUL byte)", "give a text file", line=lineno)
        yield lineno, text.lstrip("\ufeff") if lineno == 1 else text


def split_fields(path: Path, text: str, delimiter: str, lineno: int) -> list[str]:
    """Fields of one delimited line (quotes allowed), stripped."""
    try:
        row = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as exc:
        raise InputError(path, f"cannot split the line ({exc})", "fix the quoting", line=lineno) from None
    return [f.strip() for f in row]


def table_rows(path: str | Path, what: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Header (lower case) and rows of a tab- or comma-separated table: the delimiter is the header's (tab if it
    holds one, else comma); a row with more fields than the header is refused; empty lines are skipped."""
    path = Path(path)
    lines = text_lines(path)
    for lineno, text in lines:  # noqa: B007 (the header's line number is read after the loop)
        if text.strip() and not text.startswith("##"):
            break
    else:
        raise InputError(path, f"no header line: not a {what} table", f"give a {what} table with a header line")
    delimiter = "\t" if "\t" in text else ","
    header = [h.lower().lstrip("#") for h in split_fields(path, text, delimiter, lineno)]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for n, line in lines:
            if not line.strip():
                continue
            fields = split_fields(path, line, delimiter, n)
            if len(fields) > len(header):
                raise InputError(
                    path,
                    f"{len(fields)} fields but the header has {len(header)}",
                    f"use one {'tab' if delimiter == chr(9) else 'comma'} between columns",
                    line=n,
                )
            yield n, dict(zip(header, fields))

    return header, rows()


def parse_position(path: Path, text: str, length: int, lineno: int, column: str) -> int:
    """A 1-based position on a transcript of ``length`` nt."""
    try:
        pos = int(text)
    except ValueError:
        raise InputError(
            path,
            f"{column} {text[:40]!r} is not a whole number",
            "give the 1-based position on the target transcript",
            line=lineno,
        ) from None
    if not 1 <= pos <= length:
        raise InputError(
            path,
            f"{column} {pos} is outside the target transcript (1-{length})",
            "give positions on the target transcript (1-based), or the right --target-id",
            line=lineno,
        )
    return pos


def parse_frequency(path: Path, text: str, lineno: int, column: str) -> float:
    """An allele frequency in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            path, f"{column} {text[:40]!r} is not a number", "give the allele frequency (0-1)", line=lineno
        ) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(
            path,
            f"{column} {text[:40]} is not an allele frequency between 0 and 1",
            "give the allele frequency (0-1), not a percentage or a count",
            line=lineno,
        )
    return value


def same_transcript(a: str, b: str) -> bool:
    """Equal ids, or equal without their version suffix (NM_174936.4 ~ NM_174936)."""
    return a == b or a.split(".")[0] == b.split(".")[0]


def is_vcf(path: str | Path) -> bool:
    """Whether the file starts like a VCF (##fileformat=VCF or a #CHROM header)."""
    for _, text in text_lines(path):
        if text.strip():
            return text.startswith("##fileformat=VCF") or text.startswith("#CHROM")
    return False


def read_vcf_variants(path: Path, transcript_id: str, length: int) -> list[Variant]:
    """Variants of a VCF whose CHROM is the transcript id, with AF in INFO (one per ALT allele)."""
    out: list[Variant] = []
    for lineno, text in text_lines(path):
        if not text.strip() or text.startswith("#"):
            continue
        f = text.split("\t")
        if len(f) < 8:
            problem = (
                "comma-separated, not tab-separated"
                if "," in text and len(f) == 1
                else f"{len(f)} tab-separated columns, a VCF has at least 8"
            )
            raise InputError(
                path, problem, "give a tab-separated VCF (CHROM POS ID REF ALT QUAL FILTER INFO)", line=lineno
            )
        if not same_transcript(f[0], transcript_id):
            continue
        pos = parse_position(path, f[1], length, lineno, "POS")
        m = re.search(r"(?:^|;)AF=([^;]*)", f[7])
        if not m:
            raise InputError(path, "no AF in INFO", "add AF= (allele frequency) to INFO", line=lineno)
        alts = f[4].split(",")
        freqs = m.group(1).split(",")
        if len(freqs) != len(alts):
            raise InputError(
                path, f"{len(freqs)} AF values for {len(alts)} ALT alleles", "give one AF per ALT allele", line=lineno
            )
        for alt, af in zip(alts, freqs):
            label = f[2] if f[2] not in (".", "") else f"{f[3]}{pos}{alt}"
            out.append(Variant(pos, parse_frequency(path, af, lineno, "AF"), label))
        if len(out) > MAX_KEPT:
            raise InputError(
                path, f"more than {MAX_KEPT:,} variants on {transcript_id}", "keep the variants you need", line=lineno
            )
    return out


POSITION_COLUMNS = ("position", "transcript_position", "nm_start")
FREQUENCY_COLUMNS = ("frequency", "af", "allele_frequency")
ID_COLUMNS = ("id", "rsids", "variant_id")


def read_table_variants(path: Path, transcript_id: str, length: int) -> list[Variant]:
    """Variants of a table with a position column (1-based on the target transcript) and a frequency column;
    rows of another ``transcript_id`` are skipped, rows without a value are skipped."""
    header, rows = table_rows(path, "variant")
    pos_col = next((c for c in POSITION_COLUMNS if c in header), None)
    freq_col = next((c for c in FREQUENCY_COLUMNS if c in header), None)
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    if pos_col is None or freq_col is None:
        raise InputError(
            path,
            "variant table needs a position column (position or nm_start, 1-based on the "
            "target transcript) and a frequency column (frequency or af); header has "
            f"{', '.join(header[:12]) or 'nothing'}",
            "add the columns or give a VCF",
            line=1,
        )
    out: list[Variant] = []
    for lineno, row in rows:
        if row.get("transcript_id") and not same_transcript(row["transcript_id"], transcript_id):
            continue
        if not row.get(pos_col) or not row.get(freq_col):
            continue
        pos = parse_position(path, row[pos_col], length, lineno, pos_col)
        freq = parse_frequency(path, row[freq_col], lineno, freq_col)
        label = (row.get(id_col) or "") if id_col else ""
        out.append(Variant(pos, freq, label or f"pos{row[pos_col]}"))
        if len(out) > MAX_KEPT:
            raise InputError(path, f"more than {MAX_KEPT:,} variants", "keep the variants you need", line=lineno)
    return out


def read_variants(path: str | Path, transcript_id: str, length: int) -> list[Variant]:
    """Variants on the target transcript (``length`` nt): a VCF whose CHROM is the transcript id and whose INFO
    has AF, or a table (see :func:`read_table_variants`). Compressed files are read as they are."""
    path = Path(path)
    return (
        read_vcf_variants(path, transcript_id, length)
        if is_vcf(path)
        else read_table_variants(path, transcript_id, length)
    )


def mirna_seed(path: Path, name: str, sequence: str, lineno: int | None, record: str | None = None) -> str:
    """Nucleotides 2-8 of a mature miRNA (RNA letters), validated."""
    seq = sequence.strip().upper().replace("T", "U")
    if len(seq) < 8 or not RNA_LETTERS.fullmatch(seq):
        raise InputError(
            path,
            f"miRNA {name[:40]!r}: sequence {sequence[:40]!r} is not a mature miRNA (8+ letters A, C, G, U/T)",
            "give the mature sequence 5'->3'",
            line=lineno,
            record=record,
        )
    return seq[1:8]


def read_mirna_seeds(path: str | Path) -> dict[str, list[str]]:
    """miRNA names by seed (nucleotides 2-8, RNA letters): a mature-miRNA FASTA (miRBase ``mature.fa``,
    MirGeneDB), or a table with a name column (name / mirna / id) and a ``seed_2_8`` or a mature ``sequence``
    column."""
    path = Path(path)
    seeds: dict[str, list[str]] = {}
    first = next((t for _, t in text_lines(path) if t.strip()), "")
    if first.startswith(">"):
        for rec in read_fasta(path):
            seeds.setdefault(mirna_seed(path, rec.id, rec.text(), None, rec.id), []).append(rec.id)
            if len(seeds) > MAX_KEPT:
                raise InputError(path, f"more than {MAX_KEPT:,} seeds", "keep the miRNAs you need", record=rec.id)
    else:
        read_mirna_table(path, seeds)
    if not seeds:
        raise InputError(
            path,
            "no miRNA in the file",
            "give a mature-miRNA FASTA or a table with name and seed_2_8 (or sequence) columns",
        )
    return seeds


def read_mirna_table(path: Path, seeds: dict[str, list[str]]) -> None:
    """Rows of a miRNA table into ``seeds``."""
    header, rows = table_rows(path, "miRNA")
    name_col = next((c for c in ("name", "mirna", "id", "mirbase_id") if c in header), None)
    seed_col = next((c for c in ("seed_2_8", "seed") if c in header), None)
    seq_col = next((c for c in ("mature_sequence", "sequence") if c in header), None)
    if name_col is None or (seed_col is None and seq_col is None):
        raise InputError(
            path,
            "miRNA table needs a name column and a seed_2_8 (or mature sequence) column; "
            f"header has {', '.join(header[:12]) or 'nothing'}",
            "add the columns (name, seed_2_8) or give a mature-miRNA FASTA",
            line=1,
        )
    for lineno, row in rows:
        name = row.get(name_col, "")
        if seed_col is not None:
            seed = row.get(seed_col, "").upper().replace("T", "U")
            if len(seed) != 7 or not RNA_LETTERS.fullmatch(seed):
                raise InputError(
                    path,
                    f"seed {row.get(seed_col, '')[:40]!r} of {name[:40]!r} is not 7 letters A, "
                    "C, G, U/T (miRNA nucleotides 2-8)",
                    "fix the seed_2_8 value",
                    line=lineno,
                )
        else:
            seed = mirna_seed(path, name, row.get(seq_col or "", ""), lineno)
        seeds.setdefault(seed, []).append(name)
        if len(seeds) > MAX_KEPT:
            raise InputError(path, f"more than {MAX_KEPT:,} seeds", "keep the miRNAs you need", line=lineno)


@dataclass(frozen=True)
class KnownSirna:
    """One strand of a reference siRNA (e.g. an approved drug)."""

    name: str
    strand: str  #: 'sense' or 'antisense'
    sequence: str  #: RNA letters, 5'->3'
    modified: str  #: modification notation, '' if not given
    line: int


def read_known(path: str | Path) -> list[KnownSirna]:
    """Reference siRNA strands from a table with columns drug (or name), strand (sense / antisense) and sequence
    (RNA or DNA letters, 15-40 nt; a 36-nt GalXC sense strand fits); optional modified_notation."""
    path = Path(path)
    header, rows = table_rows(path, "reference siRNA")
    name_col = next((c for c in ("drug", "name") if c in header), None)
    missing = [c for c in ("strand", "sequence") if c not in header] + ([] if name_col else ["drug"])
    if missing:
        raise InputError(
            path,
            f"reference siRNA table lacks column(s) {', '.join(missing)}",
            "give columns drug, strand, sequence (approved-sirnas.tsv format)",
            line=1,
        )
    out = []
    for lineno, row in rows:
        strand = row.get("strand", "").lower()
        if strand not in ("sense", "antisense"):
            raise InputError(
                path,
                f"strand {row.get('strand', '')[:30]!r} is not sense or antisense",
                "write sense or antisense",
                line=lineno,
            )
        seq = row.get("sequence", "").upper().replace("T", "U")
        if not 15 <= len(seq) <= 40 or not RNA_LETTERS.fullmatch(seq):
            raise InputError(
                path,
                f"sequence {row.get('sequence', '')[:40]!r} is not 15-40 letters A, C, G, U/T",
                "give the strand's bases 5'->3' (notation in modified_notation)",
                line=lineno,
            )
        out.append(KnownSirna(row.get(name_col or "", ""), strand, seq, row.get("modified_notation", ""), lineno))
        if len(out) > MAX_KEPT:
            raise InputError(path, f"more than {MAX_KEPT:,} rows", "keep the siRNAs you need", line=lineno)
    return out
