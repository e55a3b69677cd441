"""A transcriptome with CDS/UTR coordinates: transcript sequences (Ensembl or RefSeq cDNA FASTA) joined with a
GTF or GFF3 annotation of the same release.

The annotation gives, per transcript, its exons and CDS (and stop codon) in genome coordinates; they are mapped
onto the spliced transcript so that each transcript gets a CDS in transcript coordinates, a gene (id and name) and
a biotype. A transcript is matched to its annotation by id, with or without the version suffix; where the
annotated exon length differs from the sequence, or a transcript has no annotation, its CDS is taken from a
``CDS=a-b`` header field or the longest ORF, and says so (``cds_source``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ..errors import InputError
from .inputs import text_lines

MAX_ANNOTATED = 5_000_000  #: transcripts in one annotation file
_GTF_ATTR = re.compile(r'\s*([^\s";]+)\s+(?:"([^"]*)"|([^;\s]+))\s*;?')
_TRANSCRIPT_TYPES = {
    "transcript",
    "mrna",
    "lnc_rna",
    "ncrna",
    "primary_transcript",
    "mirna",
    "snrna",
    "snorna",
    "rrna",
    "trna",
    "pseudogenic_transcript",
    "unconfirmed_transcript",
    "nmd_transcript_variant",
    "processed_transcript",
    "v_gene_segment",
    "c_gene_segment",
    "misc_rna",
    "antisense_rna",
}


@dataclass
class AnnotatedTranscript:
    """One transcript of an annotation: exons and CDS in genome coordinates (1-based inclusive)."""

    id: str
    gene_id: str = ""
    gene_name: str = ""
    biotype: str = ""
    strand: str = ""
    exons: list[tuple[int, int]] = field(default_factory=list)
    coding: list[tuple[int, int]] = field(default_factory=list)  #: CDS and stop codon rows

    @property
    def length(self) -> int:
        return sum(e - s + 1 for s, e in self.exons)

    def transcript_position(self, genome_pos: int) -> int | None:
        """0-based position on the spliced transcript of a genome position, None outside the exons."""
        offset = 0
        for s, e in sorted(self.exons, reverse=self.strand == "-"):
            if s <= genome_pos <= e:
                return offset + (genome_pos - s if self.strand != "-" else e - genome_pos)
            offset += e - s + 1
        return None

    def cds(self) -> tuple[int, int] | None:
        """CDS (stop codon included) in 0-based half-open transcript coordinates, None if not coding or if a CDS
        end lies outside the exons."""
        if not self.coding:
            return None
        lo = min(s for s, _ in self.coding)
        hi = max(e for _, e in self.coding)
        a, b = self.transcript_position(lo), self.transcript_position(hi)
        if a is None or b is None:
            return None
        return (min(a, b), max(a, b) + 1)


def _attributes(path: Path, text: str, gff3: bool, lineno: int) -> dict[str, str]:
    """Attributes of column 9: GFF3 ``key=value;`` or GTF ``key "value";``."""
    out: dict[str, str] = {}
    if gff3:
        for part in text.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = unquote(v.strip())
        return out
    pos = 0
    while pos < len(text):
        m = _GTF_ATTR.match(text, pos)
        if not m:
            if text[pos:].strip(" ;"):
                raise InputError(
                    path,
                    f"cannot read the attributes near {text[pos : pos + 30]!r}",
                    'write GTF attributes as key "value";',
                    line=lineno,
                )
            break
        out.setdefault(m.group(1), m.group(2) if m.group(2) is not None else m.group(3))
        pos = m.end()
    return out


def _rows(path: Path) -> Iterator[tuple[int, list[str], bool]]:
    """Feature rows of a GTF or GFF3 file: (line number, 9 columns, is GFF3)."""
    name = path.name.lower().removesuffix(".gz").removesuffix(".xz").removesuffix(".zst")
    gff3 = name.endswith(("gff3", "gff"))
    for lineno, text in text_lines(path):
        if lineno == 1 and text.startswith("##gff-version"):
            gff3 = True
        if text.startswith("##FASTA"):
            return
        if not text.strip() or text.startswith("#"):
            continue
        cols = text.split("\t")
        if len(cols) != 9:
            raise InputError(
                path,
                f"{len(cols)} tab-separated columns, a GTF/GFF line has 9",
                "give a GTF or GFF3 annotation (tab-separated)",
                line=lineno,
            )
        yield lineno, cols, gff3


def _interval(path: Path, cols: list[str], lineno: int) -> tuple[int, int]:
    try:
        start, end = int(cols[3]), int(cols[4])
    except ValueError:
        raise InputError(
            path,
            f"start {cols[3][:20]!r} / end {cols[4][:20]!r} are not whole numbers",
            "give 1-based start and end in columns 4 and 5",
            line=lineno,
        ) from None
    if not 1 <= start <= end:
        raise InputError(path, f"start {start} after end {end} (or below 1)", "give 1-based start <= end", line=lineno)
    if cols[6] not in ("+", "-", "."):
        raise InputError(path, f"strand {cols[6][:10]!r} is not + or -", "give + or - in column 7", line=lineno)
    return start, end


def _transcript_key(attrs: dict[str, str], gff3: bool) -> str:
    """The transcript id a FASTA header would carry."""
    tid = attrs.get("transcript_id", "")
    if tid and attrs.get("transcript_version") and "." not in tid:
        tid = f"{tid}.{attrs['transcript_version']}"
    if gff3 and not tid:
        tid = re.sub(r"^(rna-|transcript:)", "", attrs.get("ID", ""))
    return tid


def read_annotation(path: str | Path) -> dict[str, AnnotatedTranscript]:
    """Transcripts of a GTF (Ensembl, GENCODE, RefSeq) or GFF3 annotation by transcript id: exons, CDS, gene,
    biotype. Malformed lines raise :class:`InputError`."""
    path = Path(path)
    tx: dict[str, AnnotatedTranscript] = {}
    gff_ids: dict[str, str] = {}  # GFF3 ID -> transcript id
    genes: dict[str, tuple[str, str]] = {}  # GFF3 gene ID -> (gene id, name)
    pending: list[tuple[str, str, tuple[int, int], int]] = []  # GFF3 children seen before their parent
    for lineno, cols, gff3 in _rows(path):
        kind = cols[2].lower()
        if kind not in ("exon", "cds", "stop_codon", "gene") and kind not in _TRANSCRIPT_TYPES:
            continue
        interval = _interval(path, cols, lineno)
        attrs = _attributes(path, cols[8], gff3, lineno)
        if gff3 and kind == "gene":
            genes[attrs.get("ID", "")] = (
                attrs.get("gene_id") or re.sub(r"^(gene-|gene:)", "", attrs.get("ID", "")),
                attrs.get("Name") or attrs.get("gene_name") or attrs.get("gene", ""),
            )
            continue
        if gff3 and kind in _TRANSCRIPT_TYPES:
            key = _transcript_key(attrs, True)
            gff_ids[attrs.get("ID", key)] = key
            t = tx.setdefault(key, AnnotatedTranscript(key))
            t.strand = cols[6]
            t.biotype = attrs.get("biotype") or attrs.get("transcript_biotype") or cols[2]
            gene = genes.get(attrs.get("Parent", ""), ("", ""))
            t.gene_id = gene[0] or attrs.get("Parent", "")
            t.gene_name = attrs.get("gene") or attrs.get("gene_name") or gene[1]
            continue
        if kind == "gene":
            continue
        if gff3:
            for parent in attrs.get("Parent", "").split(","):
                pending.append((parent, kind, interval, lineno))
            continue
        key = _transcript_key(attrs, False)
        if not key:
            raise InputError(
                path, f"{cols[2]} line without transcript_id", "give each exon/CDS a transcript_id", line=lineno
            )
        t = tx.setdefault(
            key,
            AnnotatedTranscript(
                key,
                attrs.get("gene_id", ""),
                attrs.get("gene_name") or attrs.get("gene", ""),
                attrs.get("transcript_biotype") or attrs.get("transcript_type", ""),
                cols[6],
            ),
        )
        (t.exons if kind == "exon" else t.coding).append(interval)
        if len(tx) > MAX_ANNOTATED:
            raise InputError(path, f"more than {MAX_ANNOTATED:,} transcripts", "give one annotation", line=lineno)
    for parent, kind, interval, _lineno in pending:
        owner = gff_ids.get(parent)
        if owner is None:
            continue  # exons of genes without a transcript feature (e.g. some pseudogenes)
        (tx[owner].exons if kind == "exon" else tx[owner].coding).append(interval)
    if not tx:
        raise InputError(path, "no transcript with exons in the annotation", "give a GTF/GFF3 with exon features")
    return tx


def annotation_lookup(annotation: dict[str, AnnotatedTranscript], transcript_id: str) -> AnnotatedTranscript | None:
    """The annotation of a FASTA record id: exact, without the version, or with a version the annotation adds."""
    hit = annotation.get(transcript_id)
    if hit is None:
        hit = annotation.get(transcript_id.split(".")[0])
    return hit


def header_field(description: str, key: str) -> str:
    """A ``key:value`` field of an Ensembl cDNA header (``gene_symbol:TTR``, ``gene:ENSG...``)."""
    m = re.search(rf"(?:^|\s){key}:(\S+)", description)
    return m.group(1) if m else ""
