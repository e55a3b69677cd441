"""`oligolab check`: does an assay still detect what it must (inclusivity, per genome, lineage and month),
which oligo is losing binding and why (mismatch positions from the 3' end, seed, PAM, Tm drop, the
mutations behind it), and what else it could detect (exclusivity against off-target collections).

The work streams: genomes are read, searched by the engine and called in batches; per-genome rows go to
disk as they are made and only counts stay in memory, so a million genomes need no more memory than ten.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .annotation import Annotation
from .assays import Assay, AssaySet, Oligo, PRIMER_ROLES
from .engine import Engine, Hits, PatternSet, SiteTable, pack_batch, search as engine_search
from .errors import InputError
from .knowledge import Enzyme, RuleSet, amplification, get_enzyme, load_rules, make_figures, strip_known_tail
from .lineages import Lineages, group_lineages, looks_like_pango
from .sequences import Metadata, SeqRecord, decode, read_fasta, read_metadata, reverse_complement, warn_missing_ids
from .thermo import duplex, perfect_duplex

OLIGO_CALLS = ("binds", "degraded", "no data", "fails")  #: index = code, ordered from best to worst
ASSAY_CALLS = ("detected", "at risk", "no data", "not detected")
ON_LOCUS_NT = 3000  #: a site within this distance of the reference site counts as the expected site


# ----------------------------------------------------------------------------------------- search oligos

@dataclass
class SearchOligo:
    """One searched sequence: an oligo, or one half of a LAMP FIP/BIP."""

    name: str
    oligo: Oligo
    part: str  #: '' for a whole oligo; 'F1c', 'F2', 'B1c', 'B2' for FIP/BIP halves
    role: str  #: the role used for geometry (the part name for FIP/BIP halves)
    group: str  #: rule group: primer, probe, Cas12a, Cas13a
    core: str  #: binding sequence (IUPAC, oligo orientation)
    enzyme: Enzyme | None = None
    context5: int = 0
    context3: int = 0
    motif: str = ""
    seed: tuple[int, int] = (1, 0)

    @property
    def pattern(self) -> str:
        return "N" * self.context5 + self.core + "N" * self.context3


def _split_inner_primer(o: Oligo, reference: np.ndarray | None) -> tuple[str, str]:
    """FIP = F1c + F2 (BIP = B1c + B2): the split given with '|', or found on the reference as the cut
    where both halves bind it (the 3' half reading like the strand the 5' half pairs against)."""
    if o.parts is not None:
        return o.parts
    if reference is None:
        raise InputError(o.source.split(":")[0], f"cannot split {o.role} '{o.name}' into its two parts without "
                         "a reference", f"write it as {'F1c|F2' if o.role == 'FIP' else 'B1c|B2'} or pass --reference",
                         line=int(o.source.split(":")[1]) if ":" in o.source else None)
    seq = o.sequence
    cuts = list(range(12, len(seq) - 11))
    names, seqs = [], []
    for i in cuts:
        names += [f"a{i}", f"b{i}"]
        seqs += [seq[:i], seq[i:]]
    hits, sites = engine_search(PatternSet.from_oligos(names, seqs), [reference], 0, 0, threads=1)
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for p, s in zip(hits.pos, hits.site):
        found[int(sites.pattern[s])].append((int(p), int(sites.pattern[s]) % 2))
    best = None
    for ci, i in enumerate(cuts):
        a_sites, b_sites = found.get(4 * ci, []) + found.get(4 * ci + 1, []), found.get(4 * ci + 2, []) + \
            found.get(4 * ci + 3, [])
        for pa, sa in a_sites:
            for pb, sb in b_sites:
                if sa != sb and abs(pa - pb) < 300:
                    score = min(i, len(seq) - i)
                    if best is None or score > best[0]:
                        best = (score, i)
    if best is None:
        raise InputError(o.source.split(":")[0], f"{o.role} '{o.name}': no split into two halves that both "
                         "bind the reference", f"write it as {'F1c|F2' if o.role == 'FIP' else 'B1c|B2'}",
                         line=int(o.source.split(":")[1]) if ":" in o.source else None)
    return seq[: best[1]], seq[best[1]:]


def compile_search_oligos(assays: AssaySet, reference: np.ndarray | None, enzymes_dir: str | None = None
                          ) -> list[SearchOligo]:
    """Search oligos for every oligo of every assay (tails stripped, FIP/BIP halves, guide context)."""
    out: list[SearchOligo] = []
    for o in assays.oligos:
        if not o.tail and o.role in PRIMER_ROLES:
            tail, core = strip_known_tail(o.sequence)
            if tail:
                o.tail, o.sequence = tail, core
        if o.role in ("FIP", "BIP"):
            first, second = _split_inner_primer(o, reference)
            o.parts = (first, second)
            names = ("F1c", "F2") if o.role == "FIP" else ("B1c", "B2")
            for part, seq in zip(names, (first, second)):
                out.append(SearchOligo(f"{o.name}:{part}", o, part, part, "primer", seq))
        elif o.role == "crRNA":
            enzyme = get_enzyme(o.enzyme or "", enzymes_dir)
            c5, c3, motif = enzyme.oligo_context()
            lo, hi = enzyme.spacer_lengths
            if not lo <= len(o.sequence) <= hi:
                raise InputError(o.source.split(":")[0], f"crRNA '{o.name}' spacer has {len(o.sequence)} nt; "
                                 f"{enzyme.name} takes {lo}-{hi} nt", "give the spacer only (no direct repeat)",
                                 line=int(o.source.split(":")[1]) if ":" in o.source else None)
            out.append(SearchOligo(o.name, o, "", "crRNA", enzyme.family, o.sequence, enzyme, c5, c3, motif,
                                   enzyme.seed))
        else:
            out.append(SearchOligo(o.name, o, "", o.role, "probe" if o.role == "probe" else "primer", o.sequence))
    return out


# ------------------------------------------------------------------------------------------- site facts

def pattern_columns(m: int, gap1_pos: int, gap1_len: int, gap2_pos: int, gap2_len: int) -> np.ndarray:
    """Target offset of each pattern position in an alignment (-1 for pattern bases opposite a deletion)."""
    cols = np.empty(m, dtype=np.int64)
    t = 0
    events = {}
    if gap1_pos >= 0:
        events[gap1_pos] = gap1_len
    if gap2_pos >= 0:
        events[gap2_pos] = events.get(gap2_pos, 0) + gap2_len
    skip = 0
    for i in range(m):
        if i in events:
            length = events[i]
            if length > 0:
                t += length
            else:
                skip = -length
        if skip > 0:
            cols[i] = -1
            skip -= 1
            continue
        cols[i] = t
        t += 1
    return cols


@dataclass
class SiteFacts:
    """Everything about one distinct site, in oligo orientation (5'->3' of the searched sequence)."""

    oligo: int  #: search-oligo index
    strand: str  #: '+' when the genome's top strand reads like the oligo
    span: int
    mismatches: int
    unknown: int
    gaps: int
    cost: int
    mm_idx: np.ndarray  #: core indices (0-based, oligo orientation) of mismatches and unknowns
    mm_from_3p: tuple[int, ...]
    target: str  #: genome bases of the site read in the oligo's sense (core plus context)
    columns: np.ndarray  #: per pattern position (oligo orientation): target offset, -1 if deleted
    gap_core_idx: tuple[int, ...]  #: core positions where a gap event sits
    motif_bases: str
    motif_ok: bool
    motif_unknown: bool
    seed_mm: int


class SiteBook:
    """Lazily computed facts, thermodynamics and calls of sites (by engine site id)."""

    def __init__(self, oligos: list[SearchOligo], sites: SiteTable, rules: RuleSet):
        self.oligos = oligos
        self.sites = sites
        self.rules = rules
        self._facts: dict[int, SiteFacts] = {}
        self._calls: dict[int, tuple[int, str, float, float, float]] = {}
        self._perfect: dict[int, float] = {}

    def facts(self, sid: int) -> SiteFacts:
        f = self._facts.get(sid)
        if f is not None:
            return f
        s = self.sites
        pattern = int(s.pattern[sid])
        oi, strand = pattern // 2, pattern % 2
        so = self.oligos[oi]
        m = len(so.pattern)
        span = int(s.span[sid])
        codes = s.target[sid, :span]
        top = decode(codes)
        # pattern-orientation bit masks -> oligo orientation
        bits = np.array([(int(s.mm_mask[sid]) >> i) & 1 or (int(s.unk_mask[sid]) >> i) & 1 for i in range(m)],
                        dtype=bool)
        cols = pattern_columns(m, int(s.gap1_pos[sid]), int(s.gap1_len[sid]), int(s.gap2_pos[sid]),
                               int(s.gap2_len[sid]))
        gap_pattern_pos = [p for p in (int(s.gap1_pos[sid]), int(s.gap2_pos[sid])) if p >= 0]
        if strand == 1:
            bits = bits[::-1]
            target = reverse_complement(top)
            # column of pattern position i maps to oligo position m-1-i, offset from the other end
            cols = np.where(cols[::-1] >= 0, span - 1 - cols[::-1], -1)
            gap_pattern_pos = [m - p for p in gap_pattern_pos]
        else:
            target = top
        core_lo, core_hi = so.context5, m - so.context3
        mm_idx = np.flatnonzero(bits[core_lo:core_hi])
        core_len = core_hi - core_lo
        gap_core = tuple(sorted(p - core_lo for p in gap_pattern_pos if core_lo <= p <= core_hi))
        motif_cols = list(range(0, core_lo)) + list(range(core_hi, m))
        motif_bases = "".join(target[cols[i]] if cols[i] >= 0 else "-" for i in motif_cols)
        motif_ok, motif_unknown = True, False
        if so.enzyme is not None and so.motif:
            ok = so.enzyme.motif_matches(motif_bases)
            motif_unknown = ok is None
            motif_ok = bool(ok) if ok is not None else False
        seed_lo, seed_hi = so.seed
        seed_mm = int(sum(1 for i in mm_idx if seed_lo - 1 <= i <= seed_hi - 1)) + \
            int(sum(1 for g in gap_core if seed_lo - 1 <= g <= seed_hi))
        f = SiteFacts(oi, "+-"[strand], span, int(s.mismatches[sid]), int(s.unknown[sid]), int(s.gaps[sid]),
                      int(s.cost[sid]), mm_idx, tuple(int(core_len - i) for i in mm_idx), target, cols,
                      gap_core, motif_bases, motif_ok, motif_unknown, seed_mm)
        self._facts[sid] = f
        return f

    def core_target(self, f: SiteFacts) -> str:
        """The genome bases opposite the oligo's core, in oligo sense (gaps collapsed)."""
        so = self.oligos[f.oligo]
        m = len(so.pattern)
        lo = so.context5
        hi = m - so.context3
        first = next((f.columns[i] for i in range(lo, hi) if f.columns[i] >= 0), 0)
        last = next((f.columns[i] for i in range(hi - 1, lo - 1, -1) if f.columns[i] >= 0), 0)
        return f.target[first:last + 1]

    def perfect_tm(self, oi: int) -> float:
        if oi not in self._perfect:
            self._perfect[oi] = perfect_duplex(self.oligos[oi].core, self.rules.conditions).tm_C
        return self._perfect[oi]

    def call(self, sid: int) -> tuple[int, str, float, float, float]:
        """(call code, reason, Tm on target °C, ΔG kcal/mol, Tm drop °C) of a site under the rules."""
        c = self._calls.get(sid)
        if c is not None:
            return c
        f = self.facts(sid)
        so = self.oligos[f.oligo]
        d = duplex(so.core, self.core_target(f), self.rules.conditions)
        tm_drop = self.perfect_tm(f.oligo) - d.tm_C if not math.isnan(d.tm_C) else 99.0
        core_len = len(so.core)
        from_3p = f.mm_from_3p
        gaps3 = tuple(core_len - g for g in f.gap_core_idx)

        def mm3p(n: int) -> int:
            return sum(1 for x in from_3p if x <= n) + sum(1 for x in gaps3 if x <= n)

        figures = make_figures(f.mismatches, f.unknown, f.gaps, round(tm_drop, 2), d.tm_C, d.dg_kcal, f.seed_mm,
                               f.motif_ok or not (so.enzyme is not None and so.enzyme.motif_required)
                               if so.group == "Cas12a" else f.motif_ok, f.motif_unknown, core_len, mm3p)
        call, why = self.rules.call(so.group, figures)
        c = (OLIGO_CALLS.index(call), why, d.tm_C, d.dg_kcal, round(tm_drop, 2))
        self._calls[sid] = c
        return c


