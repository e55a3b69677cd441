"""`oligolab sirna`: siRNA duplexes against a disease transcript, ranked the way a drug team would rank them.

Every 19-nt site of the target transcript is a candidate. Each is scored for knock-down by the efficacy model
(``oligolab.models.sirna_efficacy``, trained on measured data), checked for off-targets (near-perfect matches of
the guide and the passenger strand in an off-target transcript set, found by the project's seed-index engine,
and guide seed matches in 3' UTRs), SNPs, conservation in ortholog transcripts, transcript-variant coverage and
sequence/safety rules (``knowledge/sirna-rules.toml``), and written out with a chemical modification pattern
(``knowledge/sirna-modifications.toml``).

Conventions: the *site* is the 19-nt target on the mRNA (sense, 5'->3'); the *guide* (antisense) is its reverse
complement, guide position 1 pairing with the site's last base; the seed is guide positions 2-8, whose target is
site positions 12-18.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numba as nb
import numpy as np

from .engine import PatternSet, SeedEngine, pack_batch
from .errors import InputError
from .knowledge import KNOWLEDGE_DIR
from .sequences import _iter_lines  # noqa: PLC2701  (variant tables share the reader's decompression)
from .sequences import encode, is_genbank, kmer_code, read_fasta, read_genbank, reverse_complement

SITE = 19  #: nt, core duplex length the efficacy model describes
SEED = (2, 8)  #: guide positions of the seed
FLANK = 19  #: nt of context on each side of a site given to the efficacy model


# ------------------------------------------------------------------------------------------- transcripts

@dataclass
class Transcript:
    id: str
    description: str
    seq: str  #: DNA letters, upper case
    cds: tuple[int, int] | None  #: 0-based half-open CDS on the transcript
    cds_source: str  #: 'annotation', 'header', 'longest ORF' or ''

    @property
    def gene(self) -> str | None:
        return gene_symbol(self.description)


def gene_symbol(description: str) -> str | None:
    """Gene symbol from a RefSeq definition line ('... transthyretin (TTR), mRNA') or a GENCODE header."""
    m = re.search(r"\(([A-Za-z0-9\-]+)\)(?:,| transcript| mRNA|;|$)", description)
    if m:
        return m.group(1)
    m = re.search(r"gene(?:_symbol)?[=:]([A-Za-z0-9\-]+)", description)
    return m.group(1) if m else None


_CDS_HEADER = re.compile(r"CDS[=:](\d+)-(\d+)")


@nb.njit(cache=True, nogil=True)
def _longest_orf(codes):
    """(start, end) of the longest ATG..stop reading frame in engine codes (A0 C1 G2 T3), or (-1, -1)."""
    best_s, best_e = -1, -1
    n = codes.shape[0]
    for frame in range(3):
        start = -1
        for i in range(frame, n - 2, 3):
            a, b, c = codes[i], codes[i + 1], codes[i + 2]
            if start < 0 and a == 0 and b == 3 and c == 2:
                start = i
            elif start >= 0 and a == 3 and ((b == 0 and (c == 0 or c == 2)) or (b == 2 and c == 0)):
                if best_s < 0 or i + 3 - start > best_e - best_s:
                    best_s, best_e = start, i + 3
                start = -1
    return best_s, best_e


def longest_orf(seq: str) -> tuple[int, int] | None:
    """Longest ATG..stop open reading frame on the given strand (0-based half-open, stop included)."""
    s, e = _longest_orf(encode(seq))
    return (int(s), int(e)) if s >= 0 else None


@nb.njit(cache=True, nogil=True)
def _count_kmers_per_region(codes, starts, ends, k, counts, last, base_tag):
    """For each region [starts[r], ends[r]) count every k-mer once (``last`` remembers the region, tagged
    ``base_tag + r + 1``, that last counted a k-mer); k-mers holding a non-ACGT code are skipped."""
    mask = (1 << (2 * k)) - 1
    for r in range(starts.shape[0]):
        v = 0
        valid = 0
        tag = base_tag + r + 1
        for i in range(starts[r], ends[r]):
            c = codes[i]
            if c > 3:
                valid = 0
                v = 0
                continue
            v = ((v << 2) | c) & mask
            valid += 1
            if valid >= k and last[v] != tag:
                last[v] = tag
                counts[v] += 1


def read_transcripts(path: str | Path, *, find_cds: bool = True) -> list[Transcript]:
    """Transcripts from FASTA or GenBank. The CDS comes from GenBank features, a 'CDS=a-b' / 'CDS:a-b' field
    in a FASTA header (1-based inclusive), or else the longest ORF (said so in ``cds_source``)."""
    path = Path(path)
    out = []
    if is_genbank(path):
        for rec in read_genbank(path):
            cds = next(((f.start, f.end) for f in rec.features if f.kind == "CDS"), None)
            out.append(Transcript(rec.id, rec.description, rec.seq.decode().replace("U", "T"), cds,
                                  "annotation" if cds else ""))
    else:
        for rec in read_fasta(path):
            seq = rec.text().replace("U", "T")
            m = _CDS_HEADER.search(rec.description) or _CDS_HEADER.search(rec.id)
            if m:
                cds, src = (int(m.group(1)) - 1, int(m.group(2))), "header"
            elif find_cds:
                cds, src = longest_orf(seq), "longest ORF"
            else:
                cds, src = None, ""
            out.append(Transcript(rec.id, rec.description, seq, cds, src))
    return out


# ---------------------------------------------------------------------------------------- knowledge data

@lru_cache(maxsize=4)
def load_sirna_rules(path: str | None = None) -> dict:
    p = Path(path) if path else KNOWLEDGE_DIR / "sirna-rules.toml"
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(p, "file not found", "check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(p, f"not valid TOML ({exc})", "fix the TOML syntax") from None


@lru_cache(maxsize=4)
def load_patterns(path: str | None = None) -> dict[str, dict]:
    p = Path(path) if path else KNOWLEDGE_DIR / "sirna-modifications.toml"
    with open(p, "rb") as fh:
        data = tomllib.load(fh)
    return {d["name"]: d for d in data.get("pattern", [])}


# ------------------------------------------------------------------------------------ strands and notation

@dataclass
class Duplex:
    sense: str  #: RNA, 5'->3' (dT written as 'T' residues: see ``sense_tokens``)
    guide: str
    sense_tokens: list[str]  #: one token per residue: 'A' (RNA) or 'dT'
    guide_tokens: list[str]


def duplex_strands(mrna: str, pos: int, layout: str, overhang: str = "dTdT") -> Duplex | None:
    """Sense and guide strands of the duplex whose 19-nt core targets mrna[pos:pos+19].

    '19+2': 19-bp duplex, 2-nt 3' overhang on each strand ('dTdT' or 'UU'). '21/23': sense 21 nt =
    mrna[pos-2:pos+19], guide 23 nt = reverse complement of mrna[pos-4:pos+19] (2-nt guide 3' overhang that pairs
    with the target, blunt at the guide 5' end), the layout of the GalNAc-conjugated drugs.
    """
    rna = mrna.replace("T", "U")
    core = rna[pos:pos + SITE]
    if layout == "19+2":
        tail = ["dT", "dT"] if overhang == "dTdT" else list(overhang.replace("T", "U"))
        sense = list(core) + tail
        guide = list(_rc_rna(core)) + tail
    elif layout == "21/23":
        if pos < 4:
            return None
        sense = list(rna[pos - 2:pos + SITE])
        guide = list(_rc_rna(rna[pos - 4:pos + SITE]))
    else:
        raise InputError(None, f"unknown layout {layout!r}", "use 19+2 or 21/23")
    return Duplex("".join(t if t != "dT" else "T" for t in sense), "".join(t if t != "dT" else "T" for t in guide),
                  sense, guide)


def _rc_rna(seq: str) -> str:
    return reverse_complement(seq.replace("U", "T")).replace("T", "U")


def modified_notation(tokens: list[str], strand: str, pattern: dict) -> str:
    """Write one strand in the modification notation of ``pattern`` (see sirna-modifications.toml)."""
    n = len(tokens)
    default = pattern.get("default_sugar", "ome")
    fluoro = set(pattern.get(f"{strand}_fluoro", []))
    ome = set(pattern.get(f"{strand}_ome", []))
    ps_after = set(pattern.get(f"{strand}_ps_after", []))
    parity = pattern.get("guide_fluoro_parity", "odd")
    out = []
    for i, tok in enumerate(tokens, 1):
        if tok == "dT":
            res = "dT"
        else:
            base = tok
            if pattern.get("alternate"):
                odd = i % 2 == 1
                f_here = odd if (strand == "guide") == (parity == "odd") else not odd
                res = base + "f" if f_here else base.lower()
            elif i in fluoro:
                res = base + "f"
            elif i in ome:
                res = base.lower()
            else:
                res = base.lower() if default == "ome" else base
        out.append(res)
        if i in ps_after and i < n:
            out.append("s")
    text = "".join(out)
    if strand == "sense" and pattern.get("sense_3prime"):
        text += pattern["sense_3prime"]
    return text


# ---------------------------------------------------------------------------------------- site figures

def gc_percent(seq: str) -> float:
    return 100.0 * sum(ch in "GC" for ch in seq) / max(1, len(seq))


def longest_run(seq: str) -> int:
    best = run = 0
    prev = ""
    for ch in seq:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


@lru_cache(maxsize=65536)
def seed_duplex_dg(seed_rna: str) -> float:
    """ΔG (kcal/mol, 37 °C) of the guide seed (7 nt) paired with its complement (ViennaRNA duplexfold)."""
    import RNA

    return round(RNA.duplexfold(seed_rna, _rc_rna(seed_rna)).energy, 2)


# ----------------------------------------------------------------------------------------- the design

@dataclass
class SirnaOptions:
    target_id: str | None = None
    layout: str = ""  #: '' = the modification pattern's layout
    overhang: str = "dTdT"
    pattern: str = "galnac-full"
    top: int = 20
    avoid: list[tuple[int, int]] = field(default_factory=list)  #: 1-based inclusive ranges not to target
    rules_path: str | None = None
    threads: int | None = None


@dataclass
class SirnaInputs:
    target: str | Path
    off_targets: list[str | Path] = field(default_factory=list)
    orthologs: list[str | Path] = field(default_factory=list)
    variants: str | Path | None = None
    mirnas: str | Path | None = None
    known: str | Path | None = None  #: table of reference siRNAs (e.g. approved drugs) to locate in the ranking


def read_variants(path: str | Path, transcript_id: str) -> list[tuple[int, float, str]]:
    """Variants on the target transcript: (1-based position, allele frequency, label). A TSV with a position
    column (position / transcript_position / nm_start, 1-based on the target transcript), a frequency column
    (frequency / af) and optionally id / rsids and transcript_id; or a VCF whose CHROM is the transcript id and
    whose INFO has AF. Compressed files are read as they are."""
    path = Path(path)
    out = []
    lines = [ln.decode("utf-8", errors="replace").rstrip("\n") for ln in _iter_lines(path)]
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


@dataclass
class SirnaResult:
    target: Transcript
    variants_of_target: list[Transcript]
    table: "object"  #: pandas DataFrame, one row per candidate, ranked
    offtarget_hits: "object"  #: DataFrame of near-perfect off-target matches
    info: dict


def _excluded_factory(target: Transcript, variants: list[Transcript]) -> Callable[[Transcript], bool]:
    ids = {target.id, *(v.id for v in variants)}
    gene = target.gene

    def excluded(t: Transcript) -> bool:
        return t.id in ids or (gene is not None and t.gene == gene)

    return excluded


def design_sirnas(inputs: SirnaInputs, options: SirnaOptions = SirnaOptions(),
                  progress: Callable[[str], None] | None = None) -> SirnaResult:
    """Every candidate of the target transcript, scored, checked and ranked."""
    import pandas as pd

    from .models.sirna_efficacy import predict_sirna_efficacy, site_accessibility

    say = progress or (lambda msg: None)
    rules = load_sirna_rules(options.rules_path)
    patterns = load_patterns()
    if options.pattern not in patterns:
        raise InputError(None, f"unknown modification pattern {options.pattern!r}",
                         f"use one of {', '.join(patterns)}")
    pattern = patterns[options.pattern]
    layout = options.layout or pattern.get("layout", "19+2")
    records = read_transcripts(inputs.target)
    if options.target_id:
        matches = [t for t in records if t.id == options.target_id or t.id.split(".")[0] == options.target_id]
        if not matches:
            raise InputError(inputs.target, f"no record '{options.target_id}'",
                             f"choose one of {', '.join(t.id for t in records[:10])}")
        target = matches[0]
    else:
        target = records[0]
    if len(target.seq) < SITE + 2 * 4:
        raise InputError(inputs.target, f"transcript {target.id} has {len(target.seq)} nt", "give a full mRNA",
                         record=target.id)
    gene = target.gene
    variants = [t for t in records if t.id != target.id and gene is not None and t.gene == gene]
    seq = target.seq
    n = len(seq) - SITE + 1
    positions = np.arange(n)
    keep = np.ones(n, dtype=bool)
    for lo, hi in options.avoid:  # 1-based inclusive ranges
        keep &= ~((positions + SITE > lo - 1) & (positions < hi))
    keep &= np.array(["N" not in seq[p:p + SITE] and set(seq[p:p + SITE]) <= set("ACGT") for p in positions])
    if layout == "21/23":
        keep &= positions >= 4
    positions = positions[keep]
    if len(positions) == 0:
        raise InputError(inputs.target, "no candidate site left", "narrow the --avoid ranges", record=target.id)
    sites = [seq[p:p + SITE] for p in positions]
    say(f"{len(sites)} candidate sites on {target.id}")

    # efficacy (model) and accessibility (the transcript is folded once with a sliding window)
    guides19 = [_rc_rna(s.replace("T", "U")) for s in sites]
    acc = np.asarray(site_accessibility(seq))[positions]
    padded = "N" * FLANK + seq + "N" * FLANK
    contexts = [padded[p:p + SITE + 2 * FLANK] for p in positions]
    eff = np.asarray(predict_sirna_efficacy(guides19, contexts, accessibility=acc))

    # One pass over the off-target transcripts: near-perfect matches of every site (guide off-targets: the
    # transcript holds the site; passenger off-targets: it holds the guide's sequence), found by the seed-index
    # engine, and the 7-mers present in each 3' UTR (for seed matches).
    excluded = _excluded_factory(target, variants)
    k_off = int(rules["offtarget"]["max_mismatches"])
    ps = PatternSet.from_oligos([f"s{p + 1}" for p in positions], sites)
    guide_mm = np.zeros((len(sites), k_off + 1), dtype=np.int64)
    pass_mm = np.zeros((len(sites), k_off + 1), dtype=np.int64)
    utr_counts = np.zeros(4 ** 7, dtype=np.int64)
    utr_last = np.zeros(4 ** 7, dtype=np.int64)
    hit_rows = []
    examined = guessed = 0
    if inputs.off_targets:
        say("searching near-perfect off-targets and 3' UTR seed matches")
        engine = SeedEngine(ps, k_off, threads=options.threads)
        try:
            for path in inputs.off_targets:
                batch: list[Transcript] = []
                size = 0

                def flush(batch=batch):
                    encoded = [encode(t.seq) for t in batch]
                    codes, ends = pack_batch(encoded)
                    starts = np.concatenate([[0], ends[:-1] + 1])
                    utr_lo = np.empty(len(batch), dtype=np.int64)
                    for i, (t, c) in enumerate(zip(batch, encoded)):
                        cds_end = t.cds[1] if t.cds else int(_longest_orf(c)[1])
                        utr_lo[i] = starts[i] + max(cds_end, 0)
                    _count_kmers_per_region(codes, utr_lo, ends, 7, utr_counts, utr_last, examined)
                    base = engine.n_genomes
                    hits = engine.search_codes(codes, ends)
                    s = engine.sites
                    for g, p, sid in zip(hits.genome.tolist(), hits.pos.tolist(), hits.site.tolist()):
                        t = batch[g - base]
                        pat = int(s.pattern[sid])
                        ci, strand = pat // 2, pat % 2
                        mm = int(s.mismatches[sid] + s.unknown[sid])
                        hit_rows.append((ci, "guide" if strand == 0 else "passenger", t.id, t.description, p + 1, mm))

                for t in read_transcripts(path, find_cds=False):
                    if excluded(t):
                        continue
                    batch.append(t)
                    guessed += t.cds is None
                    size += len(t.seq)
                    if size > 8_000_000:
                        flush()
                        examined += len(batch)
                        batch.clear()
                        size = 0
                if batch:
                    flush()
                    examined += len(batch)
        finally:
            engine.close()
    seen = set()
    for ci, strand, tid, _, _, mm in hit_rows:
        key = (ci, strand, tid, mm)
        if key in seen:
            continue
        seen.add(key)
        (guide_mm if strand == "guide" else pass_mm)[ci, mm] += 1
    hits_df = pd.DataFrame(hit_rows, columns=["candidate", "strand", "transcript", "description", "position",
                                              "mismatches"])
    if len(hits_df):
        hits_df["site_position"] = positions[hits_df["candidate"].to_numpy()] + 1
        hits_df = hits_df.sort_values(["site_position", "strand", "mismatches", "transcript"], kind="stable")

    # seed matches: off-target transcripts whose 3' UTR holds the target of the guide seed (site nt 12-18) or of
    # the passenger seed
    guide_seed = np.array([utr_counts[kmer_code(s[11:18])] for s in sites], dtype=np.int64)
    pass_seed = np.array([utr_counts[kmer_code(reverse_complement(s[1:8]))] for s in sites], dtype=np.int64)
    utr_note = (f"{guessed} of {examined} off-target transcripts had no CDS annotation: their 3' UTR is taken "
                "after the longest ORF" if guessed else "")
    seed_dg = np.array([seed_duplex_dg(g[1:8]) for g in guides19])

    # miRNA-like seeds
    mirna_seeds: dict[str, list[str]] = {}
    if inputs.mirnas:
        import csv

        with open(inputs.mirnas) as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                mirna_seeds.setdefault(row["seed_2_8"].upper().replace("T", "U"), []).append(row["name"])
    mirna = [",".join(mirna_seeds.get(g[1:8], [])[:3]) for g in guides19]

    # SNPs in the site
    snp_min = float(rules["snp"]["min_frequency"])
    var_list = read_variants(inputs.variants, target.id) if inputs.variants else []
    snp_flags, snp_in_seed = [], []
    for p in positions:
        inside = [(pos, f, lab) for pos, f, lab in var_list if p + 1 <= pos <= p + SITE and f >= snp_min]
        snp_flags.append(",".join(f"{lab}({f:g})" for pos, f, lab in inside))
        snp_in_seed.append(any(p + 12 <= pos <= p + 18 for pos, _, _ in inside))

    # transcript variants of the target gene: does each site occur in all of them?
    variant_hits = np.array([sum(s in v.seq for v in variants) for s in sites], dtype=np.int64)

    # orthologs: fewest mismatches of each site in each ortholog transcript ('>4' when none within 4)
    ortholog_cols: dict[str, np.ndarray] = {}
    for path in inputs.orthologs:
        for t in read_transcripts(path, find_cds=False):
            hits, st = _search_small(ps, [encode(t.seq)], 4)
            best = np.full(len(sites), 99, dtype=np.int64)
            if len(hits):
                cand = st.pattern[hits.site] // 2
                mm = (st.mismatches + st.unknown)[hits.site]
                strand = st.pattern[hits.site] % 2
                sel = strand == 0  # the ortholog mRNA must hold the site in sense
                np.minimum.at(best, cand[sel], mm[sel])
            label = f"mm_{_species(t.description) or 'ortholog'}_{t.id}"
            ortholog_cols[label] = np.where(best <= 4, best.astype(str), ">4").astype(object)

    # sequence rules
    gc = np.array([gc_percent(s) for s in sites])
    runs = np.array([longest_run(s) for s in sites])
    motifs = rules["immune"]["motifs"]
    immune = []
    for p, g in zip(positions, guides19):
        sense = seq[p:p + SITE].replace("T", "U")
        found = [m["motif"] for m in motifs if m["motif"] in g or m["motif"] in sense]
        immune.append(",".join(found))

    # strands and modification notation
    duplexes = [duplex_strands(seq, int(p), layout, options.overhang if layout == "19+2" else "")
                for p in positions]
    sense_mod = [modified_notation(d.sense_tokens, "sense", pattern) for d in duplexes]
    guide_mod = [modified_notation(d.guide_tokens, "guide", pattern) for d in duplexes]

    # ranking
    rk = rules["ranking"]
    hard_k = int(rk["hard_fail_offtarget_max_mismatches"])
    hard = (guide_mm[:, : hard_k + 1].sum(1) + pass_mm[:, : hard_k + 1].sum(1)) > 0
    gc_out = (gc < rules["gc"]["min_percent"]) | (gc > rules["gc"]["max_percent"])
    run_bad = runs >= int(rules["runs"]["max_same_base"])
    penalty = (rk["penalty_per_seed_utr3_match"] * guide_seed
               + rk["penalty_offtarget_2mm"] * (guide_mm[:, 2:].sum(1) + pass_mm[:, 2:].sum(1) if k_off >= 2 else 0)
               + rk["penalty_immune_motif"] * np.array([bool(x) for x in immune])
               + rk["penalty_gc_outside"] * gc_out + rk["penalty_run"] * run_bad
               + rk["penalty_snp"] * np.array([bool(x) for x in snp_flags])
               + rk["penalty_mirna_seed"] * np.array([bool(x) for x in mirna])
               + rk["penalty_missing_variant"] * (len(variants) - variant_hits))
    score = eff - penalty
    region = np.array([_region(target, int(p)) for p in positions], dtype=object)
    flags = []
    for i in range(len(positions)):
        f = []
        if hard[i]:
            f.append(f"off-target <= {hard_k} mm")
        if guide_mm[i, 2:].sum() if k_off >= 2 else 0:
            f.append(f"{int(guide_mm[i, 2:].sum())} off-target 2-mm (guide)")
        if pass_mm[i, 2:].sum() if k_off >= 2 else 0:
            f.append(f"{int(pass_mm[i, 2:].sum())} off-target 2-mm (passenger)")
        if immune[i]:
            f.append(f"immune motif {immune[i]}")
        if gc_out[i]:
            f.append(f"GC {gc[i]:.0f}%")
        if run_bad[i]:
            f.append(f"run of {runs[i]}")
        if snp_flags[i]:
            f.append(f"SNP {snp_flags[i]}" + (" in seed" if snp_in_seed[i] else ""))
        if mirna[i]:
            f.append(f"miRNA seed {mirna[i]}")
        if variants and variant_hits[i] < len(variants):
            f.append(f"misses {len(variants) - variant_hits[i]} transcript variant(s)")
        flags.append("; ".join(f))
    table = pd.DataFrame({
        "position": positions + 1, "region": region, "site": sites,
        "guide": [d.guide for d in duplexes], "passenger": [d.sense for d in duplexes],
        "guide_modified": guide_mod, "passenger_modified": sense_mod,
        "predicted_efficacy": np.round(eff, 4), "accessibility": np.round(acc, 4),
        "gc_percent": np.round(gc, 1), "longest_run": runs,
        **{f"guide_offtargets_{m}mm": guide_mm[:, m] for m in range(k_off + 1)},
        **{f"passenger_offtargets_{m}mm": pass_mm[:, m] for m in range(k_off + 1)},
        "guide_seed_utr3_matches": guide_seed, "passenger_seed_utr3_matches": pass_seed,
        "seed_duplex_dG": seed_dg, "mirna_seed_match": mirna, "immune_motifs": immune, "snps": snp_flags,
        "transcript_variants_hit": variant_hits, **ortholog_cols,
        "hard_fail": hard, "score": np.round(score, 4), "flags": flags,
    })
    table = table.sort_values(["hard_fail", "score", "position"], ascending=[True, False, True], kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    known = locate_known(inputs.known, target, table) if inputs.known else []
    from .models import sirna_efficacy

    info = {
        "target": {"id": target.id, "description": target.description, "length": len(seq),
                   "cds": [target.cds[0] + 1, target.cds[1]] if target.cds else None, "cds_source": target.cds_source,
                   "gene": gene, "transcript_variants": [v.id for v in variants]},
        "candidates": int(len(table)), "layout": layout, "pattern": pattern["name"],
        "pattern_description": pattern["description"], "pattern_source": pattern.get("source", ""),
        "offtarget": {"files": [Path(p).name for p in inputs.off_targets], "transcripts_examined": examined,
                      "max_mismatches": k_off, "utr_note": utr_note},
        "orthologs": [Path(p).name for p in inputs.orthologs],
        "variants": Path(inputs.variants).name if inputs.variants else None,
        "model": getattr(sirna_efficacy, "MODEL_INFO", {}),
        "known": known,
    }
    return SirnaResult(target, variants, table, hits_df, info)


def _search_small(ps: PatternSet, seqs: list[np.ndarray], k: int):
    from .engine import search

    return search(ps, seqs, k, 0, threads=1)


def _species(description: str) -> str | None:
    m = re.match(r"(?:PREDICTED: )?([A-Z][a-z]+ [a-z]+)", description)
    return m.group(1).replace(" ", "_") if m else None


def _region(t: Transcript, pos: int) -> str:
    if t.cds is None:
        return ""
    mid = pos + SITE // 2
    if mid < t.cds[0]:
        return "5'UTR"
    if mid >= t.cds[1]:
        return "3'UTR"
    return "CDS"


def locate_known(path: str | Path, target: Transcript, table) -> list[dict]:
    """Where reference siRNAs (e.g. approved drugs, table columns drug, strand, sequence) targeting this
    transcript fall in the ranking: their guide's 19-nt core matched to a candidate site."""
    import csv

    out = []
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for row in rows:
        if row.get("strand") != "antisense":
            continue
        guide = row["sequence"].upper().replace("T", "U")
        # the guide's 5'-most 19 nt pair with the candidate's site
        core = reverse_complement(guide[:SITE].replace("U", "T"))
        p = target.seq.find(core)
        if p < 0:
            continue
        match = table[table["position"] == p + 1]
        if not len(match):
            continue
        r = match.iloc[0]
        out.append({"name": row.get("drug", ""), "position": p + 1, "rank": int(r["rank"]),
                    "of": int(len(table)), "percentile": round(100.0 * (1 - (r["rank"] - 1) / len(table)), 1),
                    "predicted_efficacy": float(r["predicted_efficacy"]), "flags": r["flags"]})
    return out
