"""The off-target transcriptome index of `oligolab sirna index`: built once from a cDNA FASTA (+ GTF/GFF3), reused
by every design and score run.

What it holds (one folder, written as one output-folder transaction, with a manifest of SHA-256 sums):

* ``codes.npy`` / ``ends.npy``: every transcript 2-bit encoded (engine codes, a separator after each), read
  memory-mapped, so a run neither parses FASTA nor holds the transcriptome in memory;
* ``transcripts.parquet``: id, gene id and name, biotype, length, CDS (0-based half-open; -1 when none) and where
  the CDS came from (annotation, header, longest ORF);
* ``seeds.npz``: the seed-match table of all 16,384 guide seeds (guide nt 2-8): 3' UTR sites by type
  (8mer, 7mer-m8, 7mer-A1, 6mer), the predicted seed-mediated repression summed over genes, and the genes most
  repressed (see :func:`seed_table`);
* ``index.json``: format version, the source files with size and SHA-256, counts, the seed model's parameters.

Seed model. Each 3' UTR site of a guide seed contributes the mean log2 fold change of its site type (TargetScan
context-score site-type means, Grimson et al. 2007 Mol Cell 27:91, as implemented in miRmap: 8mer -0.31,
7mer-m8 -0.161, 7mer-A1 -0.099, 6mer -0.015; values in ``knowledge/sirna-rules.toml``), sites within 15 nt of the
stop codon excluded (Grimson et al. 2007). A transcript's predicted repression is 1 - 2^(sum of its sites); a
gene's is that of its most repressed transcript; a seed's *burden* is the sum over genes, the expected number of
genes' worth of mRNA knocked down by the seed alone (Anderson et al. 2008 RNA 14:853: seed-complement frequency
in 3' UTRs drives siRNA off-targets).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pandas as pd

from ..errors import InputError
from ..sequences import SEPARATOR, decode, read_fasta
from .transcriptome import (
    AnnotatedTranscript,
    annotation_lookup,
    header_field,
    read_annotation,
)
from .transcripts import CDS_HEADER, gene_symbol, longest_orf_codes

INDEX_FORMAT = 1  #: bumped when the files change meaning
N_SEEDS = 4**7  #: guide seeds (nt 2-8)
SITE_TYPES = ("8mer", "7mer-m8", "7mer-A1", "6mer")
TOP_GENES = 20  #: most repressed genes kept per seed
CHUNK_NT = 8_000_000  #: nt searched per engine call (bounds the engine's per-position arrays)
CDS_SOURCES = ("annotation", "header", "longest ORF", "none")


@dataclass
class TranscriptIndex:
    """A transcriptome ready for off-target search (see the module docstring)."""

    codes: np.ndarray  #: uint8 engine codes, a separator after each transcript
    ends: np.ndarray  #: int64, index of each transcript's separator
    table: pd.DataFrame  #: one row per transcript
    seeds: dict[str, np.ndarray]  #: burden, genes_hit, sites (N_SEEDS, 4), top_tx, top_rep
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], self.ends[:-1] + 1]).astype(np.int64)

    def sequence(self, i: int) -> str:
        """DNA letters of transcript ``i``."""
        return decode(np.asarray(self.codes[int(self.starts[i]) : int(self.ends[i])]))

    def chunks(self, size: int = CHUNK_NT) -> Iterator[tuple[int, int, int, int]]:
        """(first transcript, last transcript + 1, first code, last code + 1) of consecutive transcripts holding
        about ``size`` nt each."""
        starts = self.starts
        t0 = 0
        n = len(self.ends)
        while t0 < n:
            t1 = int(np.searchsorted(self.ends, starts[t0] + size, side="right"))
            t1 = max(t1, t0 + 1)
            yield t0, min(t1, n), int(starts[t0]), int(self.ends[min(t1, n) - 1]) + 1
            t0 = t1


# ------------------------------------------------------------------------------------------------ seeds


@nb.njit(cache=True, nogil=True)
def _utr_sites(
    codes: np.ndarray,
    lo: int,
    hi: int,
    t: int,
    weights: np.ndarray,
    w: np.ndarray,
    mark: np.ndarray,
    touched: np.ndarray,
    sites: np.ndarray,
) -> int:
    """Add the log2 weights of every seed site of one 3' UTR [lo, hi) to ``w``; returns how many seeds were
    touched (listed in ``touched``). Every 6-mer at j (the target of seed nt 2-7) is a site of the four seeds
    sharing it: of the seed whose nt 8 target is the base before it, an 8mer (A after) or 7mer-m8; of the other
    three, a 7mer-A1 (A after) or 6mer."""
    n_t = 0
    for j in range(lo, hi - 5):
        x = 0
        ok = True
        for q in range(6):
            c = codes[j + q]
            if c > 3:
                ok = False
                break
            x = x * 4 + c
        if not ok:
            continue
        b = codes[j - 1]
        a = codes[j + 6] if j + 6 < hi else 5
        for s0 in range(4):
            seed = s0 * 4096 + x
            if s0 == b:
                typ = 0 if a == 0 else 1
            else:
                typ = 2 if a == 0 else 3
            if mark[seed] != t:
                mark[seed] = t
                touched[n_t] = seed
                n_t += 1
            w[seed] += weights[typ]
            sites[seed, typ] += 1
    return n_t


@nb.njit(cache=True, nogil=True)
def _keep_top(top_rep: np.ndarray, top_tx: np.ndarray, top_min: np.ndarray, seed: int, rep: float, tx: int) -> None:
    """Keep the ``k`` most repressed genes of a seed (an empty slot first, else replace the least repressed)."""
    k = top_rep.shape[1]
    if top_tx[seed, k - 1] >= 0 and rep <= top_min[seed]:
        return
    slot = -1
    for r in range(k):
        if top_tx[seed, r] < 0:
            slot = r
            break
    if slot < 0:
        slot = 0
        for r in range(1, k):
            if top_rep[seed, r] < top_rep[seed, slot]:
                slot = r
    top_rep[seed, slot] = rep
    top_tx[seed, slot] = tx
    m = top_rep[seed, 0]
    for r in range(1, k):
        if top_tx[seed, r] >= 0 and top_rep[seed, r] < m:
            m = top_rep[seed, r]
    top_min[seed] = m


@nb.njit(cache=True, nogil=True)
def _seed_table(
    codes: np.ndarray,
    utr_lo: np.ndarray,
    utr_hi: np.ndarray,
    order: np.ndarray,
    group_ends: np.ndarray,
    weights: np.ndarray,
    min_dist: int,
    k_top: int,
) -> tuple:
    """Seed-match table over the 3' UTRs [utr_lo, utr_hi) of the transcripts in ``order`` (grouped by gene,
    ``group_ends`` = end of each group in ``order``): a transcript's repression is 1 - 2^(sum of its site
    weights), a gene's that of its most repressed transcript; per seed, the sum over genes, the genes hit, the
    sites by type and the most repressed genes."""
    n_seeds = 16384
    w = np.zeros(n_seeds)
    mark = np.full(n_seeds, -1, np.int64)
    touched = np.empty(n_seeds, np.int64)
    best = np.zeros(n_seeds)
    best_tx = np.full(n_seeds, -1, np.int64)
    gmark = np.full(n_seeds, -1, np.int64)
    gtouched = np.empty(n_seeds, np.int64)
    burden = np.zeros(n_seeds)
    genes_hit = np.zeros(n_seeds, np.int64)
    sites = np.zeros((n_seeds, 4), np.int64)
    top_rep = np.zeros((n_seeds, k_top))
    top_tx = np.full((n_seeds, k_top), -1, np.int64)
    top_min = np.zeros(n_seeds)
    g0 = 0
    for g in range(group_ends.shape[0]):
        n_g = 0
        for oi in range(g0, group_ends[g]):
            t = order[oi]
            n_t = _utr_sites(codes, utr_lo[t] + min_dist + 1, utr_hi[t], t, weights, w, mark, touched, sites)
            for i in range(n_t):
                seed = touched[i]
                rep = 1.0 - 2.0 ** w[seed]
                w[seed] = 0.0
                mark[seed] = -1
                if gmark[seed] != g:
                    gmark[seed] = g
                    gtouched[n_g] = seed
                    n_g += 1
                    best[seed] = -1.0
                if rep > best[seed]:
                    best[seed] = rep
                    best_tx[seed] = t
        for i in range(n_g):
            seed = gtouched[i]
            burden[seed] += best[seed]
            genes_hit[seed] += 1
            _keep_top(top_rep, top_tx, top_min, seed, best[seed], best_tx[seed])
            gmark[seed] = -1
        g0 = group_ends[g]
    return burden, genes_hit, sites, top_rep, top_tx


def seed_table(
    codes: np.ndarray, table: pd.DataFrame, starts: np.ndarray, weights: dict[str, float], min_dist: int
) -> dict[str, np.ndarray]:
    """The seed-match table of the transcripts with a CDS (their 3' UTR = after the CDS), genes grouped by gene
    id (a transcript without one is its own gene); top genes sorted by repression."""
    has_utr = (table["cds_end"].to_numpy() >= 0) & (table["cds_end"].to_numpy() < table["length"].to_numpy())
    lo = np.where(has_utr, starts + table["cds_end"].to_numpy(), 0).astype(np.int64)
    hi = np.where(has_utr, starts + table["length"].to_numpy(), 0).astype(np.int64)
    gene_key = np.where(
        table["gene_id"].to_numpy(dtype=object) != "",
        table["gene_id"].to_numpy(dtype=object),
        table["id"].to_numpy(dtype=object),
    ).astype(str)
    order = np.lexsort((np.arange(len(table)), gene_key)).astype(np.int64)
    order = order[has_utr[order]]
    keys = gene_key[order]
    group_ends = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True]) + 1 if len(order) else np.zeros(0, np.int64)
    w = np.array([weights[t] for t in SITE_TYPES], dtype=np.float64)
    burden, genes_hit, sites, top_rep, top_tx = _seed_table(
        np.asarray(codes), lo, hi, order, group_ends.astype(np.int64), w, int(min_dist), TOP_GENES
    )
    rank = np.argsort(-top_rep, axis=1, kind="stable")
    return {
        "burden": burden,
        "genes_hit": genes_hit,
        "sites": sites,
        "top_rep": np.take_along_axis(top_rep, rank, 1).astype(np.float32),
        "top_tx": np.take_along_axis(top_tx, rank, 1).astype(np.int32),
    }


# ------------------------------------------------------------------------------------------------ build


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_stop(codon: np.ndarray) -> bool:
    """TAA, TAG or TGA in engine codes."""
    return codon[0] == 3 and ((codon[1] == 0 and codon[2] in (0, 2)) or (codon[1] == 2 and codon[2] == 0))


def _cds_of(
    rec_id: str,
    description: str,
    codes: np.ndarray,
    ann: AnnotatedTranscript | None,
    header_cds: tuple[int, int] | None,
) -> tuple[tuple[int, int] | None, str]:
    """CDS and its source: the annotation (when its exon length matches the sequence), a header field, or the
    longest ORF."""
    if ann is not None and ann.length == len(codes):
        cds = ann.cds()
        if cds and cds[1] + 3 <= len(codes) and _is_stop(codes[cds[1] : cds[1] + 3]):
            cds = (cds[0], cds[1] + 3)  # GTF CDS rows leave the stop codon out (it has its own feature)
        return cds, "annotation" if cds else "none"
    if header_cds is not None:
        return header_cds, "header"
    s, e = longest_orf_codes(codes)
    return ((int(s), int(e)), "longest ORF") if s >= 0 else (None, "none")


def build_index(
    fasta_paths: list[str | Path], annotation_path: str | Path | None, rules: dict[str, Any], say: Any = None
) -> TranscriptIndex:
    """Index transcripts (FASTA, any compression) joined with an optional GTF/GFF3 annotation."""
    say = say or (lambda msg: None)
    annotation = read_annotation(annotation_path) if annotation_path else {}
    parts: list[np.ndarray] = []
    rows = []
    length_mismatch = 0
    for path in fasta_paths:
        say(f"reading {Path(path).name}")
        for rec in read_fasta(path):
            codes = rec.codes()
            ann = annotation_lookup(annotation, rec.id) if annotation else None
            if ann is not None and ann.length != len(codes):
                length_mismatch += 1
            m = CDS_HEADER.search(rec.description) or CDS_HEADER.search(rec.id)
            header_cds = (int(m.group(1)) - 1, int(m.group(2))) if m else None
            cds, source = _cds_of(rec.id, rec.description, codes, ann, header_cds)
            gene_name = (
                (ann.gene_name if ann else "")
                or header_field(rec.description, "gene_symbol")
                or gene_symbol(rec.description)
                or ""
            )
            gene_id = (ann.gene_id if ann else "") or header_field(rec.description, "gene") or gene_name
            rows.append(
                (
                    rec.id,
                    gene_id.split(".")[0] if gene_id.startswith("ENSG") else gene_id,
                    gene_name,
                    (ann.biotype if ann else "") or header_field(rec.description, "transcript_biotype"),
                    len(codes),
                    cds[0] if cds else -1,
                    cds[1] if cds else -1,
                    source,
                    rec.description[:200],
                )
            )
            parts.append(codes)
    if not rows:
        raise InputError(fasta_paths[0] if fasta_paths else None, "no transcript", "give a cDNA FASTA")
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    ends = np.cumsum(lengths + 1) - 1
    codes = np.empty(int(ends[-1]) + 1, dtype=np.uint8)
    for p, e in zip(parts, ends):
        codes[e - len(p) : e] = p
    codes[ends] = SEPARATOR
    del parts
    table = pd.DataFrame(
        rows,
        columns=["id", "gene_id", "gene", "biotype", "length", "cds_start", "cds_end", "cds_source", "description"],
    )
    say("seed-match table of the 3' UTRs")
    weights = {k: float(v) for k, v in rules["seed_sites"]["log2_fold_change"].items()}
    min_dist = int(rules["seed_sites"]["min_distance_from_stop_nt"])
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    seeds = seed_table(codes, table, starts, weights, min_dist)
    meta = index_meta(fasta_paths, annotation_path, table, seeds, weights, min_dist, length_mismatch, annotation)
    return TranscriptIndex(codes, ends.astype(np.int64), table, seeds, meta)


def index_meta(
    fasta_paths: list[str | Path],
    annotation_path: str | Path | None,
    table: pd.DataFrame,
    seeds: dict[str, np.ndarray],
    weights: dict[str, float],
    min_dist: int,
    length_mismatch: int,
    annotation: dict[str, AnnotatedTranscript],
) -> dict[str, Any]:
    """What the index was built from (names, sizes, SHA-256) and what it holds."""
    from .. import __version__

    def source(p: str | Path) -> dict[str, Any]:
        p = Path(p)
        return {"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}

    burden = seeds["burden"]
    return {
        "format": INDEX_FORMAT,
        "oligolab": __version__,
        "transcripts_files": [source(p) for p in fasta_paths],
        "annotation_file": source(annotation_path) if annotation_path else None,
        "transcripts": len(table),
        "nucleotides": int(table["length"].sum()),
        "genes": int(table["gene_id"].where(table["gene_id"] != "", table["id"]).nunique()),
        "cds_source": {k: int((table["cds_source"] == k).sum()) for k in CDS_SOURCES},
        "annotated_transcripts": len(annotation),
        "annotation_length_mismatches": length_mismatch,
        "seed_model": {
            "log2_fold_change": weights,
            "min_distance_from_stop_nt": min_dist,
            "top_genes_per_seed": TOP_GENES,
            "mean_burden": float(np.mean(burden)) if burden.size else 0.0,
            "source": "TargetScan context-score site-type means (Grimson et al. 2007), via miRmap",
        },
    }


# ------------------------------------------------------------------------------------------- save / load

INDEX_FILES = ("codes.npy", "ends.npy", "transcripts.parquet", "seeds.npz", "index.json")


def save_index(index: TranscriptIndex, folder: Path) -> None:
    """Write the index files into ``folder`` (the caller's output-folder transaction)."""
    from ..reports import atomic_path, write_json, write_table

    for name, arr in (("codes.npy", index.codes), ("ends.npy", index.ends)):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(arr), allow_pickle=False)
    write_table(index.table, folder / "transcripts.parquet")
    with atomic_path(folder / "seeds.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **index.seeds)  # type: ignore[arg-type]  # numpy's stub: **arrays could reach allow_pickle
    write_json(folder / "index.json", index.meta)


def load_index(folder: str | Path) -> TranscriptIndex:
    """An index written by `oligolab sirna index` (codes memory-mapped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not an index folder", "build one with `oligolab sirna index`")
    missing = [n for n in INDEX_FILES if not (folder / n).is_file()]
    if missing:
        raise InputError(folder, f"index lacks {', '.join(missing)}", "rebuild it with `oligolab sirna index`")
    try:
        meta = json.loads((folder / "index.json").read_text())
        if meta.get("format") != INDEX_FORMAT:
            raise InputError(
                folder,
                f"index format {meta.get('format')} (this oligolab reads {INDEX_FORMAT})",
                "rebuild it with `oligolab sirna index`",
            )
        codes = np.load(folder / "codes.npy", mmap_mode="r", allow_pickle=False)
        ends = np.load(folder / "ends.npy", allow_pickle=False)
        table = pd.read_parquet(folder / "transcripts.parquet")
        with np.load(folder / "seeds.npz", allow_pickle=False) as z:
            seeds = {k: z[k] for k in z.files}
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(folder, f"index files unreadable ({exc})", "rebuild it with `oligolab sirna index`") from None
    if codes.dtype != np.uint8 or len(ends) != len(table) or (len(ends) and ends[-1] + 1 != len(codes)):
        raise InputError(folder, "index files do not agree with each other", "rebuild it with `oligolab sirna index`")
    return TranscriptIndex(codes, ends, table, seeds, meta)


def index_from_fasta(paths: list[str | Path], rules: dict[str, Any]) -> TranscriptIndex:
    """An in-memory index of off-target FASTA files given directly (``--off-target``; CDS from headers or the
    longest ORF)."""
    return build_index(paths, None, rules)
