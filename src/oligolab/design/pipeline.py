"""`oligolab design` end to end: from a genome collection to ranked, ready-to-order CRISPR assays.

1. Read the target genomes with the project's readers and project them onto the reference (``collection``).
2. Candidate guides with a valid PAM/PFS and the genomes each detects under the check rules (``candidates``).
3. Guide sets (1 to ``max_guides`` guides) per window, greedy set cover (``selection``); guides with an
   off-target site (check's engine and calls) are removed first (``specificity``).
4. Primers for the chosen chemistry around the best guide sets (``rpa``, ``lamp``, ``pcr``), in distinct regions.
5. The shortlist is checked by `oligolab check` itself over every target genome (``evaluate``) and against
   the off-target collections; activity and crRNA folding are scored (``scoring``).
6. Ranked: most genomes detected (check calls), specific, then fewest variable columns under the oligos
   (robustness to new variants), then predicted activity.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..annotation import Annotation
from ..check import ASSAY_CALLS, CheckOptions
from ..errors import InputError
from ..knowledge import Enzyme, get_enzyme, load_rules
from ..lineages import Lineages
from ..sequences import SeqRecord, read_fasta
from .candidates import GuideCandidates, generate_guides
from .collection import Collection, read_collection
from .evaluate import CheckCoverage, check_coverage
from .lamp import design_lamp
from .model import DesignedAssay, assay_set
from .pcr import design_pcr
from .primers import PrimerFactory
from .rpa import design_rpa, robustness_penalty
from .scoring import cas12a_context, score_guides
from .selection import GuideSet, rank_guide_sets, site_variability, window_guide_sets
from .specificity import assay_offtargets, guide_offtargets, summarise

CHEMISTRIES = ("rpa", "lamp", "pcr")
GUIDE_WINDOW_NT = {"rpa": 100, "lamp": 60, "pcr": 120}  #: span the guides of one assay may occupy


@dataclass
class DesignInputs:
    genomes: list[str | Path]
    metadata: str | Path | None = None
    reference: str | Path | None = None
    annotation: str | Path | None = None
    alias_key: str | Path | None = None
    off_targets: list[str | Path] = field(default_factory=list)
    keep: Callable[[str, str], bool] | None = None  #: (record id, lineage) -> design on this genome?


@dataclass
class DesignOptions:
    enzyme: str = "LbCas12a"
    amplification: str = "lamp"
    n_assays: int = 3
    max_guides: int = 3
    region: str | None = None  #: gene name (needs annotation) or 1-based 'start-end' on the reference
    max_mismatches: int = 3
    max_gaps: int = 2
    rules_path: str | None = None
    enzymes_dir: str | None = None
    threads: int | None = None
    shortlist: int = 0  #: assays checked in full (default 8 x n_assays, at least 24)
    max_windows: int = 400  #: guide sets tried for primers at most
    window_step: int = 5  #: nt between guide-set windows

    def check_options(self) -> CheckOptions:
        return CheckOptions(max_mismatches=self.max_mismatches, max_gaps=self.max_gaps,
                            rules_path=self.rules_path, enzymes_dir=self.enzymes_dir, threads=self.threads)


@dataclass
class DesignResult:
    inputs: DesignInputs
    options: DesignOptions
    enzyme: Enzyme
    collection: Collection
    candidates: GuideCandidates
    assays: list[DesignedAssay]  #: ranked, specific first
    rejected: list[DesignedAssay]  #: shortlisted but not specific
    coverage: CheckCoverage
    region: tuple[int, int]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    offtarget_sites: "object" = None
    lineages: Lineages | None = None
    final_names: dict[str, str] = field(default_factory=dict)  #: shortlist name -> final assay name


def parse_region(text: str | None, reference: SeqRecord, annotation_path: str | Path | None) -> tuple[int, int]:
    """Reference columns [start, end) of a region: a gene (from the annotation) or '1-based start-end'."""
    L = len(reference.seq)
    if not text:
        return 0, L
    m = re.fullmatch(r"\s*(\d[\d,_]*)\s*[-:.]{1,2}\s*(\d[\d,_]*)\s*", text)
    if m:
        a, b = (int(re.sub(r"[,_]", "", g)) for g in m.groups())
        if a < 1 or b < a:
            raise InputError(None, f"region '{text}' is not a 1-based start-end range",
                             "write --region START-END with START <= END, e.g. 28274-29533")
        if b > L:
            raise InputError(None, f"region '{text}' lies outside the reference {reference.id} ({L:,} nt)",
                             f"give coordinates within 1-{L}")
        return a - 1, b
    if annotation_path is None:
        raise InputError(None, f"region '{text}' is a gene name but no annotation was given",
                         "pass --annotation reference.gb, or give coordinates START-END")
    ann = Annotation.from_genbank(annotation_path)
    genes = {}
    for cds in ann.cdss:
        lo, hi = int(cds.positions.min()), int(cds.positions.max()) + 1
        g = genes.setdefault(cds.gene.lower(), [cds.gene, lo, hi])
        g[1], g[2] = min(g[1], lo), max(g[2], hi)
    hit = genes.get(text.strip().lower())
    if hit is None:
        raise InputError(annotation_path, f"no gene '{text}' in the annotation",
                         f"use one of {', '.join(sorted(v[0] for v in genes.values()))} or START-END")
    if hit[2] > L:
        raise InputError(annotation_path, f"gene '{text}' ends at {hit[2]} beyond the reference ({L:,} nt)",
                         "give the annotation of the reference you pass with --reference")
    return hit[1], hit[2]


def _check_compatible(enzyme: Enzyme, chemistry: str) -> None:
    if chemistry not in CHEMISTRIES:
        raise InputError(None, f"unknown amplification '{chemistry}'", f"use one of {', '.join(CHEMISTRIES)}")
    if enzyme.target == "rna" and chemistry == "lamp":
        raise InputError(None, f"{enzyme.name} detects RNA, and LAMP makes DNA without a T7 promoter",
                         "use --amplification rpa or pcr (a T7 promoter is added to the forward primer), or a "
                         "DNA-targeting enzyme such as LbCas12a with LAMP")
    if not 1 <= enzyme.spacer_length <= 30:
        raise InputError(enzyme.path or None, f"{enzyme.name}: spacer_length {enzyme.spacer_length} nt; design "
                         "supports 1-30 nt", "set spacer_length in the enzyme file")


def design(inputs: DesignInputs, options: DesignOptions = DesignOptions(),
           progress: Callable[[str, float], None] | None = None) -> DesignResult:
    """Design ranked assays for a collection (see the module docstring for the steps)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def step(name: str, frac: float = 0.0) -> None:
        if progress is not None:
            progress(name, frac)

    enzyme = get_enzyme(options.enzyme, options.enzymes_dir)
    chemistry = options.amplification.lower()
    _check_compatible(enzyme, chemistry)
    if options.n_assays < 1 or options.max_guides < 1:
        raise InputError(None, "--n-assays and --max-guides must be at least 1", "give positive numbers")
    rules = load_rules(options.rules_path)
    reference = next(iter(read_fasta(inputs.reference)), None) if inputs.reference else None
    lineages = Lineages(inputs.alias_key)
    for p in inputs.off_targets:  # fail early on unreadable off-target files
        next(iter(read_fasta(p)))
    if reference is not None:  # and on a bad region, before the genomes are read
        parse_region(options.region, reference, inputs.annotation)
    step("reading and projecting genomes")
    collection = read_collection(inputs.genomes, reference, inputs.metadata, keep=inputs.keep,
                                 progress=lambda i, n: step(f"reading and projecting genomes ({i:,})", 0.0))
    reference = collection.reference.record
    region = parse_region(options.region, reference, inputs.annotation)
    timings["read_project_s"] = time.perf_counter() - t0
    notes: list[str] = []
    if not inputs.off_targets:
        notes.append("no off-target collection was given: specificity was not screened (pass near neighbours and "
                     "human background with --off-target)")
    if collection.reversed_ids:
        notes.append(f"{len(collection.reversed_ids)} genomes were given as reverse complement and were turned "
                     f"({', '.join(collection.reversed_ids[:5])}{' ...' if len(collection.reversed_ids) > 5 else ''})")
    if collection.unanchored:
        notes.append(f"{len(collection.unanchored)} genomes share too little sequence with the reference in places; "
                     "those stretches count as 'no data'")

    t1 = time.perf_counter()
    step("candidate guides")
    cands = generate_guides(collection, enzyme, rules, max_mismatches=options.max_mismatches, columns=region)
    if not len(cands):
        where = f"in {options.region}" if options.region else "in the genomes"
        raise InputError(None, f"no candidate {enzyme.name} guide {where}: no {enzyme.spacer_length}-nt site with a "
                         f"{enzyme.motif} {enzyme.motif_name} binds any genome",
                         "widen --region, or choose another --enzyme")
    profile = collection.profile()
    variability = site_variability(cands, profile.differ)
    timings["candidates_s"] = time.perf_counter() - t1

    # guide sets, with off-target guides removed (iterate until the sets tried are all screened)
    t2 = time.perf_counter()
    step("guide sets and specificity")
    check_opts = options.check_options()
    window = GUIDE_WINDOW_NT[chemistry]
    excluded = np.zeros(len(cands), dtype=bool)
    screened: dict[str, list] = {}
    tiebreak = -variability.astype(np.float64)
    for _ in range(4):
        sets = window_guide_sets(cands, window, options.window_step, options.max_guides, tiebreak, variability,
                                 same_strand=enzyme.target == "rna", columns=region, exclude=excluded)
        sets = rank_guide_sets(sets)[: options.max_windows]
        todo = sorted({cands.spacer(m) for g in sets for m in g.members} - set(screened))
        if not todo:
            break
        screened.update(guide_offtargets(enzyme, todo, inputs.off_targets, reference, check_opts))
        bad = {s for s, hits in screened.items() if hits}
        newly = [i for g in sets for i in g.members if cands.spacer(i) in bad and not excluded[i]]
        if not newly:
            break
        excluded[newly] = True
    if not sets:
        where = f" in {options.region}" if options.region else ""
        raise InputError(None, f"no guide set found: every candidate guide{where}"
                         " has an off-target site or no window holds one", "widen --region or add --max-guides")
    timings["guide_sets_s"] = time.perf_counter() - t2

    # primers around the best guide sets, one assay per region; assays whose primers could amplify an
    # off-target record are rebuilt without those primers, and more regions are tried until enough are specific
    t3 = time.perf_counter()
    factory = PrimerFactory(collection, rules, options.max_mismatches)
    build = {"rpa": design_rpa, "lamp": design_lamp, "pcr": design_pcr}[chemistry]
    shortlist_n = options.shortlist or max(24, 8 * options.n_assays)
    good: list[DesignedAssay] = []
    bad: list[DesignedAssay] = []
    taken: list[tuple[int, int]] = []
    site_frames = []
    next_set = 0
    serial = 0
    retry: list[tuple[GuideSet, int]] = []
    while len(good) < shortlist_n and (next_set < len(sets) or retry):
        pending: list[tuple[DesignedAssay, GuideSet, int]] = []
        while retry and len(pending) < shortlist_n - len(good):
            gs, attempt = retry.pop(0)
            serial += 1
            a = build(f"cand{serial}", gs, cands, factory)
            if a is not None:
                pending.append((a, gs, attempt))
        while next_set < len(sets) and len(pending) < shortlist_n - len(good):
            gs = sets[next_set]
            next_set += 1
            step("primers", next_set / len(sets))
            if any(gs.start < b and a < gs.end for a, b in taken):
                continue
            serial += 1
            a = build(f"cand{serial}", gs, cands, factory)
            if a is None:
                continue
            pending.append((a, gs, 0))
            taken.append(a.amplicon)
        if not pending:
            break
        step("off-target screen of primer sets")
        sites, outcomes = assay_offtargets(assay_set([p[0] for p in pending]), inputs.off_targets, reference,
                                           check_opts)
        spec = summarise(sites, outcomes, [p[0].name for p in pending])
        if len(sites):
            site_frames.append(sites)
        for a, gs, attempt in pending:
            a.scores["specificity"] = spec[a.name]
            if spec[a.name]["specific"]:
                good.append(a)
                continue
            bad.append(a)
            if attempt < 2 and not spec[a.name]["guide_sites"]:
                factory.banned |= _offtarget_primer_sites(a, sites)
                retry.append((gs, attempt + 1))
    timings["primers_s"] = time.perf_counter() - t3
    if not good:
        what = (f"{len(bad)} primer sets were found but every one could amplify an off-target record"
                if bad else f"no {chemistry.upper()} primers meet the constraints around the {len(sets)} best guide "
                "sets")
        raise InputError(None, f"no specific assay: {what}{(' in ' + options.region) if options.region else ''}",
                         "widen --region, try another --amplification, or relax [" + chemistry +
                         ".design] in a copy of knowledge/amplification.toml")
    made = good[:shortlist_n]
    sites = pd.concat(site_frames, ignore_index=True) if site_frames else None

    # scores and coverage by the check itself
    t4 = time.perf_counter()
    step("scoring guides")
    _score(made, cands, profile)
    step("checking the shortlist against the target genomes")
    keep_ids = set(collection.ids)
    coverage = check_coverage(assay_set(made), inputs.genomes, reference, check_opts,
                              keep=(lambda rid: rid in keep_ids) if inputs.keep is not None else None)
    for a in made:
        a.scores["check"] = coverage.counts(coverage.index(a.name))
    timings["check_s"] = time.perf_counter() - t4

    final: list[DesignedAssay] = []
    for a in sorted(made, key=lambda a: _rank_key(a, enzyme)):  # best first, one assay per region
        if any(a.amplicon[0] < f.amplicon[1] and f.amplicon[0] < a.amplicon[1] for f in final):
            continue
        final.append(a)
        if len(final) == options.n_assays:
            break
    # final names: design-1, design-2 ... (rename in the coverage table too)
    rename = {}
    for r, a in enumerate(final, 1):
        rename[a.name] = f"{enzyme.name}-{chemistry.upper()}-{r}"
    for a in final:
        _rename(a, rename[a.name])
    coverage.assay_names = [rename.get(n, n) for n in coverage.assay_names]
    if len(final) < options.n_assays:
        notes.append(f"only {len(final)} specific assays found for the {options.n_assays} requested; "
                     f"{len(bad)} primer sets were rejected for off-target sites")
    timings["total_s"] = time.perf_counter() - t0
    return DesignResult(inputs, options, enzyme, collection, cands, final, bad, coverage, region, timings, notes,
                        sites, lineages, rename)


