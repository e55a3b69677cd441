"""The per-batch work of a check: search a batch of genomes with the engine, take each oligo's best site near
its expected (reference) place, call it, say why a site is missing (unknown bases or the mutations that removed
it), and call every assay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..annotation import Annotation
from ..assays import AssaySet
from ..engine import Engine, Hits, PatternSet, search
from ..knowledge import load_rules
from ..sequences import SeqRecord
from ..sitecall import FAILS, NO_DATA
from .assaycalls import AssayCaller, assay_members
from .mutations import Mutation, Mutations, ReferenceSite
from .oligos import compile_search_oligos
from .options import ON_LOCUS_NT, CheckOptions
from .sites import SiteBook

EXPECTED_SLACK_NT = 30  #: unknown bases this close to an oligo's expected place make its absence 'no data'


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
        self.assay_members = assay_members(assays, self.oligos)
        self.ref_sites: list[ReferenceSite | None] = [None] * len(self.oligos)
        if ref_codes is not None:
            self._find_reference_sites(ref_codes)
        self._ref_start = np.array([r.start if r is not None else -1 for r in self.ref_sites], dtype=np.int64)
        self.reasons: list[str] = [""]
        self._reason_index: dict[str, int] = {"": 0}
        self._reason_lost = self.reason_id(f"no site with <= {options.max_mismatches} differences")
        self._reason_unknown = self.reason_id("the expected site lies in unknown bases")
        self._site_code = np.zeros(0, dtype=np.int8)
        self._site_reason = np.zeros(0, dtype=np.int32)
        self._mutations = Mutations(self.oligos, self.book, self.ref_sites, ref_codes)
        self.lost = self._mutations.lost  #: mutation lists explaining lost sites (id 0: none)
        self._assay_caller = AssayCaller(assays, self.oligos, self.assay_members, self.reason_id)

    def _find_reference_sites(self, ref_codes: np.ndarray) -> None:
        hits, sites = search(self.patterns, [ref_codes], self.options.max_mismatches, self.options.max_gaps,
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

    def mutations(self, sid: int) -> list[Mutation]:
        """Mutations (vs the reference) under a site: (name like 'C28311T' or 'del28311', position from the
        oligo's 3' end, reference position 1-based)."""
        return self._mutations.under_site(sid)

    def process(self, codes: np.ndarray, ends: np.ndarray, unknown_runs: list[np.ndarray]) -> tuple[Hits, BatchResult]:
        """Search and call one batch of genomes (``codes``/``ends`` as :func:`oligolab.engine.pack_batch`)."""
        first = self.engine.n_genomes
        hits = self.engine.search_codes(codes, ends)
        n_gen = len(ends)
        n_ol = len(self.oligos)
        oi = self.engine.sites.pattern[hits.site] // 2
        local = hits.genome - first
        nsites = np.zeros((n_gen, n_ol), dtype=np.int32)
        np.add.at(nsites, (local, oi), 1)
        best_site, best_pos = self._best_sites(hits, oi, local, n_gen)
        call = np.full((n_gen, n_ol), FAILS, dtype=np.int8)
        reason = np.full((n_gen, n_ol), self._reason_lost, dtype=np.int32)
        found = best_site >= 0
        call[found], reason[found] = self.site_calls(best_site[found])
        lost = self._missing_sites(codes, ends, unknown_runs, found, best_pos, call, reason)
        assay_call, assay_reason, amplicon = self._assay_caller(call, best_site, best_pos, self.engine.sites)
        return hits, BatchResult(np.arange(first, first + n_gen), call, best_site, best_pos, nsites, reason,
                                 assay_call, assay_reason, amplicon, lost)

    def _best_sites(self, hits: Hits, oi: np.ndarray, local: np.ndarray, n_gen: int) -> tuple[np.ndarray, np.ndarray]:
        """Per genome and oligo, the cheapest site within ON_LOCUS_NT of the reference site (nearest first)."""
        n_ol = len(self.oligos)
        ref_start = self._ref_start
        dist = np.where(ref_start[oi] >= 0, np.abs(hits.pos.astype(np.int64) - ref_start[oi]), 0)
        on = dist <= ON_LOCUS_NT
        cost = self.engine.sites.cost[hits.site]
        order = np.lexsort((dist[on], cost[on], oi[on], local[on]))
        g_on, o_on, s_on, p_on = local[on][order], oi[on][order], hits.site[on][order], hits.pos[on][order]
        firsts = np.ones(len(g_on), dtype=bool)
        firsts[1:] = (g_on[1:] != g_on[:-1]) | (o_on[1:] != o_on[:-1])
        best_site = np.full((n_gen, n_ol), -1, dtype=np.int64)
        best_pos = np.full((n_gen, n_ol), -1, dtype=np.int64)
        best_site[g_on[firsts], o_on[firsts]] = s_on[firsts]
        best_pos[g_on[firsts], o_on[firsts]] = p_on[firsts]
        return best_site, best_pos

    def _missing_sites(self, codes: np.ndarray, ends: np.ndarray, unknown_runs: list[np.ndarray], found: np.ndarray,
                       best_pos: np.ndarray, call: np.ndarray, reason: np.ndarray) -> np.ndarray:
        """For oligos without a site: 'no data' where the genome has unknown bases at the expected place
        (``call``/``reason`` updated), else the id of the mutations that removed the site (returned)."""
        ref_start = self._ref_start
        lost = np.zeros(found.shape, dtype=np.int32)
        starts = np.concatenate([[0], ends[:-1] + 1])
        for g in np.flatnonzero((~found).any(axis=1)):
            runs = unknown_runs[g]
            for o in np.flatnonzero(~found[g]):
                if len(runs) and self._expected_in_unknown(g, o, runs, best_pos):
                    call[g, o] = NO_DATA
                    reason[g, o] = self._reason_unknown
                elif ref_start[o] >= 0:
                    lost[g, o] = self._mutations.explain_lost(o, codes[starts[g]:ends[g]], self._shift(g, o, best_pos))
        return lost

    def _shift(self, g: int, o: int, best_pos: np.ndarray) -> int:
        """Offset between reference and genome coordinates near oligo ``o``, from the nearest oligo found."""
        ref_start = self._ref_start
        found = np.flatnonzero((best_pos[g] >= 0) & (ref_start >= 0))
        if not len(found):
            return 0
        nearest = found[np.argmin(np.abs(ref_start[found] - ref_start[o]))]
        return int(best_pos[g, nearest] - ref_start[nearest])

    def _expected_in_unknown(self, g: int, o: int, runs: np.ndarray, best_pos: np.ndarray) -> bool:
        """Whether the expected location of oligo ``o`` in genome ``g`` overlaps unknown bases; the location
        is the reference site shifted like the nearest oligo that was found in this genome."""
        ref_start = self._ref_start
        if ref_start[o] < 0:
            return True
        shift = self._shift(g, o, best_pos)
        lo = ref_start[o] + shift - EXPECTED_SLACK_NT
        hi = ref_start[o] + shift + len(self.oligos[o].pattern) + EXPECTED_SLACK_NT
        return bool(np.any((runs[:, 0] < hi) & (runs[:, 1] > lo)))

    def close(self) -> None:
        self.engine.close()
