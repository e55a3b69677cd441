"""The per-batch work of a check: search a batch of genomes with the engine, take each oligo's best site near
its expected (reference) place, call it, say why a site is missing (unknown bases or the mutations that removed
it), and call every assay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..annotation import Annotation
from ..assays import AssaySet
from ..engine import MAX_GAPS, MAX_PATTERN, Engine, Hits, PatternSet, SiteTable, search
from ..engine.kernels import best_site_in_window
from ..knowledge import load_rules
from ..sequences import SeqRecord, decode, reverse_complement
from ..sitecall import BINDS, FAILS, NO_DATA
from .assaycalls import AssayCaller, assay_members
from .genomes import unknown_run_table
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
    oligo_inst: np.ndarray  #: (n_genomes, n_oligos) index into ``instances`` or -1
    instances: SiteInstances  #: the distinct (site, template flanks) of the batch and their calls


@dataclass
class SiteInstances:
    """Distinct sites of a batch with their template flanks (oligo sense) and their calls."""

    sid: np.ndarray
    flank5: list[str]
    flank3: list[str]
    code: np.ndarray
    reason: np.ndarray  #: index into Checker.reasons
    tm_C: np.ndarray
    dg_kcal: np.ndarray
    tm_drop_C: np.ndarray


class Checker:
    """Holds what a check needs between batches: the engine, the site book, reference sites, counters.

    The engine's window cache and the site book grow with the distinct content seen; :meth:`trim` starts them
    afresh when they pass a memory budget (results never depend on what is cached, only the speed does)."""

    def __init__(
        self,
        assays: AssaySet,
        *,
        reference: SeqRecord | None = None,
        annotation: Annotation | None = None,
        options: CheckOptions | None = None,
    ):
        options = options if options is not None else CheckOptions()
        self.assays = assays
        self.options = options
        self.rules = load_rules(options.rules_path)
        self.reference = reference
        self.annotation = annotation
        ref_codes = reference.codes() if reference is not None else None
        self.ref_codes = ref_codes
        self.oligos = compile_search_oligos(assays, ref_codes, options.enzymes_dir)
        self.patterns = PatternSet.from_oligos(
            [o.name for o in self.oligos],
            [o.pattern for o in self.oligos],
            [o.context5 for o in self.oligos],
            [o.context3 for o in self.oligos],
        )
        self.assay_members = assay_members(assays, self.oligos)
        self.ref_sites: list[ReferenceSite | None] = [None] * len(self.oligos)
        if ref_codes is not None:
            self._find_reference_sites(ref_codes)
        self._ref_start = np.array([r.start if r is not None else -1 for r in self.ref_sites], dtype=np.int64)
        self._fresh()

    def _fresh(self) -> None:
        """A new engine (empty window cache), site book, reason vocabulary and mutation namer."""
        options = self.options
        self.engine = Engine(
            self.patterns, options.max_mismatches, options.max_gaps, threads=options.threads, device=options.device
        )
        self.book = SiteBook(self.oligos, self.engine.sites, self.rules)
        self.reasons: list[str] = [""]
        self._reason_index: dict[str, int] = {"": 0}
        self._reason_lost = self.reason_id(LOST_REASON)
        self._reason_unknown = self.reason_id("the expected site lies in unknown bases")
        self._mutations = Mutations(self.oligos, self.book, self.ref_sites, self.ref_codes)
        self.lost = self._mutations.lost  #: mutation lists explaining lost sites (id 0: none)
        self._assay_caller = AssayCaller(self.assays, self.oligos, self.assay_members, self.reason_id)
        self._rescued: dict[tuple[int, bytes], tuple[int, int]] = {}
        self._design: dict[int, tuple[int, ...]] = {}

    def trim(self, max_sites: int = 1_000_000, max_windows: int = 8_000_000) -> bool:
        """Start the caches afresh when they hold more than ``max_sites`` sites or ``max_windows`` windows
        (between batches: nothing of a batch's result refers to them afterwards). Returns whether it did."""
        if len(self.engine.sites) <= max_sites and self.engine.n_windows <= max_windows:
            return False
        self.engine.close()
        self._fresh()
        return True

    def _find_reference_sites(self, ref_codes: np.ndarray) -> None:
        hits, sites = search(self.patterns, [ref_codes], self.options.max_mismatches, self.options.max_gaps, threads=1)
        book = SiteBook(self.oligos, sites, self.rules)
        best: dict[int, tuple[int, int, int]] = {}
        for p, sid in zip(hits.pos, hits.site):
            oi = int(sites.pattern[sid]) // 2
            key = (int(sites.cost[sid]), int(p))
            if oi not in best or key < best[oi][:2]:
                best[oi] = (key[0], key[1], int(sid))
        n = self.rules.conditions.flank_nt
        for oi, (_, pos, sid) in best.items():
            f = book.facts(sid)
            left = decode(ref_codes[max(0, pos - n) : pos])
            right = decode(ref_codes[pos + f.span : pos + f.span + n])
            five, three = (left, right) if f.strand == "+" else (reverse_complement(right), reverse_complement(left))
            code, why, _, _, drop = book.call(sid, five, three)
            self.ref_sites[oi] = ReferenceSite(
                pos, pos + f.span, f.strand, f.target, f.columns, f.mm_from_3p, (code, why, drop)
            )

    def reason_id(self, text: str) -> int:
        """Index of a reason text in the shared vocabulary (rows store indices, not strings)."""
        rid = self._reason_index.get(text)
        if rid is None:
            rid = self._reason_index[text] = len(self.reasons)
            self.reasons.append(text)
        return rid

    def mutations(self, sid: int) -> list[Mutation]:
        """Mutations (vs the reference) under a site: (name like 'C28311T', 'GGG28881AAC' or 'del28311', position
        from the oligo's 3' end, reference position 1-based)."""
        return self._mutations.under_site(sid)

    def design_mismatches(self, sid: int) -> tuple[int, ...]:
        """Positions (from the oligo's 3' end) where the oligo mismatches a site because it mismatches the reference
        there and the genome kept the reference base: a design mismatch, not a mutation."""
        cached = self._design.get(sid)
        if cached is not None:
            return cached
        f = self.book.facts(sid)
        ref = self.ref_sites[f.oligo]
        out: list[int] = []
        if ref is not None and ref.strand == f.strand:
            so = self.oligos[f.oligo]
            core_len = len(so.core)
            for x in set(f.mm_from_3p) & set(ref.mm_from_3p):
                i = so.context5 + core_len - x
                gc, rc = f.columns[i], ref.columns[i]
                if gc >= 0 and rc >= 0 and f.target[gc] == ref.target[rc]:
                    out.append(x)
        self._design[sid] = result = tuple(sorted(out))
        return result

    def process(
        self, codes: np.ndarray, ends: np.ndarray, unknown_runs: list[np.ndarray] | None = None
    ) -> tuple[Hits, BatchResult]:
        """Search and call one batch of genomes (``codes``/``ends`` as :func:`oligolab.engine.pack_batch`)."""
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        if unknown_runs is None:
            unknown_runs = [unknown_run_table(codes[s:e]) for s, e in zip(starts, ends)]
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
        lost = self._missing_sites(codes, starts, ends, unknown_runs, best_site, best_pos, call, reason)
        inst_of, instances = self._instances(codes, starts, ends, best_site, best_pos)
        found = inst_of >= 0
        call[found] = instances.code[inst_of[found]]
        reason[found] = instances.reason[inst_of[found]]
        assay_call, assay_reason, amplicon = self._assay_caller(call, best_site, best_pos, self.engine.sites)
        return hits, BatchResult(
            np.arange(first, first + n_gen),
            call,
            best_site,
            best_pos,
            nsites,
            reason,
            assay_call,
            assay_reason,
            amplicon,
            lost,
            inst_of,
            instances,
        )

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

    def _missing_sites(
        self,
        codes: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        unknown_runs: list[np.ndarray],
        best_site: np.ndarray,
        best_pos: np.ndarray,
        call: np.ndarray,
        reason: np.ndarray,
    ) -> np.ndarray:
        """For oligos the search found no site for: 'no data' where the genome has unknown bases at the expected
        place; else the best alignment at the expected place whatever the search limit (filled into
        ``best_site``/``best_pos``, called by the rules like any site); else (the site is deleted or changed
        beyond recognition) the id of the mutations that removed it (returned)."""
        ref_start = self._ref_start
        lost = np.zeros(best_site.shape, dtype=np.int32)
        missing = best_site < 0
        rescue = _Rescue(len(self.engine.sites))
        for g in np.flatnonzero(missing.any(axis=1)).tolist():
            runs = unknown_runs[g]
            genome = codes[starts[g] : ends[g]]
            for o in np.flatnonzero(missing[g]).tolist():
                if ref_start[o] < 0:
                    continue
                shift = self._shift(g, o, best_pos)
                if len(runs) and self._expected_in_unknown(o, runs, shift):
                    call[g, o] = NO_DATA
                    reason[g, o] = self._reason_unknown
                    continue
                sid, pos = self._rescue(o, genome, shift, rescue)
                if sid >= 0:
                    best_site[g, o], best_pos[g, o] = sid, pos
                else:
                    lost[g, o] = self._mutations.explain_lost(o, genome, shift)
        rescue.add_to(self.engine.sites)
        return lost

    def _rescue(self, o: int, genome: np.ndarray, shift: int, rescue: _Rescue) -> tuple[int, int]:
        """(site id, start) of the cheapest alignment of oligo ``o`` near its expected place in ``genome`` (the
        search's own verification, any number of differences) when at most a third of its core differs, else
        (-1, -1). Cached by the genome bases of the window, so each distinct place is aligned once."""
        ref = self.ref_sites[o]
        assert ref is not None
        lo = max(0, ref.start + shift - RESCUE_SLACK_NT)
        hi = min(len(genome), ref.end + shift + RESCUE_SLACK_NT)
        key = (o, genome[lo:hi].tobytes())
        cached = self._rescued.get(key)
        if cached is None:
            cached = self._rescued[key] = self._align_near(o, ref.strand, genome[lo:hi], ref.start + shift - lo, rescue)
        sid, offset = cached
        return (sid, lo + offset) if sid >= 0 else (-1, -1)

    def _align_near(self, o: int, strand: str, window: np.ndarray, expected: int, rescue: _Rescue) -> tuple[int, int]:
        p = self.patterns
        j = 2 * o + (0 if strand == "+" else 1)
        m = int(p.lengths[j])
        row_int = np.zeros(10, dtype=np.int32)
        row_mask = np.zeros(2, dtype=np.uint64)
        row_target = np.zeros(MAX_PATTERN + MAX_GAPS, dtype=np.uint8)
        start = best_site_in_window(
            window,
            0,
            len(window),
            len(window),
            expected,
            p.masks[j],
            p.is_context[j],
            m,
            m,
            self.engine.g,
            row_int,
            row_mask,
            row_target,
        )
        differences = int(row_int[2] + row_int[3] + row_int[4])
        if start < 0 or differences > len(self.oligos[o].core) * RESCUE_MAX_CHANGED:
            return -1, -1
        row_int[0] = j
        return rescue.add(row_int, row_mask, row_target), start

    def _shift(self, g: int, o: int, best_pos: np.ndarray) -> int:
        """Offset between reference and genome coordinates near oligo ``o``, from the nearest oligo found."""
        ref_start = self._ref_start
        found = np.flatnonzero((best_pos[g] >= 0) & (ref_start >= 0))
        if not len(found):
            return 0
        nearest = found[np.argmin(np.abs(ref_start[found] - ref_start[o]))]
        return int(best_pos[g, nearest] - ref_start[nearest])

    def _expected_in_unknown(self, o: int, runs: np.ndarray, shift: int) -> bool:
        """Whether the expected location of oligo ``o`` (its reference site shifted like the nearest oligo found
        in this genome) overlaps unknown bases."""
        lo = self._ref_start[o] + shift - EXPECTED_SLACK_NT
        hi = self._ref_start[o] + shift + len(self.oligos[o].pattern) + EXPECTED_SLACK_NT
        return bool(np.any((runs[:, 0] < hi) & (runs[:, 1] > lo)))

    def _instances(
        self, codes: np.ndarray, starts: np.ndarray, ends: np.ndarray, best_site: np.ndarray, best_pos: np.ndarray
    ) -> tuple[np.ndarray, SiteInstances]:
        """The distinct (site, template flanks) of the batch, called once each; per genome and oligo the index of
        its instance (-1 where no site)."""
        n = self.rules.conditions.flank_nt
        g_idx, o_idx = np.nonzero(best_site >= 0)
        sid = best_site[g_idx, o_idx]
        a = starts[g_idx] + best_pos[g_idx, o_idx]
        b = a + self.engine.sites.span[sid]
        left = _gather(codes, a[:, None] - n + np.arange(n), starts[g_idx, None], ends[g_idx, None])
        right = _gather(codes, b[:, None] + np.arange(n), starts[g_idx, None], ends[g_idx, None])
        keys = np.concatenate([sid[:, None].astype(">i8").view(np.uint8), left, right], axis=1)
        uniq, first, inv = np.unique(
            np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).ravel(),
            return_index=True,
            return_inverse=True,
        )
        inst = _empty_instances(len(uniq))
        inst.sid = sid[first]
        for i, row in enumerate(first):
            s = int(sid[row])
            five, three = _PAD_DECODE[left[row]].tobytes().decode(), _PAD_DECODE[right[row]].tobytes().decode()
            if self.engine.sites.pattern[s] % 2:  # '-' strand: oligo sense is the bottom strand
                five, three = reverse_complement(three), reverse_complement(five)
            five, three = five.replace("-", ""), three.replace("-", "")
            code, why, tm, dg, drop = self.book.call(s, five, three)
            inst.flank5.append(five)
            inst.flank3.append(three)
            inst.code[i], inst.reason[i] = code, self.reason_id(why)
            inst.tm_C[i], inst.dg_kcal[i], inst.tm_drop_C[i] = tm, dg, drop
        inst_of = np.full(best_site.shape, -1, dtype=np.int64)
        inst_of[g_idx, o_idx] = inv.ravel()
        return inst_of, inst

    def causes(self, res: BatchResult) -> np.ndarray:
        """Index into :data:`CAUSES` per genome and oligo: what makes each call other than 'binds'."""
        inst = res.instances
        per_inst = np.zeros(len(inst.sid) + 1, dtype=np.int32)
        for i, sid in enumerate(inst.sid):
            if inst.code[i] == BINDS:
                continue
            f = self.book.facts(int(sid))
            design = len(self.design_mismatches(int(sid)))
            mutated = f.gaps > 0 or len(f.mm_from_3p) - f.unknown > design
            per_inst[i] = 4 if f.unknown else (3 if design and mutated else (1 if design else 2))
        cause = per_inst[np.where(res.oligo_inst >= 0, res.oligo_inst, len(inst.sid))]
        cause[(res.oligo_inst < 0) & (res.oligo_call == NO_DATA)] = 4
        cause[(res.oligo_inst < 0) & (res.oligo_call == FAILS)] = 5
        return cause

    def close(self) -> None:
        self.engine.close()