def _offtarget_primer_sites(a: DesignedAssay, sites) -> set[tuple[int, int, int]]:
    """Reference sites (start, end, strand) of the primers of ``a`` that bind or are degraded in an
    off-target record (so the assay can be rebuilt without them)."""
    out: set[tuple[int, int, int]] = set()
    if sites is None or not len(sites):
        return out
    pos = sites[(sites["assay"] == a.name) & sites["call"].isin(("binds", "degraded"))]
    names = set(pos["oligo"])
    for o in a.primers:
        if o.part_sites:
            for part, (s, e), strand in zip(("F1c", "F2") if o.role == "FIP" else ("B1c", "B2"), o.part_sites,
                                            (1 - o.strand, o.strand)):
                if f"{o.name}:{part}" in names:
                    out.add((s, e, strand))
        elif o.name in names:
            out.add((o.start, o.end, o.strand))
    return out


def _score(assays: list[DesignedAssay], cands: GuideCandidates, profile) -> None:
    members = sorted({m for a in assays for m in a.guide_members})
    contexts = [cas12a_context(profile, int(cands.column[m]), int(cands.strand[m]), cands.footprint)
                if cands.enzyme.activity_model == "cas12a_activity_v1" else None for m in members]
    scores = dict(zip(members, score_guides(cands.enzyme, [cands.spacer(m) for m in members], contexts)))
    for a in assays:
        gsc = [scores[m] for m in a.guide_members]
        a.scores["guides"] = gsc
        vals = [g.activity for g in gsc if not math.isnan(g.activity)]
        a.scores["activity"] = float(np.mean(vals)) if vals else float("nan")
        a.scores["activity_kind"] = gsc[0].activity_kind if gsc else "unavailable"
        a.scores["robustness_penalty"] = robustness_penalty(a.prescore)


def _rank_key(a: DesignedAssay, enzyme: Enzyme) -> tuple:
    c = a.scores["check"]
    act = a.scores.get("activity", float("nan"))
    return (-c["detected"], -(c["detected"] + c["at risk"]), a.scores["robustness_penalty"],
            -a.prescore.get("loop_primers", 0),
            -(act if not math.isnan(act) else 0.0), len(a.guide_members), a.amplicon[1] - a.amplicon[0],
            a.amplicon[0])


def _rename(a: DesignedAssay, name: str) -> None:
    old = a.name
    a.name = name
    for o in a.oligos:
        if o.name.startswith(old + "-"):
            o.name = name + o.name[len(old):]


def assay_calls_names() -> tuple[str, ...]:
    return ASSAY_CALLS