# ------------------------------------------------------------------------------------------ the pipeline

@dataclass
class CheckOptions:
    max_mismatches: int = 3
    max_gaps: int = 2
    rules_path: str | None = None
    enzymes_dir: str | None = None
    batch_nt: int = 4_000_000
    threads: int | None = None
    lineage_from_id: bool | None = None  #: None = automatic (ids that look like Pango lineages)
    max_groups: int = 30
    shards: int = 1  #: genome shards checked in parallel processes (Dask)
    device: str = "cpu"  #: 'cuda' runs the engine's filter on a GPU (same sites)
    dask_scheduler: str | None = None  #: address of a Dask cluster to run the shards on


@dataclass
class GenomeInfo:
    ids: list[str] = field(default_factory=list)
    lineage: list[str] = field(default_factory=list)
    month: list[str] = field(default_factory=list)
    date: list[str] = field(default_factory=list)
    length: list[int] = field(default_factory=list)
    source: list[str] = field(default_factory=list)


@dataclass
class ReferenceSite:
    start: int
    end: int
    strand: str
    target: str
    columns: np.ndarray


@dataclass
class BatchResult:
    """Per-genome results of one batch, as arrays aligned on (genome, search oligo) and (genome, assay)."""

    genome_index: np.ndarray  #: global genome indices in the batch
    oligo_call: np.ndarray  #: (n_genomes, n_oligos) int8 call codes
    oligo_site: np.ndarray  #: (n_genomes, n_oligos) site id or -1
    oligo_pos: np.ndarray  #: (n_genomes, n_oligos) site start or -1
    oligo_nsites: np.ndarray  #: (n_genomes, n_oligos) number of sites anywhere in the genome
    oligo_reason: np.ndarray  #: (n_genomes, n_oligos) index into Checker.reasons
    assay_call: np.ndarray  #: (n_genomes, n_assays) int8
    assay_reason: np.ndarray  #: (n_genomes, n_assays) index into Checker.reasons
    amplicon: np.ndarray  #: (n_genomes, n_assays, 2) start, end (-1 when none)
    lost: np.ndarray  #: (n_genomes, n_oligos) index into Checker.lost: mutations that removed a site