#: causes of a call that is not 'binds': what differs between oligo and genome at the site
CAUSES = ("", "design", "mutation", "design+mutation", "unknown bases", "site lost")
LOST_REASON = "no site at the expected place (deleted, or more than a third of the oligo changed)"
RESCUE_SLACK_NT = 40  #: genome bases searched on each side of an oligo's expected place when the search found none
RESCUE_MAX_CHANGED = 1 / 3  #: an alignment at the expected place counts as the site up to this share of changes
_PAD = 6  #: code of a flank position beyond the genome's end
_PAD_DECODE = np.frombuffer(b"ACGTNN-", dtype=np.uint8)


def _gather(codes: np.ndarray, index: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``codes[index]`` where ``lo <= index < hi`` (the genome's own bases), the pad code elsewhere."""
    inside = (index >= lo) & (index < hi)
    return np.where(inside, codes[np.clip(index, 0, len(codes) - 1)], _PAD).astype(np.uint8)


def _empty_instances(n: int) -> SiteInstances:
    return SiteInstances(
        np.zeros(n, np.int64),
        [],
        [],
        np.zeros(n, np.int8),
        np.zeros(n, np.int32),
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
    )


class _Rescue:
    """Sites found by alignment at expected places during one batch, appended to the site table at once."""

    def __init__(self, first_id: int):
        self.first_id = first_id
        self.rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, row_int: np.ndarray, row_mask: np.ndarray, row_target: np.ndarray) -> int:
        self.rows.append((row_int.copy(), row_mask.copy(), row_target.copy()))
        return self.first_id + len(self.rows) - 1

    def add_to(self, sites: SiteTable) -> None:
        if self.rows:
            sites.extend(*(np.stack([r[i] for r in self.rows]) for i in range(3)))