class Checker:
    """Holds what a check needs between batches: the engine, the site book, reference sites, counters."""

    def __init__(self, assays: AssaySet, *, reference: SeqRecord | None = None, annotation: Annotation | None = None,
                 options: CheckOptions = CheckOptions()):
        self.assays = assays
        self.options = options
        self.rules = load_rules(options.rules_path)
        self.reference = reference
        self.annotation = annotation
        ref_codes = reference.codes() if reference is not None else None
        self.ref_codes = ref_codes
        self.oligos = compile_search_oligos(assays, ref_codes, options.enzymes_dir)
        self.patterns = PatternSet.from_oligos([o.name for o in self.oligos], [o.pattern for o in self.oligos],
                                               [o.context5 for o in self.oligos], [o.context3 for o in self.oligos])
        self.engine = Engine(self.patterns, options.max_mismatches, options.max_gaps, threads=options.threads,
                             device=options.device)
        self.book = SiteBook(self.oligos, self.engine.sites, self.rules)
        self.assay_members = self._assay_members()
        self.ref_sites: list[ReferenceSite | None] = [None] * len(self.oligos)
        if reference is not None:
            self._find_reference_sites(ref_codes)
        self._ref_start = np.array([r.start if r is not None else -1 for r in self.ref_sites], dtype=np.int64)
        self.reasons: list[str] = [""]
        self._reason_index: dict[str, int] = {"": 0}
        self._reason_lost = self.reason_id(f"no site with <= {options.max_mismatches} differences")
        self._reason_unknown = self.reason_id("the expected site lies in unknown bases")
        self._site_code = np.zeros(0, dtype=np.int8)
        self._site_reason = np.zeros(0, dtype=np.int32)
        self._assay_reason_cache: dict[tuple, int] = {}
        self._mutations: dict[int, list[tuple[str, int, int]]] = {}
        self.lost: list[list[tuple[str, int, int]]] = [[]]  #: mutation lists explaining lost sites (id 0: none)
        self._lost_index: dict[tuple[int, str], int] = {}
        self._aligner = None

    # -- set-up
    def _assay_members(self) -> list[dict[str, list[int]]]:
        index = {id(o.oligo): [] for o in self.oligos}
        for i, so in enumerate(self.oligos):
            index[id(so.oligo)].append(i)
        members = []
        for a in self.assays.assays:
            roles: dict[str, list[int]] = defaultdict(list)
            for o in a.oligos:
                for i in index[id(o)]:
                    roles[self.oligos[i].role].append(i)
            members.append(dict(roles))
        return members

    def _find_reference_sites(self, ref_codes: np.ndarray) -> None:
        hits, sites = engine_search(self.patterns, [ref_codes], self.options.max_mismatches, self.options.max_gaps,
                                    threads=1)
        book = SiteBook(self.oligos, sites, self.rules)
        best: dict[int, tuple[int, int, int]] = {}
        for p, sid in zip(hits.pos, hits.site):
            oi = int(sites.pattern[sid]) // 2
            key = (int(sites.cost[sid]), int(p))
            if oi not in best or key < best[oi][:2]:
                best[oi] = (key[0], key[1], int(sid))
        for oi, (_, pos, sid) in best.items():
            f = book.facts(sid)
            self.ref_sites[oi] = ReferenceSite(pos, pos + f.span, f.strand, f.target, f.columns)

    # -- per batch
    def reason_id(self, text: str) -> int:
        """Index of a reason text in the shared vocabulary (rows store indices, not strings)."""
        rid = self._reason_index.get(text)
        if rid is None:
            rid = self._reason_index[text] = len(self.reasons)
            self.reasons.append(text)
        return rid

    def site_calls(self, sids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Call code and reason id of each site id (computed once per distinct site)."""
        n = len(self.engine.sites)
        if self._site_code.shape[0] < n:
            grow = max(n, 2 * self._site_code.shape[0])
            self._site_code = np.concatenate([self._site_code, np.full(grow - len(self._site_code), -1, np.int8)])
            self._site_reason = np.concatenate([self._site_reason,
                                                np.zeros(grow - len(self._site_reason), np.int32)])
        todo = np.unique(sids[self._site_code[sids] < 0])
        for sid in todo:
            code, why = self.book.call(int(sid))[:2]
            self._site_code[sid] = code
            self._site_reason[sid] = self.reason_id(why)
        return self._site_code[sids], self._site_reason[sids]

    # -- per batch
    def process(self, codes: np.ndarray, ends: np.ndarray, unknown_runs: list[np.ndarray]) -> tuple[Hits, BatchResult]:
        first = self.engine.n_genomes
        hits = self.engine.search_codes(codes, ends)
        n_gen = len(ends)
        n_ol = len(self.oligos)
        sites = self.engine.sites
        oi = sites.pattern[hits.site] // 2
        local = hits.genome - first
        nsites = np.zeros((n_gen, n_ol), dtype=np.int32)
        np.add.at(nsites, (local, oi), 1)
        ref_start = self._ref_start
        dist = np.where(ref_start[oi] >= 0, np.abs(hits.pos.astype(np.int64) - ref_start[oi]), 0)
        on = dist <= ON_LOCUS_NT
        cost = sites.cost[hits.site]
        order = np.lexsort((dist[on], cost[on], oi[on], local[on]))
        g_on, o_on, s_on, p_on = local[on][order], oi[on][order], hits.site[on][order], hits.pos[on][order]
        firsts = np.ones(len(g_on), dtype=bool)
        firsts[1:] = (g_on[1:] != g_on[:-1]) | (o_on[1:] != o_on[:-1])
        best_site = np.full((n_gen, n_ol), -1, dtype=np.int64)
        best_pos = np.full((n_gen, n_ol), -1, dtype=np.int64)
        best_site[g_on[firsts], o_on[firsts]] = s_on[firsts]
        best_pos[g_on[firsts], o_on[firsts]] = p_on[firsts]
        call = np.full((n_gen, n_ol), OLIGO_CALLS.index("fails"), dtype=np.int8)
        reason = np.full((n_gen, n_ol), self._reason_lost, dtype=np.int32)
        found = best_site >= 0
        call[found], reason[found] = self.site_calls(best_site[found])
        # no site: not seen because the genome has unknown bases there, or lost (then say by which mutations)
        lost = np.zeros((n_gen, n_ol), dtype=np.int32)
        starts = np.concatenate([[0], ends[:-1] + 1])
        for g in np.flatnonzero((~found).any(axis=1)):
            runs = unknown_runs[g]
            for o in np.flatnonzero(~found[g]):
                if len(runs) and self._expected_in_unknown(g, o, runs, best_pos, ref_start):
                    call[g, o] = OLIGO_CALLS.index("no data")
                    reason[g, o] = self._reason_unknown
                elif ref_start[o] >= 0:
                    lost[g, o] = self._explain_lost(o, codes[starts[g]:ends[g]], self._shift(g, o, best_pos))
        assay_call, assay_reason, amplicon = self._assay_calls(call, best_site, best_pos)
        return hits, BatchResult(np.arange(first, first + n_gen), call, best_site, best_pos, nsites, reason,
                                 assay_call, assay_reason, amplicon, lost)

    def _shift(self, g: int, o: int, best_pos: np.ndarray) -> int:
        """Offset between reference and genome coordinates near oligo ``o``, from the nearest oligo found."""
        ref_start = self._ref_start
        found = np.flatnonzero((best_pos[g] >= 0) & (ref_start >= 0))
        if not len(found):
            return 0
        nearest = found[np.argmin(np.abs(ref_start[found] - ref_start[o]))]
        return int(best_pos[g, nearest] - ref_start[nearest])

    def _explain_lost(self, o: int, genome: np.ndarray, shift: int) -> int:
        """Align the reference site of a lost oligo to the genome where it should be; returns the id of the
        mutation list (substitutions, deletions, insertions in reference coordinates) that removed it."""
        ref = self.ref_sites[o]
        flank = 15  # reference context on each side, so that indels are placed where they really are
        lo = max(0, ref.start + shift - flank - 40)
        hi = min(len(genome), ref.end + shift + flank + 40)
        if hi - lo < (ref.end - ref.start) // 2:
            return 0
        window = decode(genome[lo:hi])
        key = (o, window)
        lid = self._lost_index.get(key)
        if lid is not None:
            return lid
        if self._aligner is None:
            import warnings

            from Bio import Align

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                al = Align.PairwiseAligner()
                al.mode = "global"
                al.match_score, al.mismatch_score = 2.0, -3.0
                al.open_gap_score, al.extend_gap_score = -5.0, -1.0
                al.end_insertion_score, al.end_deletion_score = -10.0, 0.0  # the genome window's flanks are free
            self._aligner = al
        r0 = max(0, ref.start - flank)
        r1 = min(len(self.ref_codes), ref.end + flank)
        ref_top = decode(self.ref_codes[r0:r1])
        aln = self._aligner.align(window, ref_top)[0]
        so = self.oligos[o]
        m = len(so.pattern)
        col_to_oligo = {int(c): i for i, c in enumerate(ref.columns) if c >= 0}

        def in_site(p: int) -> bool:
            return ref.start <= p < ref.end

        def from_3p(p: int) -> int:
            c = p - ref.start if ref.strand == "+" else ref.end - 1 - p
            i = col_to_oligo.get(c)
            return m - so.context3 - i if i is not None else 0

        muts: list[tuple[str, int, int]] = []
        (t_starts, q_starts) = aln.coordinates
        dels: list[int] = []

        def flush_dels():
            if dels and any(in_site(p) for p in dels):
                name = f"del{dels[0] + 1}" + (f"-{dels[-1] + 1}" if len(dels) > 1 else "")
                muts.append((name, max(from_3p(p) for p in dels if in_site(p)), dels[0] + 1))
            dels.clear()

        for k in range(len(t_starts) - 1):
            t0, t1, q0, q1 = int(t_starts[k]), int(t_starts[k + 1]), int(q_starts[k]), int(q_starts[k + 1])
            if t1 > t0 and q1 > q0:  # aligned block
                flush_dels()
                for d in range(q1 - q0):
                    rb, gb = ref_top[q0 + d], window[t0 + d]
                    p = r0 + q0 + d
                    if rb != gb and gb in "ACGT" and in_site(p):
                        muts.append((f"{rb}{p + 1}{gb}", from_3p(p), p + 1))
            elif q1 > q0:  # reference bases missing from the genome
                dels.extend(r0 + q for q in range(q0, q1))
            elif t1 > t0 and 0 < q0 < len(ref_top):  # bases inserted in the genome
                flush_dels()
                p = r0 + q0 - 1
                if in_site(p) and in_site(p + 1):
                    muts.append((f"{p + 1}_{p + 2}ins{window[t0:t1]}", from_3p(p), p + 1))
        flush_dels()
        self.lost.append(muts)
        lid = self._lost_index[key] = len(self.lost) - 1
        return lid

    def _expected_in_unknown(self, g: int, o: int, runs: np.ndarray, best_pos: np.ndarray,
                             ref_start: np.ndarray) -> bool:
        """Whether the expected location of oligo ``o`` in genome ``g`` overlaps unknown bases; the location
        is the reference site shifted like the nearest oligo that was found in this genome."""
        if ref_start[o] < 0:
            return True
        shift = self._shift(g, o, best_pos)
        lo = ref_start[o] + shift - 30
        hi = ref_start[o] + shift + len(self.oligos[o].pattern) + 30
        return bool(np.any((runs[:, 0] < hi) & (runs[:, 1] > lo)))

    def _assay_calls(self, call: np.ndarray, best_site: np.ndarray, best_pos: np.ndarray):
        """Assay calls per genome: the best alternative of each required role, the worst role decides; then
        the sites must form an amplicon (primers facing each other, probe/guide inside)."""
        n_gen = call.shape[0]
        n_as = len(self.assays.assays)
        out = np.zeros((n_gen, n_as), dtype=np.int8)
        reason = np.zeros((n_gen, n_as), dtype=np.int32)
        amplicon = np.full((n_gen, n_as, 2), -1, dtype=np.int64)
        sites = self.engine.sites
        safe = np.maximum(best_site, 0)
        strand = np.where(best_site >= 0, sites.pattern[safe] % 2, -1)
        end = np.where(best_site >= 0, best_pos + sites.span[safe], -1)
        rows = np.arange(n_gen)
        limits = amplification()
        for ai, (assay, members) in enumerate(zip(self.assays.assays, self.assay_members)):
            kind = assay.kind
            required, optional = _required_roles(kind, members)
            group_call, pick = {}, {}
            for role in required + optional:
                idx = np.array(members[role])
                sub = call[:, idx]
                best = np.argmin(sub, axis=1)
                group_call[role] = sub[rows, best]
                pick[role] = idx[best]
            worst = np.zeros(n_gen, dtype=np.int8)
            for role in required:
                worst = np.maximum(worst, group_call[role])
            for role in optional:  # loop primers: losing them slows LAMP down, it does not stop it
                worst = np.maximum(worst, np.minimum(group_call[role], 1))
            codes = worst  # oligo codes 0..3 map onto assay codes 0..3 one to one
            for g in np.flatnonzero(codes > 0):
                bad = tuple(int(pick[r][g]) for r in required + optional if group_call[r][g] == codes[g])
                key = (int(codes[g]), bad)
                rid = self._assay_reason_cache.get(key)
                if rid is None:
                    rid = self._assay_reason_cache[key] = self.reason_id(
                        f"{OLIGO_CALLS[codes[g]]}: {', '.join(self.oligos[o].name for o in bad)}")
                reason[g, ai] = rid
            max_amp = assay.max_amplicon or limits.get("lamp" if kind == "lamp" else "pcr", {}).get(
                "max_amplicon", 2000)

            def take(role):
                o = pick[role]
                return best_pos[rows, o], end[rows, o], strand[rows, o]

            bad_geom = np.zeros(n_gen, dtype=np.int32)  # reason id of a geometry failure (0 = none)
            lo = hi = None
            if kind in ("pcr", "crispr") and "forward" in members and "reverse" in members:
                fp, fe, fs = take("forward")
                rp, re_, rs = take("reverse")
                have = (fp >= 0) & (rp >= 0) & (codes < 3)
                lo = np.where(fs == 0, fp, rp)
                hi = np.where(fs == 0, re_, fe)
                same = have & (fs == rs)
                facing = np.where(fs == 0, fp <= rp, rp <= fp) & (hi > lo) & (hi - lo <= max_amp)
                bad_geom[same] = self.reason_id("forward and reverse primers bind the same strand")
                bad_geom[have & ~same & ~facing & (bad_geom == 0)] = self.reason_id(
                    f"primers do not face each other within {max_amp} nt")
                for role in ("probe", "crRNA"):
                    if role in members:
                        pp, pe, ps = take(role)
                        outside = have & (pp >= 0) & ~((pp >= lo) & (pe <= hi)) & (bad_geom == 0)
                        bad_geom[outside] = self.reason_id(f"{role} site outside the amplicon")
                t7 = self._t7_role(members, pick)
                if "crRNA" in members and t7 is not None:
                    pp, pe, ps = take("crRNA")
                    t7_strand = take(t7)[2]
                    rna = np.array([self.oligos[o].enzyme is not None and self.oligos[o].enzyme.target == "rna"
                                    for o in pick["crRNA"]])
                    wrong = have & (pp >= 0) & rna & (ps == t7_strand) & (bad_geom == 0)
                    bad_geom[wrong] = self.reason_id("the guide does not pair with the T7 transcript")
                ok = have & (bad_geom == 0)
            elif kind in ("lamp", "crispr") and {"F3", "B3", "F2", "B2", "F1c", "B1c"} <= set(members):
                parts = [take(r) for r in ("F3", "F2", "F1c", "B1c", "B2", "B3")]
                have = np.all([p[0] >= 0 for p in parts], axis=0) & (codes < 3)
                top = parts[0][2]
                expected = [top, top, 1 - top, top, 1 - top, 1 - top]
                strands_ok = np.all([p[2] == e for p, e in zip(parts, expected)], axis=0)
                keys = [np.where(top == 0, p[0], -p[1]) for p in parts]
                ordered = np.all([keys[i] <= keys[i + 1] for i in range(5)], axis=0)
                lo = np.min([p[0] for p in parts], axis=0)
                hi = np.max([p[1] for p in parts], axis=0)
                bad_geom[have & ~strands_ok] = self.reason_id("LAMP primers are not on the expected strands")
                bad_geom[have & strands_ok & ~ordered] = self.reason_id("LAMP primers are out of order")
                bad_geom[have & (bad_geom == 0) & (hi - lo > max_amp)] = self.reason_id(
                    f"LAMP region longer than {max_amp} nt")
                if "crRNA" in members:
                    pp, pe, ps = take("crRNA")
                    outside = have & (pp >= 0) & ~((pp >= lo) & (pe <= hi)) & (bad_geom == 0)
                    bad_geom[outside] = self.reason_id("guide site outside the LAMP amplicon")
                ok = have & (bad_geom == 0)
            else:
                ok = np.zeros(n_gen, dtype=bool)
            failed = bad_geom > 0
            codes = np.where(failed, 3, codes).astype(np.int8)
            reason[failed, ai] = bad_geom[failed]
            if lo is not None:
                amplicon[ok, ai, 0] = lo[ok]
                amplicon[ok, ai, 1] = hi[ok]
            out[:, ai] = codes
        return out, reason, amplicon

    def _t7_role(self, members, pick) -> str | None:
        """The primer role carrying a T7 promoter tail (its strand is the transcript's sense), if any."""
        for role in ("forward", "reverse"):
            if role in members and any(self.oligos[o].oligo.tail for o in members[role]):
                return role
        return None

    # -- mutations
    def mutations(self, sid: int) -> list[tuple[str, int, int]]:
        """Mutations (vs the reference) under a site: (name like 'C28311T' or 'del28311', position from the
        oligo's 3' end, reference position 1-based)."""
        cached = self._mutations.get(sid)
        if cached is not None:
            return cached
        self._mutations[sid] = out = self._compute_mutations(sid)
        return out

    def _compute_mutations(self, sid: int) -> list[tuple[str, int, int]]:
        f = self.book.facts(sid)
        ref = self.ref_sites[f.oligo]
        if ref is None or ref.strand != f.strand:
            return []
        so = self.oligos[f.oligo]
        m = len(so.pattern)
        out = []
        for i in range(so.context5, m - so.context3):
            gc, rc = f.columns[i], ref.columns[i]
            if rc < 0:
                continue
            # reference position of oligo position i (top-strand coordinates)
            rpos = ref.start + (rc if ref.strand == "+" else ref.end - ref.start - 1 - rc)
            rb = ref.target[rc]
            gb = f.target[gc] if gc >= 0 else "-"
            if gb == rb or gb == "N":
                continue
            from_3p = m - so.context3 - i
            if ref.strand == "-":
                rb, gb = _comp(rb), _comp(gb)
            name = f"{rb}{rpos + 1}{gb}" if gb != "-" else f"del{rpos + 1}"
            out.append((name, from_3p, rpos + 1))
        return out

    def close(self) -> None:
        self.engine.close()


def _comp(b: str) -> str:
    return {"A": "T", "C": "G", "G": "C", "T": "A"}.get(b, b)


def _required_roles(kind: str, members: dict[str, list[int]]) -> tuple[list[str], list[str]]:
    roles = list(members)
    optional = [r for r in roles if r in ("LF", "LB")]
    required = [r for r in roles if r not in optional]
    return required, optional


# ----------------------------------------------------------------------------------------- reading input

@dataclass
class GenomeBatch:
    records: list[SeqRecord]
    codes: np.ndarray
    ends: np.ndarray
    unknown_runs: list[np.ndarray]
    source: str


def unknown_runs(codes: np.ndarray) -> np.ndarray:
    """(start, end) of runs of unknown bases (code 4)."""
    unk = codes == 4
    if not unk.any():
        return np.zeros((0, 2), dtype=np.int64)
    d = np.diff(np.concatenate([[0], unk.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


def genome_batches(paths: list[str | Path], batch_nt: int,
                   keep: Callable[[str], bool] | None = None) -> Iterator[GenomeBatch]:
    """Genomes from several FASTA files (those whose id ``keep`` accepts), in batches of about ``batch_nt``
    nucleotides."""
    records: list[SeqRecord] = []
    encoded: list[np.ndarray] = []
    size = 0
    source = ""
    for path in paths:
        source = str(path)
        for rec in read_fasta(path):
            if keep is not None and not keep(rec.id):
                continue
            c = rec.codes()
            records.append(rec)
            encoded.append(c)
            size += len(c)
            if size >= batch_nt:
                codes, ends = pack_batch(encoded)
                yield GenomeBatch(records, codes, ends, [unknown_runs(x) for x in encoded], source)
                records, encoded, size = [], [], 0
    if records:
        codes, ends = pack_batch(encoded)
        yield GenomeBatch(records, codes, ends, [unknown_runs(x) for x in encoded], source)


# --------------------------------------------------------------------------------------- a whole check

@dataclass
class CheckInputs:
    assays: list[str | Path]
    genomes: list[str | Path]
    metadata: str | Path | None = None
    reference: str | Path | None = None
    annotation: str | Path | None = None
    alias_key: str | Path | None = None
    off_targets: list[str | Path] = field(default_factory=list)


class Aggregates:
    """Counts kept in memory while rows stream to disk."""

    def __init__(self, n_oligos: int, n_assays: int):
        self.n_oligos, self.n_assays = n_oligos, n_assays
        self.lineage_index: dict[str, int] = {}
        self.month_index: dict[str, int] = {}
        self.lin_oligo = np.zeros((0, n_oligos, 4), dtype=np.int32)  # genomes per lineage, oligo and call
        self.lin_assay = np.zeros((0, n_assays, 4), dtype=np.int32)
        self.month_assay = np.zeros((0, n_assays, 4), dtype=np.int32)
        self.site_use: Counter[tuple[int, int, int]] = Counter()  #: (site id, lineage idx, call) -> genomes
        self.lost_use: Counter[tuple[int, int, int]] = Counter()  #: (oligo, lineage idx, lost id) -> genomes
        self.mutation_stats: dict[tuple[int, str], dict] = {}  #: filled by finalize(): by oligo and mutation
        self.not_detected_examples: dict[int, list[str]] = defaultdict(list)

    @staticmethod
    def _index(mapping: dict[str, int], keys: list[str]) -> np.ndarray:
        return np.array([mapping.setdefault(k, len(mapping)) for k in keys], dtype=np.int64)

    @staticmethod
    def _grow(arr: np.ndarray, n: int) -> np.ndarray:
        if arr.shape[0] >= n:
            return arr
        out = np.zeros((max(n, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
        out[: arr.shape[0]] = arr
        return out

    def add(self, lineages: list[str], months: list[str], ids: list[str], res: BatchResult) -> None:
        li = self._index(self.lineage_index, lineages)
        self.lin_oligo = self._grow(self.lin_oligo, len(self.lineage_index))
        self.lin_assay = self._grow(self.lin_assay, len(self.lineage_index))
        n_gen, n_ol = res.oligo_call.shape
        np.add.at(self.lin_oligo, (np.repeat(li, n_ol), np.tile(np.arange(n_ol), n_gen), res.oligo_call.ravel()), 1)
        n_as = res.assay_call.shape[1]
        np.add.at(self.lin_assay, (np.repeat(li, n_as), np.tile(np.arange(n_as), n_gen), res.assay_call.ravel()), 1)
        has_month = np.array([bool(m) for m in months])
        if has_month.any():
            mi = self._index(self.month_index, [m for m in months if m])
            self.month_assay = self._grow(self.month_assay, len(self.month_index))
            calls = res.assay_call[has_month]
            np.add.at(self.month_assay, (np.repeat(mi, n_as), np.tile(np.arange(n_as), len(mi)), calls.ravel()), 1)
        g_idx, o_idx = np.nonzero((res.oligo_site >= 0) & (res.oligo_call > 0))
        if len(g_idx):
            keys = np.stack([res.oligo_site[g_idx, o_idx], li[g_idx], res.oligo_call[g_idx, o_idx]], axis=1)
            uniq, counts = np.unique(keys, axis=0, return_counts=True)
            for (sid, lin_i, code), n in zip(uniq.tolist(), counts.tolist()):
                self.site_use[(sid, lin_i, code)] += n
        g_idx, o_idx = np.nonzero(res.lost > 0)
        if len(g_idx):
            keys = np.stack([o_idx, li[g_idx], res.lost[g_idx, o_idx]], axis=1)
            uniq, counts = np.unique(keys, axis=0, return_counts=True)
            for (o, lin_i, lid), n in zip(uniq.tolist(), counts.tolist()):
                self.lost_use[(o, lin_i, lid)] += n
        for a in np.flatnonzero((res.assay_call == 3).any(axis=0)):
            ex = self.not_detected_examples[int(a)]
            for g in np.flatnonzero(res.assay_call[:, a] == 3)[: max(0, 20 - len(ex))]:
                ex.append(ids[g])

    def lineages(self) -> list[str]:
        return sorted(self.lineage_index, key=self.lineage_index.get)

    def months(self) -> list[str]:
        return sorted(self.month_index, key=self.month_index.get)

    def finalize(self, checker: "Checker") -> None:
        """Turn site and lost-site counts (engine ids, local to this process) into mutation counts by name,
        so that aggregates of several shards can be merged."""
        lin_names = self.lineages()
        stats = self.mutation_stats
        for (sid, li, call), n in self.site_use.items():
            oi = int(checker.engine.sites.pattern[sid]) // 2
            for name, from_3p, refpos in checker.mutations(sid):
                _add_mutation(stats, oi, name, from_3p, refpos, OLIGO_CALLS[call], lin_names[li], n)
        for (oi, li, lid), n in self.lost_use.items():
            for name, from_3p, refpos in checker.lost[lid]:
                _add_mutation(stats, oi, name, from_3p, refpos, "fails", lin_names[li], n)
        self.site_use.clear()
        self.lost_use.clear()

    def merge(self, other: "Aggregates") -> None:
        """Add another shard's (finalized) counts; lineages and months are matched by name."""
        li = self._index(self.lineage_index, other.lineages())
        self.lin_oligo = self._grow(self.lin_oligo, len(self.lineage_index))
        self.lin_assay = self._grow(self.lin_assay, len(self.lineage_index))
        np.add.at(self.lin_oligo, li, other.lin_oligo[: len(li)])
        np.add.at(self.lin_assay, li, other.lin_assay[: len(li)])
        if other.month_index:
            mi = self._index(self.month_index, other.months())
            self.month_assay = self._grow(self.month_assay, len(self.month_index))
            np.add.at(self.month_assay, mi, other.month_assay[: len(mi)])
        for key, st in other.mutation_stats.items():
            mine = self.mutation_stats.get(key)
            if mine is None:
                self.mutation_stats[key] = {**st, "lineages": Counter(st["lineages"])}
            else:
                for f in ("genomes", "degraded", "fails", "no_data"):
                    mine[f] += st[f]
                mine["lineages"].update(st["lineages"])
        for a, ex in other.not_detected_examples.items():
            mine_ex = self.not_detected_examples[a]
            mine_ex.extend(ex[: max(0, 20 - len(mine_ex))])


def _add_mutation(stats: dict, oi: int, name: str, from_3p: int, refpos: int, call: str, lineage: str, n: int):
    s = stats.setdefault((oi, name), {"genomes": 0, "degraded": 0, "fails": 0, "no_data": 0, "from_3p": from_3p,
                                      "refpos": refpos, "lineages": Counter()})
    s["genomes"] += n
    s[call.replace(" ", "_")] += n
    s["lineages"][lineage] += n


@dataclass
class CheckResult:
    checker: Checker
    genomes: int
    nucleotides: int
    aggregates: Aggregates
    lineage_groups: dict[str, str]
    exclusivity_sites: "object"  #: pandas DataFrame
    exclusivity_assays: "object"  #: pandas DataFrame
    seconds: float
    inputs: CheckInputs
    outputs: dict[str, str] = field(default_factory=dict)
    engine_stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _dict_column(indices: np.ndarray, values: list[str]):
    """A dictionary-encoded string column: repeated texts are stored once (the dictionary is made unique,
    as readers such as pandas require)."""
    import pyarrow as pa

    uniq, inv = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return pa.DictionaryArray.from_arrays(pa.array(inv[np.asarray(indices)].astype(np.int32)),
                                          pa.array(uniq.tolist(), type=pa.string()))


def _site_columns(checker: Checker, sids: np.ndarray) -> dict[str, object]:
    """Per-site text and figures for the row tables, computed once per distinct site."""
    uniq, inv = np.unique(sids, return_inverse=True)
    text: dict[str, list[str]] = defaultdict(list)
    nums: dict[str, list] = defaultdict(list)
    for sid in uniq:
        sid = int(sid)
        if sid < 0:
            for name in ("strand", "mismatch_from_3p", "gap_from_3p", "motif", "target", "mutations"):
                text[name].append("")
            for name in ("mismatches", "unknown", "gaps", "seed_mismatches", "span"):
                nums[name].append(-1)
            for name in ("tm_C", "dg_kcal", "tm_drop_C"):
                nums[name].append(float("nan"))
            continue
        f = checker.book.facts(sid)
        c = checker.book.call(sid)
        text["strand"].append(f.strand)
        text["mismatch_from_3p"].append(",".join(str(x) for x in f.mm_from_3p))
        core_len = len(checker.oligos[f.oligo].core)
        text["gap_from_3p"].append(",".join(str(core_len - g) for g in f.gap_core_idx))
        text["motif"].append(f.motif_bases)
        text["target"].append(f.target)
        text["mutations"].append(" ".join(m[0] for m in checker.mutations(sid)))
        nums["mismatches"].append(f.mismatches)
        nums["unknown"].append(f.unknown)
        nums["gaps"].append(f.gaps)
        nums["seed_mismatches"].append(f.seed_mm if checker.oligos[f.oligo].enzyme is not None else -1)
        nums["span"].append(f.span)
        nums["tm_C"].append(c[2])
        nums["dg_kcal"].append(c[3])
        nums["tm_drop_C"].append(c[4])
    out: dict[str, object] = {}
    for name in ("strand", "mismatches", "unknown", "gaps", "mismatch_from_3p", "gap_from_3p", "seed_mismatches",
                 "motif", "target",
                 "tm_C", "dg_kcal", "tm_drop_C", "mutations", "span"):
        if name in text:
            out[name] = _dict_column(inv, text[name])
        else:
            out[name] = np.asarray(nums[name])[inv]
    return out


class _RowWriter:
    """Streams a table to TSV and Parquet (atomic: temporary files renamed when the check completes)."""

    def __init__(self, stack: contextlib.ExitStack, out_dir: Path, stem: str):
        from .reports import atomic_path

        self.tsv_path = stack.enter_context(atomic_path(out_dir / f"{stem}.tsv"))
        self.pq_path = stack.enter_context(atomic_path(out_dir / f"{stem}.parquet"))
        self._tsv = None
        self._pq = None
        self._stack = stack
        self.rows = 0

    def write(self, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()})
        if self._tsv is None:
            self._fh = open(self.tsv_path, "wb")
            self._fh.write(("\t".join(table.column_names) + "\n").encode())
            self._tsv = pacsv.CSVWriter(self._fh, table.schema, write_options=pacsv.WriteOptions(
                delimiter="\t", quoting_style="none", include_header=False))
            self._pq = pq.ParquetWriter(str(self.pq_path), table.schema, compression="zstd")
            self._stack.callback(self._close)
        self._tsv.write_table(table)
        self._pq.write_table(table)
        self.rows += len(table)

    def _close(self) -> None:
        if self._tsv is not None:
            self._tsv.close()
            self._fh.close()
            self._pq.close()


@dataclass
class ShardResult:
    """What one shard of genomes sends back: counts (finalized, by name) and what it read."""

    aggregates: Aggregates
    genomes: int
    nucleotides: int
    ids: list[str]
    engine_stats: dict


def _setup(inputs: CheckInputs, options: CheckOptions) -> tuple[Checker, Metadata | None]:
    assays = read_assays_checked(inputs.assays)
    reference = next(iter(read_fasta(inputs.reference)), None) if inputs.reference else None
    annotation = Annotation.from_genbank(inputs.annotation) if inputs.annotation else None
    metadata = read_metadata(inputs.metadata) if inputs.metadata else None
    return Checker(assays, reference=reference, annotation=annotation, options=options), metadata


def check_shard(inputs: CheckInputs, options: CheckOptions, rows_dir: str | Path, *,
                progress: Callable[[int, int], None] | None = None, checker: Checker | None = None,
                metadata: Metadata | None = None) -> ShardResult:
    """Check the genomes of ``inputs`` (one shard) and stream their rows into ``rows_dir``
    (oligo_calls and assay_calls as TSV and Parquet, written atomically); returns the shard's counts."""
    own = checker is None
    if own:
        checker, metadata = _setup(inputs, options)
    rows_dir = Path(rows_dir)
    agg = Aggregates(len(checker.oligos), len(checker.assays.assays))
    seen_ids: dict[str, None] = {}
    n_genomes = n_nt = 0
    oligo_name_list = [o.name for o in checker.oligos]
    oligo_role_list = [o.role for o in checker.oligos]
    assay_name_list = [a.name for a in checker.assays.assays]
    oligo_assay_idx = np.array([assay_name_list.index(o.oligo.assay) for o in checker.oligos])
    lineage_from_id = options.lineage_from_id
    with contextlib.ExitStack() as stack:
        oligo_rows = _RowWriter(stack, rows_dir, "oligo_calls")
        assay_rows = _RowWriter(stack, rows_dir, "assay_calls")
        for batch in genome_batches(inputs.genomes, options.batch_nt):
            ids = [r.id for r in batch.records]
            if lineage_from_id is None:
                lineage_from_id = metadata is None and looks_like_pango(ids)
            lin, months, dates = [], [], []
            for rid in ids:
                if rid in seen_ids:
                    raise InputError(batch.source, f"duplicate record id '{rid}'",
                                     "give every genome a unique id", record=rid)
                seen_ids[rid] = None
                value = metadata.lineage(rid) if metadata is not None else None
                lin.append(value or (rid if lineage_from_id else "unassigned"))
                months.append((metadata.month(rid) if metadata is not None else None) or "")
                d = metadata.date(rid) if metadata is not None else None
                dates.append(d.isoformat() if d else "")
            res = checker.process(batch.codes, batch.ends, batch.unknown_runs)[1]
            n_gen, n_ol = res.oligo_call.shape
            n_as = res.assay_call.shape[1]
            sc = _site_columns(checker, res.oligo_site.ravel())
            lost = res.lost.ravel()
            if lost.any():
                muts = sc["mutations"].cast("string").to_numpy(zero_copy_only=False).astype(object)
                texts = np.array([" ".join(m[0] for m in ml) for ml in checker.lost], dtype=object)
                merged = np.where(lost > 0, texts[lost], muts)
                sc["mutations"] = _dict_column(np.arange(len(merged)), merged)
            pos = res.oligo_pos.ravel()
            span = sc.pop("span")
            lin_values = sorted(set(lin))
            lin_idx = np.array([lin_values.index(x) for x in lin])
            date_values = sorted(set(dates))
            date_idx = np.array([date_values.index(x) for x in dates])
            oligo_rows.write({
                "genome": _dict_column(np.repeat(np.arange(n_gen), n_ol), ids),
                "lineage": _dict_column(np.repeat(lin_idx, n_ol), lin_values),
                "date": _dict_column(np.repeat(date_idx, n_ol), date_values),
                "assay": _dict_column(np.tile(oligo_assay_idx, n_gen), assay_name_list),
                "oligo": _dict_column(np.tile(np.arange(n_ol), n_gen), oligo_name_list),
                "role": _dict_column(np.tile(np.arange(n_ol), n_gen), oligo_role_list),
                "call": _dict_column(res.oligo_call.ravel(), list(OLIGO_CALLS)),
                "reason": _dict_column(res.oligo_reason.ravel(), checker.reasons),
                "start": np.where(pos >= 0, pos + 1, -1), "end": np.where(pos >= 0, pos + span, -1),
                **sc, "n_sites": res.oligo_nsites.ravel(),
            })
            amp = res.amplicon.reshape(-1, 2)
            assay_rows.write({
                "genome": _dict_column(np.repeat(np.arange(n_gen), n_as), ids),
                "lineage": _dict_column(np.repeat(lin_idx, n_as), lin_values),
                "date": _dict_column(np.repeat(date_idx, n_as), date_values),
                "assay": _dict_column(np.tile(np.arange(n_as), n_gen), assay_name_list),
                "call": _dict_column(res.assay_call.ravel(), list(ASSAY_CALLS)),
                "reason": _dict_column(res.assay_reason.ravel(), checker.reasons),
                "amplicon_start": np.where(amp[:, 0] >= 0, amp[:, 0] + 1, -1),
                "amplicon_end": amp[:, 1],
            })
            agg.add(lin, months, ids, res)
            n_genomes += n_gen
            n_nt += int(len(batch.codes) - n_gen)
            if progress:
                progress(n_genomes, n_nt)
    agg.finalize(checker)
    stats = dict(checker.engine.stats)
    if own:
        checker.close()
    return ShardResult(agg, n_genomes, n_nt, list(seen_ids), stats)


def _shard_worker(inputs: CheckInputs, options: CheckOptions, rows_dir: str) -> ShardResult:
    """Entry point of a shard run in another process or on a Dask worker."""
    return check_shard(inputs, options, rows_dir)


def _split_genomes(paths: list[str | Path], n: int, workdir: Path) -> list[list[Path]]:
    """Shards of the genome input: whole files when there are at least ``n``; otherwise the records are
    split into ``n`` contiguous blocks written as temporary FASTA files (input order is kept)."""
    paths = [Path(p) for p in paths]
    if len(paths) >= n:
        k, r = divmod(len(paths), n)
        out, i = [], 0
        for s in range(n):
            size = k + (1 if s < r else 0)
            out.append(paths[i:i + size])
            i += size
        return out
    total = sum(1 for p in paths for _ in read_fasta(p))
    per = -(-total // n)
    shards, fh, count, idx = [], None, 0, 0
    for p in paths:
        for rec in read_fasta(p, keep_gaps=False):
            if fh is None or count == per:
                if fh is not None:
                    fh.close()
                path = workdir / f"shard{idx:04d}.fa"
                shards.append([path])
                fh = open(path, "w")
                idx += 1
                count = 0
            fh.write(f">{rec.id} {rec.description}\n{rec.text()}\n")
            count += 1
    if fh is not None:
        fh.close()
    return shards


def _concat_rows(parts: list[Path], out_dir: Path, stack: contextlib.ExitStack) -> None:
    """Concatenate shard row files, in shard order, into the final TSV and Parquet files (atomically)."""
    import pyarrow.parquet as pq

    from .reports import atomic_path

    for stem in ("oligo_calls", "assay_calls"):
        tsv = stack.enter_context(atomic_path(out_dir / f"{stem}.tsv"))
        with open(tsv, "wb") as out:
            for i, part in enumerate(parts):
                with open(part / f"{stem}.tsv", "rb") as fh:
                    header = fh.readline()
                    if i == 0:
                        out.write(header)
                    while chunk := fh.read(1 << 22):
                        out.write(chunk)
        pqp = stack.enter_context(atomic_path(out_dir / f"{stem}.parquet"))
        writer = None
        for part in parts:
            table = pq.read_table(part / f"{stem}.parquet")
            if writer is None:
                writer = pq.ParquetWriter(str(pqp), table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()


def run_check(inputs: CheckInputs, out_dir: str | Path, options: CheckOptions = CheckOptions(),
              progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Check assays against genomes (and off-target collections), writing every output into ``out_dir``.

    With ``options.shards > 1`` the genomes are split into shards checked in parallel processes through Dask
    (or on a Dask cluster named by ``options.dask_scheduler``); the outputs are the same as in one process.
    Outputs are written atomically: an interrupted run leaves earlier files as they were.
    """
    import shutil
    import tempfile
    import warnings as _warnings

    from . import check_report
    from .reports import write_json, write_table, write_text

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    lineages = Lineages(inputs.alias_key)
    checker, metadata = _setup(inputs, options)
    caught: list[str] = []
    with contextlib.ExitStack() as stack:
        if options.shards <= 1 and not options.dask_scheduler:
            shard_results = [check_shard(inputs, options, out_dir, progress=progress, checker=checker,
                                         metadata=metadata)]
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".oligolab-shards-", dir=out_dir))
            stack.callback(shutil.rmtree, work, True)
            shards = _split_genomes(inputs.genomes, max(1, options.shards), work)
            parts = [work / f"part{i:04d}" for i in range(len(shards))]
            shard_inputs = [CheckInputs(inputs.assays, files, inputs.metadata, inputs.reference, inputs.annotation,
                                        inputs.alias_key, []) for files in shards]
            shard_results = _run_shards(shard_inputs, options, parts)
            _concat_rows(parts, out_dir, stack)
        agg = Aggregates(len(checker.oligos), len(checker.assays.assays))
        seen: set[str] = set()
        n_genomes = n_nt = 0
        for sr in shard_results:
            dup = next((i for i in sr.ids if i in seen), None)
            if dup is not None:
                raise InputError(inputs.genomes[0], f"duplicate record id '{dup}'", "give every genome a unique id",
                                 record=dup)
            seen.update(sr.ids)
            agg.merge(sr.aggregates)
            n_genomes += sr.genomes
            n_nt += sr.nucleotides
        if n_genomes == 0:
            raise InputError(inputs.genomes[0] if inputs.genomes else None, "no genomes read", "give FASTA genomes")
        if metadata is not None:
            with _warnings.catch_warnings(record=True) as w:
                _warnings.simplefilter("always")
                warn_missing_ids(metadata, seen)
                caught += [str(x.message) for x in w]
        ex_sites, ex_assays = exclusivity(checker, inputs.off_targets)
        groups = group_lineages(agg.lineages(), lineages, options.max_groups)
        stats: Counter = Counter()
        for sr in shard_results:
            stats.update(sr.engine_stats)
        result = CheckResult(checker, n_genomes, n_nt, agg, groups, ex_sites, ex_assays,
                             time.perf_counter() - t0, inputs, engine_stats=dict(stats), warnings=caught)
        tables = summary_tables(result, lineages)
        for name, frame in tables.items():
            write_table(frame, out_dir / f"{name}.tsv")
        write_table(ex_sites, out_dir / "exclusivity_sites.tsv")
        write_table(ex_assays, out_dir / "exclusivity_assays.tsv")
        result.seconds = time.perf_counter() - t0
        summary = summary_json(result, tables)
        write_json(out_dir / "summary.json", summary)
        write_text(out_dir / "report.html", check_report.render(result, tables, summary))
    checker.close()
    result.outputs = {p.name: str(p) for p in sorted(out_dir.iterdir()) if not p.name.startswith(".")}
    return result


def _run_shards(shard_inputs: list[CheckInputs], options: CheckOptions, parts: list[Path]) -> list[ShardResult]:
    """Run shards with Dask: local worker processes, or the cluster at ``options.dask_scheduler``."""
    import dask

    worker_options = CheckOptions(**{**options.__dict__, "shards": 1, "dask_scheduler": None,
                                     "threads": options.threads or 1})
    tasks = [dask.delayed(_shard_worker)(inp, worker_options, str(part)) for inp, part in zip(shard_inputs, parts)]
    if options.dask_scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise InputError(None, "--dask-scheduler needs the 'distributed' package",
                             "pip install distributed, or use --shards N on one machine") from None
        with Client(options.dask_scheduler) as client:
            return list(client.compute(tasks, sync=True))
    return list(dask.compute(*tasks, scheduler="processes", num_workers=min(len(tasks), options.shards)))


def read_assays_checked(paths: list[str | Path]) -> AssaySet:
    from .assays import read_assays

    return read_assays(paths)


def exclusivity(checker: Checker, paths: list[str | Path]):
    """Every site of every oligo in the off-target collections, and the amplicons/detections the assays could
    form there. Returns (sites DataFrame, assay outcomes DataFrame)."""
    import pandas as pd

    site_rows, assay_rows = [], []
    limits = amplification()
    for path in paths:
        records = list(read_fasta(path))
        engine = Engine(checker.patterns, checker.options.max_mismatches, checker.options.max_gaps,
                        threads=checker.options.threads)
        try:
            codes, ends = pack_batch([r.codes() for r in records])
            hits = engine.search_codes(codes, ends)
        finally:
            engine.close()
        book = SiteBook(checker.oligos, engine.sites, checker.rules)
        per_record: dict[int, list[tuple[int, int, int, int, int]]] = defaultdict(list)
        for g, p, sid in zip(hits.genome, hits.pos, hits.site):
            f = book.facts(int(sid))
            c = book.call(int(sid))
            so = checker.oligos[f.oligo]
            rec = records[int(g)]
            site_rows.append({
                "collection": Path(path).name, "record": rec.id, "description": rec.description,
                "assay": so.oligo.assay, "oligo": so.name, "role": so.role, "call": OLIGO_CALLS[c[0]],
                "strand": f.strand, "start": int(p) + 1, "end": int(p) + f.span, "mismatches": f.mismatches,
                "gaps": f.gaps, "mismatch_from_3p": ",".join(map(str, f.mm_from_3p)), "target": f.target,
                "tm_C": c[2], "tm_drop_C": c[4]})
            per_record[int(g)].append((f.oligo, int(p), int(p) + f.span, 0 if f.strand == "+" else 1, c[0]))
        for g, sites in per_record.items():
            rec = records[g]
            by_oligo: dict[int, list] = defaultdict(list)
            for s in sites:
                if s[4] <= 1:  # binds or degraded: could take part in a reaction
                    by_oligo[s[0]].append(s)
            for ai, (assay, members) in enumerate(zip(checker.assays.assays, checker.assay_members)):
                outcome = _offtarget_assay(assay, members, by_oligo, limits)
                if outcome is not None:
                    assay_rows.append({"collection": Path(path).name, "record": rec.id,
                                       "description": rec.description, "assay": assay.name, **outcome})
    site_cols = ["collection", "record", "description", "assay", "oligo", "role", "call", "strand", "start", "end",
                 "mismatches", "gaps", "mismatch_from_3p", "target", "tm_C", "tm_drop_C"]
    assay_cols = ["collection", "record", "description", "assay", "outcome", "amplicon_start", "amplicon_end",
                  "oligos"]
    sites_df = pd.DataFrame(site_rows, columns=site_cols)
    assays_df = pd.DataFrame(assay_rows, columns=assay_cols)
    if len(sites_df):
        sites_df = sites_df.sort_values(["collection", "record", "assay", "oligo", "start"], kind="stable")
    if len(assays_df):
        assays_df = assays_df.sort_values(["collection", "record", "assay"], kind="stable")
    return sites_df.reset_index(drop=True), assays_df.reset_index(drop=True)


def _offtarget_assay(assay: Assay, members: dict[str, list[int]], by_oligo, limits) -> dict | None:
    """What an assay could do on an off-target record: 'detected' (amplicon plus probe/guide), 'amplicon'
    (primers could amplify), 'guide binds' (guide-only assay), or None."""
    kind = assay.kind
    max_amp = assay.max_amplicon or limits.get("lamp" if kind == "lamp" else "pcr", {}).get("max_amplicon", 2000)

    def sites_of(role):
        return [s for o in members.get(role, []) for s in by_oligo.get(o, [])]

    fwd, rev = sites_of("forward"), sites_of("reverse")
    signal_roles = [r for r in ("probe", "crRNA") if r in members]
    best = None
    for f in fwd:
        for r in rev:
            if f[3] == r[3]:
                continue
            lo, hi = (f[1], r[2]) if f[3] == 0 else (r[1], f[2])
            if not (0 < hi - lo <= max_amp):
                continue
            inside = all(any(lo <= s[1] and s[2] <= hi for s in sites_of(role)) for role in signal_roles)
            cand = ("detected" if signal_roles and inside else "amplicon", lo, hi)
            if best is None or (cand[0] == "detected" and best[0] != "detected"):
                best = cand
    if best is not None:
        used = sorted({so for role in members for so in members[role] if by_oligo.get(so)})
        return {"outcome": best[0] if signal_roles else "amplicon", "amplicon_start": best[1] + 1,
                "amplicon_end": best[2], "oligos": len(used)}
    if kind == "lamp" or (kind == "crispr" and not fwd and not rev):
        needed = [r for r in members if r not in ("LF", "LB")]
        if all(sites_of(r) for r in needed):
            starts = [s[1] for r in needed for s in sites_of(r)]
            ends = [s[2] for r in needed for s in sites_of(r)]
            if max(ends) - min(starts) <= max(max_amp, 1):
                return {"outcome": "guide binds" if kind == "crispr" else "amplicon",
                        "amplicon_start": min(starts) + 1, "amplicon_end": max(ends), "oligos": len(needed)}
    return None


def _count_frame(columns: dict[str, object], counts: np.ndarray, labels: tuple[str, ...], fraction: str):
    """A table of call counts (one row per key, one column per call) with the first call's fraction."""
    import pandas as pd

    counts = np.asarray(counts).reshape(-1, len(labels))
    n = counts.sum(axis=1)
    frame = pd.DataFrame(columns)
    frame["genomes"] = n
    for k, label in enumerate(labels):
        frame[label.replace(" ", "_")] = counts[:, k]
    frame[fraction] = np.where(n > 0, np.round(counts[:, 0] / np.maximum(n, 1), 5), np.nan)
    return frame


def summary_tables(result: CheckResult, lineages: Lineages) -> dict[str, "object"]:
    """The summary tables written beside the per-genome rows (all small)."""
    checker, agg = result.checker, result.aggregates
    lin_names = agg.lineages()
    groups = np.array([result.lineage_groups.get(n, n) for n in lin_names], dtype=object)
    group_names = sorted(set(groups))
    group_idx = np.searchsorted(np.array(group_names, dtype=object), groups)
    assays = checker.assays.assays
    names = np.array([a.name for a in assays], dtype=object)
    n_as, n_ol = len(assays), len(checker.oligos)
    la = agg.lin_assay[: len(lin_names)].astype(np.int64)
    lo = agg.lin_oligo[: len(lin_names)].astype(np.int64)
    assay_summary = _count_frame({"assay": names, "panel": [a.panel for a in assays], "kind": [a.kind for a in assays],
                                  "oligos": [len(a.oligos) for a in assays]}, la.sum(axis=0), ASSAY_CALLS,
                                 "detected_fraction")
    assay_summary["not_detected_fraction"] = np.where(
        assay_summary["genomes"] > 0, np.round(assay_summary["not_detected"] / assay_summary["genomes"].clip(lower=1), 5),
        np.nan)
    by_group = np.zeros((len(group_names), n_as, 4), dtype=np.int64)
    np.add.at(by_group, group_idx, la)
    lineages_per_group = np.bincount(group_idx, minlength=len(group_names))
    group_summary = _count_frame({"lineage_group": np.repeat(group_names, n_as),
                                  "lineages": np.repeat(lineages_per_group, n_as), "assay": np.tile(names, len(group_names))},
                                 by_group, ASSAY_CALLS, "detected_fraction")
    li, ai = np.nonzero(la[:, :, 0] < la.sum(axis=2))  # lineage x assay pairs where not all were detected
    lin_arr = np.array(lin_names, dtype=object)
    lineage_summary = _count_frame({"lineage": lin_arr[li], "lineage_group": groups[li],
                                    "full_name": [lineages.full(x) for x in lin_arr[li]], "assay": names[ai]},
                                   la[li, ai], ASSAY_CALLS, "detected_fraction")
    og = np.zeros((len(group_names), n_ol, 4), dtype=np.int64)
    np.add.at(og, group_idx, lo)
    oligo_groups = _count_frame({"lineage_group": np.repeat(group_names, n_ol),
                                 "assay": np.tile([o.oligo.assay for o in checker.oligos], len(group_names)),
                                 "oligo": np.tile([o.name for o in checker.oligos], len(group_names)),
                                 "role": np.tile([o.role for o in checker.oligos], len(group_names))},
                                og, OLIGO_CALLS, "binds_fraction")
    months = sorted(agg.months())
    month_counts = agg.month_assay[[agg.month_index[m] for m in months]] if months else np.zeros((0, n_as, 4))
    monthly = _count_frame({"month": np.repeat(months, n_as), "assay": np.tile(names, len(months))},
                           month_counts, ASSAY_CALLS, "detected_fraction")
    return {"assay_summary": assay_summary, "group_summary": group_summary, "lineage_summary": lineage_summary,
            "oligo_lineage_groups": oligo_groups, "monthly_summary": monthly,
            "escape_mutations": escape_mutations(result, lin_names)}


def escape_mutations(result: CheckResult, lin_names: list[str]):
    """Mutations under degraded or failing oligo sites, ranked by the genomes they affect."""
    import pandas as pd

    checker = result.checker
    stats = result.aggregates.mutation_stats
    rows = []
    ann = checker.annotation
    for (oi, name), s in stats.items():
        so = checker.oligos[oi]
        aa = ""
        if ann is not None and name[0] in "ACGT" and name[-1] in "ACGT" and name[1:-1].isdigit():
            aa = ann.aa_change(s["refpos"] - 1, name[-1])
        gene = ann.gene_of(s["refpos"] - 1) if ann is not None else ""
        top = ", ".join(f"{k} ({v})" for k, v in sorted(s["lineages"].items(), key=lambda x: (-x[1], x[0]))[:8])
        rows.append({"assay": so.oligo.assay, "oligo": so.name, "role": so.role, "mutation": name,
                     "position": s["refpos"], "from_3p": s["from_3p"], "gene": gene, "amino_acid": aa,
                     "genomes": s["genomes"], "degraded": s["degraded"], "fails": s["fails"],
                     "lineages": len(s["lineages"]), "top_lineages": top})
    cols = ["assay", "oligo", "role", "mutation", "position", "from_3p", "gene", "amino_acid", "genomes",
            "degraded", "fails", "lineages", "top_lineages"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values(["genomes", "fails", "assay", "oligo", "position"], ascending=[False, False, True, True,
                                                                                          True], kind="stable")
    return df.reset_index(drop=True)


def summary_json(result: CheckResult, tables: dict) -> dict:
    """Machine-readable summary (deterministic: no timings or paths that change between runs)."""
    from . import __version__

    checker = result.checker
    opts = checker.options
    assay_summary = tables["assay_summary"]
    return {
        "oligolab_version": __version__,
        "parameters": {"max_mismatches": opts.max_mismatches, "max_gaps": opts.max_gaps,
                       "rules": Path(checker.rules.path).name, "conditions": checker.rules.conditions.describe()},
        "inputs": {"assays": [Path(p).name for p in result.inputs.assays],
                   "genomes": [Path(p).name for p in result.inputs.genomes],
                   "metadata": Path(result.inputs.metadata).name if result.inputs.metadata else None,
                   "reference": Path(result.inputs.reference).name if result.inputs.reference else None,
                   "off_targets": [Path(p).name for p in result.inputs.off_targets]},
        "counts": {"genomes": result.genomes, "nucleotides": result.nucleotides,
                   "lineages": len(result.aggregates.lineage_index), "assays": len(checker.assays.assays),
                   "oligos": len(checker.oligos)},
        "assays": assay_summary.to_dict(orient="records"),
        "oligos_without_reference_site": [o.name for o, r in zip(checker.oligos, checker.ref_sites) if r is None]
        if checker.reference is not None else [],
        "top_escape_mutations": tables["escape_mutations"].head(25).to_dict(orient="records"),
        "exclusivity": result.exclusivity_assays.to_dict(orient="records"),
        "not_detected_examples": {checker.assays.assays[a].name: ex
                                  for a, ex in sorted(result.aggregates.not_detected_examples.items())},
        "warnings": result.warnings,
    }
